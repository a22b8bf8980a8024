//! Request pairs: start and end of one asynchronous action, slow ones, never-finished ones.

use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

fn half(id: &str, corr: &str, phase: &str, at: chrono::DateTime<Utc>) -> Value {
    let mut r = json!({
        "id": id, "occurred_at": at.to_rfc3339(), "action": "CONVERSATION_SEARCH", "phase": phase,
        "correlation_id": corr, "actor": {"username": "qm.user"},
    });
    if phase == "end" {
        r["result"] = json!("OK");
    }
    r
}

async fn seeded() -> (TestApp, String) {
    let app = TestApp::new().await;
    let t0 = Utc::now() - Duration::hours(3);
    // The end may arrive before its start: pairing does not depend on arrival order.
    app.ingest("acme", &[half("fast-e", "fast", "end", t0 + Duration::milliseconds(120))]).await;
    app.ingest(
        "acme",
        &[
            half("fast-s", "fast", "start", t0),
            half("slow-s", "slow", "start", t0 + Duration::minutes(1)),
            half("slow-e", "slow", "end", t0 + Duration::minutes(1) + Duration::milliseconds(45_000)),
            half("open-s", "open", "start", t0 + Duration::minutes(2)),
            half("recent-s", "recent", "start", Utc::now() - Duration::minutes(1)),
        ],
    )
    .await;
    let t = app.token("acme", &[Role::ComplianceAnalyst]);
    (app, t)
}

#[tokio::test]
async fn a_pair_shows_both_records_and_the_delay() {
    let (app, t) = seeded().await;
    let r = app.get("/v1/requests/fast", &t).await;
    assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
    assert_eq!(r.body["delay_ms"], 120);
    assert_eq!(r.body["result"], "OK");
    assert_eq!(r.body["start"]["id"], "fast-s");
    assert_eq!(r.body["end"]["id"], "fast-e");
    let open = app.get("/v1/requests/open", &t).await;
    assert_eq!(open.body["delay_ms"], Value::Null);
    assert_eq!(open.body["end"], Value::Null);
}

#[tokio::test]
async fn slow_and_unfinished_requests_are_one_query_each() {
    let (app, t) = seeded().await;
    let slow = app.get("/v1/requests?min_delay_ms=1000", &t).await;
    let ids: Vec<&str> = slow.items().iter().map(|i| i["correlation_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["slow"]);
    let all = app.get("/v1/requests?min_delay_ms=0", &t).await;
    let ids: Vec<&str> = all.items().iter().map(|i| i["correlation_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["slow", "fast"], "slowest first");
    let open = app.get("/v1/requests?unfinished_for=10m", &t).await;
    let ids: Vec<&str> = open.items().iter().map(|i| i["correlation_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["open"], "the one started a minute ago may still finish");
    let page1 = app.get("/v1/requests?min_delay_ms=0&limit=1", &t).await;
    let c = page1.body["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/v1/requests?min_delay_ms=0&limit=1&cursor={c}"), &t).await;
    assert_eq!(page2.items()[0]["correlation_id"], "fast");
    assert!(page2.body["next_cursor"].is_null());
}

#[tokio::test]
async fn another_tenants_correlation_id_is_not_found() {
    let (app, _) = seeded().await;
    let other = app.token("globex", &[Role::ComplianceAnalyst]);
    app.get("/v1/requests/fast", &other).await.assert_problem(404);
    assert!(app.get("/v1/requests?min_delay_ms=0", &other).await.items().is_empty());
}

#[tokio::test]
async fn bad_request_queries_are_problems() {
    let (app, t) = seeded().await;
    for (q, field) in [
        ("", "min_delay_ms"),
        ("min_delay_ms=-1", "min_delay_ms"),
        ("unfinished_for=soon", "unfinished_for"),
        ("min_delay_ms=5&unfinished_for=1h", "unfinished_for"),
        ("min_delay_ms=5&color=red", "color"),
    ] {
        let r = app.get(&format!("/v1/requests?{q}"), &t).await;
        assert_eq!(r.assert_problem(400).error_fields(), vec![field], "{q}");
    }
    let agent = app.token("acme", &[Role::Agent]);
    app.get("/v1/requests/fast", &agent).await.assert_problem(403);
}

#[tokio::test]
async fn durations_too_large_for_a_clock_are_problems_not_panics() {
    let (app, t) = seeded().await;
    // Each once panicked inside chrono (`TimeDelta::days out of bounds`) and dropped the connection.
    for q in [
        "unfinished_for=999999999999d",
        "unfinished_for=9223372036854775807h",
        "unfinished_for=99999999999999999m",
        "unfinished_for=9223372036854775807s",
        "unfinished_for=9223372036854775807ms",
        "unfinished_for=401d",
        "unfinished_for=0s",
    ] {
        let r = app.get(&format!("/v1/requests?{q}"), &t).await;
        let fields = r.assert_problem(400).error_fields();
        assert_eq!(fields, vec!["unfinished_for"], "{q}");
        let reason = r.body["errors"][0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("at most 400d"), "{q}: {reason}");
    }
    let ok = app.get("/v1/requests?unfinished_for=400d", &t).await;
    assert_eq!(ok.status.as_u16(), 200, "{:#}", ok.body);
}

#[tokio::test]
async fn request_times_are_shown_in_the_viewers_zone_and_bad_zones_are_refused() {
    let (app, t) = seeded().await;
    let offset = |s: &Value| s.as_str().unwrap().to_owned();
    let list = app.get("/v1/requests?min_delay_ms=0&tz=Asia/Tokyo", &t).await;
    for item in list.items() {
        assert!(offset(&item["started_at"]).ends_with("+09:00"), "{item:#}");
        assert!(offset(&item["ended_at"]).ends_with("+09:00"), "{item:#}");
    }
    assert!(offset(&list.body["from"]).ends_with("+09:00"));
    let one = app.get("/v1/requests/fast?tz=Asia/Tokyo", &t).await;
    assert_eq!(one.status.as_u16(), 200, "{:#}", one.body);
    for v in [
        &one.body["started_at"],
        &one.body["ended_at"],
        &one.body["start"]["occurred_at"],
        &one.body["end"]["occurred_at"],
    ] {
        assert!(offset(v).ends_with("+09:00"), "{:#}", one.body);
    }
    let utc = app.get("/v1/requests/fast", &t).await;
    assert!(offset(&utc.body["started_at"]).ends_with('Z'));
    for path in ["/v1/requests?min_delay_ms=0&tz=Mars/Olympus", "/v1/requests/fast?tz=Mars/Olympus"] {
        assert_eq!(app.get(path, &t).await.assert_problem(400).error_fields(), vec!["tz"], "{path}");
    }
    assert_eq!(app.get("/v1/requests/fast?color=red", &t).await.assert_problem(400).error_fields(), vec!["color"]);
}
