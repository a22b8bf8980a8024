//! Tamper evidence through the API and from outside: records ingested over HTTP, sealed, their
//! proofs fetched and checked, a DPO erasure that still verifies, and the independent Python
//! verifier (`tools/verify_trail.py`) run on an export, the seal digests and the public key —
//! passing on the honest files, failing on each tampered one.

use std::path::{Path, PathBuf};
use std::process::Command;

use auditrail_shared::auth::Role;
use auditrail_shared::integrity::proof::{Proof, check};
use auditrail_shared::record::ResultCode;
use auditrail_shared::seal::public_key_pem;
use auditrail_tests::{TestApp, event};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(venv.exists(), "{} is missing: run `make tools` (scripts/setup-tools.sh)", venv.display());
    venv
}

/// Runs the independent verifier; its exit status and what it printed.
fn verify_trail(key: &Path, digests: &Path, records: &[&Path]) -> (i32, String) {
    verify_trail_with(key, digests, records, &[])
}

/// … with more options (`--anchor`, `--from`, `--to`).
fn verify_trail_with(key: &Path, digests: &Path, records: &[&Path], options: &[&str]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/verify_trail.py");
    let out = Command::new(python())
        .arg(script)
        .arg("--public-key")
        .arg(key)
        .arg("--digests")
        .arg(digests)
        .args(options)
        .args(records)
        .output()
        .expect("python runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

async fn seal(app: &TestApp) {
    let later = chrono::Utc::now() + chrono::Duration::from_std(app.state.seals.settle_time()).unwrap();
    for t in ["acme", "globex"] {
        app.state.sealing().seal_tenant(t, later + chrono::Duration::seconds(1)).await.unwrap();
    }
}

fn contact(id: &str, email: &str) -> Value {
    json!({"id": id, "occurred_at": chrono::Utc::now().to_rfc3339(), "action": "CONTACT", "result": "OK",
        "actor": {"user_id": "agent-7", "username": "agent.seven", "full_name": "Agent Seven", "kind": "agent"},
        "subject": {"emails": [email], "phones": ["+420777123456"], "first_name": "Jana", "last_name": "Nováková"},
        "description": format!("Jana Nováková ({email}) asked for a call back")})
}

/// An uncompressed JSON-lines export of `filter`, downloaded.
async fn export(app: &TestApp, tok: &str, filter: Value) -> Vec<u8> {
    let r =
        app.post_json("/v1/exports", tok, &json!({"filter": filter, "format": "jsonl", "compression": "none"})).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    app.state.export_worker("t").run_pending().await.unwrap();
    let (status, headers, bytes) = app.raw("GET", &format!("/v1/exports/{id}/download"), tok).await;
    match status.as_u16() {
        200 => bytes,
        303 => reqwest::get(headers["location"].to_str().unwrap()).await.unwrap().bytes().await.unwrap().to_vec(),
        s => panic!("download: {s}"),
    }
}

/// Every seal digest of the tenant, written one file each into `dir`.
async fn digests(app: &TestApp, tok: &str, dir: &Path) -> usize {
    let seals = app.get("/v1/integrity/seals", tok).await;
    assert_eq!(seals.status, 200, "{:#}", seals.body);
    std::fs::create_dir_all(dir).unwrap();
    let items = seals.body["items"].as_array().unwrap();
    for s in items {
        let seq = s["statement"]["seq"].as_u64().unwrap();
        let d = app.get(&format!("/v1/integrity/seals/{seq}"), tok).await;
        assert_eq!(d.status, 200);
        std::fs::write(dir.join(format!("{seq:06}.json")), serde_json::to_vec(&d.body).unwrap()).unwrap();
    }
    items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_prove_their_seal_and_an_erasure_keeps_them_proving() {
    let app = TestApp::new().await;
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let mut batch: Vec<Value> = (0..20).map(|i| event(&format!("e{i}"), 30 - i, "USER_LOGIN", "bob", "OK")).collect();
    batch.push(contact("c1", "jana@example.com"));
    assert_eq!(app.ingest("acme", &batch).await.status, 200);

    // Not sealed yet: the record is there, its proof is not.
    let r = app.get("/v1/events/c1", &analyst).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body["subject"]["emails"][0], "jana@example.com");
    assert!(r.body["integrity"]["key"].is_string() && r.body["integrity"]["batch"].is_string());
    app.get("/v1/events/c1/proof", &analyst).await.assert_problem(409);
    // Another tenant's id, and ids that cannot exist, are not found; a bad seq is named.
    app.get("/v1/events/c1", &app.token("globex", &[Role::ComplianceAnalyst])).await.assert_problem(404);
    app.get(&format!("/v1/events/{}", "x".repeat(300)), &analyst).await.assert_problem(400);
    let bad = app.get("/v1/integrity/seals/minus-one", &analyst).await;
    bad.assert_problem(400);
    assert_eq!(bad.error_fields(), ["seq"]);
    app.get("/v1/integrity/seals/7", &analyst).await.assert_problem(404);
    let bad = app.get("/v1/integrity/consistency?from=3&to=1", &analyst).await;
    bad.assert_problem(400);
    app.get("/v1/integrity/seals?limit=0", &analyst).await.assert_problem(400);
    app.get("/v1/integrity/seals?color=red", &analyst).await.assert_problem(400);
    for huge in [
        "/v1/integrity/seals?from=18446744073709551615",
        "/v1/integrity/seals/18446744073709551615",
        "/v1/integrity/consistency?from=0&to=18446744073709551615",
        "/v1/integrity/consistency?from=-1&to=2",
    ] {
        app.get(huge, &analyst).await.assert_problem(400);
    }
    // Roles: an agent and a DPO may not read proofs.
    app.get("/v1/events/c1/proof", &app.token("acme", &[Role::Agent])).await.assert_problem(403);

    seal(&app).await;
    let key = app.state.signer.public_key_der().await.unwrap();
    for id in ["e0", "e19", "c1"] {
        let p = app.get(&format!("/v1/events/{id}/proof"), &analyst).await;
        assert_eq!(p.status, 200, "{:#}", p.body);
        assert!(serde_json::to_vec(&p.body).unwrap().len() <= 2048);
        let proof: Proof = serde_json::from_value(p.body).unwrap();
        let record = app.state.records.get("acme", id).await.unwrap().unwrap();
        check(&proof, &record, &key).expect("the proof verifies against the record and the key");
    }
    let seals = app.get("/v1/integrity/seals", &analyst).await;
    assert!(seals.body["public_key"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));

    // More records and a second seal: the two are consistent.
    assert_eq!(app.ingest("acme", &[event("e99", 1, "USER_LOGOUT", "bob", "OK")]).await.status, 200);
    seal(&app).await;
    let c = app.get("/v1/integrity/consistency?from=0&to=1", &analyst).await;
    assert_eq!(c.status, 200, "{:#}", c.body);
    let hash = |s: &Value| auditrail_shared::seal::unhash(s.as_str().unwrap()).unwrap();
    let proof: Vec<_> = c.body["proof"].as_array().unwrap().iter().map(hash).collect();
    assert!(auditrail_shared::merkle::verify_consistency(
        1,
        2,
        &hash(&c.body["from"]["log_root"]),
        &hash(&c.body["to"]["log_root"]),
        &proof
    ));

    // The DPO erases Jana: the record is anonymised, and still proves its seal.
    let dpo = app.token("acme", &[Role::Dpo]);
    let found = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "jana@example.com"})).await;
    assert_eq!(found.status, 200, "{:#}", found.body);
    let r = app.post_json("/v1/dpo/erasures", &dpo, &json!({"items": ["c1"]})).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    let job = r.body["id"].as_str().unwrap().to_owned();
    app.state.erasure_worker("t").run_pending().await.unwrap();
    let record = app.state.records.get("acme", "c1").await.unwrap().unwrap();
    assert!(!serde_json::to_string(&record).unwrap().contains("jana@example.com"));
    let p = app.get("/v1/events/c1/proof", &analyst).await;
    let proof: Proof = serde_json::from_value(p.body).unwrap();
    check(&proof, &record, &key).expect("an erased record still proves");
    assert_eq!(proof.erased_by, [job]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_independent_verifier_passes_an_honest_export_and_fails_each_tampered_one() {
    let app = TestApp::new().await;
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let mut batch: Vec<Value> = (0..30).map(|i| event(&format!("e{i}"), 60 - i, "USER_LOGIN", "bob", "OK")).collect();
    batch.push(contact("c1", "jana@example.com"));
    batch.push(contact("c2", "petr@example.com"));
    assert_eq!(app.ingest("acme", &batch).await.status, 200);
    seal(&app).await;
    // Jana is erased after sealing; the export then holds her anonymised record.
    let dpo = app.token("acme", &[Role::Dpo]);
    app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "jana@example.com"})).await;
    assert_eq!(app.post_json("/v1/dpo/erasures", &dpo, &json!({"items": ["c1"]})).await.status, 202);
    app.state.erasure_worker("t").run_pending().await.unwrap();
    // A second interval, so the digests form a chain.
    assert_eq!(app.ingest("acme", &[event("late", 1, "USER_LOGOUT", "bob", "OK")]).await.status, 200);
    seal(&app).await;

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("seal-key.pem");
    std::fs::write(&key, public_key_pem(&app.state.signer.public_key_der().await.unwrap()).unwrap()).unwrap();
    let exported = dir.path().join("export.jsonl");
    std::fs::write(&exported, export(&app, &analyst, json!({})).await).unwrap();
    let dig = dir.path().join("digests");
    assert!(digests(&app, &analyst, &dig).await >= 2);

    let (code, out) = verify_trail(&key, &dig, &[&exported]);
    assert_eq!(code, 0, "{out}");
    // The 33 ingested records, and the self-audit records of the DPO's search and erasure.
    let checked: usize =
        out.split(" record(s) checked").next().and_then(|s| s.rsplit(' ').next()).unwrap().parse().unwrap();
    assert!(checked >= 33 && out.ends_with("OK\n"), "{out}");
    assert!(out.contains("erased: c1 (anonymised by DPO erasure"), "{out}");

    let lines: Vec<String> = std::fs::read_to_string(&exported).unwrap().lines().map(str::to_owned).collect();
    let write_changed = |name: &str, change: &dyn Fn(&mut Value)| -> PathBuf {
        let out: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                if v["id"] == "e7" || v["id"] == "c2" {
                    change(&mut v);
                }
                v.to_string()
            })
            .collect();
        let p = dir.path().join(name);
        std::fs::write(&p, out.join("\n")).unwrap();
        p
    };
    type Change = fn(&mut Value);
    let changes: [(&str, Change); 5] = [
        ("action", |v| v["action"] = "USER_LOGOUT".into()),
        ("received_at", |v| v["received_at"] = "2020-01-01T00:00:00Z".into()),
        ("user", |v| v["actor"]["username"] = "alice".into()),
        ("email", |v| {
            if v["subject"].is_object() {
                v["subject"]["emails"][0] = "someone@example.com".into()
            } else {
                v["description"] = "changed".into()
            }
        }),
        ("integrity batch", |v| v["integrity"]["batch"] = "01JAAAAAAAAAAAAAAAAAAAAAAA".into()),
    ];
    for (what, change) in changes {
        let p = write_changed(&format!("{what}.jsonl"), &change);
        let (code, out) = verify_trail(&key, &dig, &[&p]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("record e7") && out.contains("record c2"), "{what}: {out}");
    }
    // The export rewritten line by line: each case must fail, naming the record and the kind.
    let id_of = |l: &String| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned();
    let body_of = |id: &str| lines.iter().find(|l| id_of(l) == id).cloned().unwrap();
    let with_id = |line: &str, id: &str| {
        let mut v: Value = serde_json::from_str(line).unwrap();
        v["id"] = id.into();
        v.to_string()
    };
    let forged = |integrity: Value| {
        let mut v: Value = serde_json::from_str(&body_of("e7")).unwrap();
        v["id"] = "forged".into();
        v["integrity"] = integrity;
        v.to_string()
    };
    let mut sealed_batch: Value = serde_json::from_str(&body_of("e7")).unwrap();
    sealed_batch = sealed_batch["integrity"].take();
    let mut made_up = sealed_batch.clone();
    made_up["batch"] = "01JAAAAAAAAAAAAAAAAAAAAAAA".into();
    let rewritten: [(&str, Vec<String>, &str); 5] = [
        // A sealed record left out of the export (from inside its window).
        ("deleted", lines.iter().filter(|l| id_of(l) != "e7").cloned().collect(), "record e7: deleted"),
        // Two records' whole bodies swapped between their ids.
        (
            "swapped",
            lines
                .iter()
                .map(|l| match id_of(l).as_str() {
                    "e7" => with_id(&body_of("e8"), "e7"),
                    "e8" => with_id(&body_of("e7"), "e8"),
                    _ => l.clone(),
                })
                .collect(),
            "record e8 (swapped.jsonl:",
        ),
        // Slipped in under a batch no seal knows, dated long before the last seal.
        (
            "made-up batch",
            lines.iter().cloned().chain([forged(made_up)]).collect(),
            "record forged (made-up batch.jsonl:",
        ),
        // Slipped in under a sealed record's batch: that batch was sealed without it.
        (
            "sealed batch",
            lines.iter().cloned().chain([forged(sealed_batch)]).collect(),
            "record forged (sealed batch.jsonl:",
        ),
        // The earliest record left out: only the export's own window (`--from`) shows it.
        ("first deleted", lines.iter().filter(|l| id_of(l) != "e0").cloned().collect(), "record e0: deleted"),
    ];
    let window = [
        "--from",
        &(chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
        "--to",
        &chrono::Utc::now().to_rfc3339(),
    ];
    let (code, out) = verify_trail_with(&key, &dig, &[&exported], &window);
    assert_eq!(code, 0, "the honest export, with its window: {out}");
    for (what, rewritten, named) in rewritten {
        let p = dir.path().join(format!("{what}.jsonl"));
        std::fs::write(&p, rewritten.join("\n")).unwrap();
        let (code, out) = verify_trail_with(&key, &dig, &[&p], &window);
        assert!(code == 1 && out.contains(named), "{what}: {out}");
        if what == "swapped" {
            assert!(out.contains("record e7 (swapped.jsonl:") && out.contains(": changed:"), "{out}");
        }
        if what.ends_with("batch") {
            assert!(out.contains(": inserted:"), "{what}: {out}");
        }
    }

    // The chain cut off at its end, digest included: only the anchor kept from the honest run
    // shows it.
    let anchor = out_anchor(&verify_trail(&key, &dig, &[&exported]).1);
    let cut = dir.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dig).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in &files[..files.len() - 1] {
        std::fs::copy(f, cut.join(f.file_name().unwrap())).unwrap();
    }
    let (code, out) = verify_trail_with(&key, &dig, &[&exported], &["--anchor", &anchor]);
    assert_eq!(code, 0, "the whole chain holds the anchor: {out}");
    let (code, out) = verify_trail_with(&key, &cut, &[&exported], &["--anchor", &anchor]);
    let last = anchor.split(':').next().unwrap();
    assert!(code == 1 && out.contains(&format!("seal {last}: missing")), "{out}");

    // The digests: a leaf changed, a signature forged, a seal left out, another key.
    let first = dig.join("000000.json");
    let honest = std::fs::read(&first).unwrap();
    let mut d: Value = serde_json::from_slice(&honest).unwrap();
    d["leaves"][0]["leaf"] = d["leaves"][1]["leaf"].clone();
    std::fs::write(&first, d.to_string()).unwrap();
    let (code, out) = verify_trail(&key, &dig, &[&exported]);
    assert!(code == 1 && out.contains("do not give the signed root"), "{out}");
    let mut d: Value = serde_json::from_slice(&honest).unwrap();
    d["statement"]["size"] = (d["statement"]["size"].as_u64().unwrap() + 1).into();
    std::fs::write(&first, d.to_string()).unwrap();
    let (code, out) = verify_trail(&key, &dig, &[&exported]);
    assert!(code == 1 && out.contains("signature does not verify"), "{out}");
    std::fs::remove_file(&first).unwrap();
    let (code, out) = verify_trail(&key, &dig, &[&exported]);
    assert!(code == 1 && out.contains("missing"), "{out}");
    std::fs::write(&first, &honest).unwrap();
    let other = dir.path().join("other.pem");
    let signer = auditrail_shared::seal::LocalSigner::from_secret(b"not the deployment's seal secret!");
    std::fs::write(&other, public_key_pem(signer.public_der()).unwrap()).unwrap();
    let (code, out) = verify_trail(&other, &dig, &[&exported]);
    assert!(code == 1 && out.contains("signature does not verify"), "{out}");
    let (code, out) = verify_trail(&key, &dig, &[&exported]);
    assert_eq!(code, 0, "restored: {out}");
}

