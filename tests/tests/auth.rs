//! Tokens, roles, denials recorded as UNAUTHORIZED, and tenant isolation on every route.

use auditrail_shared::auth::Role;
use auditrail_tests::{TestApp, event};
use axum::body::Body;
use base64::Engine;

#[tokio::test]
async fn missing_forged_expired_and_alg_none_tokens_are_refused() {
    let app = TestApp::new().await;
    let r = app.call("GET", "/v1/events", None, None, Body::empty()).await;
    r.assert_problem(401);
    let forged = auditrail_shared::auth::Authenticator::local(b"not-the-servers-key-not-the-servers-key")
        .mint("acme", "u", None, &[Role::ComplianceAnalyst], 600)
        .unwrap();
    app.get("/v1/events", &forged).await.assert_problem(401);
    let expired = app.state.auth.mint("acme", "u", None, &[Role::ComplianceAnalyst], -600).unwrap();
    let r = app.get("/v1/events", &expired).await;
    assert!(r.assert_problem(401).body["detail"].as_str().unwrap().contains("expired"));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = expired.split('.').nth(1).unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    claims["exp"] = serde_json::json!(chrono::Utc::now().timestamp() + 600);
    let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims.to_string()));
    app.get("/v1/events", &none).await.assert_problem(401);
    app.call("GET", "/v1/events", None, None, Body::empty()).await.assert_problem(401);

    // The expired (validly signed) attempt is on record for its tenant; the forged ones are not.
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let denials = app.get("/v1/events?result=UNAUTHORIZED", &admin).await;
    assert_eq!(denials.items().len(), 1, "{:#}", denials.body);
    assert!(denials.items()[0]["description"]["reason"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn roles_are_enforced_and_denials_recorded() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let ingest = app.token("acme", &[Role::Ingest]);
    let dpo = app.token("acme", &[Role::Dpo]);
    for t in [&agent, &ingest, &dpo] {
        app.get("/v1/events", t).await.assert_problem(403);
        app.get("/v1/sign-ins", t).await.assert_problem(403);
    }
    let reader = app.token("acme", &[Role::CcManager]);
    let r = app.post_json("/v1/events", &reader, &serde_json::json!([event("x", 1, "LOGIN", "u", "OK")])).await;
    r.assert_problem(403);

    let admin = app.token("acme", &[Role::TenantAdmin]);
    let denials = app.get("/v1/events?result=UNAUTHORIZED&limit=100", &admin).await;
    let actions: Vec<&str> = denials.items().iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 7);
    assert_eq!(actions.iter().filter(|a| **a == "AUDIT_SEARCH").count(), 3);
    assert_eq!(actions.iter().filter(|a| **a == "SIGN_IN_SEARCH").count(), 3);
    assert_eq!(actions.iter().filter(|a| **a == "EVENTS_INGEST").count(), 1);
    assert!(app.get("/v1/events?action=LOGIN", &reader).await.items().is_empty(), "the refused batch stored nothing");
}

#[tokio::test]
async fn tenant_a_never_reads_tenant_b() {
    let app = TestApp::new().await;
    let mut b = event("secret", 5, "LOGIN", "bob", "OK");
    b["session_id"] = serde_json::json!("shared-session");
    app.ingest("globex", &[b]).await;
    let mut click = event("b-click", 4, "CLICK", "bob", "OK");
    click.as_object_mut().unwrap().remove("result");
    click["session_id"] = serde_json::json!("shared-session");
    click["actor"] = serde_json::json!({"kind": "customer"});
    app.ingest("globex", &[click]).await;

    let a = app.token("acme", &[Role::TenantAdmin, Role::ComplianceAnalyst, Role::CcManager]);
    for uri in [
        "/v1/events?limit=1000",
        "/v1/events?user=bob",
        "/v1/events?session_id=shared-session",
        "/v1/sign-ins?period=7d",
        "/v1/sessions/shared-session/events",
    ] {
        let r = app.get(uri, &a).await;
        assert_eq!(r.status.as_u16(), 200, "{uri}");
        assert!(r.items().iter().all(|i| !i.to_string().contains("bob")), "{uri} leaked: {:#}", r.body);
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::TenantAdmin]);
    app.get("/v1/nope", &t).await.assert_problem(404);
    app.call("DELETE", "/v1/events", Some(&t), None, Body::empty()).await.assert_problem(405);
    let health = app.call("GET", "/v1/health", None, None, Body::empty()).await;
    assert_eq!(health.body["status"], "ok");
    let cat = app.call("GET", "/v1/catalogue", None, None, Body::empty()).await;
    assert!(cat.body["count"].as_u64().unwrap() > 10);
}

