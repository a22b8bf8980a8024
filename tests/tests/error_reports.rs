//! Client error reports: upload (plain and gzip), list, download, limits and roles.

use std::io::Write;

use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use serde_json::{Value, json};

fn report(user: &str, team: &str, entries: usize) -> Value {
    json!({
        "created_at": chrono::Utc::now().to_rfc3339(),
        "username": user,
        "reason": "transfer dropped the call",
        "configuration": {"click_to_dial": "^\\+?[0-9 ]{6,}$", "finesse": "https://finesse.example:8445"},
        "agent": {"id": "1001", "extension": "4711", "teams": [team], "queues": ["Billing-CZ"]},
        "server_state": {"deployment_type": "UCCE", "state": "IN_SERVICE", "timezone_offset": 60},
        "dialed_numbers": ["+420 777 123 456"],
        "caller_ids": [{"number": "+420 606 000 111", "name": "Petr Svoboda"}],
        "call_variables": {"callVariable1": "A-17"},
        "traces": {"finesse": [{"dir": "in", "event": "DIALOG_UPDATED"}]},
        "windows": [{"id": "w1", "ui_actions": [{"click": "#transfer"}]}],
        "log": (0..entries).map(|i| json!({"n": i, "action": "click"})).collect::<Vec<_>>(),
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn upload_list_download_round_trip() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let body = report("jdoe", "Billing", 1000);
    let r = app.post_json("/v1/error-reports", &agent, &body).await;
    assert_eq!(r.status.as_u16(), 201, "{:#}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["entries"], 1000);

    // gzip-encoded upload
    let req = http::Request::post("/v1/error-reports")
        .header("authorization", format!("Bearer {agent}"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(axum::body::Body::from(gzip(report("asmith", "Sales", 3).to_string().as_bytes())))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let admin = app.token("acme", &[Role::TenantAdmin]);
    let all = app.get("/v1/error-reports", &admin).await;
    assert_eq!(all.items().len(), 2, "{:#}", all.body);
    let mine = app.get("/v1/error-reports?agent=jdoe", &admin).await;
    assert_eq!(mine.ids(), vec![id.clone()]);
    assert_eq!(mine.items()[0]["reason"], "transfer dropped the call");
    let sales = app.get("/v1/error-reports?team=Sales", &admin).await;
    assert_eq!(sales.items().len(), 1);
    assert_eq!(sales.items()[0]["agent"], "asmith");

    let got = app.get(&format!("/v1/error-reports/{id}"), &admin).await;
    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(got.body["log"].as_array().unwrap().len(), 1000);
    assert_eq!(got.body["caller_ids"], body["caller_ids"]);
    let downloads = app.get("/v1/events?action=ERROR_REPORT_DOWNLOAD", &admin).await;
    assert_eq!(downloads.items().len(), 1, "the download is on record");
}

#[tokio::test]
async fn limits_and_bad_reports_are_refused() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let r = app.post_json("/v1/error-reports", &agent, &report("jdoe", "Billing", 1001)).await;
    assert_eq!(r.assert_problem(400).error_fields(), vec!["log"]);
    let mut no_user = report("jdoe", "Billing", 1);
    no_user.as_object_mut().unwrap().remove("username");
    let r = app.post_json("/v1/error-reports", &agent, &no_user).await;
    assert_eq!(r.assert_problem(400).error_fields(), vec!["username"]);
    app.call("POST", "/v1/error-reports", Some(&agent), Some("application/json"), "{oops").await.assert_problem(400);
    // Nested objects sent as arrays (serde would read them as their fields in order).
    for (field, value, named) in [
        ("agent", json!(["1001", "4711"]), "agent"),
        ("caller_ids", json!([["+420 606 000 111", "Petr Svoboda"]]), "caller_ids[0]"),
    ] {
        let mut bad = report("jdoe", "Billing", 1);
        bad[field] = value;
        let r = app.post_json("/v1/error-reports", &agent, &bad).await;
        assert_eq!(r.assert_problem(400).error_fields(), vec![named], "{field}");
    }

    let mut big = report("jdoe", "Billing", 1);
    big["traces"] = json!({"blob": "x".repeat(11 * 1024 * 1024)});
    app.post_json("/v1/error-reports", &agent, &big).await.assert_problem(413);
    // A gzip bomb: 64 MiB of zeros in a small body, stopped at the 10 MiB limit.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b"{\"created_at\":\"2026-11-24T10:00:00Z\",\"username\":\"x\",\"log\":[],\"pad\":\"").unwrap();
    for _ in 0..64 {
        e.write_all(&vec![b'0'; 1024 * 1024]).unwrap();
    }
    e.write_all(b"\"}").unwrap();
    let bomb = e.finish().unwrap();
    let req = http::Request::post("/v1/error-reports")
        .header("authorization", format!("Bearer {agent}"))
        .header("content-encoding", "gzip")
        .body(axum::body::Body::from(bomb))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    let admin = app.token("acme", &[Role::TenantAdmin]);
    assert!(app.get("/v1/error-reports", &admin).await.items().is_empty(), "nothing stored");

    // A byte order mark (Windows tools write one) is ignored, as on every JSON route.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(report("jdoe", "Billing", 1).to_string().as_bytes());
    let r = app.call("POST", "/v1/error-reports", Some(&agent), Some("application/json"), bom).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
}

#[tokio::test]
async fn agents_cannot_read_reports_and_tenants_are_isolated() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let id = app.post_json("/v1/error-reports", &agent, &report("jdoe", "Billing", 2)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/v1/error-reports", &agent).await.assert_problem(403);
    app.get(&format!("/v1/error-reports/{id}"), &agent).await.assert_problem(403);
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    app.get("/v1/error-reports", &analyst).await.assert_problem(403);
    let other = app.token("globex", &[Role::TenantAdmin]);
    app.get(&format!("/v1/error-reports/{id}"), &other).await.assert_problem(404);
    assert!(app.get("/v1/error-reports", &other).await.items().is_empty());
    let manager = app.token("acme", &[Role::CcManager]);
    assert_eq!(app.get(&format!("/v1/error-reports/{id}"), &manager).await.status.as_u16(), 200);
}

/// A refused upload stores no report and no blob, whatever the reason (role, expired token,
/// size, malformed JSON, gzip, too many entries, missing fields); refusals by role or token are
/// on record as `ERROR_REPORT_UPLOAD` denials, never as a report in the list.
#[tokio::test]
async fn a_refused_upload_leaves_nothing_in_the_list() {
    let app = TestApp::new().await;
    let marker = "phantom-marker-7c1f";
    let mut body = report(marker, "Billing", 2);
    body["reason"] = json!(marker);
    for role in [Role::ComplianceAnalyst, Role::CcManager, Role::TenantAdmin, Role::Dpo] {
        app.post_json("/v1/error-reports", &app.token("acme", &[role]), &body).await.assert_problem(403);
    }
    let expired = app.state.auth.mint("acme", "u", None, &[Role::Agent], -600).unwrap();
    app.post_json("/v1/error-reports", &expired, &body).await.assert_problem(401);

    let agent = app.token("acme", &[Role::Agent]);
    let mut too_many = report(marker, "Billing", 1001);
    too_many["reason"] = json!(marker);
    app.post_json("/v1/error-reports", &agent, &too_many).await.assert_problem(400);
    let mut big = body.clone();
    big["traces"] = json!({"blob": marker.repeat(11 * 1024 * 1024 / marker.len())});
    app.post_json("/v1/error-reports", &agent, &big).await.assert_problem(413);
    let malformed = format!("{{\"created_at\":\"2026-11-24T10:00:00Z\",\"username\":\"{marker}\",\"log\":[");
    app.call("POST", "/v1/error-reports", Some(&agent), Some("application/json"), malformed).await.assert_problem(400);
    let mut no_time = body.clone();
    no_time["created_at"] = json!("yesterday");
    app.post_json("/v1/error-reports", &agent, &no_time).await.assert_problem(400);
    let req = http::Request::post("/v1/error-reports")
        .header("authorization", format!("Bearer {agent}"))
        .header("content-encoding", "gzip")
        .body(axum::body::Body::from(format!("not gzip {marker}")))
        .unwrap();
    assert_eq!(tower::ServiceExt::oneshot(app.router.clone(), req).await.unwrap().status().as_u16(), 400);

    let admin = app.token("acme", &[Role::TenantAdmin]);
    let list = app.get("/v1/error-reports", &admin).await;
    assert_eq!(list.status.as_u16(), 200, "{:#}", list.body);
    assert!(list.items().is_empty(), "phantom entries: {:#}", list.body);
    let denials = app.get("/v1/events?result=UNAUTHORIZED&limit=100", &admin).await;
    assert_eq!(denials.items().len(), 5, "{:#}", denials.body);
    assert!(denials.items().iter().all(|d| d["action"] == "ERROR_REPORT_UPLOAD" && d["category"] == "audit"));
    let stored = String::from_utf8_lossy(&app.everything_stored().await).into_owned();
    assert!(!stored.contains(marker), "a refused report's content was stored");
}

/// Secrets under any key of a report (any depth, any case) are stored as `{redacted}`, keys
/// kept, and the 201 names their paths; the password is in no stored byte.
#[tokio::test]
async fn secrets_in_a_report_are_redacted_before_they_are_stored() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let mut body = report("jdoe", "Billing", 1);
    body["configuration"] = json!({
        "finesse": "https://finesse.example:8445",
        "finesse_password": "Hunter2-finesse",
        "crm": {"Client_Secret": "cs-9f8e7d", "API_KEY": "ak-31337", "credentials": {"user": "svc", "password": "pw-4242"}},
        "servers": [{"host": "f1", "passwd": "pw-server-1"}, {"host": "f2", "Token": "tok-abcdef"}],
        "auth": {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.secret", "pwd": "pin-0000"},
    });
    let r = app.post_json("/v1/error-reports", &agent, &body).await;
    assert_eq!(r.status.as_u16(), 201, "{:#}", r.body);
    let mut paths: Vec<&str> = r.body["redacted"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "configuration.auth.authorization",
            "configuration.auth.pwd",
            "configuration.crm.API_KEY",
            "configuration.crm.Client_Secret",
            "configuration.crm.credentials",
            "configuration.finesse_password",
            "configuration.servers[0].passwd",
            "configuration.servers[1].Token",
        ]
    );
    let id = r.body["id"].as_str().unwrap();
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let got = app.get(&format!("/v1/error-reports/{id}"), &admin).await;
    assert_eq!(got.body["configuration"]["finesse_password"], "{redacted}");
    assert_eq!(got.body["configuration"]["servers"][1]["host"], "f2", "the rest is kept");
    assert_eq!(got.body["configuration"]["finesse"], "https://finesse.example:8445");
    assert_eq!(got.body["caller_ids"], body["caller_ids"]);
    let stored = String::from_utf8_lossy(&app.everything_stored().await).into_owned();
    for secret in
        ["Hunter2-finesse", "cs-9f8e7d", "ak-31337", "pw-4242", "pw-server-1", "tok-abcdef", "eyJhbGci", "pin-0000"]
    {
        assert!(!stored.contains(secret), "{secret} was stored");
    }
    // A report without secrets reports none.
    let clean = app.post_json("/v1/error-reports", &agent, &report("asmith", "Sales", 1)).await;
    assert_eq!(clean.body["redacted"], json!([]));
}
