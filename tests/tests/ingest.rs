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
    ];
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &Value::Array(bad)).await;
    let fields: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["errors"][0]["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, vec!["result", "occurred_at", "actor.kind", "actor.username", "occurred_at", "colour"]);
    assert_eq!(r.body["rejected"], 6);
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

/// Keycloak events as Keycloak emits them, `minutes_ago` before now: every user-event type of
/// the current `EventType` (and its `_ERROR` twin, with Keycloak's error) and an admin event for
/// every resource type and operation.
fn keycloak_batch(minutes_ago: i64) -> Vec<Value> {
    use auditrail_shared::keycloak::{RESOURCE_TYPES, USER_EVENT_TYPES};
    let ms = (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).timestamp_millis();
    let mut out = Vec::new();
    for (i, t) in USER_EVENT_TYPES.iter().enumerate() {
        for (suffix, error) in [("", None), ("_ERROR", Some("invalid_user_credentials"))] {
            out.push(json!({
                "id": format!("00000000-0000-4000-8000-{:012}", out.len()),
                "time": ms - i as i64, "type": format!("{t}{suffix}"), "realmId": "contact-centre",
                "clientId": "agent-desktop", "userId": format!("u-{i}"), "sessionId": "s-1",
                "ipAddress": "10.1.2.3", "error": error,
                "details": {"username": format!("agent{i}"), "auth_method": "openid-connect"},
            }));
        }
    }
    for r in RESOURCE_TYPES {
        for op in ["CREATE", "UPDATE", "DELETE", "ACTION"] {
            out.push(json!({
                "id": format!("00000000-0000-4000-8000-{:012}", out.len()),
                "time": ms, "realmId": "contact-centre", "operationType": op, "resourceType": r,
                "resourcePath": format!("{}/42", r.to_lowercase()),
                "authDetails": {"realmId": "master", "clientId": "admin-cli", "userId": "admin-1", "ipAddress": "10.9.9.9"},
            }));
        }
    }
    out
}

#[tokio::test]
async fn every_current_keycloak_event_type_ingests_natively_and_a_replay_is_all_duplicates() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::Ingest]);
    let batch = Value::Array(keycloak_batch(5));
    let n = batch.as_array().unwrap().len();
    let r = app.post_json("/v1/sources/keycloak/events", &t, &batch).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(
        (r.body["created"].as_u64(), r.body["unknown_types"].as_object().map(|m| m.len())),
        (Some(n as u64), Some(0))
    );
    let again = app.post_json("/v1/sources/keycloak/events", &t, &batch).await;
    assert_eq!((again.body["created"].as_u64(), again.body["duplicates"].as_u64()), (Some(0), Some(n as u64)));

    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    // A failed login is a sign-in with Keycloak's error as the reason.
    let r = app.get("/v1/events?action=LOGIN_ERROR", &reader).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let rec = &r.items()[0];
    assert_eq!((rec["category"].as_str(), rec["result"].as_str()), (Some("sign_in"), Some("FAIL")));
    assert_eq!(rec["failure_reason_code"], "invalid_user_credentials");
    assert_eq!((rec["actor"]["username"].as_str(), rec["source_ip"].as_str()), (Some("agent0"), Some("10.1.2.3")));
    assert_eq!(rec["data"]["keycloak"]["realm_id"], "contact-centre");
    let r = app.get("/v1/events?action=ADMIN_USER_CREATE", &reader).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let rec = &r.items()[0];
    assert_eq!((rec["actor"]["user_id"].as_str(), rec["result"].as_str()), (Some("admin-1"), Some("OK")));
    assert_eq!(rec["description"]["resource_path"], "user/42");
    // One call: the replayed batch stored nothing twice.
    let mut stored = 0;
    let mut uri = "/v1/events?limit=200".to_owned();
    loop {
        let page = app.get(&uri, &reader).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        stored += page.items().iter().filter(|r| r["data"]["keycloak"].is_object()).count();
        match page.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/events?limit=200&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(stored, n);
}

