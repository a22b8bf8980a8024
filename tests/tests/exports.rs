//! Exports end to end: the API creates a task, the worker writes the archive, 7-Zip (the real
//! one) opens it with the password and shows AES-256; gzip and JSON-lines variants; the
//! password rule; tenant isolation; audit records without the password.

use std::path::Path;
use std::process::Command;

use auditrail_shared::auth::Role;
use auditrail_shared::jobs::TaskKind;
use auditrail_shared::store::PageRequest;
use auditrail_tests::{TestApp, event};
use serde_json::{Value, json};

const PW: &str = "Secret_1@%";

async fn seeded() -> TestApp {
    let app = TestApp::new().await;
    let mut recs = Vec::new();
    for i in 0..40 {
        let (action, user) = if i % 2 == 0 { ("CREATE_EVALUATION", "alice") } else { ("LOGIN", "bob") };
        let mut e = event(&format!("e{i:03}"), 10 + i, action, user, if i % 5 == 0 { "FAIL" } else { "OK" });
        // Text that CSV must quote: commas, quotes, a line break, non-ASCII.
        e["description"] = json!(format!("note {i}, \"quoted\"\nline two – Příliš žluťoučký kůň"));
        recs.push(e);
    }
    app.ingest("acme", &recs).await;
    app.ingest("globex", &[event("g001", 5, "CREATE_EVALUATION", "alice", "OK")]).await;
    app
}

fn analyst(app: &TestApp, tenant: &str) -> String {
    app.token(tenant, &[Role::ComplianceAnalyst])
}

/// Creates an export and runs the in-process worker until it is done; returns the task JSON.
async fn export(app: &TestApp, tenant: &str, body: Value) -> Value {
    let tok = analyst(app, tenant);
    let r = app.post_json("/v1/exports", &tok, &body).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    assert_eq!(r.body["status"], "QUEUED");
    let id = r.body["id"].as_str().unwrap().to_owned();
    app.state.export_worker("test").run_pending().await.unwrap();
    let done = app.get(&format!("/v1/exports/{id}"), &tok).await;
    assert_eq!(done.status, 200);
    done.body
}

/// Downloads an archive the way a client does (following the presigned link on S3).
async fn download(app: &TestApp, tenant: &str, id: &str) -> Vec<u8> {
    let (status, headers, bytes) = app.raw("GET", &format!("/v1/exports/{id}/download"), &analyst(app, tenant)).await;
    match status.as_u16() {
        200 => bytes,
        303 => {
            let url = headers["location"].to_str().unwrap();
            assert!(url.contains(&format!("tenants/{tenant}/exports/{id}")), "{url}");
            assert!(url.contains("X-Amz-Expires=300"), "five-minute link: {url}");
            reqwest::get(url).await.unwrap().bytes().await.unwrap().to_vec()
        }
        s => panic!("download: {s} {}", String::from_utf8_lossy(&bytes)),
    }
}

