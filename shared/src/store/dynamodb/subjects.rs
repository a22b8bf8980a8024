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

use super::{DynamoStore, Item, decode, s};
use crate::record::Record;
use crate::record::subject;
use crate::store::{ReadStats, StoreResult, SubjectStore};

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

    /// Undoes [`Self::put_subjects`] of a record refused because `stored` holds its id: the
    /// entries only the refused record has are deleted, and the stored record's own are written
    /// again (an entry of an identifier both name was just overwritten with the refused body).
    pub(super) async fn undo_subjects(&self, refused: &Record, stored: &Record) -> StoreResult<()> {
        let keep = subject_item_keys(stored);
        let (shared, gone): (Vec<Item>, Vec<Item>) =
            subject_item_keys(refused).into_iter().partition(|k| keep.contains(k));
        if !shared.is_empty() {
            self.put_subjects(stored).await?;
        }
        self.batch_delete(gone).await
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
