//! Fault injection for tests: an HTTP client in front of the emulator that answers a share of
//! DynamoDB calls with `ThrottlingException` or an HTML `502 Bad Gateway` page, as a proxy or a
//! failing endpoint sends, with no error code in it (without sending them), and a share of
//! BatchWriteItem calls with every item unprocessed — what DynamoDB does under load; or one
//! whose eventually consistent BatchGetItem calls find nothing, as a replica that has not yet
//! received the items just written; or one that applies a write and loses its answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use rand::Rng;

/// How many faults were injected.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub throttled: AtomicU64,
    /// Calls answered with an HTML 5xx page.
    pub server_errors: AtomicU64,
    pub unprocessed: AtomicU64,
    pub passed: AtomicU64,
    /// Keys asked for by BatchGetItem, eventually consistent and consistent.
    pub eventual_keys: AtomicU64,
    pub consistent_keys: AtomicU64,
    /// Calls held back by a matching client's delay.
    pub held: AtomicU64,
}

#[derive(Debug, Clone)]
struct Faulty {
    inner: SharedHttpConnector,
    rate: f64,
    counts: Arc<FaultCounts>,
    /// Eventually consistent BatchGetItem calls answer that no key exists.
    lagging: bool,
    /// Calls of this operation whose body contains this string: held back this long, or
    /// throttled (None).
    matching: Option<Matching>,
}

/// An HTML error page, as a proxy or a failing endpoint answers: no error code in it.
fn html(status: u16, title: &str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(format!("<html><head><title>{status} {title}</title></head><body>{title}</body></html>")),
    );
    r.headers_mut().insert("content-type", "text/html");
    r
}

fn json(status: u16, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
    r.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    r
}