#[tokio::test]
async fn keycloak_events_one_at_a_time_or_ndjson_and_unknown_types_are_kept_and_counted() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::Ingest]);
    let ms = chrono::Utc::now().timestamp_millis() - 60_000;
    // A listener posts one event, pretty-printed, without a content type.
    let one =
        serde_json::to_string_pretty(&json!({"id": "kc-one", "time": ms, "type": "UPDATE_PASSWORD", "userId": "u-9",
        "details": {"username": "mk"}}))
        .unwrap();
    let r = app.call("POST", "/v1/sources/keycloak/events", Some(&t), None, one).await;
    assert_eq!((r.status.as_u16(), r.body["created"].as_u64()), (200, Some(1)), "{:#}", r.body);
    let lines = [
        json!({"id": "kc-new-1", "time": ms, "type": "PASSKEY_LOGIN", "details": {"username": "mk"}}).to_string(),
        json!({"id": "kc-new-2", "time": ms, "type": "PASSKEY_LOGIN"}).to_string(),
        json!({"id": "kc-adm", "time": ms, "operationType": "CREATE", "resourceType": "WORKFLOW"}).to_string(),
        json!({"id": "kc-bad", "time": "yesterday", "type": "LOGIN"}).to_string(),
        json!({"id": "kc-none", "time": ms}).to_string(),
    ]
    .join("\n");
    let r = app.call("POST", "/v1/sources/keycloak/events", Some(&t), Some("application/x-ndjson"), lines).await;
    assert_eq!(r.status.as_u16(), 207, "{:#}", r.body);
    assert_eq!((r.body["created"].as_u64(), r.body["rejected"].as_u64()), (Some(3), Some(2)));
    assert_eq!(r.body["unknown_types"], json!({"PASSKEY_LOGIN": 2, "WORKFLOW.CREATE": 1}));
    let fields: Vec<&str> =
        r.body["items"].as_array().unwrap()[3..].iter().map(|i| i["errors"][0]["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["time", "type"]);
    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    let r = app.get("/v1/events?action=custom:keycloak.PASSKEY_LOGIN", &reader).await;
    let mut ids = r.ids();
    ids.sort();
    assert_eq!(ids, ["kc-new-1", "kc-new-2"]);
    // Whole-request errors are problems, as on /v1/events; another role is refused.
    app.call("POST", "/v1/sources/keycloak/events", Some(&t), Some("application/json"), "[{").await.assert_problem(400);
    app.call("POST", "/v1/sources/keycloak/events", Some(&t), Some("text/csv"), "a,b").await.assert_problem(415);
    let agent = app.token("acme", &[Role::Agent]);
    app.post_json("/v1/sources/keycloak/events", &agent, &json!([])).await.assert_problem(403);
}

#[tokio::test]
async fn a_dpo_finds_an_e_mail_seen_only_in_keycloak_details_and_representations_wait_for_the_admin() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::Ingest]);
    let ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let admin_event = |id: &str| {
        json!({"id": id, "time": ms, "operationType": "CREATE", "resourceType": "USER", "resourcePath": "users/7",
            "authDetails": {"userId": "admin-1"},
            "representation": "{\"username\":\"oksana\",\"email\":\"oksana.k@example.net\",\"firstName\":\"Oksana\"}"})
    };
    let batch = json!([
        {"id": "kc-verify", "time": ms, "type": "UPDATE_EMAIL", "userId": "u-5",
         "details": {"username": "rburke", "previous_email": "r.burke@old.example", "updated_email": "r.burke@example.com"}},
        admin_event("kc-admin-1"),
    ]);
    assert_eq!(app.post_json("/v1/sources/keycloak/events", &t, &batch).await.status, 200);
    let dpo = app.token("acme", &[Role::Dpo]);
    let hits = |r: &Value| -> Vec<String> {
        let mut v: Vec<String> = r["groups"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|g| g.as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    };
    let r = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "R.Burke@old.example"})).await;
    assert_eq!(hits(&r.body), ["kc-verify"], "{:#}", r.body);
    // Off by default: the representation (and the e-mail in it) was not kept.
    let r = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "oksana.k@example.net"})).await;
    assert!(hits(&r.body).is_empty(), "{:#}", r.body);
    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    let rec = app.get("/v1/events/kc-admin-1", &reader).await;
    assert!(!rec.body.to_string().contains("oksana"), "{:#}", rec.body);

    // Only a tenant admin turns it on; the change is recorded.
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let on = json!({"store_representation": true});
    app.call("PUT", "/v1/settings/keycloak", Some(&reader), Some("application/json"), on.to_string())
        .await
        .assert_problem(403);
    app.call("PUT", "/v1/settings/keycloak", Some(&admin), Some("application/json"), "[true]")
        .await
        .assert_problem(400);
    let r = app.call("PUT", "/v1/settings/keycloak", Some(&admin), Some("application/json"), on.to_string()).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &on));
    assert_eq!(app.get("/v1/settings/keycloak", &admin).await.body, on);
    assert_eq!(app.get("/v1/events?action=KEYCLOAK_SETTINGS_CHANGE&result=OK", &reader).await.items().len(), 1);
    assert_eq!(app.post_json("/v1/sources/keycloak/events", &t, &json!([admin_event("kc-admin-2")])).await.status, 200);
    let rec = app.get("/v1/events/kc-admin-2", &reader).await;
    assert_eq!(rec.body["data"]["keycloak"]["representation"]["email"], "oksana.k@example.net", "{:#}", rec.body);
    let r = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "oksana.k@example.net"})).await;
    assert_eq!(hits(&r.body), ["kc-admin-2"]);
}
