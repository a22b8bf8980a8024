//! Probes the real `auditrail serve` as an attacker would: malformed, truncated, deep and
//! oversize bodies, invalid UTF-8 everywhere, wrong content types, tampered and cross-tenant
//! cursors, expired, forged and `alg: none` tokens, every route with every role that must not
//! have it (taken from the served document's `x-roles`, so new routes are covered), and many
//! slow connections. The server must never answer 5xx, never panic, and answer every 4xx it
//! writes itself with a problem document.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use auditrail_shared::auth::{Authenticator, Role};
use serde_json::Value;

struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditrail"))
}

/// Starts the server with short time limits; its whole output goes to a log file.
async fn start(dir: &Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = bin()
        .args(["serve", "--addr", &addr, "--header-timeout", "2", "--body-timeout", "3", "--data-dir"])
        .arg(dir.join("data"))
        .env("RUST_LOG", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let server = Server { child, log };
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
    panic!("auditrail serve did not start: {}", server.log());
}

fn authenticator(dir: &Path) -> Authenticator {
    // `serve` made the key; the tokens are minted exactly as `auditrail token` does.
    Authenticator::local(&std::fs::read(dir.join("data/keys/jwt.key")).unwrap())
}

fn token(dir: &Path, tenant: &str, role: Role) -> String {
    authenticator(dir).mint(tenant, "u1", Some("u1"), &[role], 600).unwrap()
}

/// Checks one answer: never 5xx; a 4xx is a problem document with its status.
async fn check(what: &str, r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = r.bytes().await.unwrap();
    assert!(status < 500, "{what}: {status} {}", String::from_utf8_lossy(&body));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{what}: {status} {}", String::from_utf8_lossy(&body));
        assert_eq!(json["status"], status, "{what}: {json}");
    }
    (status, json)
}

