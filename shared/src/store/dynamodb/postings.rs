//! The time index as posting items (key layout 3). Every record is in the time index, and a GSI
//! entry costs a whole write unit whatever its size, so the time index is instead one item per
//! tenant, day, category, hour and append, listing that append's records of the hour: a batch of
//! 1000 live records writes a few items of ~30 KB instead of 1000 entries (docs/cost.md).
//!
//! | item | pk | sk | `e` |
//! |---|---|---|---|
//! | time posting | `T#{t}#PD#{yyyymmdd}#{category}` | `{yyyymmddhh}#{batch}#{n}` | entries |
//!
//! An entry is a record's occurred-at microseconds (8 bytes, big-endian), its result code (1 byte),
//! the length of its id (2 bytes) and the id. A partition's items sort by hour, so a page reads
//! the hours of its window newest (or oldest) first; the entries of one hour come from every
//! append of that hour, so an hour is sorted once all its items are read.
//!
//! Consistency: postings are written before the records they list (as subject entries are), so a
//! record is never stored without its entry. An entry whose record was not written (a failed put,
//! an id already stored at another time) is skipped by reads, which fetch each body and keep it
//! only if its time and id are the entry's and it matches the filter. Entries repeat when a batch
//! is retried or a record is rewritten by an erasure; a page keeps one of each. The retention purge
//! deletes a category's posting items of the hours it has emptied (`drop_postings`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::keys::tsid;
use super::{DynamoStore, Item, s};
use crate::record::{Category, Record, ResultCode};
use crate::store::{ReadStats, StoreError, StoreResult};

/// Entries per posting item at most, so that one stays well under DynamoDB's 400 KB even with
/// the longest ids the validation allows.
const ENTRIES_PER_ITEM: usize = 1000;
/// Bytes of entries per posting item at most.
const BYTES_PER_ITEM: usize = 300 * 1024;

/// The posting partition of a record's time index entry.
pub fn time_posting_pk(tenant: &str, at: DateTime<Utc>, category: Category) -> String {
    format!("T#{tenant}#PD#{}#{}", at.format("%Y%m%d"), category.as_str())
}

/// The hour of a time in microseconds, as the sort key's prefix (`yyyymmddhh`).
pub(super) fn hour(ts: i64) -> String {
    DateTime::from_timestamp_micros(ts).unwrap_or_default().format("%Y%m%d%H").to_string()
}

pub(super) fn result_code(r: Option<ResultCode>) -> u8 {
    match r {
        None => 0,
        Some(ResultCode::Ok) => 1,
        Some(ResultCode::Fail) => 2,
        Some(ResultCode::Unauthorized) => 3,
    }
}

/// One record in a posting item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ts: i64,
    pub result: u8,
    pub id: String,
}

impl Entry {
    fn of(r: &Record) -> Self {
        Self { ts: r.occurred_at.timestamp_micros(), result: result_code(r.result), id: r.id.clone() }
    }

    pub fn tsid(&self) -> String {
        tsid(self.ts, &self.id)
    }
}

pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| 11 + e.id.len()).sum());
    for e in entries {
        out.extend_from_slice(&e.ts.to_be_bytes());
        out.push(e.result);
        out.extend_from_slice(&(e.id.len() as u16).to_be_bytes());
        out.extend_from_slice(e.id.as_bytes());
    }
    out
}

pub(crate) fn decode_entries(mut b: &[u8]) -> StoreResult<Vec<Entry>> {
    let corrupt = || StoreError::Corrupt("a time posting with a truncated entry".into());
    let mut out = Vec::new();
    while !b.is_empty() {
        let head: [u8; 11] = b.get(..11).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?;
        let len = usize::from(u16::from_be_bytes([head[9], head[10]]));
        let id = b.get(11..11 + len).ok_or_else(corrupt)?;
        let id = std::str::from_utf8(id).map_err(|_| corrupt())?.to_owned();
        let ts = i64::from_be_bytes(head[..8].try_into().map_err(|_| corrupt())?);
        out.push(Entry { ts, result: head[8], id });
        b = &b[11 + len..];
    }
    Ok(out)
}

