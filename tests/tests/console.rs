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

/// The document the console's client is generated from: both routes public, the development
/// sign-in marked as such, its role an enumeration of the six roles.
#[tokio::test]
async fn the_document_describes_the_console_routes() {
    let app = TestApp::new().await;
    let doc = app.call("GET", "/v1/openapi.json", None, None, Body::empty()).await.body;
    let sign_in = &doc["paths"]["/v1/console/dev-sign-in"]["post"];
    assert_eq!(sign_in["security"], json!([{}]), "public");
    assert_eq!(doc["paths"]["/v1/console/config"]["get"]["security"], json!([{}]), "public");
    let text = format!("{} {}", sign_in["summary"], sign_in["description"]);
    assert!(text.contains("DEVELOPMENT SIGN-IN") && text.contains("`local` auth mode"), "{text}");
    let role = &doc["components"]["schemas"]["DevSignInRequest"]["properties"]["role"];
    let names: Vec<&str> = auditrail_shared::auth::Role::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(role["enum"], json!(names), "{role}");
    let mode = &doc["components"]["schemas"]["ConsoleAuthMode"];
    assert_eq!(mode["enum"], json!(["local", "oidc", "apigw"]), "{mode}");
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
    // A route that does not exist here does not judge its body's headers either.
    let form = app.call("POST", "/v1/console/dev-sign-in", None, Some("text/plain"), "x").await;
    form.assert_problem(404);
}

/// The `console` Lambda function's router (as its main builds it, on API Gateway's auth mode):
/// the files, the configuration naming the stack's issuer, no development sign-in, and no other
/// `/v1` route — a GET the catch-all route sends it is a 404 problem, never data.
#[tokio::test]
async fn the_console_function_serves_the_files_and_its_public_routes_only() {
    use auditrail_console_assets::{Console, with_api};
    use auditrail_shared::api::console::ConsoleState;
    use auditrail_shared::api::console_router;
    use tower::ServiceExt;

    let auth = Arc::new(Authenticator::ApiGateway);
    let config = ConsoleConfig {
        issuer: Some("https://id.example.com/realms/acme".into()),
        client_id: Some("auditrail-console".into()),
        ..ConsoleConfig::for_auth(&auth)
    };
    let console = Console::new(config.issuer.as_deref());
    let app = with_api(console_router(ConsoleState::new(auth, config)), console);
    let call = |method: &str, uri: &str| {
        let req = http::Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        app.clone().oneshot(req)
    };
    let r = call("GET", "/").await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("connect-src 'self' https://id.example.com;"), "{csp}");
    assert!(csp.contains("form-action 'self' https://id.example.com"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = call("GET", "/v1/console/config").await.unwrap();
    assert_eq!(r.status(), 200);
    let body = http_body_util::BodyExt::collect(r.into_body()).await.unwrap().to_bytes();
    let c: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (c["auth_mode"].as_str(), c["issuer"].as_str()),
        (Some("apigw"), Some("https://id.example.com/realms/acme"))
    );
    assert_eq!(call("POST", "/v1/console/dev-sign-in").await.unwrap().status(), 404);
    for uri in ["/v1/events", "/v1/settings/retention", "/v1/exports/x"] {
        let r = call("GET", uri).await.unwrap();
        assert_eq!(r.status(), 404, "{uri}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{uri}");
    }
}
