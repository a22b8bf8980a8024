//! The DPO subject index on DynamoDB: one small item per (identifier, record).
//!
//! | identifier | pk | sk |
//! |---|---|---|
//! | e-mail | `T#{t}#SUB#e:{email}` | `e:{email}#{record id}` |
//! | name | `T#{t}#SUB#n:{first}\|{last}` | `n:…#{record id}` |
//! | phone | `T#{t}#SUB#p:{last 3 digits, reversed}` | `p:{all digits reversed}#{record id}` |
//!
//! A search on the last N ≥ 3 digits knows its partition (the last three digits) and reads
//! `begins_with(sk, p:{N digits reversed})`: only matching items, no scan, and a busy tenant's
//! phones spread over 1000 partitions. Each entry carries a copy of its record's body, so a
//! search reads exactly one item per hit (read amplification 1.0) at the price of writing the
//! body once more per identifier; entries are rewritten by `replace` and deleted with the record.

use async_trait::async_trait;

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
use futures_util::{StreamExt, TryStreamExt};

use super::keys::{RECORD_SK, record_pk};
use super::pending::refused_is_done;
use super::{DynamoStore, Item, classify, decode, get_s, retry_throttled, s};
use crate::record::Record;
use crate::record::subject;
use crate::store::{ReadStats, StoreError, StoreResult, SubjectStore};

/// How often an undo starts over when the stored record changes under it.
const UNDO_TRIES: usize = 5;

fn pk(tenant: &str, key: &str) -> String {
    match key.strip_prefix("p:") {
        Some(d) => format!("T#{tenant}#SUB#p:{}", &d[..d.len().min(subject::MIN_DIGITS)]),
        None => format!("T#{tenant}#SUB#{key}"),
    }
}

/// The primary keys of a record's subject index items (and of the uploads it names,
/// `T#{t}#SUB#u:{blob}`).
pub(super) fn subject_item_keys(r: &Record) -> Vec<Item> {
    subject::index_keys(r)
        .into_iter()
        .map(|k| {
            Item::from([("pk".to_owned(), s(pk(&r.tenant_id, &k))), ("sk".to_owned(), s(format!("{k}#{}", r.id)))])
        })
        .collect()
}

impl DynamoStore {
    pub(super) async fn put_subjects(&self, r: &Record) -> StoreResult<()> {
        let body = serde_json::to_string(r).map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
        let items = subject_item_keys(r)
            .into_iter()
            .map(|mut item| {
                item.insert("body".to_owned(), s(&body));
                item
            })
            .collect();
        self.batch_put(items).await
    }

