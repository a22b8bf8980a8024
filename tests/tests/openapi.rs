//! The OpenAPI document covers every route the server mounts, and every documented operation is
//! really served.

use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use axum::body::Body;

/// Every route of the product; adding a route means adding it here and to the document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/catalogue"),
    ("post", "/v1/events"),
    ("get", "/v1/events"),
    ("get", "/v1/sign-ins"),
    ("get", "/v1/sessions/{session_id}/events"),
    ("get", "/v1/requests"),
    ("get", "/v1/requests/{correlation_id}"),
    ("post", "/v1/error-reports"),
    ("get", "/v1/error-reports"),
    ("get", "/v1/error-reports/{id}"),
    ("get", "/v1/settings/retention"),
    ("put", "/v1/settings/retention"),
    ("post", "/v1/exports"),
    ("get", "/v1/exports"),
    ("get", "/v1/exports/{id}"),
    ("get", "/v1/exports/{id}/download"),
    ("delete", "/v1/exports/{id}"),
    ("post", "/v1/export-schedules"),
    ("get", "/v1/export-schedules"),
    ("delete", "/v1/export-schedules/{id}"),
    ("post", "/v1/attachments"),
    ("post", "/v1/attachments/upload-url"),
    ("post", "/v1/dpo/searches"),
    ("post", "/v1/dpo/reports"),
    ("post", "/v1/dpo/erasures"),
    ("get", "/v1/dpo/erasures/{id}"),
    ("get", "/v1/dpo/attachments/{record_id}/{n}"),
];

/// Every route reaches a function through API Gateway: the SAM template has an HttpApi event
/// for each (the OpenAPI document itself included).
#[test]
fn every_route_is_wired_in_the_sam_template() {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
    let squashed: String = template.split_whitespace().collect::<Vec<_>>().join(" ");
    for (method, path) in ROUTES.iter().chain(&[("get", "/v1/openapi.json")]) {
        let wired = format!("Method: {} Path: {path}", method.to_uppercase());
        assert!(
            squashed.contains(&wired),
            "infra/template.yaml has no HttpApi event for {} {path}",
            method.to_uppercase()
        );
    }
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::new().await;
    let doc = app.call("GET", "/v1/openapi.json", None, None, Body::empty()).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(doc.body["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone())))
        .collect();
    documented.sort();
    let mut want: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    want.sort();
    assert_eq!(documented, want);

    let token = app.token("acme", &[Role::TenantAdmin]);
    for (method, path) in ROUTES {
        let op = &paths[*path][*method];
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().any(|k| k.starts_with('2')), "{method} {path} documents its success");
        if op.get("security").is_none() {
            for code in ["401", "403"] {
                assert!(responses.contains_key(code), "{method} {path} documents {code}");
            }
        }
        let uri = path
            .replace("{session_id}", "s-1")
            .replace("{correlation_id}", "c-1")
            .replace("{id}", "r-1")
            .replace("{record_id}", "r-1")
            .replace("{n}", "0");
        let r = app.call(&method.to_uppercase(), &uri, Some(&token), Some("application/json"), Body::from("[]")).await;
        let not_found =
            r.status.as_u16() == 404 && r.body["detail"].as_str().unwrap_or("").starts_with("no such route");
        assert!(!not_found, "{method} {path} is documented but not served");
        assert_ne!(r.status.as_u16(), 405, "{method} {path} is documented but not served");
    }
}
