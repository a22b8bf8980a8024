//! Drives the real `auditrail` binary over HTTP: `token` mints what `serve` accepts, and a
//! batch posted over the network comes back from the query route; data survives a restart.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditrail"))
}

async fn start(dir: &std::path::Path, extra: &[&str]) -> (Server, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = bin()
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("auditrail serve starts");
    let server = Server(child);
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/v1/health")).await
            && r.status() == 200
        {
            return (server, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("auditrail serve did not answer /v1/health within 30 s");
}

fn token(dir: &std::path::Path, tenant: &str, role: &str) -> String {
    let out = bin()
        .args(["token", "--tenant", tenant, "--role", role, "--user", "u1", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn token_then_post_then_query_over_http_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().to_rfc3339();
    let batch = format!(
        "{{\"id\":\"http-1\",\"occurred_at\":\"{now}\",\"action\":\"LOGIN\",\"actor\":{{\"username\":\"jdoe\"}},\"result\":\"OK\"}}\n\
         {{\"id\":\"http-2\",\"occurred_at\":\"{now}\",\"action\":\"SIGN_OUT\",\"actor\":{{\"username\":\"jdoe\"}},\"result\":\"OK\"}}\n"
    );
    let r = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(token(dir.path(), "acme", "ingest"))
        .header("content-type", "application/x-ndjson")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["created"], 2);
    drop(server);

    let (_server, base) = start(dir.path(), &[]).await;
    let reader = token(dir.path(), "acme", "compliance_analyst");
    let r = client.get(format!("{base}/v1/events?user=jdoe")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let mut ids: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec!["http-1", "http-2"]);

    let r = client.get(format!("{base}/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn demo_data_is_multi_tenant_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start(dir.path(), &["--demo", "--demo-size", "400"]).await;
    let client = reqwest::Client::new();
    for tenant in ["acme-contact", "globex-care"] {
        let t = token(dir.path(), tenant, "cc_manager");
        let r: serde_json::Value = client
            .get(format!("{base}/v1/sign-ins?period=7d"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = r["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{tenant} has sign-ins");
        assert!(items.iter().any(|i| i["result"] == "Failed"), "{tenant} has failed sign-ins");
    }
}

#[test]
fn token_refuses_unknown_roles() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        bin().args(["token", "--tenant", "acme", "--role", "root", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
}

#[tokio::test]
async fn the_export_command_runs_an_export_on_the_server_and_downloads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start(dir.path(), &["--demo", "--demo-size", "300"]).await;
    let out_file = dir.path().join("logins.zip");
    let out = tokio::task::spawn_blocking({
        let (dir, out_file, base) = (dir.path().to_owned(), out_file.clone(), base.clone());
        move || {
            bin()
                .args(["export", "--server", &base, "--tenant", "acme-contact", "--view", "sign-ins"])
                .args(["--password", "Secret_1@%", "--tz", "Europe/Prague", "--out"])
                .arg(&out_file)
                .arg("--data-dir")
                .arg(&dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("records →"), "{stderr}");
    let listing = Command::new("7z").args(["l", "-slt", "-pSecret_1@%"]).arg(&out_file).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("Method = AES-256 Deflate") && listing.contains("Path = sign-ins-0001.csv"), "{listing}");

    // A password that breaks the rule is refused with the server's message.
    let bad = bin()
        .args(["export", "--server", &base, "--tenant", "acme-contact", "--password", "bad pass#", "--out"])
        .arg(dir.path().join("x.zip"))
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("password: "), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// Starts `serve` with extra environment and returns its first line on stderr (the hint).
async fn start_with_env(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String, String) {
    use std::io::BufRead;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = bin()
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let hint = lines.find_map(|l| l.ok().filter(|l| l.contains("get a token"))).expect("a start-up hint");
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Server(child), format!("http://{addr}"), hint)
}

#[tokio::test]
async fn the_start_up_hint_prints_a_token_command_that_works_with_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("my data");
    let (_server, base, hint) = start_with_env(&data, &[]).await;
    let command = hint.split("get a token: ").nth(1).unwrap().trim_end_matches(')');
    // Run it as a user would paste it, from another directory.
    let out = Command::new("sh")
        .arg("-c")
        .arg(command.replacen("auditrail", env!("CARGO_BIN_EXE_auditrail"), 1))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{hint}: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = reqwest::Client::new().get(format!("{base}/v1/events")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{hint}");
}

#[tokio::test]
async fn serve_reads_the_documented_auditrail_variables() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "an-env-secret-of-at-least-32-bytes!!";
    let (_server, base, _) = start_with_env(dir.path(), &[("AUDITRAIL_JWT_SECRET", secret)]).await;
    let client = reqwest::Client::new();
    // A token signed with the secret from the environment is accepted …
    let from_env = auditrail_shared::auth::Authenticator::local(secret.as_bytes())
        .mint("acme", "u1", None, &[auditrail_shared::auth::Role::ComplianceAnalyst], 600)
        .unwrap();
    let r = client.get(format!("{base}/v1/events")).bearer_auth(from_env).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // … and `auditrail token` with the same environment mints one too.
    let out = bin()
        .args(["token", "--tenant", "acme", "--role", "compliance_analyst", "--data-dir"])
        .arg(dir.path())
        .env("AUDITRAIL_JWT_SECRET", secret)
        .output()
        .unwrap();
    let t = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(client.get(format!("{base}/v1/events")).bearer_auth(t).send().await.unwrap().status(), 200);
    // A bad value is refused at start-up with the variable's name.
    let out = bin()
        .args(["token", "--tenant", "a", "--role", "agent"])
        .env("AUDITRAIL_JWT_SECRET", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUDITRAIL_JWT_SECRET"));
}

/// Tamper evidence from the command line: `serve` seals on its own (`--seal-every`), `verify`
/// passes on the honest store, names a record changed beneath the server, and refuses another
/// key; `public-key` prints the key an auditor keeps.
#[tokio::test]
async fn serve_seals_and_verify_names_a_record_changed_beneath_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), &["--demo", "--demo-size", "300", "--seal-every", "1"]).await;
    let reader = token(dir.path(), "acme-contact", "compliance_analyst");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(format!("{base}/v1/integrity/seals")).bearer_auth(&reader).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        if body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "serve sealed nothing within 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(server);

    let run = |args: &[&str]| {
        let out = bin().args(args).arg("--data-dir").arg(dir.path()).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["seal"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(&["verify", "--tenant", "acme-contact"]);
    assert!(ok && out.contains("OK: every sealed record verifies"), "{out}{err}");
    assert!(out.contains("last seal: "), "{out}");
    let (ok, pem, _) = run(&["public-key"]);
    assert!(ok && pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");

    // A result changed in the database file: named by record and kind, exit status 1.
    let db = rusqlite::Connection::open(dir.path().join("auditrail.db")).unwrap();
    let id: String = db
        .query_row(
            "SELECT id FROM records WHERE tenant = 'acme-contact' AND json_extract(body, '$.result') = 'OK' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE records SET body = json_set(body, '$.result', 'FAIL') WHERE tenant = 'acme-contact' AND id = ?1",
        [&id],
    )
    .unwrap();
    drop(db);
    let (ok, out, _) = run(&["verify", "--tenant", "acme-contact", "--json"]);
    assert!(!ok, "{out}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = rep["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "modified" && f["record"] == id.as_str()), "{out}");
    assert_eq!(findings.len(), 1, "only that record: {out}");

    // Another tenant is untouched; another key is refused on every seal.
    let (ok, out, err) = run(&["verify", "--tenant", "globex-care"]);
    assert!(ok, "{out}{err}");
    let other = dir.path().join("other.pem");
    let key = auditrail_shared::seal::LocalSigner::from_secret(b"somebody else's seal secret, 32+ bytes");
    std::fs::write(&other, auditrail_shared::seal::public_key_pem(key.public_der()).unwrap()).unwrap();
    let (ok, out, _) = run(&["verify", "--tenant", "globex-care", "--public-key", other.to_str().unwrap()]);
    assert!(!ok && out.contains("bad_signature"), "{out}");
}

/// Posts `batches` batches of `per` sign-ins with ids `{prefix}-000000` on, each answered created.
async fn post_batches(client: &reqwest::Client, base: &str, ingest: &str, prefix: &str, batches: usize, per: usize) {
    let now = chrono::Utc::now();
    for b in 0..batches {
        let batch: Vec<serde_json::Value> = (0..per)
            .map(|i| {
                let n = b * per + i;
                serde_json::json!({
                    "id": format!("{prefix}-{n:06}"),
                    "occurred_at": (now - chrono::Duration::milliseconds(n as i64)).to_rfc3339(),
                    "action": "LOGIN",
                    "actor": {"username": format!("agent{}", n % 7)},
                    "result": "OK",
                    "description": {"note": format!("call {n}")}
                })
            })
            .collect();
        let r = client.post(format!("{base}/v1/events")).bearer_auth(ingest).json(&batch).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["created"], per);
    }
}

/// The serving process answers an append once its records are in the inbox's log: killed (SIGKILL)
/// right after the last answer, with the indexer still behind, it has lost none of them at the
/// next start. A second `serve` on the same data directory is refused while the first runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_right_after_its_answers_keeps_every_record_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let (batches, per) = (12, 1000);
    post_batches(&client, &base, &token(dir.path(), "acme", "ingest"), "kill", batches, per).await;
    drop(server); // SIGKILL, right after the last answer

    let (_server, base) = start(dir.path(), &[]).await;
    let second = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || bin().args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(&dir).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!second.status.success(), "a second server started on the same data directory");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another process serves this store"), "{stderr}");
    let reader = token(dir.path(), "acme", "compliance_analyst");
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1000".to_owned())];
        query.extend(cursor.clone().map(|c| ("cursor", c)));
        let r = client.get(format!("{base}/v1/events")).query(&query).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        ids.extend(body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.sort();
    let want: Vec<String> = (0..batches * per).map(|n| format!("kill-{n:06}")).collect();
    assert_eq!(ids.len(), want.len());
    assert_eq!(ids, want);
}

/// SIGTERM (what `docker stop` and systemd send) stops the server cleanly: it exits with success,
/// and every record it answered is already in SQLite, not left for the next start to index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_told_to_stop_indexes_what_it_answered_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path(), &[]).await;
    let (batches, per) = (12, 1000);
    post_batches(&reqwest::Client::new(), &base, &token(dir.path(), "acme", "ingest"), "term", batches, per).await;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop within 90 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    // Read beneath the product: a one-off open would index what the log holds first.
    let db = rusqlite::Connection::open(dir.path().join("auditrail.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM records WHERE tenant = 'acme' AND id LIKE 'term-%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, (batches * per) as i64);
}
