//! Keycloak's own events: the native route (`POST /v1/sources/keycloak/events`) and the puller
//! against a local server that behaves like Keycloak's admin REST API.

use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use serde_json::{Value, json};

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
    let hits = auditrail_tests::dpo_hits;
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

/// A local server that behaves like Keycloak's admin REST API as documented: the
/// client-credentials grant at `/realms/{realm}/protocol/openid-connect/token`, and
/// `/admin/realms/{realm}/events` and `/admin-events` newest first, paged by `first`/`max`
/// (default 100) and bounded by `dateFrom` and `dateTo` (days, inclusive). A token stops working after
/// three requests (401), as an expired one would.
mod fake_keycloak {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{Value, json};

    pub const SECRET: &str = "kc-client-secret-9f3e1a7c5b";

    #[derive(Default)]
    pub struct Kc {
        pub user: Vec<Value>,
        pub admin: Vec<Value>,
        pub tokens_issued: u32,
        token: Option<String>,
        uses_left: u32,
        pub pages: u32,
    }

    pub type Shared = Arc<Mutex<Kc>>;

    async fn token(State(kc): State<Shared>, Path(realm): Path<String>, body: String) -> (StatusCode, Json<Value>) {
        let f: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if realm != "contact-centre"
            || get("grant_type") != Some("client_credentials")
            || get("client_secret") != Some(SECRET)
        {
            return (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
                ),
            );
        }
        let mut kc = kc.lock().unwrap();
        kc.tokens_issued += 1;
        let t = format!("tok-{}", kc.tokens_issued);
        kc.token = Some(t.clone());
        kc.uses_left = 3;
        (StatusCode::OK, Json(json!({"access_token": t, "expires_in": 300, "token_type": "Bearer"})))
    }

    fn list(
        kc: &Shared,
        headers: &HeaderMap,
        q: &std::collections::HashMap<String, String>,
        admin: bool,
    ) -> Result<Json<Value>, StatusCode> {
        let mut kc = kc.lock().unwrap();
        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_none() || bearer != kc.token.as_deref() || kc.uses_left == 0 {
            return Err(StatusCode::UNAUTHORIZED);
        }
        kc.uses_left -= 1;
        kc.pages += 1;
        let num = |k: &str, d: usize| {
            q.get(k).map(|v| v.parse::<usize>().map_err(|_| StatusCode::BAD_REQUEST)).unwrap_or(Ok(d))
        };
        let (first, max) = (num("first", 0)?, num("max", 100)?);
        let from_ms = match q.get("dateFrom") {
            None => i64::MIN,
            Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| StatusCode::BAD_REQUEST)?
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis(),
        };
        // `dateTo` is inclusive: the whole day.
        let to_ms = match q.get("dateTo") {
            None => i64::MAX,
            Some(d) => {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| StatusCode::BAD_REQUEST)?
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_millis()
                    + 86_400_000
                    - 1
            }
        };
        let mut events: Vec<Value> = (if admin { &kc.admin } else { &kc.user })
            .iter()
            .filter(|e| (from_ms..=to_ms).contains(&e["time"].as_i64().unwrap()))
            .cloned()
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse(e["time"].as_i64().unwrap()));
        Ok(Json(Value::Array(events.into_iter().skip(first).take(max).collect())))
    }

    pub async fn start(kc: Shared) -> String {
        let app = Router::new()
            .route("/realms/{realm}/protocol/openid-connect/token", post(token))
            .route(
                "/admin/realms/contact-centre/events",
                get(|State(kc): State<Shared>, h: HeaderMap, Query(q)| async move { list(&kc, &h, &q, false) }),
            )
            .route(
                "/admin/realms/contact-centre/admin-events",
                get(|State(kc): State<Shared>, h: HeaderMap, Query(q)| async move { list(&kc, &h, &q, true) }),
            )
            .with_state(kc);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

fn puller(base: &str, secret: &str) -> auditrail_shared::keycloak_pull::Puller {
    use auditrail_shared::keycloak_pull::{PullSource, Puller, Secret};
    let source = PullSource::new(base, "contact-centre", "acme", "auditrail-puller", Secret::new(secret)).unwrap();
    Puller::new(source).unwrap()
}

#[tokio::test]
async fn the_puller_stores_every_event_once_refreshes_an_expired_token_and_resumes_where_it_stopped() {
    let app = TestApp::new().await;
    let kc = fake_keycloak::Shared::default();
    let (user, admin): (Vec<Value>, Vec<Value>) = keycloak_batch(5).into_iter().partition(|e| e.get("type").is_some());
    let n = user.len() + admin.len();
    {
        let mut k = kc.lock().unwrap();
        k.user = user;
        k.admin = admin;
    }
    let base = fake_keycloak::start(kc.clone()).await;
    let p = puller(&base, fake_keycloak::SECRET);
    let (records, settings, limits) = (&*app.state.records, &*app.state.settings, &app.state.limits);

    let r = p.run(records, settings, limits, chrono::Utc::now()).await.unwrap();
    assert_eq!((r.read, r.created, r.duplicates, r.rejected), (n, n, 0, 0), "{r:?}");
    assert!(r.unknown_types.is_empty());
    {
        let k = kc.lock().unwrap();
        assert!(k.pages >= 4, "both feeds take more than one page of 100: {}", k.pages);
        assert!(k.tokens_issued >= 2, "a token refused with 401 was replaced: {}", k.tokens_issued);
    }
    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    let r = app.get("/v1/events?action=ADMIN_USER_CREATE", &reader).await;
    assert_eq!(r.items().len(), 1);
    assert_eq!(r.items()[0]["data"]["keycloak"]["resource_path"], "user/42");

    // Nothing new: the overlap re-reads, nothing is stored twice.
    let r = p.run(records, settings, limits, chrono::Utc::now()).await.unwrap();
    assert_eq!((r.created, r.duplicates), (0, n), "{r:?}");

    // New events, and one Keycloak committed late with an earlier time inside the overlap.
    let now = chrono::Utc::now().timestamp_millis();
    {
        let mut k = kc.lock().unwrap();
        for (i, t) in ["LOGIN", "LOGOUT", "QUANTUM_LOGIN"].iter().enumerate() {
            k.user.push(json!({"id": format!("new-{i}"), "time": now - i as i64, "type": t, "userId": "u-77",
                "details": {"username": "late.agent"}}));
        }
        k.user.push(json!({"id": "late-1", "time": now - 7 * 60_000, "type": "UPDATE_PASSWORD", "userId": "u-77"}));
        k.admin.push(json!({"id": "new-admin", "time": now, "operationType": "DELETE", "resourceType": "GROUP"}));
    }
    let r = p.run(records, settings, limits, chrono::Utc::now()).await.unwrap();
    assert_eq!(r.created, 5, "{r:?}");
    assert_eq!(r.unknown_types.get("QUANTUM_LOGIN"), Some(&1));
    let mut ids = app.get("/v1/events?user=late.agent", &reader).await.ids();
    ids.sort();
    assert_eq!(ids, ["new-0", "new-1", "new-2"]);
    assert_eq!(app.get("/v1/events/late-1", &reader).await.status, 200);
}

#[tokio::test]
async fn a_refused_client_secret_stops_the_pull_without_moving_on_or_leaking_the_secret() {
    let app = TestApp::new().await;
    let kc = fake_keycloak::Shared::default();
    kc.lock().unwrap().user = keycloak_batch(5).into_iter().filter(|e| e.get("type").is_some()).take(3).collect();
    let base = fake_keycloak::start(kc.clone()).await;
    let (records, settings, limits) = (&*app.state.records, &*app.state.settings, &app.state.limits);
    let wrong = "not-the-secret-4d1f";
    let e = puller(&base, wrong).run(records, settings, limits, chrono::Utc::now()).await.unwrap_err().to_string();
    assert!(e.contains("refused") && e.contains("401"), "{e}");
    assert!(!e.contains(wrong), "the secret never reaches an error: {e}");
    assert!(!format!("{:?}", puller(&base, wrong).source()).contains(wrong), "nor a Debug print");
    // The right secret later stores everything: nothing was skipped by the failed run.
    let r = puller(&base, fake_keycloak::SECRET).run(records, settings, limits, chrono::Utc::now()).await.unwrap();
    assert_eq!(r.created, 3);
    // Plain HTTP only to a loopback address: a secret never crosses a network unencrypted.
    use auditrail_shared::keycloak_pull::{PullSource, Secret};
    let remote = PullSource::new("http://sso.example.com", "contact-centre", "acme", "c", Secret::new("s"));
    assert!(remote.unwrap_err().contains("https"));
}
