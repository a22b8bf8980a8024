//! DynamoDB record store: conditional writes for idempotency, index entries as sparse GSI keys
//! on the record item, a planner that reads the most selective index, and a k-way merge of
//! write shards and calendar buckets. No Scan anywhere. See `keys` and docs/dynamodb.md.

pub mod faults;
pub mod keys;
mod merge;
mod subjects;
pub mod table;
mod tasks;
pub mod testenv;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnConsumedCapacity, ReturnValue, WriteRequest};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;

use self::keys::{PAIR_SK, RECORD_SK, TENANTS_PK, index_keys, pair_pk, record_pk, settings_pk, tsid, user_key};
use super::{
    AppendOutcome, EventFilter, PageRequest, ReadStats, RecordPage, RecordStore, RequestPage, RequestPair,
    RequestQuery, RequestStore, SettingsStore, StoreError, StoreResult,
};
use crate::record::{Category, Phase, Record, ResultCode};

/// The one HTTPS client of the AWS SDK clients (DynamoDB, S3, and the credential providers):
/// hyper + rustls on ring, with the system's trusted roots. The SDK's `default-https-client`
/// would pull rustls on aws-lc, a C library of ~2 MB in every Lambda binary.
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The SDK configuration from the environment (region, credentials chain, `AWS_ENDPOINT_URL`),
/// on [`aws_http_client`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_http_client()).load().await
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

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Concurrent conditional writes per append.
const WRITE_CONCURRENCY: usize = 32;
/// Attempts for a throttled call before it is reported as failed.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Counters for benchmarks and reports: items read vs returned, write units consumed.
#[derive(Debug, Default)]
pub struct Counters {
    pub items_read: AtomicU64,
    pub items_returned: AtomicU64,
    /// Consumed write capacity, in tenths of a unit.
    pub write_tenths: AtomicU64,
    pub records_written: AtomicU64,
}

#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    counters: Arc<Counters>,
}

/// Maps an SDK error to the store's error, so callers never match on SDK types.
pub(crate) fn classify<
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
>(
    e: SdkError<E, R>,
    table: &str,
) -> StoreError {
    let code = e.code().unwrap_or_default().to_owned();
    match code.as_str() {
        "ConditionalCheckFailedException" | "TransactionCanceledException" => StoreError::Conflict(code),
        "ProvisionedThroughputExceededException"
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
            other => StoreError::backend(other),
        },
    }
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

