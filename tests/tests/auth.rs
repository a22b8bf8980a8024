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