fn sevenzip(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("7z").args(args).current_dir(dir).output().expect("7z (p7zip-full) is installed");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The ID column (last) of every data row of a CSV file, read by the csv crate (which refuses
/// rows whose width differs from the header's).
fn csv_ids(bytes: &[u8], header_first: &str) -> Vec<String> {
    assert!(bytes.ends_with(b"\r\n"), "file ends with CRLF");
    let rows = csv_rows(bytes);
    assert_eq!(rows[0][0], header_first, "header row first");
    rows[1..].iter().map(|r| r.last().unwrap().clone()).collect()
}

fn expected(range: impl Iterator<Item = usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(|i| format!("e{i:03}")).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_password_archive_opens_in_7zip_with_aes256_and_holds_exactly_the_filter() {
    let app = seeded().await;
    let t = export(
        &app,
        "acme",
        json!({"filter": {"action": ["CREATE_EVALUATION"], "result": "OK"}, "password": PW, "tz": "Europe/Prague"}),
    )
    .await;
    assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
    assert_eq!(t["encrypted"], true);
    assert_eq!(t["compression"], "zip");
    let want = expected((0..40).filter(|i| i % 2 == 0 && i % 5 != 0));
    assert_eq!(t["records"], want.len());
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    assert_eq!(t["bytes"], bytes.len());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), &bytes).unwrap();
    let (ok, listing) = sevenzip(&["l", "-slt", &format!("-p{PW}"), "a.zip"], dir.path());
    assert!(ok, "{listing}");
    assert!(listing.contains("Method = AES-256 Deflate"), "{listing}");
    assert!(listing.contains("Path = events-0001.csv"), "{listing}");
    let (ok, out) = sevenzip(&["t", "-pwrong_pw", "a.zip"], dir.path());
    assert!(!ok && out.contains("Wrong password"), "the wrong password is refused: {out}");
    let (ok, out) = sevenzip(&["x", &format!("-p{PW}"), "-y", "-oout", "a.zip"], dir.path());
    assert!(ok, "{out}");
    let csv = std::fs::read(dir.path().join("out/events-0001.csv")).unwrap();
    let mut ids = csv_ids(&csv, "Date");
    let text = String::from_utf8_lossy(&csv);
    assert!(text.contains("+01:00") || text.contains("+02:00"), "times in the viewer's zone");
    assert!(text.contains("Příliš žluťoučký kůň"), "UTF-8 kept");
    ids.sort();
    assert_eq!(ids, want, "exactly the filter's records, each once");
}

/// Retention settings that cannot be read stop the tenant's purge, not its exports: an archive
/// finished meanwhile keeps their archive days when those can be read alone, else the default
/// seven, instead of failing after all its work.
#[tokio::test]
async fn an_export_finishes_under_unreadable_retention_settings_with_the_default_days() {
    let app = seeded().await;
    let setting = auditrail_shared::retention::SETTING;
    for (stored, days) in [
        (json!({"days": "all", "export_archive_days": 2}), 2),
        (json!({"days": "all", "export_archive_days": 0}), 7),
        (json!({"days": "all"}), 7),
    ] {
        app.state.settings.put_setting("acme", setting, &stored).await.unwrap();
        let t = export(&app, "acme", json!({"filter": {"user": "bob"}, "compression": "none"})).await;
        assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(t[k].as_str().unwrap()).unwrap();
        assert_eq!(at("expires_at") - at("finished_at"), chrono::Duration::days(days), "{stored} {t:#}");
    }
}

#[tokio::test]
async fn gzip_jsonl_and_plain_csv_exports_hold_the_filter() {
    let app = seeded().await;
    let t = export(&app, "acme", json!({"filter": {"user": "bob"}, "format": "jsonl", "compression": "gzip"})).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
    assert_eq!(t["file_name"], "events.jsonl.gz");
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut text).unwrap();
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .filter(|id| id.starts_with('e'))
        .collect();
    ids.sort();
    assert_eq!(ids, expected((0..40).filter(|i| i % 2 == 1)));

    let t = export(&app, "acme", json!({"filter": {"action": "LOGIN"}, "compression": "none"})).await;
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let mut ids = csv_ids(&bytes, "Date");
    ids.sort();
    assert_eq!(ids, expected((0..40).filter(|i| i % 2 == 1)));

    // Nothing matches: still a finished, empty file (JSON lines have no header row).
    let t = export(&app, "acme", json!({"filter": {"user": "nobody"}, "format": "jsonl", "compression": "none"})).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
    assert_eq!(t["records"], 0);
    assert!(download(&app, "acme", t["id"].as_str().unwrap()).await.is_empty());

    // A ZIP without a password: plain deflate entries whose CRC-32 7-Zip checks.
    let t = export(&app, "acme", json!({"filter": {"action": "LOGIN"}, "compression": "zip"})).await;
    assert_eq!(t["encrypted"], false);
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.zip"), &bytes).unwrap();
    let (ok, listing) = sevenzip(&["l", "-slt", "p.zip"], dir.path());
    assert!(ok && listing.contains("Method = Deflate") && listing.contains("Encrypted = -"), "{listing}");
    let (ok, out) = sevenzip(&["t", "p.zip"], dir.path());
    assert!(ok && out.contains("Everything is Ok"), "{out}");
    let (ok, out) = sevenzip(&["x", "-y", "-oout", "p.zip"], dir.path());
    assert!(ok, "{out}");
    let mut ids = csv_ids(&std::fs::read(dir.path().join("out/events-0001.csv")).unwrap(), "Date");
    ids.sort();
    assert_eq!(ids, expected((0..40).filter(|i| i % 2 == 1)));

    // Sign-in view: seed 003's columns.
    let t = export(&app, "acme", json!({"filter": {"view": "sign-ins", "period": "7d"}, "compression": "none"})).await;
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let header = String::from_utf8_lossy(&bytes).lines().next().unwrap().to_owned();
    assert_eq!(header, "Account,Employee ID,Operation,Time,Result,Sign-in IP,Failure Reason Code,ID");
    assert_eq!(csv_ids(&bytes, "Account").len(), 20);
}

