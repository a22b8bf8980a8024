//! The journal and the seals on DynamoDB (see docs/dynamodb.md, "Tamper evidence").
//!
//! | item | pk | sk |
//! |---|---|---|
//! | journal entry | `T#{t}#JNL` | batch id (a ULID: time order) |
//! | seal | `T#{t}#SEAL` | seq, 12 digits |
//! | seal by position | `T#{t}#SEALPOS` | the seal's `to_pos` |
//!
//! A journal entry is written before its records (so a record is never stored without one), one
//! per append call: ~30 bytes per record id, ≈ 0.03 write units per record in batches of 1000.
//! One partition per tenant holds the journal: at 30 units per 1000-record batch it takes
//! 33k records/s to fill a partition's 1000 units/s, beyond what the records themselves (4 units
//! each) may write into a table at its default account limit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem};

use super::keys::{RECORD_SK, record_pk};
use super::{DynamoStore, Item, classify, decode, get_n, get_s, n, retry_throttled, s};
use crate::record::Record;
use crate::seal::{PurgeNote, Seal};
use crate::store::{JournalEntry, ReadStats, SealStore, StoreError, StoreResult};

/// How long after its batch id's time a journal entry may still be written: an append's retry
/// budget (10 s by default) and clock skew between functions, with a wide margin.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(120);

fn journal_pk(tenant: &str) -> String {
    format!("T#{tenant}#JNL")
}

pub(super) fn seal_pk(tenant: &str) -> String {
    format!("T#{tenant}#SEAL")
}

fn seal_pos_pk(tenant: &str) -> String {
    format!("T#{tenant}#SEALPOS")
}

pub(super) fn seal_sk(seq: u64) -> String {
    format!("{seq:012}")
}

fn seal_of(item: &Item) -> StoreResult<Seal> {
    let body = get_s(item, "body").ok_or_else(|| StoreError::Corrupt("seal item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("seal: {e}")))
}

impl DynamoStore {
    /// Writes a journal entry (before its records are written).
    pub(crate) async fn put_journal(
        &self,
        tenant: &str,
        batch: &str,
        ids: &[&str],
        purges: &[PurgeNote],
    ) -> StoreResult<()> {
        let mut item: Item = HashMap::new();
        item.insert("pk".into(), s(journal_pk(tenant)));
        item.insert("sk".into(), s(batch));
        item.insert("ids".into(), s(serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?));
        if !purges.is_empty() {
            item.insert(
                "purges".into(),
                s(serde_json::to_string(purges).map_err(|e| StoreError::Invalid(e.to_string()))?),
            );
        }
        let out = retry_throttled(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await?;
        if let Some(u) = out.consumed_capacity().and_then(|c| c.capacity_units()) {
            self.counters.write_tenths.fetch_add((u * 10.0).round() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn query_seals(
        &self,
        pk: String,
        from_sk: Option<String>,
        forward: bool,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let query = |still: usize| {
            let q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(forward)
                .limit(still.clamp(1, 1000) as i32)
                .expression_attribute_values(":p", s(&pk));
            match &from_sk {
                Some(f) => q.key_condition_expression("pk = :p AND sk >= :f").expression_attribute_values(":f", s(f)),
                None => q.key_condition_expression("pk = :p"),
            }
        };
        Ok(self.read_pages(None, limit, &mut ReadStats::default(), query, |i| Ok(Some(i.clone()))).await?.items)
    }
}

#[async_trait]
impl SealStore for DynamoStore {
    async fn journal(
        &self,
        tenant: &str,
        after: Option<&str>,
        to: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<JournalEntry>> {
        let pk = journal_pk(tenant);
        let query = |still: usize| {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .limit(still.clamp(1, 1000) as i32)
                .expression_attribute_values(":p", s(&pk))
                // Batch ids are ULIDs (digits and capitals): "0" sorts before every one.
                .expression_attribute_values(":a", s(after.unwrap_or("0")));
            q = match to {
                Some(t) => q
                    .key_condition_expression("pk = :p AND sk BETWEEN :a AND :t")
                    .expression_attribute_values(":t", s(t)),
                None => q.key_condition_expression("pk = :p AND sk >= :a"),
            };
            q
        };
        let keep = |i: &Item| -> StoreResult<Option<JournalEntry>> {
            let batch = get_s(i, "sk").unwrap_or_default().to_owned();
            if after == Some(batch.as_str()) {
                return Ok(None); // `after` is exclusive
            }
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("journal {batch}: {e}"));
            Ok(Some(JournalEntry {
                pos: batch.clone(),
                ids: serde_json::from_str(get_s(i, "ids").unwrap_or("[]")).map_err(corrupt)?,
                purges: get_s(i, "purges").map(serde_json::from_str).transpose().map_err(corrupt)?.unwrap_or_default(),
                batch,
            }))
        };
        let mut out = self.read_pages(None, limit, &mut ReadStats::default(), query, keep).await?.items;
        out.truncate(limit);
        Ok(out)
    }

    async fn note_purges(&self, tenant: &str, batch: &str, notes: &[PurgeNote]) -> StoreResult<()> {
        self.put_journal(tenant, batch, &[], notes).await
    }

    async fn records_by_id(&self, tenant: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique.iter().map(|id| Self::key(record_pk(tenant, id), RECORD_SK)).collect();
        self.batch_get(keys, true).await?.iter().map(decode).collect()
    }

    async fn put_seal(&self, seal: &Seal) -> StoreResult<()> {
        let b = &seal.statement.body;
        let body = serde_json::to_string(seal).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let seal_item = Put::builder()
            .table_name(&self.table)
            .item("pk", s(seal_pk(&b.tenant)))
            .item("sk", s(seal_sk(b.seq)))
            .item("to_pos", s(&b.to_pos))
            .item("body", s(body))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::backend)?;
        let pos_item = Put::builder()
            .table_name(&self.table)
            .item("pk", s(seal_pos_pk(&b.tenant)))
            .item("sk", s(&b.to_pos))
            .item("seq", n(b.seq as i64))
            .build()
            .map_err(StoreError::backend)?;
        let res = retry_throttled(|| async {
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(seal_item.clone()).build())
                .transact_items(TransactWriteItem::builder().put(pos_item.clone()).build())
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!("seal {} exists", b.seq))),
            Err(e) => Err(e),
        }
    }

    async fn seals(&self, tenant: &str, from: u64, limit: usize) -> StoreResult<Vec<Seal>> {
        self.query_seals(seal_pk(tenant), Some(seal_sk(from)), true, limit).await?.iter().map(seal_of).collect()
    }

    async fn last_seal(&self, tenant: &str) -> StoreResult<Option<Seal>> {
        self.query_seals(seal_pk(tenant), None, false, 1).await?.first().map(seal_of).transpose()
    }

    async fn seal_of_batch(&self, tenant: &str, batch: &str) -> StoreResult<Option<Seal>> {
        let found = self.query_seals(seal_pos_pk(tenant), Some(batch.to_owned()), true, 1).await?;
        let Some(seq) = found.first().and_then(|i| get_n(i, "seq")) else { return Ok(None) };
        self.get_item(seal_pk(tenant), &seal_sk(seq as u64)).await?.as_ref().map(seal_of).transpose()
    }

    fn settle_time(&self) -> std::time::Duration {
        SETTLE
    }
}