async fn retry_within<T, F, Fut>(budget: Duration, mut call: F) -> StoreResult<T>
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

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn get_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(crate) fn decode(item: &Item) -> StoreResult<Record> {
    let body = get_s(item, "body").ok_or_else(|| StoreError::Corrupt("record item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The record item: its keys, index keys and the attributes residual filters read.
/// Write units a record costs by the key design: one per started KB of the item, for the item
/// and for each index entry it projects into (projections are ALL).
pub fn write_units(r: &Record) -> StoreResult<u64> {
    let item = record_item(r)?;
    let size: usize = item.iter().map(|(k, v)| k.len() + v.as_s().map(String::len).unwrap_or(8)).sum();
    let per_copy = size.div_ceil(1024) as u64;
    Ok(per_copy * (1 + index_keys(r).len() as u64))
}

fn record_item(r: &Record) -> StoreResult<Item> {
    let body = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let ts = r.occurred_at.timestamp_micros();
    let mut item: Item = HashMap::new();
    item.insert("pk".into(), s(record_pk(&r.tenant_id, &r.id)));
    item.insert("sk".into(), s(RECORD_SK));
    item.insert("tsid".into(), s(tsid(ts, &r.id)));
    item.insert("ts".into(), n(ts));
    item.insert("category".into(), s(r.category.as_str()));
    item.insert("action".into(), s(r.action.clone()));
    if let Some(u) = user_key(r) {
        item.insert("uk".into(), s(u));
    }
    if let Some(x) = r.result {
        item.insert("result".into(), s(x.as_str()));
    }
    if let Some(v) = &r.session_id {
        item.insert("sid".into(), s(v.clone()));
    }
    if let Some(v) = &r.correlation_id {
        item.insert("corr".into(), s(v.clone()));
    }
    if let Some(v) = &r.actor.employee_id {
        item.insert("emp".into(), s(v.clone()));
    }
    if let Some(d) = r.description_text() {
        item.insert("dl".into(), s(crate::record::fold(&d)));
    }
    for (k, v) in index_keys(r) {
        item.insert(k.into(), s(v));
    }
    item.insert("body".into(), s(body));
    let size: usize = item.iter().map(|(k, v)| k.len() + v.as_s().map(String::len).unwrap_or(24)).sum();
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(format!(
            "the record is {size} bytes stored; DynamoDB items are at most 400 KB"
        )));
    }
    Ok(item)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), counters: Arc::new(Counters::default()) }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Checks the table exists (start-up), with an error naming the variable.
    pub async fn check(&self) -> StoreResult<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &self.table))
    }

    /// One conditional put with retries: Created, Duplicate, or Failed after every retry.
    async fn put_record(&self, r: &Record) -> StoreResult<AppendOutcome> {
        let item = match record_item(r) {
            Ok(i) => i,
            Err(StoreError::Invalid(reason)) => return Ok(AppendOutcome::Failed { reason }),
            Err(e) => return Err(e),
        };
        // Subject index entries first: an entry whose record was never written is skipped by
        // searches, while a record without its entries would be invisible to the DPO.
        if r.subject.is_some() {
            match self.put_subjects(r).await {
                Ok(()) => {}
                Err(StoreError::Throttled) => {
                    return Ok(AppendOutcome::Failed {
                        reason: "the store kept throttling; resend this record".into(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let res = retry_throttled(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(out) => {
                self.count_write(out.consumed_capacity().and_then(|c| c.capacity_units()));
                if let (Some(phase), Some(corr)) = (r.phase, &r.correlation_id) {
                    self.pair_upsert(r, phase, corr).await?;
                }
                Ok(AppendOutcome::Created)
            }
            Err(StoreError::Conflict(_)) => Ok(AppendOutcome::Duplicate),
            Err(StoreError::Throttled) => {
                Ok(AppendOutcome::Failed { reason: "the store kept throttling; resend this record".into() })
            }
            Err(StoreError::Invalid(reason)) => Ok(AppendOutcome::Failed { reason }),
            Err(other) => Err(other),
        }
    }

    fn count_write(&self, units: Option<f64>) {
        self.counters.records_written.fetch_add(1, Ordering::Relaxed);
        if let Some(u) = units {
            self.counters.write_tenths.fetch_add((u * 10.0).round() as u64, Ordering::Relaxed);
        }
    }

    /// Runs an UpdateItem builder with throttling retries.
    async fn update_with_retry(
        &self,
        build: impl Fn() -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> StoreResult<Option<Item>> {
        let res = retry_throttled(|| async {
            build().return_values(ReturnValue::AllNew).send().await.map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(out) => Ok(out.attributes),
            // A failed condition means there was nothing to change.
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records one side of a request pair, then the delay once both sides are known.
    async fn pair_upsert(&self, r: &Record, phase: Phase, corr: &str) -> StoreResult<()> {
        let t = &r.tenant_id;
        let pk = pair_pk(t, corr);
        let ts = r.occurred_at.timestamp_micros();
        let key = |b: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
            b.table_name(&self.table).key("pk", s(pk.clone())).key("sk", s(PAIR_SK))
        };
        let after = match phase {
            Phase::Start => {
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression("SET #a = if_not_exists(#a, :a), start_id = :id, start_ts = :ts")
                        .expression_attribute_names("#a", "action")
                        .expression_attribute_values(":a", s(r.action.clone()))
                        .expression_attribute_values(":id", s(r.id.clone()))
                        .expression_attribute_values(":ts", n(ts))
                })
                .await?
            }
            Phase::End => {
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression(
                            "SET #a = if_not_exists(#a, :a), end_id = :id, end_ts = :ts, #r = :r REMOVE g10, os",
                        )
                        .expression_attribute_names("#a", "action")
                        .expression_attribute_names("#r", "result")
                        .expression_attribute_values(":a", s(r.action.clone()))
                        .expression_attribute_values(":id", s(r.id.clone()))
                        .expression_attribute_values(":ts", n(ts))
                        .expression_attribute_values(":r", s(r.result.map(|x| x.as_str()).unwrap_or("FAIL")))
                })
                .await?
            }
        };
        let Some(item) = after else { return Ok(()) };
        match (get_n(&item, "start_ts"), get_n(&item, "end_ts")) {
            (Some(start), Some(end)) => {
                let delay = (end - start) / 1000;
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression("SET delay_ms = :d, g9 = :g, dk = :k REMOVE g10, os")
                        .expression_attribute_values(":d", n(delay))
                        .expression_attribute_values(":g", s(format!("T#{t}#DELAY")))
                        .expression_attribute_values(":k", s(format!("{:015}#{corr}", delay.max(0))))
                })
                .await?;
            }
            (Some(start), None) => {
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression("SET g10 = :g, os = :o")
                        .condition_expression("attribute_not_exists(end_ts)")
                        .expression_attribute_values(":g", s(format!("T#{t}#OPEN")))
                        .expression_attribute_values(":o", s(tsid(start, corr)))
                })
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// An update of the tenant's registry item.
    fn tenant_update(
        &self,
        tenant: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("pk", s(TENANTS_PK)).key("sk", s(tenant))
    }

    /// Notes the oldest record time of a tenant, which bounds the retention purge.
    async fn note_oldest(&self, tenant: &str, ts: i64) -> StoreResult<()> {
        self.update_with_retry(|| {
            self.tenant_update(tenant)
                .update_expression("SET oldest = :t")
                .condition_expression("attribute_not_exists(oldest) OR oldest > :t")
                .expression_attribute_values(":t", n(ts))
        })
        .await
        .map(|_| ())
    }

    /// Deletes items with BatchWriteItem, retrying unprocessed items with backoff.
    async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<()> {
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

    /// BatchWriteItem in chunks of 25, retrying UnprocessedItems and throttling with backoff.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let res =
                    self.client.batch_write_item().request_items(self.table.clone(), pending.clone()).send().await;
                match res {
                    Ok(out) => {
                        pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
                        if !pending.is_empty() {
                            if attempt + 1 >= MAX_ATTEMPTS {
                                return Err(StoreError::Throttled);
                            }
                            backoff(attempt).await;
                            attempt += 1;
                        }
                    }
                    Err(e) => match classify(e, &self.table) {
                        StoreError::Throttled if attempt + 1 < MAX_ATTEMPTS => {
                            backoff(attempt).await;
                            attempt += 1;
                        }
                        other => return Err(other),
                    },
                }
            }
        }
        Ok(())
    }

    /// A strongly consistent GetItem, retried while throttled.
    async fn get_item(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
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

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }
}

#[async_trait]
impl RecordStore for DynamoStore {
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        // Records of one batch may repeat an id: write those one after the other so the second
        // is a duplicate, never a race.
        let mut seen = std::collections::HashSet::new();
        let (first, repeats): (Vec<_>, Vec<_>) =
            records.iter().enumerate().partition(|(_, r)| seen.insert(r.id.as_str()));
        let mut results: Vec<Option<StoreResult<AppendOutcome>>> = (0..records.len()).map(|_| None).collect();
        let writes: Vec<_> =
            first.into_iter().map(|(i, r)| Box::pin(async move { (i, self.put_record(r).await) })).collect();
        let done: Vec<(usize, StoreResult<AppendOutcome>)> =
            futures_util::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        for (i, res) in done {
            results[i] = Some(res);
        }
        for (i, r) in repeats {
            results[i] = Some(self.put_record(r).await);
        }
        let outcomes =
            results.into_iter().map(|r| r.expect("every record has an outcome")).collect::<StoreResult<Vec<_>>>()?;
        if let Some(min) = records
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == AppendOutcome::Created)
            .map(|(r, _)| r.occurred_at.timestamp_micros())
            .min()
        {
            self.note_oldest(tenant, min).await?;
        }
        Ok(outcomes)
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Record>> {
        self.get_item(record_pk(tenant, id), RECORD_SK).await?.as_ref().map(decode).transpose()
    }

    async fn query(&self, tenant: &str, filter: &EventFilter, page: PageRequest) -> StoreResult<RecordPage> {
        let page = merge::run(self, tenant, filter, page).await?;
        self.counters.items_read.fetch_add(page.stats.items_read, Ordering::Relaxed);
        self.counters.items_returned.fetch_add(page.stats.items_returned, Ordering::Relaxed);
        Ok(page)
    }

    async fn purge(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Record>> {
        let reg = self.get_item(TENANTS_PK.to_owned(), tenant).await?;
        let Some(oldest) = reg.as_ref().and_then(|i| get_n(i, "oldest")).and_then(DateTime::from_timestamp_micros)
        else {
            return Ok(Vec::new());
        };
        if oldest >= before {
            return Ok(Vec::new());
        }
        // Oldest first through the time index, only this category, never past `before`.
        let mut f = EventFilter::window(oldest, before);
        f.categories = vec![category];
        f.order = super::Order::OldestFirst;
        let found = merge::run_on_time_index(self, tenant, &f, limit).await?;
        let mut keys = Vec::with_capacity(found.len());
        for r in &found {
            keys.push(Self::key(record_pk(tenant, &r.id), RECORD_SK));
            keys.extend(subjects::subject_item_keys(r));
        }
        self.batch_delete(keys).await?;
        for r in found.iter().filter(|r| r.correlation_id.is_some()) {
            let corr = r.correlation_id.as_deref().unwrap_or_default();
            let res = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pair_pk(tenant, corr)))
                .key("sk", s(PAIR_SK))
                .condition_expression("start_id = :id OR end_id = :id")
                .expression_attribute_values(":id", s(r.id.clone()))
                .send()
                .await;
            match res.map_err(|e| classify(e, &self.table)) {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    async fn replace(&self, tenant: &str, r: &Record) -> StoreResult<()> {
        let old = self.get(tenant, &r.id).await?.ok_or(StoreError::NotFound)?;
        let item = record_item(r)?;
        retry_throttled(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.table))
        })
        .await?;
        let new_keys = subjects::subject_item_keys(r);
        let gone: Vec<Item> = subjects::subject_item_keys(&old).into_iter().filter(|k| !new_keys.contains(k)).collect();
        self.batch_delete(gone).await?;
        if r.subject.is_some() {
            self.put_subjects(r).await?;
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}

fn pair_from(item: &Item) -> RequestPair {
    let time = |k: &str| get_n(item, k).and_then(DateTime::from_timestamp_micros);
    RequestPair {
        correlation_id: get_s(item, "pk").and_then(|p| p.splitn(4, '#').nth(3)).unwrap_or_default().to_owned(),
        action: get_s(item, "action").unwrap_or_default().to_owned(),
        start_id: get_s(item, "start_id").map(str::to_owned),
        end_id: get_s(item, "end_id").map(str::to_owned),
        started_at: time("start_ts"),
        ended_at: time("end_ts"),
        delay_ms: get_n(item, "delay_ms"),
        result: get_s(item, "result").and_then(ResultCode::parse),
    }
}

#[async_trait]
impl RequestStore for DynamoStore {
    async fn pair(&self, tenant: &str, correlation_id: &str) -> StoreResult<Option<RequestPair>> {
        Ok(self.get_item(pair_pk(tenant, correlation_id), PAIR_SK).await?.as_ref().map(pair_from))
    }

    async fn pairs(&self, tenant: &str, q: &RequestQuery, page: PageRequest) -> StoreResult<RequestPage> {
        let limit = page.limit.max(1);
        let (index, pk_attr, sort_attr, pk, lo, hi, filter) = match q {
            RequestQuery::SlowerThan { min_delay_ms, from, to } => (
                "g9",
                "g9",
                "dk",
                format!("T#{tenant}#DELAY"),
                format!("{:015}", (*min_delay_ms).max(0)),
                "~".to_string(),
                Some((from.timestamp_micros(), to.timestamp_micros())),
            ),
            RequestQuery::Unfinished { started_before, from } => (
                "g10",
                "g10",
                "os",
                format!("T#{tenant}#OPEN"),
                format!("{:020}", from.timestamp_micros()),
                format!("{:020}", started_before.timestamp_micros()),
                None,
            ),
        };
        let mut start: Option<Item> = page.after.as_ref().and_then(|p| p.get("k")).and_then(|k| k.as_str()).map(|k| {
            let corr = k.rsplit_once('#').map(|(_, c)| c).unwrap_or_default();
            HashMap::from([
                ("pk".to_string(), s(pair_pk(tenant, corr))),
                ("sk".to_string(), s(PAIR_SK)),
                (pk_attr.to_string(), s(pk.clone())),
                (sort_attr.to_string(), s(k)),
            ])
        });
        let mut pairs = Vec::new();
        let mut stats = ReadStats::default();
        loop {
            let mut qb = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::gsi(index))
                .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
                .expression_attribute_names("#p", pk_attr)
                .expression_attribute_names("#s", sort_attr)
                .expression_attribute_values(":p", s(pk.clone()))
                .expression_attribute_values(":lo", s(lo.clone()))
                .expression_attribute_values(":hi", s(hi.clone()))
                .scan_index_forward(false)
                .limit((limit + 1 - pairs.len()) as i32)
                .set_exclusive_start_key(start.take());
            if let Some((from, to)) = filter {
                qb = qb
                    .filter_expression("start_ts >= :f AND start_ts < :t")
                    .expression_attribute_values(":f", n(from))
                    .expression_attribute_values(":t", n(to));
            }
            let out = qb.send().await.map_err(|e| classify(e, &self.table))?;
            stats.queries += 1;
            stats.items_read += out.scanned_count as u64;
            for item in out.items.unwrap_or_default() {
                pairs.push((pair_from(&item), get_s(&item, sort_attr).map(str::to_owned)));
            }
            match out.last_evaluated_key {
                Some(k) if pairs.len() <= limit => start = Some(k),
                _ => break,
            }
        }
        let more = pairs.len() > limit;
        pairs.truncate(limit);
        let next =
            if more { pairs.last().and_then(|(_, k)| k.clone()).map(|k| serde_json::json!({ "k": k })) } else { None };
        let pairs: Vec<RequestPair> = pairs.into_iter().map(|(p, _)| p).collect();
        stats.items_returned = pairs.len() as u64;
        Ok(RequestPage { pairs, next, stats })
    }
}

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn get_setting(&self, tenant: &str, name: &str) -> StoreResult<Option<serde_json::Value>> {
        self.get_item(settings_pk(tenant), name)
            .await?
            .as_ref()
            .and_then(|i| get_s(i, "value"))
            .map(|v| serde_json::from_str(v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn put_setting(&self, tenant: &str, name: &str, value: &serde_json::Value) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(settings_pk(tenant)))
            .item("sk", s(name))
            .item("value", s(value.to_string()))
            .send()
            .await
            .map_err(|e| classify(e, &self.table))?;
        Ok(())
    }

    async fn register_tenant(&self, tenant: &str) -> StoreResult<()> {
        self.update_with_retry(|| {
            self.tenant_update(tenant)
                .update_expression("SET registered = if_not_exists(registered, :t)")
                .expression_attribute_values(":t", n(Utc::now().timestamp()))
        })
        .await
        .map(|_| ())
    }

    async fn tenants(&self) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let res = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(TENANTS_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(e, &self.table))?;
            out.extend(res.items.unwrap_or_default().iter().filter_map(|i| get_s(i, "sk").map(str::to_owned)));
            match res.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// One table for every check of this process (each check uses its own tenant).
    async fn store() -> Arc<dyn crate::store::conformance::FullStore> {
        static STORE: tokio::sync::OnceCell<super::DynamoStore> = tokio::sync::OnceCell::const_new();
        Arc::new(STORE.get_or_init(|| async { super::testenv::fresh().await.0 }).await.clone())
    }

    crate::conformance_tests!(store);
}