impl HttpConnector for Faulty {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
        let roll: f64 = rand::rng().random();
        if target.ends_with(".BatchGetItem")
            && let Some(v) = request.body().bytes().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            && let Some(items) = v["RequestItems"].as_object()
        {
            for t in items.values() {
                let n = t["Keys"].as_array().map_or(0, |k| k.len()) as u64;
                if t["ConsistentRead"] == serde_json::Value::Bool(true) {
                    self.counts.consistent_keys.fetch_add(n, Ordering::Relaxed);
                } else {
                    self.counts.eventual_keys.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        if self.lagging && target.ends_with(".BatchGetItem") {
            let body = request.body().bytes().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            if let Some(items) = body.as_ref().and_then(|v| v["RequestItems"].as_object())
                && items.values().all(|t| t["ConsistentRead"] != serde_json::Value::Bool(true))
            {
                self.counts.unprocessed.fetch_add(1, Ordering::Relaxed);
                let empty: serde_json::Map<_, _> = items.keys().map(|t| (t.clone(), serde_json::json!([]))).collect();
                let answer = serde_json::json!({"Responses": empty, "UnprocessedKeys": {}});
                return HttpConnectorFuture::ready(Ok(json(200, answer.to_string())));
            }
        }
        if let Some(Matching { operation, pattern, delay }) = &self.matching
            && target.rsplit('.').next().is_some_and(|t| operation.split('|').any(|o| o == t))
            && request.body().bytes().is_some_and(|b| String::from_utf8_lossy(b).contains(pattern.as_str()))
        {
            match delay {
                Some(d) => {
                    self.counts.held.fetch_add(1, Ordering::Relaxed);
                    let (d, inner) = (*d, self.inner.clone());
                    return HttpConnectorFuture::new(async move {
                        tokio::time::sleep(d).await;
                        inner.call(request).await
                    });
                }
                None => {
                    self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                    return HttpConnectorFuture::ready(Ok(json(
                        400,
                        r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#.into(),
                    )));
                }
            }
        }
        if target.starts_with("DynamoDB_") && !target.ends_with("CreateTable") && !target.ends_with("DescribeTable") {
            if target.ends_with(".BatchWriteItem") && roll < self.rate {
                // Everything unprocessed: the caller must resend it all.
                if let Some(items) = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .map(|v| v["RequestItems"].clone())
                {
                    self.counts.unprocessed.fetch_add(1, Ordering::Relaxed);
                    return HttpConnectorFuture::ready(Ok(json(
                        200,
                        serde_json::json!({"UnprocessedItems": items}).to_string(),
                    )));
                }
            } else if roll < self.rate / 2.0 {
                self.counts.server_errors.fetch_add(1, Ordering::Relaxed);
                return HttpConnectorFuture::ready(Ok(html(502, "Bad Gateway")));
            } else if roll < self.rate {
                self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                return HttpConnectorFuture::ready(Ok(json(
                    400,
                    r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#.into(),
                )));
            }
        }
        self.counts.passed.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// A plain-HTTP client (for the emulator) that injects faults into `rate` of DynamoDB calls:
/// half of them an HTML 502, half `ThrottlingException` (or, for BatchWriteItem, every item unprocessed).
pub fn faulty_client(rate: f64) -> (SharedHttpClient, Arc<FaultCounts>) {
    client(rate, false)
}

/// A plain-HTTP client (for the emulator) whose eventually consistent BatchGetItem calls find
/// nothing (counted as `unprocessed`), as a lagging replica would answer right after a write.
pub fn lagging_client() -> (SharedHttpClient, Arc<FaultCounts>) {
    client(0.0, true)
}

/// Which calls a matching client holds back or throttles (`matching_client`).
#[derive(Debug, Clone)]
struct Matching {
    operation: String,
    pattern: String,
    delay: Option<std::time::Duration>,
}

/// A plain-HTTP client whose calls of `operation` (`Query`, `UpdateItem`, …, or several
/// separated by `|`) with `pattern` in
/// their body are held back by `delay`, or always throttled when `delay` is None.
pub fn matching_client(
    operation: &str,
    pattern: &str,
    delay: Option<std::time::Duration>,
) -> (SharedHttpClient, Arc<FaultCounts>) {
    let matching = Matching { operation: operation.to_owned(), pattern: pattern.to_owned(), delay };
    client_with(0.0, false, Some(matching))
}

fn client(rate: f64, lagging: bool) -> (SharedHttpClient, Arc<FaultCounts>) {
    client_with(rate, lagging, None)
}

fn client_with(rate: f64, lagging: bool, matching: Option<Matching>) -> (SharedHttpClient, Arc<FaultCounts>) {
    wrapping(move |inner, counts| Faulty { inner, rate, counts, lagging, matching: matching.clone() })
}

/// A plain-HTTP client whose connector is `wrap` around the real one, and the fault counts its
/// connectors share.
fn wrapping<C: HttpConnector + 'static>(
    wrap: impl Fn(SharedHttpConnector, Arc<FaultCounts>) -> C + Send + Sync + 'static,
) -> (SharedHttpClient, Arc<FaultCounts>) {
    let counts = Arc::new(FaultCounts::default());
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let c = counts.clone();
    let client = http_client_fn(move |settings, components| {
        use aws_smithy_runtime_api::client::http::HttpClient;
        SharedHttpConnector::new(wrap(inner.http_connector(settings, components), c.clone()))
    });
    (client, counts)
}

/// A store on the emulator's table `table` whose calls go through `http` (one of the clients
/// above), with the default append grace.
pub async fn store_over(table: &str, http: SharedHttpClient) -> crate::store::dynamodb::DynamoStore {
    let cfg = super::moto::sdk_config(&super::moto::endpoint()).await;
    let conf = crate::store::dynamodb::dynamodb_conf(&cfg).http_client(http).build();
    crate::store::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table)
}

/// Answers the first `n` calls whose method is `method` and whose URI contains `uri_part` with
/// an HTML 503 page, without sending them; passes every other call.
#[derive(Debug, Clone)]
struct FailFirst {
    inner: SharedHttpConnector,
    method: &'static str,
    uri_part: &'static str,
    left: Arc<AtomicU64>,
    counts: Arc<FaultCounts>,
}

impl HttpConnector for FailFirst {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if request.method() == self.method
            && request.uri().contains(self.uri_part)
            && self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
        {
            self.counts.server_errors.fetch_add(1, Ordering::Relaxed);
            return HttpConnectorFuture::ready(Ok(html(503, "Service Unavailable")));
        }
        self.counts.passed.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// A plain-HTTP client (for the emulator, any service) whose first `n` calls of `method` with
/// `uri_part` in their URI get an HTML 503 (counted as `server_errors`), e.g. an S3 upload's
/// completion: `failing_first("POST", "uploadId=", 3)`.
pub fn failing_first(method: &'static str, uri_part: &'static str, n: u64) -> (SharedHttpClient, Arc<FaultCounts>) {
    let left = Arc::new(AtomicU64::new(n));
    wrapping(move |inner, counts| FailFirst { inner, method, uri_part, left: left.clone(), counts })
}

/// Sends the first `n` DynamoDB calls of `operation` with `body_part` in their body, then answers
/// them with an HTML 502 as if the answer had been lost on the way back: the write is applied,
/// the caller does not know it.
#[derive(Debug, Clone)]
struct AppliedThenLost {
    inner: SharedHttpConnector,
    operation: &'static str,
    body_part: &'static str,
    left: Arc<AtomicU64>,
    counts: Arc<FaultCounts>,
}

impl HttpConnector for AppliedThenLost {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        if target.rsplit('.').next() == Some(self.operation)
            && request.body().bytes().is_some_and(|b| String::from_utf8_lossy(b).contains(self.body_part))
            && self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
        {
            let (inner, counts) = (self.inner.clone(), self.counts.clone());
            return HttpConnectorFuture::new(async move {
                inner.call(request).await?;
                counts.server_errors.fetch_add(1, Ordering::Relaxed);
                Ok(html(502, "Bad Gateway"))
            });
        }
        self.counts.passed.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// A plain-HTTP client (for the emulator) whose first `n` calls of `operation` (`PutItem`, …)
/// with `body_part` in their body are applied and then answered with an HTML 502.
pub fn applied_then_lost(
    operation: &'static str,
    body_part: &'static str,
    n: u64,
) -> (SharedHttpClient, Arc<FaultCounts>) {
    let left = Arc::new(AtomicU64::new(n));
    wrapping(move |inner, counts| AppliedThenLost { inner, operation, body_part, left: left.clone(), counts })
}
