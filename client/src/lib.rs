//! A client for the Auditrail API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auditrail_client::Error> {
//! use auditrail_client::{Client, NewRecord};
//! let client = Client::new("https://audit.example.com", "ingest-token".to_owned())?;
//! let report = client.send(vec![NewRecord::new("SIGN_IN", chrono::Utc::now()).username("jdoe").result("OK")]).await?;
//! assert_eq!(report.created + report.duplicates, 1);
//! # Ok(()) }
//! ```
//!
//! - [`Client::send`] batches records (at most 1000 and 5 MiB per request), gives every record
//!   without an id a ULID before the first attempt, and retries a batch on 429, 5xx and network
//!   errors with exponential backoff and full jitter (honouring `Retry-After`). A retry after a
//!   request that did land is answered "duplicate" for its records: nothing is stored twice.
//! - [`Client::buffer`] is a bounded in-memory queue with a background sender: `push` waits when
//!   it is full (back-pressure), never drops.
//! - [`ErrorReportBuffer`] keeps the last N log entries for the error report a desktop client
//!   uploads (`POST /v1/error-reports`).
//! - [`Client::events`] pages `GET /v1/events` ([`EventQuery`] → [`Event`]) as an async
//!   `Stream`, following `next_cursor`; [`Client::pages`] does the same for any listing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod report;
pub use report::ErrorReportBuffer;

/// At most this many records per request (the server's limit).
pub const MAX_BATCH_RECORDS: usize = 1000;
/// At most this many bytes per request (the server's limit).
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
    #[error("getting a token: {0}")]
    Token(String),
    #[error("{}", problem_text(*.status, .detail, .errors))]
    Problem { status: u16, detail: String, errors: Vec<FieldError> },
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("an answer the client does not understand: {0}")]
    Decode(String),
    #[error("a record is {0} bytes serialised, over the 5 MiB batch limit")]
    TooLarge(usize),
    #[error("the buffer's sender has stopped")]
    Closed,
}

/// `status: detail`, then each field error the detail does not already say.
fn problem_text(status: u16, detail: &str, errors: &[FieldError]) -> String {
    let mut s = format!("{status}: {detail}");
    for e in errors.iter().filter(|e| !detail.contains(&e.reason)) {
        s.push_str(&format!("\n  {}: {}", e.field, e.reason));
    }
    s
}

/// One field the server refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// Where bearer tokens come from (a static token, or one refreshed from an identity provider).
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<String, Error>;
}

#[async_trait::async_trait]
impl TokenSource for String {
    async fn token(&self) -> Result<String, Error> {
        Ok(self.clone())
    }
}

/// A record to store (`POST /v1/events`); see the API's record for each field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewRecord {
    /// The idempotency key; the client sets a ULID when it is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub occurred_at: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub actor: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Value>,
}

impl NewRecord {
    pub fn new(action: impl Into<String>, occurred_at: chrono::DateTime<chrono::Utc>) -> Self {
        Self { action: action.into(), occurred_at: occurred_at.to_rfc3339(), ..Default::default() }
    }
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    pub fn username(mut self, u: impl Into<String>) -> Self {
        self.actor.insert("username".into(), Value::String(u.into()));
        self
    }
    pub fn user_id(mut self, u: impl Into<String>) -> Self {
        self.actor.insert("user_id".into(), Value::String(u.into()));
        self
    }
    pub fn result(mut self, r: impl Into<String>) -> Self {
        self.result = Some(r.into());
        self
    }
    pub fn description(mut self, d: impl Into<Value>) -> Self {
        self.description = Some(d.into());
        self
    }
}

/// The filters of the activity log (`GET /v1/events`); unset ones are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub actions: Vec<String>,
    pub category: Option<String>,
    /// The username (case-insensitive), or the user id of records without one.
    pub user: Option<String>,
    /// `OK`, `FAIL` or `UNAUTHORIZED`.
    pub result: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Description text (a substring, case-insensitive).
    pub q: Option<String>,
    /// Records per page (1–1000; the server's default 50).
    pub limit: Option<u32>,
    /// IANA zone for the times in the answer.
    pub tz: Option<String>,
}

