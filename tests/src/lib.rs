//! Harness for the end-to-end tests: the real router on a real embedded store in a temporary
//! directory, driven through `tower::ServiceExt::oneshot` exactly as the server and Lambda do.

pub mod blobs;
pub mod logs;

use std::sync::Arc;

use auditrail_shared::api::{AppState, router, routes};
use auditrail_shared::auth::Role;
use auditrail_shared::config::Config;
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    /// The concrete AWS adapters when running on the emulator.
    pub aws: Option<(auditrail_shared::store::dynamodb::DynamoStore, auditrail_shared::blob::s3::S3BlobStore)>,
}

/// A response as a client sees it.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Resp {
    /// The field names of a problem document's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e["field"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    }

    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{:#}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "problem without detail");
        self
    }

    pub fn items(&self) -> &Vec<Value> {
        self.body["items"].as_array().expect("items")
    }

    pub fn ids(&self) -> Vec<String> {
        self.items().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// Which store the tests run on: the embedded store by default, DynamoDB + S3 on the moto
/// emulator with `AUDITRAIL_TEST_BACKEND=dynamodb` (the test script runs the suite both ways).
pub fn backend() -> &'static str {
    match std::env::var("AUDITRAIL_TEST_BACKEND").as_deref() {
        Ok("dynamodb") => "dynamodb",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("AUDITRAIL_TEST_BACKEND must be sqlite or dynamodb, not {other}"),
    }
}

impl TestApp {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // As `auditrail serve` runs it: appends answered from the inbox's log, indexed behind it.
        let config = Config { serving: true, ..Config::embedded(dir.path()) };
        let mut state = AppState::from_config(&config).await.unwrap();
        let mut aws = None;
        if backend() == "dynamodb" {
            let (records, blobs) = auditrail_shared::testkit::moto::fresh().await;
            auditrail_shared::testkit::moto::onto(&mut state, &records, &blobs);
            aws = Some((records, blobs));
        }
        Self { router: router::<routes::All>(state.clone()), state, dir, aws }
    }

    /// The same app with a read budget of `items` per listing page on DynamoDB (the embedded
    /// store has none: its text index and bounded scans always finish a page).
    pub fn with_read_budget(mut self, items: u64) -> Self {
        if let Some((records, _)) = &self.aws {
            self.state.records = Arc::new(records.clone().with_read_budget(items));
            self.router = router::<routes::All>(self.state.clone());
        }
        self
    }

    /// Every byte the store holds for all tenants, as it is now: every file of the data directory
    /// (database, WAL and shared-memory files, blobs; no checkpoint first, so what a finished job
    /// left in the WAL is seen), or the emulator's whole table and bucket.
    pub async fn everything_stored(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.aws {
            Some((table, bucket)) => {
                out.extend_from_slice(auditrail_shared::testkit::moto::dump_table(table).await.as_bytes());
                out.extend_from_slice(&auditrail_shared::testkit::moto::dump_bucket(bucket).await);
            }
            None => {
                let mut stack = vec![self.dir.path().to_owned()];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let p = e.unwrap().path();
                        if p.is_dir() {
                            stack.push(p);
                        } else if !p.ends_with("keys") {
                            out.extend_from_slice(&std::fs::read(&p).unwrap());
                        }
                    }
                }
            }
        }
        out
    }

    pub fn token(&self, tenant: &str, roles: &[Role]) -> String {
        self.state.auth.mint(tenant, &format!("user-{tenant}"), Some("tester"), roles, 600).unwrap()
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = self.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let status = resp.status();
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status, content_type, body }
    }

    /// A call whose body is returned as bytes (downloads), with the response headers.
    pub async fn raw(&self, method: &str, uri: &str, token: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call("GET", uri, Some(token), None, Body::empty()).await
    }

    pub async fn post_json(&self, uri: &str, token: &str, body: &Value) -> Resp {
        self.call("POST", uri, Some(token), Some("application/json"), body.to_string()).await
    }

    /// Ingests records as `ingest` for `tenant` and asserts every one was stored.
    pub async fn ingest(&self, tenant: &str, records: &[Value]) -> Resp {
        let r =
            self.post_json("/v1/events", &self.token(tenant, &[Role::Ingest]), &Value::Array(records.to_vec())).await;
        assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
        r
    }
}

/// A valid audit record, `minutes_ago` before now.
pub fn event(id: &str, minutes_ago: i64, action: &str, user: &str, result: &str) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    serde_json::json!({
        "id": id,
        "occurred_at": at.to_rfc3339(),
        "action": action,
        "actor": {"user_id": format!("uid-{user}"), "username": user, "full_name": format!("{user} Example")},
        "result": result,
        "description": {"userId": format!("uid-{user}"), "note": format!("{action} by {user}")},
    })
}

/// The record ids of a DPO search's answer (every group), sorted.
pub fn dpo_hits(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["groups"]
        .as_object()
        .expect("groups")
        .values()
        .flat_map(|g| g.as_array().expect("a group").iter().map(|h| h["id"].as_str().expect("an id").to_owned()))
        .collect();
    v.sort();
    v
}

/// Kills a job at a chosen port call, for the fault suites: wrappers around the ports call
/// [`Killer::gate`] with the kind of call; the call numbered `at` never returns (the process is
/// "killed" there) and wakes `hit`. A run with `at = i64::MAX` counts and logs the calls, so kill
/// points can be spread over a whole run.
pub struct Killer {
    pub calls: std::sync::atomic::AtomicI64,
    pub at: i64,
    pub hit: tokio::sync::Notify,
    /// What each call was, in order (to aim at particular points).
    pub log: std::sync::Mutex<Vec<&'static str>>,
}

impl Killer {
    pub fn new(at: i64) -> Arc<Self> {
        Arc::new(Self {
            calls: std::sync::atomic::AtomicI64::new(0),
            at,
            hit: tokio::sync::Notify::new(),
            log: Default::default(),
        })
    }

    pub async fn gate(&self, what: &'static str) {
        self.log.lock().unwrap().push(what);
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.at {
            self.hit.notify_one();
            std::future::pending::<()>().await;
        }
    }
}
