//! Every route that takes one JSON object (settings, exports, schedules, DPO searches, reports and
//! erasures) answers a bad body the same way, before anything is stored: a body that is not JSON
//! by its headers is a 415 naming the header, an array or a scalar is "must be a JSON object",
//! malformed and oversize bodies name `body`, a byte order mark is ignored; an unknown id is not
//! echoed back whole.

use auditrail_shared::auth::Role;
use auditrail_tests::{Resp, TestApp, event};
use axum::body::Body;
use http::{Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Each JSON-body route, the role that may call it, and a body it accepts.
fn routes() -> Vec<(&'static str, &'static str, Role, Value)> {
    vec![
        ("PUT", "/v1/settings/retention", Role::TenantAdmin, json!({"legal_hold": false})),
        (
            "PUT",
            "/v1/settings/access",
            Role::TenantAdmin,
            json!({"agent_sign_in_log": {"read": false, "export": false}}),
        ),
        ("PUT", "/v1/settings/keycloak", Role::TenantAdmin, json!({"store_representation": false})),
        ("POST", "/v1/exports", Role::ComplianceAnalyst, json!({"filter": {}})),
        (
            "POST",
            "/v1/export-schedules",
            Role::TenantAdmin,
            json!({"name": "daily", "cron": "0 6 * * *", "window": "yesterday"}),
        ),
        ("POST", "/v1/dpo/searches", Role::Dpo, json!({"email": "jana@example.com"})),
        ("POST", "/v1/dpo/reports", Role::Dpo, json!({"search": {"email": "jana@example.com"}})),
        ("POST", "/v1/dpo/erasures", Role::Dpo, json!({"items": ["rec-1", "rec-2"]})),
    ]
}

async fn send(app: &TestApp, method: &str, uri: &str, token: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let mut req = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let content_type =
        resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp { status, content_type, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn first_error(r: &Resp) -> (String, String) {
    let e = &r.body["errors"][0];
    (e["field"].as_str().unwrap_or("").to_owned(), e["reason"].as_str().unwrap_or("").to_owned())
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn good_json(good: &[u8]) -> serde_json::Map<String, Value> {
    serde_json::from_slice(good).unwrap()
}

#[tokio::test]
async fn every_json_route_refuses_a_bad_body_naming_what_is_wrong_and_stores_nothing() {
    let app = TestApp::new().await;
    // Records a DPO may erase (both good erasures below name them).
    let subject = |id| {
        let mut r = event(id, 60, "CREATE_EVALUATION", "jana", "OK");
        r["subject"] = json!({"emails": ["jana@example.com"]});
        r
    };
    app.ingest("acme", &[subject("rec-1"), subject("rec-2")]).await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let before =
        app.get("/v1/events?action=RETENTION_CHANGE,ACCESS_SETTINGS_CHANGE,KEYCLOAK_SETTINGS_CHANGE", &admin).await;
    for (method, uri, role, good) in routes() {
        let tok = app.token("acme", &[role]);
        let good = good.to_string().into_bytes();
        let at = format!("{method} {uri}");

        // What `curl -d` sends unless told, and a compressed body: 415 naming the header.
        let form =
            send(&app, method, uri, &tok, &[("content-type", "application/x-www-form-urlencoded")], good.clone()).await;
        assert_eq!(form.status, 415, "{at}: {:#}", form.body);
        form.assert_problem(415);
        assert_eq!(first_error(&form).0, "content-type", "{at}: {:#}", form.body);
        let gz = send(&app, method, uri, &tok, &[JSON, ("content-encoding", "gzip")], good.clone()).await;
        gz.assert_problem(415);
        assert_eq!(first_error(&gz).0, "content-encoding", "{at}: {:#}", gz.body);

        // Not an object: serde would read a struct from an array.
        for not_object in ["[]", "[false, {}]", "\"text\"", "42", "null"] {
            let r = send(&app, method, uri, &tok, &[JSON], not_object.into()).await;
            r.assert_problem(400);
            assert_eq!(first_error(&r), ("body".into(), "must be a JSON object".into()), "{at} {not_object}");
        }
        // Nor is an object nested in it (`"search": ["jana@…"]` read as its first field).
        let nested: Vec<_> = good_json(&good).iter().filter(|(_, v)| v.is_object()).map(|(k, _)| k.clone()).collect();
        for field in nested {
            let mut body = good_json(&good);
            let values: Vec<Value> = body[&field].as_object().unwrap().values().cloned().collect();
            body.insert(field.clone(), Value::Array(values));
            let r = send(&app, method, uri, &tok, &[JSON], serde_json::to_vec(&body).unwrap()).await;
            r.assert_problem(400);
            assert_eq!(first_error(&r), (field.clone(), "must be an object, not an array".into()), "{at} {field}");
        }
        let empty = send(&app, method, uri, &tok, &[JSON], Vec::new()).await;
        assert_eq!(first_error(empty.assert_problem(400)).0, "body", "{at}");

        // Malformed and oversize bodies are named like any field.
        let cut = send(&app, method, uri, &tok, &[JSON], good[..good.len() - 1].to_vec()).await;
        cut.assert_problem(400);
        assert_eq!(cut.body["type"], "https://auditrail.dev/problems/malformed-body", "{at}");
        assert_eq!(first_error(&cut).0, "body", "{at}: {:#}", cut.body);
        let mut huge = b"{\"filler\": \"".to_vec();
        huge.resize(3 * 1024 * 1024, b'a');
        huge.extend_from_slice(b"\"}");
        let big = send(&app, method, uri, &tok, &[JSON], huge).await;
        big.assert_problem(413);
        assert_eq!(first_error(&big).0, "body", "{at}: {:#}", big.body);

        // A byte order mark (Windows tools write one) is ignored; no Content-Type is taken as JSON.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(&good);
        let r = send(&app, method, uri, &tok, &[JSON], bom).await;
        assert!(r.status.is_success(), "{at} with a BOM: {:#}", r.body);
        let r = send(&app, method, uri, &tok, &[], good.clone()).await;
        assert!(r.status.is_success(), "{at} without Content-Type: {:#}", r.body);
    }
    // Only the two good calls per settings route changed anything.
    let after =
        app.get("/v1/events?action=RETENTION_CHANGE,ACCESS_SETTINGS_CHANGE,KEYCLOAK_SETTINGS_CHANGE", &admin).await;
    assert_eq!(after.items().len(), before.items().len() + 6);
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    assert_eq!(app.get("/v1/exports", &analyst).await.items().len(), 2, "only the two good exports were queued");
}

#[tokio::test]
async fn wrong_values_are_told_in_a_clients_words() {
    let app = TestApp::new().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let put =
        |body: &'static str| app.call("PUT", "/v1/settings/retention", Some(&admin), Some("application/json"), body);
    let r = put(r#"{"days": {"audit": "ninety"}}"#).await;
    assert_eq!(
        first_error(r.assert_problem(400)),
        ("days.audit".into(), "must be a whole number (0 or more), not \"ninety\"".into())
    );
    let r = put(r#"{"days": {"audit": -1}}"#).await;
    assert_eq!(first_error(&r).1, "must be a whole number (0 or more), not -1");
    let r = put(r#"{"legal_hold": "yes"}"#).await;
    assert_eq!(first_error(&r), ("legal_hold".into(), "must be a boolean, not \"yes\"".into()));
    let r = put(r#"{"days": [30]}"#).await;
    assert_eq!(first_error(&r), ("days".into(), "must be an object of days per category, not an array".into()));
    let r = put(r#"{"hold": true}"#).await;
    let (field, reason) = first_error(&r);
    assert_eq!(field, "hold");
    assert!(reason.starts_with("unknown field; the fields are `days`, `legal_hold`"), "{reason}");

    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let r = app.post_json("/v1/exports", &analyst, &json!({"format": "xml"})).await;
    let (field, reason) = first_error(r.assert_problem(400));
    assert_eq!(field, "format");
    assert!(reason.starts_with("must be one of `csv`"), "{reason}");
    assert!(!reason.contains("variant"), "{reason}");
    // Every top-level field at fault is named, not only the first serde met.
    let r =
        app.post_json("/v1/exports", &analyst, &json!({"format": "xml", "compression": "rar", "password": 7})).await;
    let mut fields = r.assert_problem(400).error_fields();
    fields.sort();
    assert_eq!(fields, vec!["compression", "format", "password"], "{:#}", r.body);
    // Nothing may follow the object.
    let r = put(r#"{"legal_hold": false} {"legal_hold": true}"#).await;
    assert_eq!(r.assert_problem(400).body["type"], "https://auditrail.dev/problems/malformed-body");
    let r = app.post_json("/v1/exports", &analyst, &json!({"filter": {"from": "2026-13-01T00:00:00Z"}})).await;
    let (field, reason) = first_error(r.assert_problem(400));
    assert_eq!(field, "filter.from");
    assert!(reason.ends_with("a part is out of range (month 01–12, day of the month, hour 00–23, …)"), "{reason}");
    let r = app.post_json("/v1/exports", &analyst, &json!({"filter": {"from": "2026-01-01T00:00"}})).await;
    assert!(first_error(&r).1.ends_with("it ends too early"), "{:#}", r.body);
}

#[tokio::test]
async fn an_unknown_id_is_not_echoed_back_whole() {
    let app = TestApp::new().await;
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    // Under the 256-character limit on ids, so each route looks it up.
    let long = "x".repeat(250);
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let r = app.call("DELETE", &format!("/v1/export-schedules/{long}"), Some(&admin), None, Body::empty()).await;
    assert!(!r.assert_problem(404).body["detail"].as_str().unwrap().contains(&"x".repeat(65)), "{:#}", r.body);
    for uri in [format!("/v1/exports/{long}"), format!("/v1/requests/{long}"), format!("/v1/events/{long}")] {
        let r = app.get(&uri, &analyst).await;
        r.assert_problem(404);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(&"x".repeat(64)) && !detail.contains(&"x".repeat(65)), "{uri}: {detail}");
    }
}