#[cfg(test)]
mod fault_tests {
    use std::sync::atomic::Ordering;

    use super::testenv;
    use super::*;
    use crate::store::conformance::{rec, t0};

    /// 10k records under ~30 % throttling and unprocessed batches (SDK retries off, so every
    /// fault reaches the adapter): none lost, none stored twice, replays all duplicates.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throttling_and_unprocessed_items_lose_nothing_and_duplicate_nothing() {
        let (clean, _) = testenv::fresh().await;
        let (http, counts) = faults::faulty_client(0.3);
        let cfg = testenv::sdk_config(&testenv::endpoint()).await;
        let conf = dynamodb_conf(&cfg).http_client(http).build();
        let faulty = DynamoStore::new(Client::from_conf(conf), clean.table.clone());
        let tenant = "fault";
        let records: Vec<Record> = (0..10_000)
            .map(|i| {
                let mut r = rec(tenant, &format!("f{i:05}"), i / 10, "LOGIN", &format!("u{}", i % 50), ResultCode::Ok);
                r.tenant_id = tenant.into();
                r
            })
            .collect();
        let mut stored = 0;
        let started = std::time::Instant::now();
        let mut pending: Vec<Record> = records.clone();
        // A client resends what was reported failed, as the API tells it to.
        for _ in 0..5 {
            let mut again = Vec::new();
            for chunk in pending.chunks(1000) {
                for (r, o) in chunk.iter().zip(faulty.append(tenant, chunk).await.unwrap()) {
                    match o {
                        AppendOutcome::Created => stored += 1,
                        AppendOutcome::Duplicate => panic!("{} reported duplicate on first store", r.id),
                        AppendOutcome::Failed { .. } => again.push(r.clone()),
                    }
                }
            }
            pending = again;
            if pending.is_empty() {
                break;
            }
        }
        assert!(pending.is_empty(), "{} records still failing", pending.len());
        assert_eq!(stored, 10_000);
        eprintln!("10k records stored under faults in {:?}: {counts:?}", started.elapsed());
        assert!(counts.throttled.load(Ordering::Relaxed) > 2000, "faults were injected: {counts:?}");