/// Every route × every role that may not use it: 403, and the `UNAUTHORIZED` record names the
/// operation attempted (a read is never recorded as a change), under an `audit` action so a
/// denial never shows up in another view (error reports, sign-ins).
#[tokio::test]
async fn every_routes_denial_is_recorded_under_its_own_action() {
    use auditrail_shared::api::{routes, served};
    const X: &str = "01JDZZZZZZZZZZZZZZZZZZZZZZ";
    let table: &[(&str, &str, &str, &str)] = &[
        ("post", "/v1/events", "/v1/events", "EVENTS_INGEST"),
        ("get", "/v1/events", "/v1/events", "AUDIT_SEARCH"),
        ("get", "/v1/events/{id}", &format!("/v1/events/{X}"), "RECORD_VIEW"),
        ("get", "/v1/events/{id}/proof", &format!("/v1/events/{X}/proof"), "INTEGRITY_VIEW"),
        ("get", "/v1/integrity/seals", "/v1/integrity/seals", "INTEGRITY_VIEW"),
        ("get", "/v1/integrity/seals/{seq}", "/v1/integrity/seals/0", "INTEGRITY_VIEW"),
        ("get", "/v1/integrity/consistency", "/v1/integrity/consistency", "INTEGRITY_VIEW"),
        ("get", "/v1/sign-ins", "/v1/sign-ins", "SIGN_IN_SEARCH"),
        ("get", "/v1/sessions/{session_id}/events", "/v1/sessions/s-1/events", "SESSION_VIEW"),
        ("get", "/v1/requests", "/v1/requests", "REQUEST_TRACE_VIEW"),
        ("get", "/v1/requests/{correlation_id}", "/v1/requests/c-1", "REQUEST_TRACE_VIEW"),
        ("post", "/v1/error-reports", "/v1/error-reports", "ERROR_REPORT_UPLOAD"),
        ("get", "/v1/error-reports", "/v1/error-reports", "AUDIT_SEARCH"),
        ("get", "/v1/error-reports/{id}", &format!("/v1/error-reports/{X}"), "ERROR_REPORT_DOWNLOAD"),
        ("get", "/v1/settings/retention", "/v1/settings/retention", "SETTINGS_VIEW"),
        ("put", "/v1/settings/retention", "/v1/settings/retention", "RETENTION_CHANGE"),
        ("get", "/v1/settings/access", "/v1/settings/access", "SETTINGS_VIEW"),
        ("put", "/v1/settings/access", "/v1/settings/access", "ACCESS_SETTINGS_CHANGE"),
        ("get", "/v1/settings/keycloak", "/v1/settings/keycloak", "SETTINGS_VIEW"),
        ("put", "/v1/settings/keycloak", "/v1/settings/keycloak", "KEYCLOAK_SETTINGS_CHANGE"),
        ("post", "/v1/sources/keycloak/events", "/v1/sources/keycloak/events", "EVENTS_INGEST"),
        ("post", "/v1/exports", "/v1/exports", "DATA_EXPORT_CREATE"),
        ("get", "/v1/exports", "/v1/exports", "EXPORT_TASK_VIEW"),
        ("get", "/v1/exports/{id}", &format!("/v1/exports/{X}"), "EXPORT_TASK_VIEW"),
        ("get", "/v1/exports/{id}/download", &format!("/v1/exports/{X}/download"), "DATA_EXPORT_DOWNLOAD"),
        ("delete", "/v1/exports/{id}", &format!("/v1/exports/{X}"), "DATA_EXPORT_DELETE"),
        ("post", "/v1/export-schedules", "/v1/export-schedules", "DATA_EXPORT_CHANGED"),
        ("get", "/v1/export-schedules", "/v1/export-schedules", "EXPORT_SCHEDULE_VIEW"),
        ("delete", "/v1/export-schedules/{id}", &format!("/v1/export-schedules/{X}"), "DATA_EXPORT_CHANGED"),
        ("post", "/v1/attachments", "/v1/attachments", "ATTACHMENT_UPLOAD"),
        ("post", "/v1/attachments/upload-url", "/v1/attachments/upload-url", "ATTACHMENT_UPLOAD"),
        ("post", "/v1/dpo/searches", "/v1/dpo/searches", "DPO_SEARCH"),
        ("post", "/v1/dpo/reports", "/v1/dpo/reports", "DPO_REPORT"),
        ("post", "/v1/dpo/erasures", "/v1/dpo/erasures", "DPO_ERASURE"),
        ("get", "/v1/dpo/erasures/{id}", &format!("/v1/dpo/erasures/{X}"), "DPO_ERASURE_VIEW"),
        ("get", "/v1/dpo/attachments/{record_id}/{n}", "/v1/dpo/attachments/r-1/0", "DPO_DOWNLOAD"),
    ];
    let app = TestApp::new().await;
    let public = ["/v1/health", "/v1/catalogue", "/v1/openapi.json", "/v1/console/config", "/v1/console/dev-sign-in"];
    for (method, path) in served::<routes::All>(app.state.clone()) {
        if !public.contains(&path.as_str()) {
            assert!(
                table.iter().any(|(m, p, _, _)| *m == method && *p == path),
                "{method} {path}: add it to this table"
            );
        }
    }

    let mut refused = std::collections::HashMap::new();
    let tokens: [_; 6] = std::array::from_fn(|i| app.token("acme", &[Role::ALL[i]]));
    for (method, _, uri, _) in table {
        let m = method.to_uppercase();
        let [a, b, c, d, e, f] = tokens.each_ref().map(|t| app.call(&m, uri, Some(t), None, Body::empty()));
        let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
        for r in [a, b, c, d, e, f] {
            if r.status.as_u16() == 403 {
                r.assert_problem(403);
                *refused.entry((m.clone(), uri.to_string())).or_insert(0) += 1;
            }
        }
        assert!(refused.contains_key(&(method.to_uppercase(), uri.to_string())), "{method} {uri} refused no role");
    }

    let admin = app.token("acme", &[Role::TenantAdmin]);
    let denials = app.get("/v1/events?result=UNAUTHORIZED&limit=1000", &admin).await;
    let mut seen = std::collections::HashMap::new();
    for d in denials.items() {
        let key = (
            d["description"]["method"].as_str().unwrap().to_owned(),
            d["description"]["path"].as_str().unwrap().to_owned(),
        );
        let (_, _, _, want) = table.iter().find(|(m, _, u, _)| (m.to_uppercase(), u.to_string()) == key).unwrap();
        assert_eq!(d["action"], *want, "{key:?}");
        assert_eq!(d["category"], "audit", "{key:?}");
        *seen.entry(key).or_insert(0) += 1;
    }
    assert_eq!(seen, refused, "one UNAUTHORIZED record per refused call");
    for (_, _, _, action) in table {
        let def = auditrail_shared::record::lookup(action).unwrap_or_else(|| panic!("{action} not in the catalogue"));
        assert_eq!(def.category, auditrail_shared::record::Category::Audit, "{action}");
    }
}
