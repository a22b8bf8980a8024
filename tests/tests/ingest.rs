//! `POST /v1/events`: batches, idempotency, partial failure and every bad input.

use auditrail_shared::auth::Role;
use auditrail_tests::{TestApp, event};
use serde_json::{Value, json};

#[tokio::test]
async fn replayed_batch_is_stored_once() {
    let app = TestApp::new().await;
    let batch = vec![event("a1", 5, "LOGIN", "jdoe", "OK"), event("a2", 4, "LOGOUT", "jdoe", "OK")];
    let first = app.ingest("acme", &batch).await;
    assert_eq!((first.body["created"].as_u64(), first.body["duplicates"].as_u64()), (Some(2), Some(0)));
    let again = app.ingest("acme", &batch).await;
    assert_eq!((again.body["created"].as_u64(), again.body["duplicates"].as_u64()), (Some(0), Some(2)));
    let items: Vec<&str> =
        again.body["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(items, vec!["duplicate", "duplicate"]);

    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    let listed = app.get("/v1/events?action=LOGIN&action=LOGOUT", &reader).await;
    assert_eq!(listed.ids(), vec!["a2", "a1"], "one copy each, newest first");
}

#[tokio::test]
async fn ndjson_batch_with_bad_items_stores_the_good_ones() {
    let app = TestApp::new().await;
    let lines = [
        event("good-1", 3, "SIGN_IN", "agent7", "OK").to_string(),
        "{not json".to_string(),
        json!({"id": "bad-type", "occurred_at": "2026-11-20T10:00:00Z", "action": "LOGIN", "result": 1}).to_string(),
        json!({"id": "bad-action", "occurred_at": "2026-11-20T10:00:00Z", "action": "LOGN_EROR", "result": "OK"})
            .to_string(),
        event("good-2", 2, "CONVERSATION_SEARCH", "agent7", "OK").to_string(),
    ]
    .join("\n");
    let r = app
        .call("POST", "/v1/events", Some(&app.token("acme", &[Role::Ingest])), Some("application/x-ndjson"), lines)
        .await;
    assert_eq!(r.status.as_u16(), 207, "{:#}", r.body);
    assert_eq!((r.body["created"].as_u64(), r.body["rejected"].as_u64()), (Some(2), Some(3)));
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[1]["errors"][0]["field"], "record");
    assert_eq!(items[2]["errors"][0]["field"], "result");
    assert_eq!(items[3]["errors"][0]["field"], "action");
    let reason = items[3]["errors"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("LOGIN_ERROR"), "nearest names suggested: {reason}");

    let reader = app.token("acme", &[Role::CcManager]);
    let mut ids = app.get("/v1/events?limit=10", &reader).await.ids();
    ids.sort();
    assert_eq!(ids, vec!["good-1", "good-2"]);
}

#[tokio::test]
async fn whole_request_errors_are_problems_and_store_nothing() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::Ingest]);
    let post = |ct: Option<&'static str>, body: String| {
        let app = &app;
        let t = t.clone();
        async move { app.call("POST", "/v1/events", Some(&t), ct, body).await }
    };
    post(Some("application/json"), "[{\"occurred_at\":".into()).await.assert_problem(400);
    post(Some("application/json"), "{\"id\":1}".into()).await.assert_problem(400);
    post(Some("application/json"), "[]".into()).await.assert_problem(400);
    post(Some("text/csv"), "a,b".into()).await.assert_problem(415);
    let too_many = Value::Array((0..1001).map(|i| event(&format!("m{i}"), 1, "LOGIN", "u", "OK")).collect());
    post(Some("application/json"), too_many.to_string()).await.assert_problem(413);
    let huge = format!("[{}]", vec![format!("\"{}\"", "x".repeat(1024)); 5200].join(","));
    assert!(huge.len() > 5 * 1024 * 1024);
    post(Some("application/json"), huge).await.assert_problem(413);

    let reader = app.token("acme", &[Role::TenantAdmin]);
    let listed = app.get("/v1/events?action=LOGIN", &reader).await;
    assert_eq!(listed.items().len(), 0, "nothing stored by refused batches");
}

#[tokio::test]
async fn a_record_naming_another_tenant_is_rejected() {
    let app = TestApp::new().await;
    let mut rec = event("x1", 1, "LOGIN", "mallory", "OK");
    rec["tenant_id"] = json!("globex");
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &json!([rec])).await;
    assert_eq!(r.status.as_u16(), 207);
    assert_eq!(r.body["items"][0]["errors"][0]["field"], "tenant_id");
    let globex = app.token("globex", &[Role::ComplianceAnalyst]);
    assert_eq!(app.get("/v1/events", &globex).await.items().len(), 0);
}

