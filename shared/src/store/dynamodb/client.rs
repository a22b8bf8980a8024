//! The DynamoDB client and the adapter's one retry policy: the SDK's own retries are off, and
//! every call goes through [`retry_throttled`] (attempt limit and time budget). Also the item-level
//! calls every port uses — a consistent GetItem, an UpdateItem, BatchGetItem and BatchWriteItem with their
//! unprocessed keys — and the one paging loop, [`DynamoStore::read_pages`], that follows
//! `LastEvaluatedKey` for every Query and Scan.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures_util::{StreamExt, TryStreamExt};
use rand::Rng;

use super::{DynamoStore, Item, s};
use crate::store::{ReadStats, StoreError, StoreResult};

/// The one HTTPS client of the AWS SDK clients (DynamoDB, S3, and the credential providers):
/// hyper + rustls on ring, with the system's trusted roots. The SDK's `default-https-client`
/// would pull rustls on aws-lc, a C library of ~2 MB in every Lambda binary.
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The SDK configuration from environment variables alone, as Lambda sets them: the region
/// (`AWS_REGION`, else `AWS_DEFAULT_REGION`), the credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and `AWS_ENDPOINT_URL`, on [`aws_http_client`].
///
/// Not `aws_config::defaults`: its chains (profile files, web identity through STS, IMDS, the
/// container endpoint, endpoint and retry settings from profiles) are reachable from `load()`
/// whatever is set, so every function would link them — about a megabyte of code that a Lambda,
/// whose credentials are always in its environment, never runs. Retries, timeouts and the
/// identity cache are the clients' defaults for the latest behaviour version.
pub fn sdk_config() -> anyhow::Result<aws_config::SdkConfig> {
    use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| anyhow::anyhow!("AWS_REGION (or AWS_DEFAULT_REGION) must be set to use DynamoDB and S3"))?;
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .http_client(aws_http_client());
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}

/// The DynamoDB client of the store: the SDK's own retries off, so the adapter's
/// [`retry_throttled`] is the one retry policy (with its attempt limit and time budget).
pub fn dynamodb_client(cfg: &aws_config::SdkConfig) -> Client {
    Client::from_conf(dynamodb_conf(cfg).build())
}

/// The configuration builder behind [`dynamodb_client`] (tests put a faulty HTTP client in it).
pub fn dynamodb_conf(cfg: &aws_config::SdkConfig) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(cfg).retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
}

/// Total time one store call may spend retrying (`AUDITRAIL_STORE_RETRY_BUDGET_MS`, default
/// 10 s: well under the functions' time limit); past it the throttling error is returned.
pub fn retry_budget() -> Duration {
    static BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("AUDITRAIL_STORE_RETRY_BUDGET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis)
    })
}

/// Attempts for a throttled call before it is reported as failed.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Maps an SDK error to the store's error, so callers never match on SDK types. Throttling,
/// DynamoDB's own 5xx errors, timeouts, failed connections and a 500, 502, 503 or 504 without an
/// error code (an HTML page from a proxy or a crashed endpoint) are transient: retried, as the
/// AWS SDKs' standard retry does. A 501 or 505 fails the same way every time.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, HttpResponse>,
    table: &str,
) -> StoreError {
    let code = e.code().unwrap_or_default().to_owned();
    match code.as_str() {
        "ConditionalCheckFailedException" => StoreError::Conflict(code),
        // A transaction is cancelled as a whole, for the reasons of its items: a condition that
        // failed is a conflict; throttling or another transaction on an item is tried again.
        "TransactionCanceledException" => match cancellation(&e) {
            Cancelled::Condition => StoreError::Conflict(code),
            Cancelled::Passing => StoreError::Throttled,
            Cancelled::Rejected(reason) => StoreError::Invalid(reason),
        },
        // A single-item write to an item an ongoing transaction holds, or a transaction whose
        // client token is still in flight: the item is free again in milliseconds.
        "ProvisionedThroughputExceededException"
        | "TransactionConflictException"
        | "TransactionInProgressException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "InternalServerError"
        | "ServiceUnavailable" => StoreError::Throttled,
        "ResourceNotFoundException" => {
            StoreError::Backend(anyhow::anyhow!("DynamoDB table `{table}` not found (AUDITRAIL_TABLE)"))
        }
        "ValidationException" | "ItemCollectionSizeLimitExceededException" => {
            StoreError::Invalid(e.message().unwrap_or("rejected by DynamoDB").to_owned())
        }
        _ => match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreError::Throttled,
            other if other.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 500 | 502 | 503 | 504)) => {
                StoreError::Throttled
            }
            other => StoreError::backend(other),
        },
    }
}

