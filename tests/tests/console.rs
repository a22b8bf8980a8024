//! The console's public routes through the real router: the sign-in configuration per auth
//! mode, and the development sign-in (local mode only) whose token carries exactly the role asked.

use std::sync::Arc;

use auditrail_shared::api::console::ConsoleConfig;
use auditrail_shared::api::{router, routes};
use auditrail_shared::auth::Authenticator;
use auditrail_tests::TestApp;
use axum::body::Body;
use serde_json::json;

#[tokio::test]
async fn local_mode_offers_the_development_sign_in() {
    let app = TestApp::new().await;
    let c = app.call("GET", "/v1/console/config", None, None, Body::empty()).await;
    assert_eq!(c.status.as_u16(), 200, "{:#}", c.body);
    assert_eq!(
        c.body,
        json!({"auth_mode": "local", "issuer": null, "client_id": null, "scopes": "openid profile email", "dev_sign_in": true})
    );

    let body = json!({"tenant": "acme", "role": "compliance_analyst", "user": "jdoe"});
    let r = app.call("POST", "/v1/console/dev-sign-in", None, Some("application/json"), body.to_string()).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let token = r.body["access_token"].as_str().unwrap().to_owned();

    // Exactly the role asked: an analyst reads the activity log, but not the settings.
    let events = app.get("/v1/events", &token).await;
    assert_eq!(events.status.as_u16(), 200, "{:#}", events.body);
    app.get("/v1/settings/retention", &token).await.assert_problem(403);
    let p = app.state.auth.verify_bearer(Some(&format!("Bearer {token}"))).unwrap();
    assert_eq!((p.tenant_id.as_str(), p.user_id.as_str(), p.username.as_deref()), ("acme", "jdoe", Some("jdoe")));
    assert_eq!(p.roles, vec![auditrail_shared::auth::Role::ComplianceAnalyst]);
}

#[tokio::test]
async fn the_development_sign_in_names_each_bad_field() {
    let app = TestApp::new().await;
    let post = |body: serde_json::Value| {
        app.call("POST", "/v1/console/dev-sign-in", None, Some("application/json"), body.to_string())
    };
    let r = post(json!({"tenant": "a/b", "role": "root", "user": " "})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["tenant", "role", "user"], "{:#}", r.body);
    assert!(r.body["errors"][1]["reason"].as_str().unwrap().contains("compliance_analyst"), "{:#}", r.body);
    let r = post(json!({"tenant": "acme", "user": "jdoe"})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["role"], "{:#}", r.body);
    let r = post(json!({"tenant": "acme", "role": "dpo", "user": "jdoe", "roles": ["dpo"]})).await;
    assert_eq!(r.error_fields(), vec!["roles"], "unknown fields are refused: {:#}", r.body);
    let r = app.call("POST", "/v1/console/dev-sign-in", None, Some("application/json"), "{").await;
    r.assert_problem(400);
}

#[tokio::test]
async fn without_local_keys_there_is_no_development_sign_in() {
    let app = TestApp::new().await;
    let mut state = app.state.clone();
    state.auth = Arc::new(Authenticator::ApiGateway);
    state.console = Arc::new(ConsoleConfig {
        issuer: Some("https://id.example.com/realms/acme".into()),
        client_id: Some("auditrail-console".into()),
        ..ConsoleConfig::for_auth(&state.auth)
    });
    let app = TestApp { router: router::<routes::All>(state.clone()), state, ..app };
    let c = app.call("GET", "/v1/console/config", None, None, Body::empty()).await;
    assert_eq!(c.body["auth_mode"], "apigw");
    assert_eq!(c.body["issuer"], "https://id.example.com/realms/acme");
    assert_eq!(c.body["client_id"], "auditrail-console");
    assert_eq!(c.body["dev_sign_in"], false);
    let body = json!({"tenant": "acme", "role": "dpo", "user": "jdoe"});
    let r = app.call("POST", "/v1/console/dev-sign-in", None, Some("application/json"), body.to_string()).await;
    r.assert_problem(404);
    assert!(r.body["detail"].as_str().unwrap().contains("only in the `local` auth mode"), "{:#}", r.body);
}