/// The posting items listing `records` for the append `batch`: one per partition and hour (more
/// when an hour's entries outgrow an item), entries in time order.
pub(crate) fn posting_items<'a>(tenant: &str, batch: &str, records: impl IntoIterator<Item = &'a Record>) -> Vec<Item> {
    let mut groups: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    for r in records {
        let e = Entry::of(r);
        groups.entry((time_posting_pk(tenant, r.occurred_at, r.category), hour(e.ts))).or_default().push(e);
    }
    let mut items = Vec::new();
    for ((pk, hour), mut entries) in groups {
        entries.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
        let mut chunks: Vec<Vec<Entry>> = vec![Vec::new()];
        let mut bytes = 0;
        for e in entries {
            let last = chunks.last_mut().expect("a chunk");
            if !last.is_empty() && (last.len() == ENTRIES_PER_ITEM || bytes + 11 + e.id.len() > BYTES_PER_ITEM) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += 11 + e.id.len();
            chunks.last_mut().expect("a chunk").push(e);
        }
        for (n, chunk) in chunks.iter().enumerate() {
            items.push(Item::from([
                ("pk".to_owned(), s(pk.clone())),
                ("sk".to_owned(), s(format!("{hour}#{batch}#{n:03}"))),
                ("e".to_owned(), AttributeValue::B(Blob::new(encode(chunk)))),
            ]));
        }
    }
    items
}

/// An item's size as DynamoDB bills it (attribute names and values).
fn size(i: &Item) -> usize {
    i.iter()
        .map(|(k, v)| k.len() + v.as_s().map(String::len).or_else(|_| v.as_b().map(|b| b.as_ref().len())).unwrap_or(8))
        .sum()
}

/// Write units of posting items: one per started KB of each.
pub fn posting_units(items: &[Item]) -> u64 {
    items.iter().map(|i| size(i).div_ceil(1024) as u64).sum()
}

/// What one append of `records` writes to the time index: posting items, write units and bytes
/// stored (each item with DynamoDB's 100 bytes of overhead) — for the cost figures.
pub fn append_posting_cost(tenant: &str, records: &[Record]) -> (usize, u64, u64) {
    let items = posting_items(tenant, "01JBENCHBATCH0000000000000", records);
    let stored = items.iter().map(|i| size(i) as u64 + 100).sum();
    (items.len(), posting_units(&items), stored)
}

impl DynamoStore {
    /// Writes the time postings of an append's records (before the records themselves).
    pub(crate) async fn put_postings<'a>(
        &self,
        tenant: &str,
        batch: &str,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> StoreResult<()> {
        let items = posting_items(tenant, batch, records);
        let units = posting_units(&items);
        self.batch_put(items).await?;
        self.counters.posting_units.fetch_add(units, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes the time postings of `category` for the whole hours in `[from, before)`: called
    /// once the purge has removed every record of the category before `before`, so each entry of
    /// those items is of a record already gone. The hour `before` falls in is kept.
    pub(crate) async fn drop_postings(
        &self,
        tenant: &str,
        category: Category,
        from: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let cut = hour(before.timestamp_micros());
        let days: Vec<chrono::NaiveDate> =
            from.date_naive().iter_days().take_while(|d| *d <= before.date_naive()).collect();
        let keys: Vec<Vec<Item>> = futures_util::stream::iter(days.into_iter().map(|d| {
            let pk = time_posting_pk(tenant, d.and_time(chrono::NaiveTime::MIN).and_utc(), category);
            let cut = cut.clone();
            async move {
                let query = |_: usize| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :p AND sk < :h")
                        .expression_attribute_values(":p", s(pk.clone()))
                        .expression_attribute_values(":h", s(cut.clone()))
                        .projection_expression("pk, sk")
                };
                let keep = |i: &Item| Ok(Some(i.clone()));
                Ok::<_, StoreError>(
                    self.read_pages(None, usize::MAX, &mut ReadStats::default(), query, keep).await?.items,
                )
            }
        }))
        .buffer_unordered(16)
        .try_collect()
        .await?;
        let keys: Vec<Item> = keys.into_iter().flatten().collect();
        let n = keys.len() as u64;
        self.batch_delete(keys).await?;
        Ok(n)
    }
}

/// Every posting item of a partition (tests).
#[cfg(test)]
pub(super) async fn items_of(store: &DynamoStore, pk: &str) -> Vec<Item> {
    let query = |_: usize| {
        store
            .client
            .query()
            .table_name(&store.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(pk))
    };
    store.read_pages(None, usize::MAX, &mut ReadStats::default(), query, |i| Ok(Some(i.clone()))).await.unwrap().items
}

#[cfg(test)]
mod tests {
    use super::super::get_s;
    use super::*;
    use crate::store::{EventFilter, Order};