impl EventQuery {
    fn pairs(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                p.push((k.to_owned(), v));
            }
        };
        put("from", self.from.map(|t| t.to_rfc3339()));
        put("to", self.to.map(|t| t.to_rfc3339()));
        put("action", (!self.actions.is_empty()).then(|| self.actions.join(",")));
        put("category", self.category.clone());
        put("user", self.user.clone());
        put("result", self.result.clone());
        put("session_id", self.session_id.clone());
        put("correlation_id", self.correlation_id.clone());
        put("q", self.q.clone());
        put("limit", self.limit.map(|l| l.to_string()));
        put("tz", self.tz.clone());
        p
    }
}

/// A stored record as the activity log returns it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Event {
    pub id: String,
    pub occurred_at: String,
    pub received_at: String,
    pub category: String,
    pub action: String,
    #[serde(default)]
    pub actor: Map<String, Value>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub source_ip: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub failure_reason_code: Option<String>,
    #[serde(default)]
    pub description: Option<Value>,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub subject: Option<Value>,
    /// Whatever else the server returns (attachments, integrity, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a send stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub created: usize,
    pub duplicates: usize,
    /// Records the server refused (id, and the fields with their reasons); resending them
    /// unchanged is refused again.
    pub rejected: Vec<(String, Vec<FieldError>)>,
    /// Requests retried (throttled, failed or unanswered).
    pub retries: u32,
}

#[derive(Deserialize)]
struct BatchResult {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    status: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

/// When to try again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 10, base: Duration::from_millis(50), max: Duration::from_secs(5) }
    }
}

impl Retry {
    /// Full jitter: a random wait up to `base · 2ⁿ`, capped.
    fn wait(&self, attempt: u32) -> Duration {
        let cap = self.base.saturating_mul(1 << attempt.min(16)).min(self.max);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// The client: one connection pool, a token source and a retry policy.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    tokens: Arc<dyn TokenSource>,
    retry: Retry,
}

impl Client {
    pub fn new(base_url: &str, tokens: impl TokenSource + 'static) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/').to_owned();
        let u = reqwest::Url::parse(&base).map_err(|e| Error::BaseUrl(e.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Error::BaseUrl(format!("{base}: http or https")));
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Self { http, base, tokens: Arc::new(tokens), retry: Retry::default() })
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request with the bearer token.
    pub async fn request(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder, Error> {
        let token = self.tokens.token().await?;
        Ok(self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token))
    }

    /// Turns a refused answer into [`Error::Problem`] (RFC 9457: `detail` and `errors`).
    pub async fn problem(resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => Error::Problem {
                status,
                detail: v["detail"].as_str().unwrap_or("").to_owned(),
                errors: serde_json::from_value(v["errors"].clone()).unwrap_or_default(),
            },
            Err(_) => Error::Problem { status, detail: text, errors: Vec::new() },
        }
    }

    /// Stores `records`: ids set where absent, batched, each batch retried until the server
    /// answers (every record then created, duplicate or rejected).
    pub async fn send(&self, mut records: Vec<NewRecord>) -> Result<SendReport, Error> {
        for r in &mut records {
            if r.id.is_none() {
                r.id = Some(ulid::Ulid::generate().to_string());
            }
        }
        let mut report = SendReport::default();
        let mut batch: Vec<(NewRecord, Vec<u8>)> = Vec::new();
        let mut bytes = 2;
        for r in records {
            let json = serde_json::to_vec(&r).expect("a record serialises");
            if json.len() + 2 > MAX_BATCH_BYTES {
                return Err(Error::TooLarge(json.len()));
            }
            if batch.len() == MAX_BATCH_RECORDS || bytes + json.len() + 1 > MAX_BATCH_BYTES {
                self.send_batch(std::mem::take(&mut batch), &mut report).await?;
                bytes = 2;
            }
            bytes += json.len() + 1;
            batch.push((r, json));
        }
        if !batch.is_empty() {
            self.send_batch(batch, &mut report).await?;
        }
        Ok(report)
    }