/// Server-only records — a denied call's record, a settings change's — are sealed like every
/// other and prove their seal over the API; and a retention run under a legal hold, which
/// deletes nothing, leaves nothing for verification to find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_records_are_sealed_and_prove_and_a_held_purge_raises_no_finding() {
    use auditrail_shared::integrity::verify::{Options, Verifier};
    use auditrail_shared::store::{EventFilter, PageRequest};
    let app = TestApp::new().await;
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let batch = [event("e1", 5, "USER_LOGIN", "bob", "OK"), contact("c1", "jana@example.com")];
    assert_eq!(app.ingest("acme", &batch).await.status, 200);
    // An agent may not read a proof: the denial is recorded by the server.
    app.get("/v1/events/e1/proof", &app.token("acme", &[Role::Agent])).await.assert_problem(403);
    // A legal hold over a retention of one day for contacts.
    let held = json!({"days": {"contact": 1}, "legal_hold": true});
    let r = app.call("PUT", "/v1/settings/retention", Some(&admin), Some("application/json"), held.to_string()).await;
    assert_eq!(r.status, 200, "{:#}", r.body);

    let key = app.state.signer.public_key_der().await.unwrap();
    let verify = || async {
        let v = Verifier {
            seals: &*app.state.seals,
            records: &*app.state.records,
            blobs: &*app.state.seal_blobs,
            public_key: &key,
        };
        v.verify("acme", &Options::default()).await.unwrap()
    };
    // The retention run three days on: held, nothing deleted, nothing found.
    let later = chrono::Utc::now() + chrono::Duration::days(3);
    let tick = auditrail_shared::housekeeping::tick(&app.state, later, true).await.unwrap();
    let acme = tick.purged.iter().find(|p| p.tenant == "acme").expect("acme is registered");
    assert!(acme.held && acme.deleted.is_empty(), "{acme:?}");
    let rep = verify().await;
    assert!(rep.ok() && rep.purged.is_empty(), "{:?}", rep.findings);
    assert!(rep.pending >= 4, "the records, the denial and the settings change wait for a seal: {}", rep.pending);
    seal(&app).await;
    let rep = verify().await;
    assert!(rep.ok() && rep.pending == 0, "{:?} pending {}", rep.findings, rep.pending);
    assert!(app.state.records.get("acme", "c1").await.unwrap().is_some(), "held: not purged");

    // The server's own records, found in the store, and each one's proof over the API.
    let now = chrono::Utc::now();
    let filter = EventFilter::window(now - chrono::Duration::hours(1), now + chrono::Duration::hours(1));
    let page = app.state.records.query("acme", &filter, PageRequest { limit: 100, after: None }).await.unwrap();
    let own = |action: Option<&str>, result: ResultCode| {
        let found = page.records.iter().find(|r| action.is_none_or(|a| r.action == a) && r.result == Some(result));
        found.map(|r| r.id.clone())
    };
    let denied = own(None, ResultCode::Unauthorized).expect("the denial was recorded");
    let changed = own(Some("RETENTION_CHANGE"), ResultCode::Ok).expect("the settings change was recorded");
    let hold = own(Some("LEGAL_HOLD_CHANGE"), ResultCode::Ok).expect("the legal hold was recorded");
    for id in [&denied, &changed, &hold] {
        let p = app.get(&format!("/v1/events/{id}/proof"), &analyst).await;
        assert_eq!(p.status, 200, "{id}: {:#}", p.body);
        let proof: Proof = serde_json::from_value(p.body).unwrap();
        let record = app.state.records.get("acme", id).await.unwrap().unwrap();
        check(&proof, &record, &key).unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
}

/// The `last seal: SEQ:HASH` an honest run printed, for `--anchor`.
fn out_anchor(out: &str) -> String {
    let line = out.lines().find_map(|l| l.trim().strip_prefix("last seal: ")).expect("a last seal line");
    line.split_whitespace().next().unwrap().to_owned()
}