    #[test]
    fn entries_round_trip_and_a_truncated_one_is_corrupt() {
        let entries = vec![
            Entry { ts: 1_764_000_000_000_000, result: 2, id: "a-1".into() },
            Entry { ts: -5, result: 0, id: "x".repeat(300) },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode_entries(&bytes).unwrap(), entries);
        assert!(matches!(decode_entries(&bytes[..bytes.len() - 1]), Err(StoreError::Corrupt(_))));
        assert!(decode_entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn an_append_writes_one_item_per_category_and_hour() {
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 23, 59, 0).unwrap();
        let recs: Vec<Record> = (0..1000)
            .map(|i| {
                let mut r =
                    Record::system("t", "LOGIN", Default::default(), Some(ResultCode::Ok), serde_json::json!({}));
                r.id = format!("r{i:04}");
                r.occurred_at = t0 + chrono::Duration::milliseconds(i * 100);
                r.category = if i % 4 == 0 { Category::SignIn } else { Category::Audit };
                r
            })
            .collect();
        let items = posting_items("t", "B1", &recs);
        let keys: Vec<(String, String)> =
            items.iter().map(|i| (get_s(i, "pk").unwrap().to_owned(), get_s(i, "sk").unwrap().to_owned())).collect();
        // One minute before midnight and 99 s after it: two days, two categories.
        assert_eq!(
            keys,
            vec![
                ("T#t#PD#20261130#audit".to_owned(), "2026113023#B1#000".to_owned()),
                ("T#t#PD#20261130#sign_in".to_owned(), "2026113023#B1#000".to_owned()),
                ("T#t#PD#20261201#audit".to_owned(), "2026120100#B1#000".to_owned()),
                ("T#t#PD#20261201#sign_in".to_owned(), "2026120100#B1#000".to_owned()),
            ]
        );
        let listed: usize =
            items.iter().map(|i| decode_entries(i.get("e").unwrap().as_b().unwrap().as_ref()).unwrap().len()).sum();
        assert_eq!(listed, 1000);
        assert!(posting_units(&items) < 30, "1000 records cost {} units of postings", posting_units(&items));
    }

    /// The posting items of a partition, as (sort key, entry ids).
    async fn partition(store: &DynamoStore, pk: &str) -> Vec<(String, Vec<String>)> {
        items_of(store, pk)
            .await
            .iter()
            .map(|i| {
                let e = decode_entries(i.get("e").unwrap().as_b().unwrap().as_ref()).unwrap();
                (get_s(i, "sk").unwrap().to_owned(), e.into_iter().map(|e| e.id).collect())
            })
            .collect()
    }

    /// Entries without a record, repeated entries and an entry whose record is stored at another
    /// time are each skipped or read once, on every page size and in both orders.
    #[tokio::test]
    async fn a_listing_keeps_one_record_per_entry_whose_body_is_its_own() {
        use crate::store::{PageRequest, RecordStore};
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("postings");
        let recs: Vec<Record> =
            (0..12).map(|i| rec(&t, &format!("r{i:02}"), i * 25, "ACCESS_MEDIA", "ann", ResultCode::Ok)).collect();
        store.append(&t, &recs).await.unwrap();
        // A retried batch lists them again; an append that failed listed an id never stored; a
        // replay of r03 at another time listed it there.
        store.put_postings(&t, "retry", &recs).await.unwrap();
        let ghost = rec(&t, "ghost", 30, "ACCESS_MEDIA", "ann", ResultCode::Ok);
        let mut moved = recs[3].clone();
        moved.occurred_at += chrono::Duration::minutes(7);
        // And a replay of r05 at its time but as a sign-in listed it in the sign-in partition.
        let mut recategorised = recs[5].clone();
        recategorised.category = Category::SignIn;
        store.put_postings(&t, "other", [&ghost, &moved, &recategorised]).await.unwrap();
        let want: Vec<String> = recs.iter().rev().map(|r| r.id.clone()).collect();
        for limit in [1, 5, 100] {
            let got: Vec<String> = all(&store, &t, &window(), limit).await.into_iter().map(|r| r.id).collect();
            assert_eq!(got, want, "newest first, pages of {limit}");
            let oldest = EventFilter { order: Order::OldestFirst, ..window() };
            let got: Vec<String> = all(&store, &t, &oldest, limit).await.into_iter().map(|r| r.id).collect();
            assert_eq!(got, want.iter().rev().cloned().collect::<Vec<_>>(), "oldest first, pages of {limit}");
        }
        let page = store.query(&t, &window(), PageRequest { limit: 100, after: None }).await.unwrap();
        assert_eq!(page.plan, "time");
        let mut postings = 0;
        for c in [Category::Audit, Category::SignIn] {
            postings += partition(&store, &time_posting_pk(&t, t0(), c)).await.len() as u64;
        }
        // Each id's body once (the twelve, and the ghost), and each posting item once.
        assert_eq!((page.stats.items_read, page.stats.postings_read), (13, postings), "{:?}", page.stats);
    }

    /// A purge that has removed every record of a category before a time drops that category's
    /// posting items of the whole hours before it, and nothing else.
    #[tokio::test]
    async fn a_purge_drops_the_posting_items_it_emptied() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("postings-purge");
        // Every 20 minutes for 10 hours: sign-ins (LOGIN) and audit records alternately.
        let recs: Vec<Record> = (0..30)
            .map(|i| {
                let action = if i % 2 == 0 { "LOGIN" } else { "ACCESS_MEDIA" };
                rec(&t, &format!("r{i:02}"), i * 20, action, "ann", ResultCode::Ok)
            })
            .collect();
        assert_eq!(recs[0].category, Category::SignIn);
        store.append(&t, &recs).await.unwrap();
        let before = t0() + chrono::Duration::minutes(5 * 60 + 30);
        let gone = store.purge(&t, Category::SignIn, before, 100).await.unwrap();
        assert_eq!(gone.len(), 9, "sign-ins at 0:00, 0:40 … 5:20");
        let sign_ins = partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await;
        let hours: Vec<&str> = sign_ins.iter().map(|(sk, _)| &sk[8..10]).collect();
        let first = t0().format("%H").to_string().parse::<u32>().unwrap();
        let left: Vec<String> = (first + 5..first + 10).map(|h| format!("{h:02}")).collect();
        assert_eq!(hours, left, "the hours before 5:00 are dropped, the hour of the cut is kept");
        assert_eq!(partition(&store, &time_posting_pk(&t, t0(), Category::Audit)).await.len(), 10, "audit untouched");
        let ids: Vec<String> = all(&store, &t, &window(), 7).await.into_iter().map(|r| r.id).collect();
        let gone: Vec<&str> = gone.iter().map(|r| r.id.as_str()).collect();
        let kept: Vec<String> =
            recs.iter().rev().filter(|r| !gone.contains(&r.id.as_str())).map(|r| r.id.clone()).collect();
        assert_eq!(ids, kept);
    }
}