        // Read everything back through the clean client: every id exactly once.
        let mut f = EventFilter::window(t0() - chrono::Duration::days(1), t0() + chrono::Duration::days(30));
        f.order = crate::store::Order::OldestFirst;
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            // Large pages: the emulator answers a GSI query by walking the whole table.
            let page = clean.query(tenant, &f, PageRequest { limit: 10_000, after }).await.unwrap();
            ids.extend(page.records.into_iter().map(|r| r.id));
            match page.next {
                Some(p) => after = Some(p),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = ids.iter().cloned().collect();
        assert_eq!((ids.len(), unique.len()), (10_000, 10_000));

        eprintln!("read back in {:?}", started.elapsed());

        // Batch deletes under unprocessed-item faults still delete everything asked.
        let small = "fault-purge";
        let recs: Vec<Record> =
            records[..500].iter().map(|r| Record { tenant_id: small.into(), ..r.clone() }).collect();
        clean.append(small, &recs).await.unwrap();
        let purged = faulty.purge(small, Category::SignIn, t0() + chrono::Duration::days(30), 1000).await.unwrap();
        assert_eq!(purged.len(), 500);
        assert!(counts.unprocessed.load(Ordering::Relaxed) > 0, "{counts:?}");
        assert!(clean.get(small, "f00042").await.unwrap().is_none());
        assert!(clean.get(tenant, "f00042").await.unwrap().is_some(), "another tenant is untouched");
    }