    async fn send_batch(&self, mut batch: Vec<(NewRecord, Vec<u8>)>, report: &mut SendReport) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            let mut body = Vec::with_capacity(batch.iter().map(|(_, j)| j.len() + 1).sum::<usize>() + 2);
            body.push(b'[');
            for (i, (_, j)) in batch.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(j);
            }
            body.push(b']');
            let req = self.request(reqwest::Method::POST, "/v1/events").await?;
            let outcome = req.header("content-type", "application/json").body(body).send().await;
            let retry_after = match outcome {
                Ok(resp) if matches!(resp.status().as_u16(), 200 | 207) => {
                    let result: BatchResult = resp.json().await?;
                    // Items the store could not write ("failed") are safe to send again.
                    let mut again = Vec::new();
                    let mut taken: Vec<Option<(NewRecord, Vec<u8>)>> = batch.into_iter().map(Some).collect();
                    for item in result.items {
                        let Some(rec) = taken.get_mut(item.index).and_then(Option::take) else { continue };
                        match item.status.as_str() {
                            "created" => report.created += 1,
                            "duplicate" => report.duplicates += 1,
                            "failed" => again.push(rec),
                            _ => report.rejected.push((rec.0.id.clone().unwrap_or_default(), item.errors)),
                        }
                    }
                    if again.is_empty() {
                        return Ok(());
                    }
                    batch = again;
                    None
                }
                Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    tracing::debug!(status = resp.status().as_u16(), "batch throttled or failed; retrying");
                    after
                }
                Ok(resp) => return Err(Self::problem(resp).await),
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    tracing::debug!(error = %e, "batch unanswered; retrying");
                    None
                }
                Err(e) => return Err(e.into()),
            };
            attempt += 1;
            report.retries += 1;
            if attempt >= self.retry.attempts {
                return Err(Error::Exhausted { attempts: attempt, last: "throttled or unavailable".into() });
            }
            tokio::time::sleep(retry_after.unwrap_or_else(|| self.retry.wait(attempt)).min(self.retry.max)).await;
        }
    }

    /// A bounded buffer of `capacity` records with a background sender that sends a batch when
    /// 1000 are waiting or `flush_every` has passed. `push` waits while the buffer is full.
    /// Dropping every [`Buffer`] handle flushes the rest; the task's result is the total report.
    pub fn buffer(
        &self,
        capacity: usize,
        flush_every: Duration,
    ) -> (Buffer, tokio::task::JoinHandle<Result<SendReport, Error>>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<NewRecord>(capacity.max(1));
        let client = self.clone();
        let task = tokio::spawn(async move {
            let mut total = SendReport::default();
            let mut pending = Vec::new();
            let mut open = true;
            while open || !pending.is_empty() {
                let deadline = tokio::time::sleep(flush_every);
                tokio::pin!(deadline);
                while open && pending.len() < MAX_BATCH_RECORDS {
                    tokio::select! {
                        r = rx.recv() => match r {
                            Some(r) => pending.push(r),
                            None => open = false,
                        },
                        _ = &mut deadline => break,
                    }
                }
                if !pending.is_empty() {
                    let r = client.send(std::mem::take(&mut pending)).await?;
                    total.created += r.created;
                    total.duplicates += r.duplicates;
                    total.retries += r.retries;
                    total.rejected.extend(r.rejected);
                }
            }
            Ok(total)
        });
        (Buffer { tx }, task)
    }

    /// The activity log (`GET /v1/events`) as a stream of records, page after page.
    pub fn events(&self, query: &EventQuery) -> impl Stream<Item = Result<Event, Error>> + '_ {
        use futures_util::StreamExt;
        self.pages("/v1/events", query.pairs())
            .map(|r| r.and_then(|v| serde_json::from_value::<Event>(v).map_err(|e| Error::Decode(e.to_string()))))
    }

    /// Any listing route (`/v1/events`, `/v1/sign-ins`, `/v1/requests`, …) as a stream of its
    /// items as JSON, following `next_cursor`.
    pub fn pages(
        &self,
        path: &'static str,
        query: Vec<(String, String)>,
    ) -> impl Stream<Item = Result<Value, Error>> + '_ {
        struct State {
            query: Vec<(String, String)>,
            cursor: Option<String>,
            page: VecDeque<Value>,
            done: bool,
        }
        let start = State { query, cursor: None, page: VecDeque::new(), done: false };
        futures_util::stream::unfold(start, move |mut s| async move {
            loop {
                if let Some(v) = s.page.pop_front() {
                    return Some((Ok(v), s));
                }
                if s.done {
                    return None;
                }
                let mut q = s.query.clone();
                if let Some(c) = &s.cursor {
                    q.push(("cursor".into(), c.clone()));
                }
                let req = match self.request(reqwest::Method::GET, path).await {
                    Ok(r) => r.query(&q),
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                };
                let page: Result<Value, Error> = match req.send().await {
                    Ok(resp) if resp.status().is_success() => resp.json().await.map_err(Error::from),
                    Ok(resp) => Err(Self::problem(resp).await),
                    Err(e) => Err(e.into()),
                };
                match page {
                    Ok(p) => {
                        s.page = p["items"].as_array().cloned().unwrap_or_default().into();
                        s.cursor = p["next_cursor"].as_str().map(str::to_owned);
                        s.done = s.cursor.is_none();
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            }
        })
    }

    /// Creates an export task (`POST /v1/exports`, body as the API documents it); the task.
    pub async fn create_export(&self, body: &Value) -> Result<Value, Error> {
        let resp = self.request(reqwest::Method::POST, "/v1/exports").await?.json(body).send().await?;
        if resp.status().as_u16() == 202 { Ok(resp.json().await?) } else { Err(Self::problem(resp).await) }
    }

    /// An export task's state (`GET /v1/exports/{id}`).
    pub async fn export(&self, id: &str) -> Result<Value, Error> {
        let resp = self.request(reqwest::Method::GET, &format!("/v1/exports/{id}")).await?.send().await?;
        if resp.status().is_success() { Ok(resp.json().await?) } else { Err(Self::problem(resp).await) }
    }

    /// The archive of a finished export, as a response to stream from (the presigned link on
    /// AWS is followed).
    pub async fn download_export(&self, id: &str) -> Result<reqwest::Response, Error> {
        let resp = self.request(reqwest::Method::GET, &format!("/v1/exports/{id}/download")).await?.send().await?;
        if resp.status().is_success() { Ok(resp) } else { Err(Self::problem(resp).await) }
    }

    /// Uploads an error report (`POST /v1/error-reports`); returns the server's answer.
    pub async fn upload_error_report(&self, report: &Value) -> Result<Value, Error> {
        let resp = self.request(reqwest::Method::POST, "/v1/error-reports").await?.json(report).send().await?;
        if resp.status().is_success() { Ok(resp.json().await?) } else { Err(Self::problem(resp).await) }
    }
}

/// A handle on a [`Client::buffer`]; clone it for more producers.
#[derive(Clone)]
pub struct Buffer {
    tx: tokio::sync::mpsc::Sender<NewRecord>,
}

impl Buffer {
    /// Queues a record, waiting while the buffer is full.
    pub async fn push(&self, r: NewRecord) -> Result<(), Error> {
        self.tx.send(r).await.map_err(|_| Error::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_a_bad_base_url_is_refused() {
        let r = Retry::default();
        assert!((0..30).all(|a| r.wait(a) <= r.max));
        assert!(matches!(Client::new("ftp://x", String::new()), Err(Error::BaseUrl(_))));
    }
}