#[tokio::test]
async fn every_password_rule_violation_is_named() {
    let app = seeded().await;
    let tok = analyst(&app, "acme");
    for (pw, says) in [
        ("ABCDEFGHIJKLM", "13 characters"),
        ("pass word", "space is not allowed"),
        ("pass#1", "`#` is not allowed"),
        ("", "must not be empty"),
        ("pässwörd", "`ä`, `ö` are not allowed"),
    ] {
        let r = app.post_json("/v1/exports", &tok, &json!({"password": pw})).await;
        r.assert_problem(400);
        assert_eq!(r.error_fields(), vec!["password"], "{pw:?}: {:#}", r.body);
        assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains(says), "{pw:?}: {:#}", r.body);
    }
    let r = app.post_json("/v1/exports", &tok, &json!({"password": "ok_pw", "compression": "gzip"})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["compression"]);
    let r = app
        .post_json(
            "/v1/exports",
            &tok,
            &json!({"filter": {"action": "NO_SUCH", "limit": 5, "from": "yesterday"}, "tz": "Mars/Base"}),
        )
        .await;
    r.assert_problem(400);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, vec!["filter.action", "filter.from", "filter.limit", "tz"], "{:#}", r.body);
    let r = app.call("POST", "/v1/exports", Some(&tok), Some("application/json"), "{\"format\": ").await;
    r.assert_problem(400);
    let r = app.post_json("/v1/exports", &tok, &json!({"format": "xlsx"})).await;
    r.assert_problem(400);
    let r = app.post_json("/v1/exports", &tok, &json!({"filters": {}})).await;
    r.assert_problem(400);
    assert!(
        app.state
            .tasks
            .list_tasks("acme", TaskKind::Export, PageRequest { limit: 10, after: None })
            .await
            .unwrap()
            .0
            .is_empty(),
        "nothing stored for a refused request"
    );
}