#[tokio::test]
async fn field_errors_name_the_field_and_reason() {
    let app = TestApp::new().await;
    let bad = vec![
        json!({"id": "p1", "occurred_at": "2026-11-20T10:00:00Z", "action": "CONVERSATION_SEARCH", "phase": "start", "result": "OK", "correlation_id": "c1"}),
        json!({"id": "p2", "occurred_at": "2026-11-20", "action": "LOGIN", "actor": {"username": "a"}, "result": "OK"}),
        json!({"id": "p3", "occurred_at": "2026-11-20T10:00:00Z", "action": "CLICK", "session_id": "s1", "actor": {"kind": "robot"}}),
        json!({"id": "p4", "occurred_at": "2026-11-20T10:00:00Z", "action": "SIGN_IN", "result": "OK"}),
        json!({"id": "p5", "action": "LOGIN", "result": "OK"}),
        json!({"id": "p6", "occurred_at": "2026-11-20T10:00:00Z", "action": "LOGIN", "result": "OK", "colour": "red"}),
        // serde reads a struct from an array too (its fields in order): an object is required.
        json!({"id": "p7", "occurred_at": "2026-11-20T10:00:00Z", "action": "LOGIN", "result": "OK", "actor": ["uid-1", "jana"]}),
        json!({"id": "p8", "occurred_at": "2026-11-20T10:00:00Z", "action": "CONTACT", "subject": [["jana@example.com"]]}),
        json!({"id": "p9", "occurred_at": "2026-11-20T10:00:00Z", "action": "CONTACT", "attachments": [["b1", "call.wav"]]}),
    ];
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &Value::Array(bad)).await;
    let fields: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["errors"][0]["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        vec![
            "result",
            "occurred_at",
            "actor.kind",
            "actor.username",
            "occurred_at",
            "colour",
            "actor",
            "subject",
            "attachments[0]"
        ]
    );
    for item in &r.body["items"].as_array().unwrap()[6..] {
        assert_eq!(item["errors"][0]["reason"], "must be an object, not an array", "{item}");
    }
    assert_eq!(r.body["rejected"], 9);
}

#[tokio::test]
async fn custom_namespace_is_accepted() {
    let app = TestApp::new().await;
    let r = app.ingest("acme", &[event("c1", 1, "custom:WRAP_UP_CODE_SET", "agent7", "OK")]).await;
    assert_eq!(r.body["created"], 1);
}

#[tokio::test]
async fn clients_cannot_forge_the_services_own_records() {
    let app = TestApp::new().await;
    let catalogue = app.call("GET", "/v1/catalogue", None, None, axum::body::Body::empty()).await;
    let server_only: Vec<String> = catalogue.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["server_only"] == true)
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    for name in ["DPO_ERASURE_COMPLETED", "AUDIT_SEARCH", "DATA_EXPORT_DOWNLOAD", "EVENTS_INGEST", "RETENTION_PURGE"] {
        assert!(server_only.iter().any(|n| n == name), "{name} not server-only in the catalogue");
    }
    let login = catalogue.body["actions"].as_array().unwrap().iter().find(|a| a["name"] == "LOGIN").unwrap();
    assert_eq!(login["server_only"], false);

    let mut batch: Vec<Value> =
        server_only.iter().enumerate().map(|(i, a)| event(&format!("forged-{i}"), 3, a, "mallory", "OK")).collect();
    // A forged denial: the denial of a search, with the result the guard writes.
    batch.push(event("forged-denial", 3, "AUDIT_SEARCH", "mallory", "UNAUTHORIZED"));
    batch.push(event("genuine", 2, "LOGIN", "mallory", "OK"));
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &Value::Array(batch.clone())).await;
    assert_eq!(r.status.as_u16(), 207, "{:#}", r.body);
    assert_eq!((r.body["created"].as_u64(), r.body["rejected"].as_u64()), (Some(1), Some(batch.len() as u64 - 1)));
    for item in &r.body["items"].as_array().unwrap()[..batch.len() - 1] {
        assert_eq!(item["errors"][0]["field"], "action", "{item}");
        let reason = item["errors"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("only by Auditrail"), "{reason}");
    }
    let reader = app.token("acme", &[Role::TenantAdmin]);
    let users = app.get("/v1/events?user=mallory&limit=100", &reader).await;
    assert_eq!(users.ids(), vec!["genuine"]);
}

/// Each e-mail, phone and attachment of a record is an index entry (on DynamoDB an item with a
/// copy of the record): more than 20 of one kind is refused, naming the list.
#[tokio::test]
async fn a_record_lists_at_most_twenty_of_each_indexed_kind() {
    let app = TestApp::new().await;
    let many = |f: &dyn Fn(usize) -> Value| (0..21).map(f).collect::<Vec<_>>();
    let mut e = event("listed", 5, "CREATE_EVALUATION", "u", "OK");
    e["attachments"] = json!(many(&|i| json!({"blob": format!("blob-{i}"), "name": "a.wav"})));
    let emails = many(&|i| json!(format!("p{i}@example.com")));
    e["subject"] = json!({"emails": emails, "phones": many(&|i| json!(format!("+420 777 000 {i:03}")))});
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &json!([e])).await;
    assert_eq!(r.status, 207, "{:#}", r.body);
    let mut fields: Vec<&str> =
        r.body["items"][0]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, vec!["attachments", "subject.emails", "subject.phones"]);
    // Twenty of each is a record.
    let twenty = |v: &Value| json!(v.as_array().unwrap()[..20].to_vec());
    e["attachments"] = twenty(&e["attachments"]);
    e["subject"]["emails"] = twenty(&e["subject"]["emails"]);
    e["subject"]["phones"] = twenty(&e["subject"]["phones"]);
    app.ingest("acme", &[e]).await;
}
