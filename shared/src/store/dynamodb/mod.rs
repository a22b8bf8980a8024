//! DynamoDB adapter: conditional writes for idempotency, the time index as posting items per
//! append, the other index entries as sparse GSI keys on the record item, a planner that reads the
//! most selective index, and a k-way merge of partitions and calendar buckets. No Scan anywhere.
//! See `keys`, `postings` and docs/dynamodb.md.
//!
//! One file per port, mirroring `sqlite`: `records`, `pairs` (request pairs), `settings` (and
//! the tenant registry), `tasks`, `subjects`; beneath them `client` (the SDK client, the one retry
//! policy with its time budget, the item-level calls and the one paging loop), `keys` (the key
//! design and the planner), `postings` (the time index's items, `postings_purge` and `pending`
//! for their retention) and `merge` (reading a plan);
//! `upgrade` moves records stored under earlier key layouts to today's.

mod client;
pub mod keys;
mod merge;
mod pairs;
mod pending;
mod postings;
mod postings_purge;
mod purge_chain;
mod records;
mod seals;
mod settings;
mod subjects;
/// The table definition, for tests, benches and dev set-up only.
#[cfg(any(test, feature = "testkit"))]
pub mod table;
mod tasks;
mod time_index;
mod upgrade;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

#[cfg(test)]
pub(crate) use self::client::{MAX_ATTEMPTS, retry_within};
pub use self::client::{aws_http_client, dynamodb_client, dynamodb_conf, retry_budget, sdk_config};
pub(crate) use self::client::{classify, retry_throttled};
pub use self::postings::{append_posting_cost, time_posting_pk};
pub(crate) use self::records::decode;
pub use self::records::{MAX_ITEM_BYTES, stored_bytes, write_units};
pub use self::upgrade::TenantUpgrade;
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
    /// Write units of the time posting items written (by their size: moto reports none).
    pub posting_units: AtomicU64,
    /// Updates of the tenant registry sent by appends (the oldest record, late records' horizons).
    pub registry_updates: AtomicU64,
}