/// Why a transaction was cancelled, by the reasons of its items.
enum Cancelled {
    /// A condition of an item failed (or no reason was given: never retried for nothing).
    Condition,
    /// Only throttling or another transaction on an item: a retry may pass.
    Passing,
    /// An item was refused (`ValidationError`, `ItemCollectionSizeLimitExceeded`): the message.
    Rejected(String),
}

fn cancellation<E: std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> Cancelled {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let cancelled = e
        .as_service_error()
        .and_then(|se| (se as &dyn std::any::Any).downcast_ref::<TransactWriteItemsError>())
        .and_then(|te| match te {
            TransactWriteItemsError::TransactionCanceledException(c) => Some(c.cancellation_reasons()),
            _ => None,
        });
    let Some(reasons) = cancelled else { return Cancelled::Condition };
    const PASSING: [&str; 5] = [
        "ThrottlingError",
        "TransactionConflict",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
    ];
    let given: Vec<_> = reasons.iter().filter(|r| r.code().is_some_and(|c| c != "None")).collect();
    if given.iter().any(|r| r.code() == Some("ConditionalCheckFailed")) {
        return Cancelled::Condition;
    }
    if let Some(refused) = given.iter().find(|r| r.code().is_some_and(|c| !PASSING.contains(&c))) {
        let why = refused.message().or(refused.code()).unwrap_or("rejected by DynamoDB");
        return Cancelled::Rejected(why.to_owned());
    }
    if given.is_empty() { Cancelled::Condition } else { Cancelled::Passing }
}