#[tokio::test]
async fn exports_are_tenant_bound_role_checked_audited_and_never_hold_the_password() {
    let app = seeded().await;
    let t = export(&app, "acme", json!({"password": PW})).await;
    let id = t["id"].as_str().unwrap();
    let globex = analyst(&app, "globex");
    for (m, path) in [
        ("GET", format!("/v1/exports/{id}")),
        ("GET", format!("/v1/exports/{id}/download")),
        ("DELETE", format!("/v1/exports/{id}")),
    ] {
        let (status, _, _) = app.raw(m, &path, &globex).await;
        assert_eq!(status, 404, "{m} {path} from another tenant");
    }
    assert!(app.get("/v1/exports", &globex).await.items().is_empty());
    let agent = app.token("acme", &[Role::Agent]);
    app.post_json("/v1/exports", &agent, &json!({})).await.assert_problem(403);
    let admin_only = app.post_json("/v1/export-schedules", &analyst(&app, "acme"), &json!({})).await;
    admin_only.assert_problem(403);

    download(&app, "acme", id).await;
    let list = app.get("/v1/exports", &analyst(&app, "acme")).await;
    assert_eq!(list.ids(), vec![id.to_owned()]);
    let (status, _, _) = app.raw("DELETE", &format!("/v1/exports/{id}"), &analyst(&app, "acme")).await;
    assert_eq!(status, 204);
    let (status, _, _) = app.raw("GET", &format!("/v1/exports/{id}/download"), &analyst(&app, "acme")).await;
    assert_eq!(status, 404);

    // Audit: create, download, delete recorded; the password appears nowhere in the store.
    let f = auditrail_shared::store::EventFilter::window(
        chrono::Utc::now() - chrono::Duration::days(1),
        chrono::Utc::now() + chrono::Duration::days(1),
    );
    let page = app.state.records.query("acme", &f, PageRequest { limit: 1000, after: None }).await.unwrap();
    let actions: Vec<&str> = page.records.iter().map(|r| r.action.as_str()).collect();
    for a in ["DATA_EXPORT_CREATE", "DATA_EXPORT_DOWNLOAD", "DATA_EXPORT_DELETE"] {
        assert!(actions.contains(&a), "{a} recorded: {actions:?}");
    }
    assert!(!serde_json::to_string(&page.records).unwrap().contains(PW));
    if auditrail_tests::backend() == "sqlite" {
        app.state.records.maintain().await.unwrap();
        let db = std::fs::read(app.dir.path().join("auditrail.db")).unwrap();
        assert!(!db.windows(PW.len()).any(|w| w == PW.as_bytes()), "no plaintext password in the database file");
    }
}

#[tokio::test]
async fn a_download_before_the_archive_is_ready_is_a_clear_conflict() {
    let app = seeded().await;
    let tok = analyst(&app, "acme");
    let r = app.post_json("/v1/exports", &tok, &json!({})).await;
    let id = r.body["id"].as_str().unwrap();
    let r = app.get(&format!("/v1/exports/{id}/download"), &tok).await;
    r.assert_problem(409);
    assert!(r.body["detail"].as_str().unwrap().contains("QUEUED"));
}