    /// One throttled call on the production client: a bounded number of HTTP attempts (the
    /// adapter's, none from the SDK beneath it), given up within the budget as `Throttled`.
    #[tokio::test]
    async fn a_throttled_call_makes_bounded_attempts_within_the_budget() {
        let (clean, _) = testenv::fresh().await;
        let cfg = testenv::sdk_config(&testenv::endpoint()).await;
        for (budget, most) in [(Duration::from_secs(10), u64::from(MAX_ATTEMPTS)), (Duration::from_millis(100), 4)] {
            let (http, counts) = faults::faulty_client(1.0);
            let store =
                DynamoStore::new(Client::from_conf(dynamodb_conf(&cfg).http_client(http).build()), &clean.table);
            let started = std::time::Instant::now();
            let out = retry_within(budget, || async {
                store
                    .client
                    .get_item()
                    .table_name(&store.table)
                    .key("pk", s("x"))
                    .key("sk", s("y"))
                    .send()
                    .await
                    .map_err(|e| classify(e, &store.table))
            })
            .await;
            assert!(matches!(out, Err(StoreError::Throttled)), "{out:?}");
            let attempts = counts.throttled.load(Ordering::Relaxed);
            assert!((1..=most).contains(&attempts), "{attempts} HTTP attempts within {budget:?}");
            assert!(started.elapsed() <= budget, "{:?} spent, budget {budget:?}", started.elapsed());
        }
        // The store's own entry points obey it too.
        let (http, counts) = faults::faulty_client(1.0);
        let store = DynamoStore::new(Client::from_conf(dynamodb_conf(&cfg).http_client(http).build()), &clean.table);
        assert!(matches!(store.get("t", "r").await, Err(StoreError::Throttled)));
        assert!(counts.throttled.load(Ordering::Relaxed) <= u64::from(MAX_ATTEMPTS), "{counts:?}");
    }

    #[tokio::test]
    async fn an_oversized_item_is_refused_before_any_write() {
        let (store, _) = testenv::fresh().await;
        let mut r = rec("big", "huge", 1, "LOGIN", "u", ResultCode::Ok);
        r.data = Some(serde_json::json!({"blob": "x".repeat(420 * 1024)}));
        let out = store.append("big", &[r]).await.unwrap();
        assert!(matches!(&out[0], AppendOutcome::Failed { reason } if reason.contains("400 KB")), "{out:?}");
        assert!(store.get("big", "huge").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_missing_table_names_the_variable() {
        let cfg = testenv::sdk_config(&testenv::endpoint()).await;
        let store = DynamoStore::new(Client::new(&cfg), "no-such-table");
        let e = store.check().await.unwrap_err().to_string();
        assert!(e.contains("AUDITRAIL_TABLE") && e.contains("no-such-table"), "{e}");
    }
}