    /// Undoes [`Self::put_subjects`] of a record refused because its id is taken; `stored` is
    /// the record item holding the id (`None`: gone). Every write is conditioned on what the
    /// refused record itself wrote, so nothing another writer put there since is touched:
    /// - the entries the stored record does not name are deleted while they hold the refused
    ///   body (a new record of this id appended after a purge keeps its own);
    /// - those of an identifier both name were overwritten with the refused body and get the
    ///   stored one back, in transactions that also check that the record item still has that
    ///   body: an erasure or a purge meanwhile (which deletes the entry, or changes the item)
    ///   cancels it, and the undo starts over from the record as stored then.
    pub(super) async fn undo_subjects(&self, refused: &Record, mut stored: Option<Item>) -> StoreResult<()> {
        let ours = serde_json::to_string(refused).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mine = subject_item_keys(refused);
        let key = (record_pk(&refused.tenant_id, &refused.id), RECORD_SK);
        for attempt in 0..UNDO_TRIES {
            let Some(item) = stored.take() else {
                // Gone (purged): nothing names these entries any more.
                return self.delete_own(mine, &ours).await;
            };
            let body = get_s(&item, "body").ok_or_else(|| StoreError::Corrupt("record item without body".into()))?;
            let keep = subject_item_keys(&decode(&item)?);
            let (shared, gone): (Vec<Item>, Vec<Item>) = mine.iter().cloned().partition(|k| keep.contains(k));
            self.delete_own(gone, &ours).await?;
            match self.restore_shared(&key, shared, body, &ours).await {
                Ok(()) => return Ok(()),
                // Changed or gone meanwhile: start over from what is stored now.
                Err(StoreError::Conflict(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                    stored = self.get_item(key.0.clone(), key.1).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("the record kept changing while a refused duplicate's entries were undone".into()))
    }

    /// Deletes the entries `keys` that still hold `ours` (the refused body).
    async fn delete_own(&self, keys: Vec<Item>, ours: &str) -> StoreResult<()> {
        // Refused: gone already, or another record's now — not ours to delete.
        let deletes = keys.into_iter().map(|k| {
            refused_is_done(async move {
                retry_throttled(|| async {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(k.clone()))
                        .condition_expression("body = :r")
                        .expression_attribute_values(":r", s(ours))
                        .send()
                        .await
                        .map_err(|e| classify(e, &self.table))
                })
                .await
                .map(drop)
            })
        });
        futures_util::stream::iter(deletes).buffer_unordered(8).try_collect::<Vec<()>>().await.map(drop)
    }

    /// Puts `body` back into the `shared` entries that hold `ours` (or already `body`), while
    /// the record item `key` has `body`: transactions of at most 99 puts and ~3.5 MB each (a
    /// record may name 61 identifiers and weigh 100 KB), each safe on its own.
    async fn restore_shared(&self, key: &(String, &str), shared: Vec<Item>, body: &str, ours: &str) -> StoreResult<()> {
        const MAX_BYTES: usize = 3_500_000;
        let per_put = body.len() + ours.len() + 512;
        let per_call = (MAX_BYTES.saturating_sub(body.len()) / per_put).clamp(1, 99);
        for chunk in shared.chunks(per_call) {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(key.0.clone()))
                .key("sk", s(key.1))
                .condition_expression("body = :b")
                .expression_attribute_values(":b", s(body))
                .build()
                .map_err(StoreError::backend)?;
            let mut writes = vec![TransactWriteItem::builder().condition_check(check).build()];
            for entry in chunk {
                let mut entry = entry.clone();
                entry.insert("body".to_owned(), s(body));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(entry))
                    .condition_expression("body = :r OR body = :b")
                    .expression_attribute_values(":r", s(ours))
                    .expression_attribute_values(":b", s(body))
                    .build();
                writes.push(TransactWriteItem::builder().put(put.map_err(StoreError::backend)?).build());
            }
            retry_throttled(|| async {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(writes.clone()))
                    .send()
                    .await
                    .map_err(|e| classify(e, &self.table))
            })
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SubjectStore for DynamoStore {
    async fn subject_lookup(
        &self,
        tenant: &str,
        key: &str,
        prefix: bool,
        (from, to): (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>),
        limit: usize,
    ) -> StoreResult<(Vec<Record>, ReadStats)> {
        let pk = pk(tenant, key);
        let begins = if prefix { key.to_owned() } else { format!("{key}#") };
        let mut stats = ReadStats::default();
        let query = |still: usize| {
            self.client
                .query()
                .table_name(&self.table)
                // Strongly consistent: a purge deciding whether another record still names an
                // upload must see the entries written or deleted a moment ago.
                .consistent_read(true)
                .key_condition_expression("pk = :p AND begins_with(sk, :b)")
                .expression_attribute_values(":p", s(&pk))
                .expression_attribute_values(":b", s(&begins))
                .limit(still.clamp(1, 1000) as i32)
        };
        // The window applies before the limit: entries outside it are read and dropped.
        let in_window = |i: &Item| {
            let r: Record = decode(i)?;
            Ok((from.is_none_or(|f| r.occurred_at >= f) && to.is_none_or(|t| r.occurred_at < t)).then_some(r))
        };
        let ids = self.read_pages(None, limit + 1, &mut stats, query, in_window).await?.items;
        stats.items_returned = ids.len() as u64;
        Ok((ids, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::record_item;
    use super::*;
    use crate::record::subject::{ANONYMIZED, email_key};
    use crate::record::{Category, ResultCode, Subject};
    use crate::store::{RecordStore, SubjectStore};
    use crate::testkit::conformance::{rec, tenant};

    /// A refused duplicate's undo that started from the record as it was before an erasure
    /// replaced it never brings the erased identifier's entry back with the erased body.
    #[tokio::test]
    async fn an_undo_racing_an_erasure_never_restores_what_was_erased() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("undo-race");
        let email = |e: &str| Some(Subject { emails: vec![e.into()], ..Default::default() });
        let mut stored = rec(&t, "c1", 0, "CONTACT", "agent", ResultCode::Ok);
        stored.category = Category::Contact;
        stored.subject = email("jan@example.com");
        store.append(&t, &[stored.clone()]).await.unwrap();
        let before = record_item(&store.get(&t, "c1").await.unwrap().unwrap()).unwrap();
        // A duplicate naming the same e-mail wrote its entries; then the stored record was erased.
        let mut refused = stored.clone();
        refused.description = Some(serde_json::json!("sent again"));
        store.put_subjects(&refused).await.unwrap();
        let mut erased = store.get(&t, "c1").await.unwrap().unwrap();
        erased.subject = email(ANONYMIZED);
        store.replace(&t, &erased).await.unwrap();
        // The undo, from what it read before the erasure.
        store.undo_subjects(&refused, Some(before)).await.unwrap();
        let key = email_key("jan@example.com").unwrap();
        let (found, _) = store.subject_lookup(&t, &key, false, (None, None), 10).await.unwrap();
        assert!(found.is_empty(), "the erased e-mail is found again: {found:?}");
        assert_eq!(store.get(&t, "c1").await.unwrap().unwrap().subject, erased.subject);
    }

    /// A purge deletes a record's entries and its item in one unordered batch: an undo that
    /// runs while the entry is gone but the item not yet never writes the entry back; once
    /// the item is gone it deletes only what the refused record wrote, so a new record of the
    /// same id appended after the purge keeps its own entries.
    #[tokio::test]
    async fn an_undo_racing_a_purge_never_writes_an_entry_back_nor_deletes_a_newer_one() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("undo-purge");
        let email = Some(Subject { emails: vec!["jan@example.com".into()], ..Default::default() });
        let mut stored = rec(&t, "c1", 0, "CONTACT", "agent", ResultCode::Ok);
        stored.category = Category::Contact;
        stored.subject = email.clone();
        store.append(&t, &[stored.clone()]).await.unwrap();
        let item = record_item(&store.get(&t, "c1").await.unwrap().unwrap()).unwrap();
        let mut refused = stored.clone();
        refused.description = Some(serde_json::json!("sent again"));
        store.put_subjects(&refused).await.unwrap();
        let key = email_key("jan@example.com").unwrap();
        let found = || async { store.subject_lookup(&t, &key, false, (None, None), 10).await.unwrap().0 };
        // The purge has deleted the entry, not yet the item.
        store.batch_delete(subject_item_keys(&stored)).await.unwrap();
        let err = store.undo_subjects(&refused, Some(item)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert!(found().await.is_empty(), "the purged entry was written back");
        // The item is gone too; a new record of this id is appended; the undo runs again.
        store.client.delete_item().table_name(&store.table).set_key(Some(record_key(&stored))).send().await.unwrap();
        let mut newer = stored.clone();
        newer.description = Some(serde_json::json!("a new record after the purge"));
        store.append(&t, &[newer.clone()]).await.unwrap();
        store.undo_subjects(&refused, None).await.unwrap();
        let now = found().await;
        assert_eq!(now.iter().map(|r| r.description.clone()).collect::<Vec<_>>(), vec![newer.description], "{now:?}");
    }

    fn record_key(r: &Record) -> Item {
        Item::from([("pk".to_owned(), s(record_pk(&r.tenant_id, &r.id))), ("sk".to_owned(), s(RECORD_SK))])
    }
}
