//! The Rust client (`auditrail-client`) against the real server over TCP, with a layer in front
//! that throttles 30 % of ingest requests (three of every ten): two refused with 429 before the
//! server sees them, one answered 503 after the server stored it (a lost response).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auditrail_client::{Client, NewRecord, Retry};
use auditrail_shared::auth::Role;
use auditrail_tests::TestApp;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

#[derive(Default)]
struct Counts {
    seen: AtomicUsize,
    refused: AtomicUsize,
    lost: AtomicUsize,
}

/// Serves the app's router on 127.0.0.1 with the throttling layer; its base URL.
async fn serve(app: &TestApp, counts: Arc<Counts>) -> String {
    let throttle = move |req: Request, next: Next| {
        let counts = counts.clone();
        async move {
            if req.uri().path() != "/v1/events" || req.method() != "POST" {
                return next.run(req).await;
            }
            let n = counts.seen.fetch_add(1, Ordering::Relaxed) % 10;
            if n < 2 {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response();
            }
            let resp = next.run(req).await;
            if n == 2 {
                counts.lost.fetch_add(1, Ordering::Relaxed);
                return Response::builder().status(503).body(Body::from("gateway lost the answer")).unwrap();
            }
            resp
        }
    };
    let router = app.router.clone().layer(axum::middleware::from_fn(throttle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn records(prefix: &str, n: usize, with_ids: bool) -> Vec<NewRecord> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let r = NewRecord::new(
                if i % 2 == 0 { "SIGN_IN" } else { "CONVERSATION_SEARCH" },
                now - chrono::Duration::seconds(i as i64),
            )
            .username(format!("agent{}", i % 17))
            .result("OK")
            .description(format!("{prefix} record {i}"));
            if with_ids { r.id(format!("{prefix}-{i:05}")) } else { r }
        })
        .collect()
}

fn fast() -> Retry {
    Retry { attempts: 30, base: Duration::from_millis(2), max: Duration::from_millis(50) }
}

/// Every record of the tenant, read through the client's paged stream.
async fn all_ids(client: &Client) -> Vec<String> {
    let query = auditrail_client::EventQuery { limit: Some(500), ..Default::default() };
    let mut ids: Vec<String> = client.events(&query).map(|r| r.unwrap().id).collect().await;
    ids.sort();
    ids
}

#[tokio::test]
async fn a_server_throttling_30_percent_loses_and_duplicates_nothing() {
    let app = TestApp::new().await;
    let counts = Arc::new(Counts::default());
    let base = serve(&app, counts.clone()).await;
    let ingest = Client::new(&base, app.token("acme", &[Role::Ingest])).unwrap().with_retry(fast());
    // 3,000 + 500 records without ids (the client gives each a ULID before the first attempt) in
    // batches of at most 1000.
    let mut report = ingest.send(records("a", 3000, false)).await.unwrap();
    // And 20 small sends, so that many requests meet the throttle.
    for i in 0..20 {
        let r = ingest.send(records(&format!("s{i}"), 25, false)).await.unwrap();
        report.created += r.created;
        report.duplicates += r.duplicates;
        report.retries += r.retries;
    }
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.created + report.duplicates, 3500, "{report:?}");
    let lost = counts.lost.load(Ordering::Relaxed);
    let (seen, refused) = (counts.seen.load(Ordering::Relaxed), counts.refused.load(Ordering::Relaxed));
    assert!(seen >= 30 && refused >= 6 && lost >= 3, "the layer throttled {refused} and lost {lost} of {seen}");
    assert_eq!(report.retries as usize, refused + lost, "{report:?}");
    // A batch whose answer was lost had been stored: its resend came back as duplicates.
    assert!(report.duplicates > 0, "{report:?}");

    let reader = Client::new(&base, app.token("acme", &[Role::ComplianceAnalyst])).unwrap();
    let ids = all_ids(&reader).await;
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (3500, 3500), "every record once");

    // A second send of the same records is all duplicates.
    let again = ingest.send(records("b", 10, true)).await.unwrap();
    assert_eq!(again.created + again.duplicates, 10);
    let again = ingest.send(records("b", 10, true)).await.unwrap();
    assert_eq!((again.created, again.duplicates), (0, 10));
}

#[tokio::test]
async fn the_buffer_applies_back_pressure_and_sends_everything_once() {
    let app = TestApp::new().await;
    let base = serve(&app, Arc::new(Counts::default())).await;
    let ingest = Client::new(&base, app.token("acme", &[Role::Ingest])).unwrap().with_retry(fast());
    let (buffer, task) = ingest.buffer(50, Duration::from_millis(20));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let buffer = buffer.clone();
            tokio::spawn(async move {
                for r in records(&format!("p{p}"), 1200, true) {
                    buffer.push(r).await.unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    drop(buffer);
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.created + report.duplicates, 2400, "{report:?}");
    let reader = Client::new(&base, app.token("acme", &[Role::ComplianceAnalyst])).unwrap();
    assert_eq!(all_ids(&reader).await.len(), 2400);
    // A typed query: one user's sign-ins, across pages, each a typed record.
    let query = auditrail_client::EventQuery {
        actions: vec!["SIGN_IN".into()],
        user: Some("AGENT3".into()),
        limit: Some(7),
        ..Default::default()
    };
    let events: Vec<auditrail_client::Event> = reader.events(&query).map(|r| r.unwrap()).collect().await;
    let expected = 2 * (0..1200).filter(|i| i % 2 == 0 && i % 17 == 3).count();
    assert_eq!(events.len(), expected, "every page of the filter, once");
    assert!(expected > 7, "more than one page");
    assert!(events.iter().all(|e| e.action == "SIGN_IN" && e.actor["username"] == "agent3"));
}

#[tokio::test]
async fn refusals_are_typed_and_error_reports_upload_their_rolling_log() {
    let app = TestApp::new().await;
    let base = serve(&app, Arc::new(Counts::default())).await;
    let ingest = Client::new(&base, app.token("acme", &[Role::Ingest])).unwrap();
    let bad = vec![NewRecord::new("NOT_AN_ACTION", chrono::Utc::now()).id("bad-1").result("OK")];
    let r = ingest.send(bad).await.unwrap();
    assert_eq!(r.rejected.len(), 1);
    assert_eq!((r.rejected[0].0.as_str(), r.rejected[0].1[0].field.as_str()), ("bad-1", "action"));
    // A reader may not ingest: a typed problem, not a retry loop.
    let reader = Client::new(&base, app.token("acme", &[Role::ComplianceAnalyst])).unwrap();
    match reader.send(records("x", 1, true)).await {
        Err(auditrail_client::Error::Problem { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }
    let mut log = auditrail_client::ErrorReportBuffer::new(100);
    for i in 0..250 {
        log.push(serde_json::json!({"t": i, "msg": format!("click {i}")}));
    }
    let agent = Client::new(&base, app.token("acme", &[Role::Agent])).unwrap();
    let up = agent.upload_error_report(&log.report("jdoe", Some("call dropped"))).await.unwrap();
    assert_eq!(up["entries"], 100, "{up:#}");
}
