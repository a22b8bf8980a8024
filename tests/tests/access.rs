//! Seed 003: a tenant admin grants agents the sign-in log (read, export) per tenant; an agent so
//! allowed sees only the sign-in view and only their own export tasks. Without the grant, 403.

use auditrail_shared::auth::Role;
use auditrail_tests::{TestApp, event};
use axum::body::Body;
use serde_json::{Value, json};

fn agent(app: &TestApp, tenant: &str, user: &str) -> String {
    app.state.auth.mint(tenant, user, Some(user), &[Role::Agent], 600).unwrap()
}

async fn grant(app: &TestApp, tenant: &str, read: bool, export: bool) -> Value {
    let admin = app.token(tenant, &[Role::TenantAdmin]);
    let body = json!({"agent_sign_in_log": {"read": read, "export": export}});
    let r = app.call("PUT", "/v1/settings/access", Some(&admin), Some("application/json"), body.to_string()).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    assert_eq!(r.body, body);
    r.body
}

fn sign_in_export() -> Value {
    json!({"filter": {"view": "sign-ins", "period": "1d"}, "compression": "none", "format": "csv"})
}

#[tokio::test]
async fn agents_use_the_sign_in_log_only_once_a_tenant_admin_grants_it() {
    let app = TestApp::new().await;
    let mut login = event("kc-1", 5, "LOGIN", "ann", "OK");
    login["actor"]["employee_id"] = json!("1001");
    app.ingest("acme", &[login, event("qm-1", 4, "CREATE_EVALUATION", "ann", "OK")]).await;
    let (a, b) = (agent(&app, "acme", "agent-a"), agent(&app, "acme", "agent-b"));
    let admin = app.token("acme", &[Role::TenantAdmin]);

    // Nothing is granted until a tenant admin says so.
    assert_eq!(
        app.get("/v1/settings/access", &admin).await.body,
        json!({"agent_sign_in_log": {"read": false, "export": false}})
    );
    app.get("/v1/sign-ins", &a).await.assert_problem(403);
    app.post_json("/v1/exports", &a, &sign_in_export()).await.assert_problem(403);
    app.get("/v1/exports", &a).await.assert_problem(403);
    // Only a tenant admin sets it, and the body is checked.
    let body = json!({"agent_sign_in_log": {"read": true}}).to_string();
    app.call("PUT", "/v1/settings/access", Some(&a), Some("application/json"), body.clone()).await.assert_problem(403);
    let bad = json!({"agent_sign_in_log": {"reed": true}}).to_string();
    app.call("PUT", "/v1/settings/access", Some(&admin), Some("application/json"), bad).await.assert_problem(400);
    // serde would read these as structs; an array grants nothing and must not read as a grant.
    for (bad, field) in [("[]", "body"), (r#"{"agent_sign_in_log": [true, true]}"#, "agent_sign_in_log")] {
        let r = app.call("PUT", "/v1/settings/access", Some(&admin), Some("application/json"), bad.to_owned()).await;
        assert_eq!(r.assert_problem(400).error_fields(), vec![field], "{bad}");
    }

    // Read only.
    grant(&app, "acme", true, false).await;
    let r = app.get("/v1/sign-ins?period=1d", &a).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    assert_eq!(r.ids(), vec!["kc-1"]);
    app.get("/v1/events", &a).await.assert_problem(403);
    app.get("/v1/sessions/s/events", &a).await.assert_problem(403);
    app.post_json("/v1/exports", &a, &sign_in_export()).await.assert_problem(403);
    // The grant is per tenant.
    app.get("/v1/sign-ins", &agent(&app, "globex", "agent-a")).await.assert_problem(403);

    // Export too: only the sign-in view, and each agent sees only their own tasks.
    grant(&app, "acme", true, true).await;
    let events_view =
        json!({"filter": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "compression": "none"});
    app.post_json("/v1/exports", &a, &events_view).await.assert_problem(403);
    app.post_json("/v1/exports", &a, &json!({"filter": {"action": ["LOGIN"]}})).await.assert_problem(403);
    let mine = app.post_json("/v1/exports", &a, &sign_in_export()).await;
    assert_eq!(mine.status.as_u16(), 202, "{:#}", mine.body);
    let mine = mine.body["id"].as_str().unwrap().to_owned();
    let theirs = app.post_json("/v1/exports", &b, &sign_in_export()).await.body["id"].as_str().unwrap().to_owned();
    let admins = app.post_json("/v1/exports", &admin, &json!({"filter": {}, "compression": "none"})).await;
    let admins = admins.body["id"].as_str().unwrap().to_owned();
    app.state.export_worker("test").run_pending().await.unwrap();

    let listed = app.get("/v1/exports", &a).await;
    assert_eq!(listed.ids(), vec![mine.clone()], "{:#}", listed.body);
    let one = app.get("/v1/exports?limit=1", &a).await;
    assert_eq!(one.ids(), vec![mine.clone()]);
    assert_eq!(app.get(&format!("/v1/exports/{mine}"), &a).await.body["status"], "SUCCEEDED");
    for other in [&theirs, &admins] {
        app.get(&format!("/v1/exports/{other}"), &a).await.assert_problem(404);
        app.get(&format!("/v1/exports/{other}/download"), &a).await.assert_problem(404);
        app.call("DELETE", &format!("/v1/exports/{other}"), Some(&a), None, Body::empty()).await.assert_problem(404);
    }
    let (status, headers, bytes) = app.raw("GET", &format!("/v1/exports/{mine}/download"), &a).await;
    let csv = match status.as_u16() {
        200 => bytes,
        303 => reqwest::get(headers["location"].to_str().unwrap()).await.unwrap().bytes().await.unwrap().to_vec(),
        s => panic!("download: {s}"),
    };
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("ann") && !csv.contains("CREATE_EVALUATION"), "{csv}");
    let all = app.get("/v1/exports", &admin).await;
    assert_eq!(all.items().len(), 3, "a tenant admin sees every export");
    let r = app.call("DELETE", &format!("/v1/exports/{mine}"), Some(&a), None, Body::empty()).await;
    assert_eq!(r.status.as_u16(), 204);
    assert!(app.get("/v1/exports", &a).await.items().is_empty());
    // Schedules and the rest stay closed.
    app.get("/v1/export-schedules", &a).await.assert_problem(403);
    app.get("/v1/error-reports", &a).await.assert_problem(403);

    // Revoked: 403 again.
    grant(&app, "acme", false, false).await;
    app.get("/v1/sign-ins", &a).await.assert_problem(403);
    app.get(&format!("/v1/exports/{theirs}"), &b).await.assert_problem(403);

    // Every change is on record with the old and new settings, and the refused export too.
    let changes = app.get("/v1/events?action=ACCESS_SETTINGS_CHANGE&result=OK", &admin).await;
    assert_eq!(changes.items().len(), 3, "{:#}", changes.body);
    assert_eq!(changes.items()[0]["description"]["old"]["agent_sign_in_log"]["export"], true);
    assert_eq!(changes.items()[0]["description"]["new"]["agent_sign_in_log"]["export"], false);
    let refused = app.get("/v1/events?action=DATA_EXPORT_CREATE&result=UNAUTHORIZED", &admin).await;
    assert!(
        refused
            .items()
            .iter()
            .any(|d| d["actor"]["user_id"] == "agent-a"
                && d["description"]["reason"].as_str().unwrap().contains("sign-in")),
        "{:#}",
        refused.body
    );
}