#[tokio::test]
async fn a_schedule_runs_yesterdays_export_once_and_records_it() {
    let app = seeded().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let r = app
        .post_json(
            "/v1/export-schedules",
            &admin,
            &json!({"name": "daily logins", "cron": "0 2 * * *", "window": "last_7d", "filter": {"action": "LOGIN"}, "password": PW}),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    assert_eq!(r.body["encrypted"], true);
    let bad = app
        .post_json("/v1/export-schedules", &admin, &json!({"name": "x", "cron": "every day", "window": "yesterday"}))
        .await;
    bad.assert_problem(400);
    assert_eq!(bad.error_fields(), vec!["cron"]);

    // Not due yet: nothing happens. Due (a day later): exactly one export, even if two ticks race.
    let now = chrono::Utc::now();
    assert!(auditrail_shared::housekeeping::tick(&app.state, now, false).await.unwrap().scheduled_exports.is_empty());
    let later = now + chrono::Duration::days(1);
    let (a, b) = tokio::join!(
        auditrail_shared::housekeeping::tick(&app.state, later, false),
        auditrail_shared::housekeeping::tick(&app.state, later, false)
    );
    let created: Vec<String> = a.unwrap().scheduled_exports.into_iter().chain(b.unwrap().scheduled_exports).collect();
    assert_eq!(created.len(), 1, "{created:?}");
    app.state.export_worker("test").run_pending().await.unwrap();
    let t = app.get(&format!("/v1/exports/{}", created[0]), &admin).await;
    assert_eq!(t.body["status"], "SUCCEEDED", "{:#}", t.body);
    assert_eq!(t.body["encrypted"], true);
    assert_eq!(t.body["records"], 20);
    let list = app.get("/v1/export-schedules", &admin).await;
    assert_eq!(list.items()[0]["last_export_id"], created[0].as_str());
}

#[tokio::test]
async fn a_schedule_that_can_never_run_again_ends_failed_with_the_reason_and_a_record() {
    let app = seeded().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let r = app
        .post_json(
            "/v1/export-schedules",
            &admin,
            &json!({"name": "hourly", "every": "1h", "window": "last_24h", "filter": {"action": "LOGIN"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    assert_eq!(r.body["status"], "ACTIVE");
    let id = r.body["id"].as_str().unwrap().to_owned();
    // The stored filter stops resolving (as when an action leaves the catalogue).
    let kind = auditrail_shared::jobs::TaskKind::ExportSchedule;
    let mut t = app.state.tasks.get_task("acme", kind, &id).await.unwrap().unwrap();
    let mut body = t.body.clone();
    body["filter"]["action"] = json!("NO_SUCH_ACTION");
    t.set_body(&body);
    app.state.tasks.save_task(&mut t).await.unwrap();

    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let tick = auditrail_shared::housekeeping::tick(&app.state, later, false).await.unwrap();
    assert!(tick.scheduled_exports.is_empty());
    let list = app.get("/v1/export-schedules", &admin).await;
    let s = list.items().iter().find(|s| s["id"] == id.as_str()).unwrap().clone();
    assert_eq!(s["status"], "FAILED", "{s:#}");
    assert!(s["error"].as_str().unwrap().contains("no longer resolves"), "{s:#}");
    let runs = app.get("/v1/events?action=DATA_EXPORT_RUN_SCHEDULED", &admin).await;
    assert_eq!(runs.items().len(), 1, "{:#}", runs.body);
    assert_eq!(runs.items()[0]["result"], "FAIL");
    assert!(runs.items()[0]["description"]["error"].as_str().unwrap().contains("NO_SUCH_ACTION"));
    // It never runs again, and is not recorded again.
    auditrail_shared::housekeeping::tick(&app.state, later + chrono::Duration::hours(2), false).await.unwrap();
    assert_eq!(app.get("/v1/events?action=DATA_EXPORT_RUN_SCHEDULED", &admin).await.items().len(), 1);
}

/// Rows of a CSV file as the csv crate reads them (header included).
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn formula_cells_are_neutralised_in_every_csv_and_json_lines_stay_as_sent() {
    let app = TestApp::new().await;
    let username = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let full_name = "@SUM(A1:A9)";
    let description = "-2+3+cmd|' /C calc'!A0";
    let mut audit = event("f1", 5, "CREATE_EVALUATION", "x", "OK");
    audit["actor"]["username"] = json!(username);
    audit["actor"]["full_name"] = json!(full_name);
    audit["description"] = json!(description);
    let mut sign_in = event("f2", 4, "SIGN_IN", "x", "FAIL");
    sign_in["actor"]["username"] = json!("+1+1");
    sign_in["failure_reason_code"] = json!("-1");
    app.ingest("acme", &[audit, sign_in]).await;

    let t = export(&app, "acme", json!({"filter": {"action": "CREATE_EVALUATION"}, "password": PW})).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), download(&app, "acme", t["id"].as_str().unwrap()).await).unwrap();
    let (ok, out) = sevenzip(&["x", &format!("-p{PW}"), "-y", "-oout", "a.zip"], dir.path());
    assert!(ok, "{out}");
    let rows = csv_rows(&std::fs::read(dir.path().join("out/events-0001.csv")).unwrap());
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    assert_eq!(rows[1][col("Username")], format!("'{username}"));
    assert_eq!(rows[1][col("User full name")], format!("'{full_name}"));
    assert_eq!(rows[1][col("Description")], format!("'{description}"));
    assert_eq!(rows[1][col("Activity")], "CREATE_EVALUATION", "other cells unchanged");

    let t = export(&app, "acme", json!({"filter": {"view": "sign-ins", "period": "7d"}, "compression": "none"})).await;
    let rows = csv_rows(&download(&app, "acme", t["id"].as_str().unwrap()).await);
    assert_eq!(rows[1][0], "'+1+1", "{rows:?}");
    assert_eq!(rows[1][6], "'-1", "{rows:?}");

    let t = export(
        &app,
        "acme",
        json!({"filter": {"action": "CREATE_EVALUATION"}, "format": "jsonl", "compression": "none"}),
    )
    .await;
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let line: Value = serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["actor"]["username"], username, "JSON lines keep the value as sent");
    assert_eq!(line["description"], description);
}

/// Every catalogue action exports to a valid OCSF 1.1.0 event of the class docs/ocsf.md names:
/// the actions a client may send go through ingest and an export with `format: "ocsf"`; the
/// server-only ones (Auditrail's own) are mapped as the export maps them. All are checked by
/// tools/validate_ocsf.py against the schema of the pinned `ocsf-json-schema` package.
#[tokio::test]
async fn every_catalogue_action_exports_to_a_valid_ocsf_event_of_its_class() {
    use auditrail_shared::export::ocsf;
    use auditrail_shared::record::catalogue::{self, Mode};
    use auditrail_shared::record::{Actor, Category, Record, ResultCode};
    let app = TestApp::new().await;
    let mut recs = Vec::new();
    let mut server_only = Vec::new();
    for (i, d) in catalogue::all().iter().enumerate() {
        if d.server_only() {
            let actor = Actor { user_id: Some("u-1".into()), username: Some("admin".into()), ..Default::default() };
            server_only.push(Record::system("acme", d.name, actor, Some(ResultCode::Ok), json!({"note": d.name})));
            continue;
        }
        let fail = i % 7 == 0;
        let mut e =
            event(&format!("o{i:04}"), 5 + (i % 50) as i64, d.name, "agent.smith", if fail { "FAIL" } else { "OK" });
        e["category"] = json!(d.category.as_str());
        e["source_ip"] = json!("10.0.0.9");
        if fail {
            e["failure_reason_code"] = json!("E42");
        }
        if d.mode == Mode::Async {
            e["phase"] = json!("end");
            e["correlation_id"] = json!(format!("corr-{i}"));
        }
        if d.category == Category::Cobrowse {
            e["session_id"] = json!("cb-1");
            e["actor"]["kind"] = json!("agent");
            e["data"] = json!({"url": "https://shop.example/cart"});
        }
        recs.push(e);
    }
    let n = recs.len();
    app.ingest("acme", &recs).await;
    let t = export(&app, "acme", json!({"filter": {}, "format": "ocsf", "compression": "none"})).await;
    assert_eq!(t["status"], "SUCCEEDED", "{t:#}");
    assert_eq!(t["file_name"], "events.ocsf.jsonl");
    let bytes = download(&app, "acme", t["id"].as_str().unwrap()).await;
    let mut lines: Vec<Value> =
        bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert!(lines.len() >= n, "{} events for {n} records", lines.len());
    lines.extend(server_only.iter().map(ocsf::event));
    let mut classes = std::collections::BTreeMap::new();
    for e in &lines {
        let action = e["unmapped"]["action"].as_str().unwrap();
        let category = e["unmapped"]["category"].as_str().and_then(Category::parse).unwrap();
        let (class, activity, _) = ocsf::classify(action, category);
        assert_eq!(
            (e["class_uid"].as_u64(), e["activity_id"].as_u64()),
            (Some(class.uid() as u64), Some(activity as u64)),
            "{action}"
        );
        assert_eq!(e["metadata"]["tenant_uid"], "acme");
        *classes.entry(class.uid()).or_insert(0) += 1;
    }
    assert_eq!(classes.keys().copied().collect::<Vec<_>>(), [3001, 3002, 3005, 6001, 6003], "{classes:?}");
    let failed = lines.iter().find(|e| e["metadata"]["uid"] == "o0000").unwrap();
    assert_eq!((failed["status_id"].as_u64(), failed["status_code"].as_str()), (Some(2), Some("E42")));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ocsf.jsonl");
    std::fs::write(&file, lines.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make tools` (scripts/setup-tools.sh)", python.display());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/validate_ocsf.py"))
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("all events valid"),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator does fail: an event without its required `user` is refused.
    let mut broken = lines.iter().find(|e| e["class_uid"] == 3002).unwrap().clone();
    broken.as_object_mut().unwrap().remove("user");
    std::fs::write(&file, format!("{broken}\n")).unwrap();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/validate_ocsf.py"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("user"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