/// The pause before retry `attempt`: exponential with jitter, 20 ms · 2^attempt, capped at 2 s.
fn backoff_delay(attempt: u32) -> Duration {
    let cap = (20u64 << attempt.min(7)).min(2000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}

/// Exponential backoff with jitter (see [`backoff_delay`]).
pub(crate) async fn backoff(attempt: u32) {
    tokio::time::sleep(backoff_delay(attempt)).await;
}

/// Runs a call until it succeeds, fails for another reason than throttling, has been throttled
/// `MAX_ATTEMPTS` times, or the next pause would end past [`retry_budget`] (then the throttling
/// error is returned, which callers treat as transient).
pub(crate) async fn retry_throttled<T, F, Fut>(call: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    retry_within(retry_budget(), call).await
}

pub(crate) async fn retry_within<T, F, Fut>(budget: Duration, mut call: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        match call().await {
            Err(StoreError::Throttled) if attempt + 1 < MAX_ATTEMPTS => {
                let pause = backoff_delay(attempt);
                if started.elapsed() + pause > budget {
                    return Err(StoreError::Throttled);
                }
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One page of a Query or a Scan as DynamoDB answered it.
pub(crate) struct RawPage {
    items: Vec<Item>,
    /// Items evaluated, before any FilterExpression.
    scanned: u64,
    last_evaluated_key: Option<Item>,
}

/// A read that DynamoDB answers page by page: a Query or a Scan.
pub(crate) trait PagedRead: Sized + Clone {
    /// The same read, starting right after `key` (from the first item when `None`).
    fn after(self, key: Option<Item>) -> Self;
    /// Sends it for one page.
    fn page(self, table: &str) -> impl std::future::Future<Output = StoreResult<RawPage>> + Send;
}

impl PagedRead for QueryFluentBuilder {
    fn after(self, key: Option<Item>) -> Self {
        self.set_exclusive_start_key(key)
    }

    async fn page(self, table: &str) -> StoreResult<RawPage> {
        let out = self.send().await.map_err(|e| classify(e, table))?;
        Ok(RawPage {
            scanned: out.scanned_count.max(0) as u64,
            last_evaluated_key: out.last_evaluated_key,
            items: out.items.unwrap_or_default(),
        })
    }
}

impl PagedRead for ScanFluentBuilder {
    fn after(self, key: Option<Item>) -> Self {
        self.set_exclusive_start_key(key)
    }

    async fn page(self, table: &str) -> StoreResult<RawPage> {
        let out = self.send().await.map_err(|e| classify(e, table))?;
        Ok(RawPage {
            scanned: out.scanned_count.max(0) as u64,
            last_evaluated_key: out.last_evaluated_key,
            items: out.items.unwrap_or_default(),
        })
    }
}

/// What a paged read kept, and where it stopped.
pub(crate) struct Paged<T> {
    pub items: Vec<T>,
    /// The exclusive start key of the page after the last one read; `None` once the last page
    /// of the read has been read.
    pub next: Option<Item>,
}

impl DynamoStore {
    /// The one paging loop of the adapter. Reads `build(still wanted)` from `start`, page after
    /// page (each page retried while throttled), following `LastEvaluatedKey` until `want` items
    /// are kept or the last page is read. `keep` decodes an item, or drops it (`None`, e.g. outside
    /// a window). Every item of a page read is offered to `keep`, so `next` is exactly where the
    /// read stopped and a caller that wants at most `want` cuts the rest. Each page counts as one
    /// query in `stats`, with the items DynamoDB evaluated for it.
    pub(crate) async fn read_pages<B: PagedRead, T>(
        &self,
        start: Option<Item>,
        want: usize,
        stats: &mut ReadStats,
        build: impl Fn(usize) -> B,
        mut keep: impl FnMut(&Item) -> StoreResult<Option<T>>,
    ) -> StoreResult<Paged<T>> {
        let mut items = Vec::new();
        let mut next = start;
        loop {
            let still = want.saturating_sub(items.len());
            let page = self.read_page(next, stats, build(still), &mut keep).await?;
            items.extend(page.items);
            next = page.next;
            if next.is_none() || items.len() >= want {
                return Ok(Paged { items, next });
            }
        }
    }

    /// One page of `read` from `start` (retried while throttled), counted in `stats`; `keep`
    /// decodes or drops each item.
    pub(crate) async fn read_page<B: PagedRead, T>(
        &self,
        start: Option<Item>,
        stats: &mut ReadStats,
        read: B,
        mut keep: impl FnMut(&Item) -> StoreResult<Option<T>>,
    ) -> StoreResult<Paged<T>> {
        let read = read.after(start);
        let page = retry_throttled(|| read.clone().page(&self.table)).await?;
        stats.queries += 1;
        stats.items_read += page.scanned;
        let mut items = Vec::new();
        for item in &page.items {
            if let Some(t) = keep(item)? {
                items.push(t);
            }
        }
        Ok(Paged { items, next: page.last_evaluated_key })
    }

    /// A strongly consistent GetItem, retried while throttled.
    pub(crate) async fn get_item(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = retry_throttled(|| async {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(pk.clone()))
                .key("sk", s(sk))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await?;
        Ok(out.item)
    }

    /// Runs an UpdateItem builder with throttling retries; `None` when its condition failed
    /// (there was nothing to change).
    pub(crate) async fn update_with_retry(
        &self,
        build: impl Fn() -> UpdateItemFluentBuilder,
    ) -> StoreResult<Option<Item>> {
        let res = retry_throttled(|| async {
            build().return_values(ReturnValue::AllNew).send().await.map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(out) => Ok(out.attributes),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }

    /// Puts items with BatchWriteItem, retrying unprocessed items with backoff.
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        let requests = items
            .into_iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(i)).build().expect("item"))
                    .build()
            })
            .collect();
        self.batch_write(requests).await
    }

    /// Deletes items with BatchWriteItem, retrying unprocessed items with backoff.
    pub(crate) async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<()> {
        let requests = keys
            .into_iter()
            .map(|k| {
                WriteRequest::builder()
                    .delete_request(DeleteRequest::builder().set_key(Some(k)).build().expect("key set"))
                    .build()
            })
            .collect();
        self.batch_write(requests).await
    }

    /// BatchGetItem in chunks of 100 (up to 16 calls in flight), retrying UnprocessedKeys and
    /// throttling with backoff; the items found, in no particular order (a key without an item is
    /// simply absent).
    pub(crate) async fn batch_get(&self, keys: Vec<Item>, consistent: bool) -> StoreResult<Vec<Item>> {
        // (A loop, not `map`: the future must be Send, and a closure over borrowed chunks is not
        // general enough for that.)
        let mut calls = Vec::new();
        for chunk in keys.chunks(100) {
            calls.push(self.batch_get_call(chunk.to_vec(), consistent));
        }
        let found: Vec<Vec<Item>> = futures_util::stream::iter(calls).buffer_unordered(16).try_collect().await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// One BatchGetItem of at most 100 keys, with its unprocessed keys retried.
    async fn batch_get_call(&self, keys: Vec<Item>, consistent: bool) -> StoreResult<Vec<Item>> {
        let request = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(consistent).build();
        self.until_processed(request.map_err(StoreError::backend)?, |req| async move {
            let o = self
                .client
                .batch_get_item()
                .request_items(self.table.clone(), req)
                .send()
                .await
                .map_err(|e| classify(e, &self.table))?;
            let found = o.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            Ok((found, o.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).filter(|k| !k.keys.is_empty())))
        })
        .await
    }

    /// BatchWriteItem in chunks of 25, retrying UnprocessedItems and throttling with backoff.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(25) {
            self.until_processed(chunk.to_vec(), |req| async move {
                let o = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), req)
                    .send()
                    .await
                    .map_err(|e| classify(e, &self.table))?;
                let left = o.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
                Ok((Vec::<()>::new(), (!left.is_empty()).then_some(left)))
            })
            .await?;
        }
        Ok(())
    }

    /// Sends a batch request until nothing of it is left unprocessed: `send` answers what it got
    /// and what DynamoDB left; leftovers and throttling are retried with backoff, at most
    /// `MAX_ATTEMPTS` times in all.
    async fn until_processed<R: Clone, T, Fut>(&self, first: R, send: impl Fn(R) -> Fut) -> StoreResult<Vec<T>>
    where
        Fut: std::future::Future<Output = StoreResult<(Vec<T>, Option<R>)>>,
    {
        let mut out = Vec::new();
        let mut pending = Some(first);
        let mut attempt = 0;
        while let Some(req) = pending.take() {
            match send(req.clone()).await {
                Ok((got, left)) => {
                    out.extend(got);
                    pending = left;
                    if pending.is_some() {
                        if attempt + 1 >= MAX_ATTEMPTS {
                            return Err(StoreError::Throttled);
                        }
                        backoff(attempt).await;
                        attempt += 1;
                    }
                }
                Err(StoreError::Throttled) if attempt + 1 < MAX_ATTEMPTS => {
                    backoff(attempt).await;
                    attempt += 1;
                    pending = Some(req);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;

    use super::classify;
    use crate::store::StoreError;

    fn cancelled(codes: &[&str]) -> StoreError {
        let reasons = codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect();
        let e = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .meta(ErrorMetadata::builder().code("TransactionCanceledException").build())
            .build();
        let response = HttpResponse::new(400.try_into().unwrap(), SdkBody::empty());
        classify(SdkError::service_error(TransactWriteItemsError::TransactionCanceledException(e), response), "t")
    }

    #[test]
    fn a_transaction_cancelled_by_a_condition_conflicts_one_only_throttled_is_retried_and_a_refused_one_is_invalid() {
        for codes in [&["None", "ConditionalCheckFailed"][..], &["ConditionalCheckFailed", "ThrottlingError"], &[]] {
            assert!(matches!(cancelled(codes), StoreError::Conflict(_)), "{codes:?}");
        }
        for codes in
            [&["None", "ThrottlingError"][..], &["TransactionConflict", "None"], &["ProvisionedThroughputExceeded"]]
        {
            assert!(matches!(cancelled(codes), StoreError::Throttled), "{codes:?}");
        }
        for codes in [&["None", "ValidationError"][..], &["ItemCollectionSizeLimitExceeded", "ThrottlingError"]] {
            assert!(matches!(cancelled(codes), StoreError::Invalid(_)), "{codes:?}");
        }
    }

    /// A single-item write refused because a transaction holds the item (the purge's pair delete
    /// beside a duplicate's pair repair) is tried again, as throttling is; a failed condition is not.
    #[test]
    fn a_write_to_an_item_a_transaction_holds_is_retried() {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        let refused = |code: &str| {
            let meta = ErrorMetadata::builder().code(code).message("refused").build();
            let response = HttpResponse::new(400.try_into().unwrap(), SdkBody::empty());
            classify(SdkError::service_error(DeleteItemError::generic(meta), response), "t")
        };
        assert!(matches!(refused("TransactionConflictException"), StoreError::Throttled));
        assert!(matches!(refused("ConditionalCheckFailedException"), StoreError::Conflict(_)));
        assert!(matches!(refused("AccessDeniedException"), StoreError::Backend(_)));
    }
}