/// Sends raw bytes and returns the status line's code (0 if the server closed the connection).
fn raw(base: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// Posts a body of `len` bytes on a raw socket, writing it from another thread (errors ignored:
/// the server may close once it has answered), and returns the answer's status and text.
fn oversize(base: &str, path: &str, token: &str, len: usize) -> (u16, String) {
    let mut s = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\n\
         content-length: {len}\r\nconnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut writer = s.try_clone().unwrap();
    let feeding = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len && writer.write_all(&chunk[..chunk.len().min(len - sent)]).is_ok() {
            sent += chunk.len();
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    // Up to the end of the answer's head and a bit of its body.
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") && out.len() > 200 {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = feeding.join();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// Every operation of the served document: method, path with sample parameters, roles allowed.
async fn operations(base: &str) -> Vec<(String, String, Vec<String>)> {
    let doc: Value = reqwest::get(format!("{base}/v1/openapi.json")).await.unwrap().json().await.unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = path.split('/').map(|seg| if seg.starts_with('{') { "abuse-1" } else { seg }).collect::<Vec<_>>();
        for (method, op) in item.as_object().unwrap() {
            let roles = op["x-roles"].as_array().map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect());
            if let Some(roles) = roles {
                out.push((method.to_uppercase(), path.join("/"), roles));
            }
        }
    }
    assert!(out.len() >= 20, "the document lists every guarded route: {out:?}");
    out
}

#[tokio::test]
async fn the_served_api_holds_under_abuse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (server, base) = start(dir).await;
    // A fresh connection per request: a connection the server closed after an early answer is
    // not taken for a dropped request.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let ops = operations(&base).await;
    let send = |method: &str, path: &str| client.request(method.parse().unwrap(), format!("{base}{path}"));

    // Every route × every role that must not have it: 403; no token: 401.
    for (method, path, allowed) in &ops {
        for role in Role::ALL.iter().copied().filter(|r| !allowed.iter().any(|a| a == r.as_str())) {
            let what = format!("{method} {path} as {}", role.as_str());
            let (status, _) =
                check(&what, send(method, path).bearer_auth(token(dir, "acme", role)).send().await.unwrap()).await;
            assert_eq!(status, 403, "{what}");
        }
        let (status, _) = check(&format!("{method} {path} anonymous"), send(method, path).send().await.unwrap()).await;
        assert_eq!(status, 401, "{method} {path} anonymous");
    }

    // Expired, forged, `alg: none`, malformed tokens.
    let good = token(dir, "acme", Role::ComplianceAnalyst);
    let payload = good.split('.').nth(1).unwrap();
    let bad_tokens = [
        authenticator(dir).mint("acme", "u1", None, &[Role::ComplianceAnalyst], -3600).unwrap(),
        Authenticator::local(&[7u8; 32]).mint("acme", "u1", None, &[Role::Dpo], 600).unwrap(),
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        format!("{good}x"),
        "not.a.token".into(),
        "".into(),
        "é".repeat(2000),
    ];
    for (i, t) in bad_tokens.iter().enumerate() {
        let r = client.get(format!("{base}/v1/events")).header("authorization", format!("Bearer {t}")).send().await;
        let (status, _) = check(&format!("token {i}"), r.unwrap()).await;
        assert_eq!(status, 401, "token {i}");
    }

    // Bad bodies on every route that takes one, as a caller allowed to use it.
    let deep = "[".repeat(100_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{\"from\": ".to_vec()),
        ("application/json", b"{]".to_vec()),
        ("application/json", deep.clone().into_bytes()),
        ("application/json", format!("{{\"a\":{deep}").into_bytes()),
        ("application/json", b"{\"id\":\"\xff\xfe\"}".to_vec()),
        ("application/json", b"\xff\xfe\xfd".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"{\"x\":1e999999}".to_vec()),
        ("text/plain", b"hello".to_vec()),
        ("application/x-ndjson", b"{\"id\":\"a\"}\n{\"id\":".to_vec()),
        ("application/x-ndjson", format!("{deep}\n").into_bytes()),
        ("application/x-ndjson", b"\xff\n\xfe\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\n".to_vec()),
    ];
    for (method, path, allowed) in ops.iter().filter(|(m, _, _)| m == "POST" || m == "PUT") {
        let role = Role::parse(&allowed[0]).unwrap();
        let t = token(dir, "acme", role);
        for (ct, body) in &bodies {
            let what = format!("{method} {path} with {ct} {:?}", String::from_utf8_lossy(&body[..body.len().min(30)]));
            let r = send(method, path).bearer_auth(&t).header("content-type", *ct).body(body.clone()).send().await;
            let (status, _) = check(&what, r.unwrap()).await;
            // An attachment is opaque bytes: any body is one; a batch answers 207 per line.
            assert!(status >= 400 || status == 207 || path.starts_with("/v1/attachments"), "{what}: {status}");
        }
    }

    // Oversize bodies: refused with 413 as soon as the declared length is over the limit, not
    // read into memory without end. The server may answer (and close) while the client is still
    // writing, so the body is written on a raw socket whose write errors are expected, and the
    // answer is read as it comes.
    let ingest = token(dir, "acme", Role::Ingest);
    for path in ["/v1/events", "/v1/error-reports"] {
        let (status, text) = oversize(&base, path, &ingest, 12 * 1024 * 1024);
        assert_eq!(status, 413, "12 MiB to {path}: {text}");
        assert!(text.to_ascii_lowercase().contains("content-type: application/problem+json"), "{path}: {text}");
    }

    // Odd query strings on every read route.
    let queries = [
        "q=%FF%FE",
        "user=%C0%AF",
        "limit=99999999999999999999999",
        "from=yesterday",
        "from=9999-12-31T23:59:59Z&to=0001-01-01T00:00:00Z",
        "tz=%00",
        "cursor=AAAA",
        "cursor=%FF",
        "min_delay_ms=99999999999999999999",
        // Once a panic inside chrono (TimeDelta::days out of bounds).
        "unfinished_for=999999999999d",
        "unfinished_for=9223372036854775807ms",
        "period=99999999999d",
        "x=1&x=2&x=3",
        "&&&==&",
    ];
    for (_, path, allowed) in ops.iter().filter(|(m, _, _)| m == "GET") {
        let t = token(dir, "acme", Role::parse(&allowed[0]).unwrap());
        for q in queries {
            let r = client.get(format!("{base}{path}?{q}")).bearer_auth(&t).send().await.unwrap();
            check(&format!("GET {path}?{q}"), r).await;
        }
    }

    // A tampered cursor and another tenant's cursor are refused, naming the cursor.
    let now = chrono::Utc::now().to_rfc3339();
    let batch: String = (0..3)
        .map(|i| {
            format!(
                "{{\"id\":\"c{i}\",\"occurred_at\":\"{now}\",\"action\":\"LOGIN\",\"actor\":{{\"username\":\"j\"}},\"result\":\"OK\"}}\n"
            )
        })
        .collect();
    for tenant in ["acme", "globex"] {
        let r = client
            .post(format!("{base}/v1/events"))
            .bearer_auth(token(dir, tenant, Role::Ingest))
            .header("content-type", "application/x-ndjson")
            .body(batch.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let page: Value =
        client.get(format!("{base}/v1/events?limit=1")).bearer_auth(&good).send().await.unwrap().json().await.unwrap();
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let other = token(dir, "globex", Role::ComplianceAnalyst);
    for (t, c) in [(&good, String::from_utf8(tampered).unwrap()), (&other, cursor.clone())] {
        let (status, body) = check(
            "cursor",
            client.get(format!("{base}/v1/events?limit=1&cursor={c}")).bearer_auth(t).send().await.unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["field"], "cursor", "{body}");
    }

    // Bytes no client library would send: invalid UTF-8 in the target and in headers, oversize
    // headers. Hyper answers a head it cannot parse itself (a bare 400 or 431): never 5xx.
    let auth = format!("Authorization: Bearer {good}\r\n");
    for (what, req) in [
        ("invalid UTF-8 in the path", b"GET /v1/events/\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec()),
        ("invalid UTF-8 in the query", b"GET /v1/events?q=\xff HTTP/1.1\r\nHost: x\r\n".to_vec()),
        ("invalid UTF-8 in a header", b"GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\xfe\r\n".to_vec()),
        (
            "invalid UTF-8 in the token",
            b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n".to_vec(),
        ),
        (
            "a 200 KB header",
            format!("GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n", "a".repeat(200_000)).into_bytes(),
        ),
        (
            "a thousand headers",
            format!("GET /v1/events HTTP/1.1\r\nHost: x\r\n{}", "X-A: b\r\n".repeat(1000)).into_bytes(),
        ),
        ("a bad content length", b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n".to_vec()),
    ] {
        let mut req = req;
        if !what.contains("token") {
            req.extend_from_slice(auth.as_bytes());
        }
        req.extend_from_slice(b"Connection: close\r\n\r\n");
        let (code, text) = raw(&base, &req);
        // A request id that is not text is replaced by the server's own: that request succeeds.
        let ok = if what.contains("header") && !what.contains("200 KB") { 200..500 } else { 400..500 };
        assert!(ok.contains(&code), "{what}: {}", text.lines().next().unwrap_or("closed"));
        if code >= 400 && text.contains("x-request-id") {
            assert!(text.contains("application/problem+json"), "{what}: {text}");
        }
    }

    // 200 connections that send half a request head, and one that sends nothing: a normal
    // request is still answered within 2 s, and the server closes them after its header limit.
    let addr = base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(&addr).unwrap();
        if i > 0 {
            s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        }
        slow.push(s);
    }
    let started = Instant::now();
    let r = client.get(format!("{base}/v1/events")).bearer_auth(&good).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "answered in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 256];
        let closed = match s.read(&mut buf) {
            Ok(_) => true,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        };
        assert!(closed, "slow connection {i} is still open after the header limit");
    }

    // A body that never completes is cut off after the body limit with a problem.
    let auth = format!("Authorization: Bearer {ingest}\r\n");
    let t0 = Instant::now();
    let (code, text) = raw(
        &base,
        format!("POST /v1/events HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{{\"id\"")
            .as_bytes(),
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "the body limit held the connection {:?}", t0.elapsed());
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");

    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    assert!(!log.contains(" ERROR "), "the server logged an error:\n{log}");
}
