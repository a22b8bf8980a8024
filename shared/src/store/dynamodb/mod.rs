//! DynamoDB adapter: conditional writes for idempotency, index entries as sparse GSI keys on the
//! record item, a planner that reads the most selective index, and a k-way merge of write shards
//! and calendar buckets. No Scan anywhere. See `keys` and docs/dynamodb.md.
//!
//! One file per port, mirroring `sqlite`: `records`, `pairs` (request pairs), `settings` (and
//! the tenant registry), `tasks`, `subjects`; beneath them `client` (the SDK client, the one retry
//! policy with its time budget, the item-level calls and the one paging loop), `keys` (the key
//! design and the planner) and `merge` (reading a plan).

mod client;
pub mod keys;
mod merge;
mod pairs;
mod records;
mod seals;
mod settings;
mod subjects;
/// The table definition, for tests, benches and dev set-up only.
#[cfg(any(test, feature = "testkit"))]
pub mod table;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

#[cfg(test)]
pub(crate) use self::client::{MAX_ATTEMPTS, retry_within};
pub use self::client::{aws_http_client, dynamodb_client, dynamodb_conf, retry_budget, sdk_config};
pub(crate) use self::client::{classify, retry_throttled};
pub(crate) use self::records::decode;
pub use self::records::{MAX_ITEM_BYTES, write_units};
use crate::store::StoreResult;

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
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// One table for every check of this process (each check uses its own tenant).
    async fn store() -> Arc<dyn crate::testkit::conformance::FullStore> {
        static STORE: tokio::sync::OnceCell<super::DynamoStore> = tokio::sync::OnceCell::const_new();
        Arc::new(STORE.get_or_init(|| async { crate::testkit::moto::fresh().await.0 }).await.clone())
    }

    crate::conformance_tests!(store: store);

    /// The integrity suite on one table and bucket of the emulator.
    async fn rig() -> crate::testkit::integrity::Rig {
        static BOTH: tokio::sync::OnceCell<(super::DynamoStore, crate::blob::s3::S3BlobStore)> =
            tokio::sync::OnceCell::const_new();
        let (store, blobs) = BOTH.get_or_init(crate::testkit::moto::fresh).await.clone();
        let app = crate::app::App::new(store.clone(), blobs, &[7; 32], &[8; 32]);
        crate::testkit::integrity::Rig { app, tamper: Arc::new(store) }
    }

    crate::integrity_tests!(rig);
}