#[derive(Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    counters: Arc<Counters>,
    /// Items a listing page may evaluate through a FilterExpression ([`merge::READ_BUDGET`]).
    pub(crate) read_budget: u64,
    /// How long an append may take to write what it listed ([`postings_purge::APPEND_GRACE`]).
    pub(crate) append_grace: chrono::Duration,
    /// Per tenant, a time the registry's `oldest` is known to be at or before (it only goes down):
    /// an append of nothing older sends no update.
    oldest_known: Arc<std::sync::Mutex<HashMap<String, i64>>>,
    /// Per tenant and category, how far this process's purge in chunks has come
    /// ([`purge_chain::Chain`]).
    purge_chains: Arc<std::sync::Mutex<HashMap<(String, crate::record::Category), purge_chain::Chain>>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            counters: Arc::new(Counters::default()),
            read_budget: merge::READ_BUDGET,
            append_grace: postings_purge::APPEND_GRACE,
            oldest_known: Arc::default(),
            purge_chains: Arc::default(),
        }
    }

    /// The same store with another grace for appends in flight during a purge (tests use none, so
    /// that a purge right after an append drops its posting items).
    #[cfg(any(test, feature = "testkit"))]
    pub fn with_append_grace(mut self, grace: chrono::Duration) -> Self {
        self.append_grace = grace;
        self
    }

    /// The same store with another read budget per listing page (tests use a tiny one so that
    /// pages stop on it over a few records).
    #[cfg(any(test, feature = "testkit"))]
    pub fn with_read_budget(mut self, items: u64) -> Self {
        self.read_budget = items.max(1);
        self
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

    use async_trait::async_trait;

    use super::keys::{RECORD_SK, record_pk};
    use super::seals::{seal_pk, seal_sk};
    use super::{DynamoStore, s};
    use crate::record::Record;
    use crate::seal::Seal;

    /// One table for every check of this process (each check uses its own tenant).
    async fn store() -> Arc<dyn crate::testkit::conformance::FullStore> {
        static STORE: tokio::sync::OnceCell<super::DynamoStore> = tokio::sync::OnceCell::const_new();
        Arc::new(STORE.get_or_init(|| async { crate::testkit::moto::fresh().await.0 }).await.clone())
    }

    crate::conformance_tests!(store: store);

    /// Writes beneath the port, for the integrity suite (`testkit::integrity`).
    #[async_trait]
    impl crate::testkit::integrity::Tamper for DynamoStore {
        async fn overwrite(&self, r: &Record) {
            self.insert(r).await;
        }

        /// As the store writes a record: its item and a time posting listing it (an attacker who
        /// wants the record seen writes both).
        async fn insert(&self, r: &Record) {
            self.put_postings(&r.tenant_id, &ulid::Ulid::generate().to_string(), [r]).await.unwrap();
            let item = super::records::record_item(r).unwrap();
            self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.unwrap();
        }

        async fn delete(&self, tenant: &str, id: &str) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(record_pk(tenant, id), RECORD_SK)))
                .send()
                .await
                .unwrap();
        }

        async fn delete_seal(&self, tenant: &str, seq: u64) {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(seal_pk(tenant), &seal_sk(seq))))
                .send()
                .await
                .unwrap();
        }

        async fn overwrite_seal(&self, seal: &Seal) {
            let b = &seal.statement.body;
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(seal_pk(&b.tenant)))
                .item("sk", s(seal_sk(b.seq)))
                .item("to_pos", s(&b.to_pos))
                .item("body", s(serde_json::to_string(seal).unwrap()))
                .send()
                .await
                .unwrap();
        }
    }

    /// Seals signed by a P-256 key in the emulator's KMS, as on AWS (one key for the process).
    #[cfg(feature = "kms")]
    async fn kms_signer() -> Arc<dyn crate::seal::SealSigner> {
        static KEY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let sdk = crate::testkit::moto::sdk_config(&crate::testkit::moto::endpoint()).await;
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key = KEY
            .get_or_init(|| async {
                let k = kms
                    .create_key()
                    .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
                    .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
                    .send()
                    .await
                    .unwrap();
                k.key_metadata.unwrap().key_id
            })
            .await
            .clone();
        Arc::new(crate::kms::KmsSigner::new(kms, key))
    }

    /// The integrity suite on one table and bucket of the emulator.
    async fn rig() -> crate::testkit::integrity::Rig {
        static BOTH: tokio::sync::OnceCell<(super::DynamoStore, crate::blob::s3::S3BlobStore)> =
            tokio::sync::OnceCell::const_new();
        let (store, blobs) = BOTH.get_or_init(crate::testkit::moto::fresh).await.clone();
        let app = crate::app::App::new(store.clone(), blobs, &[7; 32], &[8; 32]);
        #[cfg(feature = "kms")]
        let app = app.with_signer(kms_signer().await);
        crate::testkit::integrity::Rig { app, tamper: Arc::new(store), atomic_conditions: false }
    }

    crate::integrity_tests!(rig);

    /// Seal digests in a bucket with Object Lock in compliance mode, as the SAM template makes
    /// it: sealing writes them, verification reads them, and not even deleting the object's
    /// version is allowed — history cannot be rewritten within the lock period.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seal_digests_in_an_object_lock_bucket_cannot_be_deleted() {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
        };
        let (store, blobs) = crate::testkit::moto::fresh().await;
        let s3 = blobs.client.clone();
        let name = format!("seals-{}", ulid::Ulid::generate().to_string().to_lowercase());
        s3.create_bucket().bucket(&name).object_lock_enabled_for_bucket(true).send().await.unwrap();
        let rule = ObjectLockRule::builder()
            .default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build())
            .build();
        s3.put_object_lock_configuration()
            .bucket(&name)
            .object_lock_configuration(
                ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build(),
            )
            .send()
            .await
            .unwrap();
        let locked = crate::blob::s3::S3BlobStore::new(s3.clone(), name.clone());
        let app = crate::app::App::new(store.clone(), blobs, &[7; 32], &[8; 32]).with_seal_blobs(Arc::new(locked));
        let t = crate::testkit::conformance::tenant("locked");
        let recs: Vec<_> = (0..5)
            .map(|i| {
                crate::testkit::conformance::rec(
                    &t,
                    &format!("r{i}"),
                    i,
                    "USER_LOGIN",
                    "u",
                    crate::record::ResultCode::Ok,
                )
            })
            .collect();
        app.records.append(&t, &recs).await.unwrap();
        let later = chrono::Utc::now() + chrono::Duration::minutes(5);
        assert_eq!(app.sealing().seal_tenant(&t, later).await.unwrap().leaves, 5);
        let key = crate::integrity::digest_key(&t, 0).unwrap();
        let versions = s3.list_object_versions().bucket(&name).prefix(key.as_str()).send().await.unwrap();
        let version = versions.versions()[0].version_id().unwrap().to_owned();
        let head = s3.head_object().bucket(&name).key(key.as_str()).send().await.unwrap();
        assert_eq!(head.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));
        let refused = s3.delete_object().bucket(&name).key(key.as_str()).version_id(&version).send().await;
        assert!(refused.is_err(), "a locked digest version cannot be deleted");
        let der = app.signer.public_key_der().await.unwrap();
        let v = crate::integrity::verify::Verifier {
            seals: &*app.seals,
            records: &*app.records,
            blobs: &*app.seal_blobs,
            public_key: &der,
        };
        let rep = v.verify(&t, &Default::default()).await.unwrap();
        assert!(rep.ok() && rep.records_checked == 5, "{:?}", rep.findings);
    }

    /// A rare text on a read budget: pages end short with a cursor and say how far the window is
    /// searched; followed to the end they find exactly the matches, never over the budget.
    #[tokio::test]
    async fn a_rare_text_is_searched_page_by_page_within_the_read_budget() {
        use crate::store::{PageRequest, RecordStore};
        use crate::testkit::conformance::{rec, t0, window};
        let store = crate::testkit::moto::fresh().await.0.with_read_budget(10);
        let tenant = crate::testkit::conformance::tenant("budget");
        let recs: Vec<Record> = (0..60)
            .map(|i| {
                let mut r = rec(&tenant, &format!("r{i:02}"), i, "CONTACT", "ann", crate::record::ResultCode::Ok);
                let text = if i % 25 == 3 { "invoice ČEZ-7" } else { "routine" };
                r.description = Some(serde_json::json!(text));
                r
            })
            .collect();
        store.append(&tenant, &recs).await.unwrap();
        let mut f = window();
        f.text = Some("čez-7".into());
        let (mut found, mut after, mut last_searched, mut pages) = (Vec::new(), None, f.to, 0);
        loop {
            let page = store.query(&tenant, &f, PageRequest { limit: 5, after }).await.unwrap();
            pages += 1;
            let read = page.stats.items_read + page.stats.postings_read;
            assert!(read <= 10, "page {pages} evaluated {read} items");
            for r in &page.records {
                // What an earlier page said it had searched holds nothing found later.
                assert!(r.occurred_at <= last_searched, "page {pages}: {} after {last_searched}", r.id);
                found.push(r.id.clone());
            }
            if let Some(u) = page.searched_until {
                assert!(u <= last_searched && u >= t0(), "page {pages}: searched until {u}, before {last_searched}");
                last_searched = u;
            }
            match page.next {
                Some(p) => after = Some(p),
                None => break,
            }
        }
        assert_eq!(found, ["r53", "r28", "r03"]);
        assert!(pages >= 6, "60 records on a budget of 10 take several pages, not {pages}");
        assert!(last_searched < t0() + chrono::Duration::minutes(28), "the short pages moved through the window");
    }
}
