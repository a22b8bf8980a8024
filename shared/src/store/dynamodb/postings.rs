//! The time and action indexes as posting items (key layouts 3 and 4). A GSI entry costs a whole
//! write unit whatever its size, so these two indexes, which every record is in, are instead items
//! per append listing that append's records: a batch of 1000 live records writes a few items of
//! ~30 KB instead of 2000 entries (docs/cost.md).
//!
//! | item | pk | sk | `e` |
//! |---|---|---|---|
//! | time posting | `T#{t}#PD#{yyyymmdd}#{category}` | `{yyyymmddhh}#{batch}#{n}` or `W{yyyymmdd}#{batch}#{n}` | entries |
//! | action posting | `T#{t}#PA#{yyyymm}#{category}#{action}` | the same | entries |
//!
//! An entry is a record's occurred-at microseconds (8 bytes, big-endian), its result code (1 byte),
//! the length of its id (2 bytes) and the id. An append's entries of one partition and day go to
//! one item per hour (*narrow*: sort key `{yyyymmddhh}#…`), or, when they are sparse — spread over
//! several hours, fewer than `SPARSE_PER_HOUR` an hour, as a backfill or a quiet tenant sends them —
//! to one item for the day (*wide*: `W{yyyymmdd}#…`, after every narrow key). A page reads a
//! partition's narrow items hour by hour and its wide items day by day, merging both; an hour (or
//! a day) is sorted once all its items are read. Categories are part of both keys so that the
//! retention purge, which works per category, can drop whole items.
//!
//! Consistency: postings are written before the records they list (as subject entries are), so a
//! record is never stored without its entries. An entry whose record was not written (a failed
//! put, an id already stored at another time) is skipped by reads, which fetch each body and keep
//! it only if its time, id and partition are the entry's and it matches the filter. Entries repeat
//! when a batch is retried or a record is rewritten by an erasure; a page keeps one of each. The
//! retention purge deletes the posting items of the time it has emptied (`postings_purge`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::keys::tsid;
use super::{DynamoStore, Item, s};
use crate::record::{Category, Record, ResultCode};
use crate::store::{ReadStats, StoreError, StoreResult};

/// Entries per posting item at most, so that one stays well under DynamoDB's 400 KB even with
/// the longest ids the validation allows.
const ENTRIES_PER_ITEM: usize = 1000;
/// Bytes of entries per posting item at most.
const BYTES_PER_ITEM: usize = 300 * 1024;
/// An append's entries of a partition and day spread over several hours go to one wide item when
/// there are fewer than this many per hour: below it, items per hour would cost a write unit each
/// for a few entries (an entry is ~37 bytes, a unit 1 KB).
const SPARSE_PER_HOUR: usize = 16;
/// The sort-key prefix of wide items (after every digit, so after every narrow item).
pub(super) const WIDE: char = 'W';

/// The time posting partition of a record.
pub fn time_posting_pk(tenant: &str, at: DateTime<Utc>, category: Category) -> String {
    format!("T#{tenant}#PD#{}#{}", at.format("%Y%m%d"), category.as_str())
}

/// The action posting partition of a record.
pub fn action_posting_pk(tenant: &str, at: DateTime<Utc>, category: Category, action: &str) -> String {
    action_partition(tenant, &at.format("%Y%m").to_string(), category, action)
}

/// The action posting partition of a month (`yyyymm`).
pub(super) fn action_partition(tenant: &str, month: &str, category: Category, action: &str) -> String {
    format!("T#{tenant}#PA#{month}#{}#{action}", category.as_str())
}

/// Every posting partition that lists a record.
pub(crate) fn posting_pks(tenant: &str, r: &Record) -> [String; 2] {
    [
        time_posting_pk(tenant, r.occurred_at, r.category),
        action_posting_pk(tenant, r.occurred_at, r.category, &r.action),
    ]
}

fn format_micros(ts: i64, f: &str) -> String {
    DateTime::from_timestamp_micros(ts).unwrap_or_default().format(f).to_string()
}

/// The hour of a time in microseconds, as a narrow item's sort-key prefix (`yyyymmddhh`).
pub(super) fn hour(ts: i64) -> String {
    format_micros(ts, "%Y%m%d%H")
}

/// The day of a time in microseconds, as a wide item's sort-key prefix (`W{yyyymmdd}`).
pub(super) fn wide_day(ts: i64) -> String {
    format!("{WIDE}{}", format_micros(ts, "%Y%m%d"))
}

pub(super) fn result_code(r: Option<ResultCode>) -> u8 {
    match r {
        None => 0,
        Some(ResultCode::Ok) => 1,
        Some(ResultCode::Fail) => 2,
        Some(ResultCode::Unauthorized) => 3,
    }
}

/// When a posting item's batch was named (ms since the epoch): its id is a ULID, after a `-` for
/// the upgrade's batches. `None` for other names (tests' fixed ones), which count as old.
pub(super) fn batch_named_at(i: &Item) -> Option<u64> {
    let batch = super::get_s(i, "sk")?.split('#').nth(1)?;
    ulid::Ulid::from_string(batch.rsplit('-').next()?).ok().map(|u| u.timestamp_ms())
}

/// One record in a posting item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ts: i64,
    pub result: u8,
    pub id: String,
    /// Read from an item of a batch named less than `APPEND_GRACE` ago, whose record may be too
    /// fresh for an eventually consistent read (not stored in the item).
    pub fresh: bool,
}

impl Entry {
    fn of(r: &Record) -> Self {
        Self { ts: r.occurred_at.timestamp_micros(), result: result_code(r.result), id: r.id.clone(), fresh: false }
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
    let corrupt = || StoreError::Corrupt("a posting item with a truncated entry".into());
    let mut out = Vec::new();
    while !b.is_empty() {
        let head: [u8; 11] = b.get(..11).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?;
        let len = usize::from(u16::from_be_bytes([head[9], head[10]]));
        let id = b.get(11..11 + len).ok_or_else(corrupt)?;
        let id = std::str::from_utf8(id).map_err(|_| corrupt())?.to_owned();
        let ts = i64::from_be_bytes(head[..8].try_into().map_err(|_| corrupt())?);
        out.push(Entry { ts, result: head[8], id, fresh: false });
        b = &b[11 + len..];
    }
    Ok(out)
}

/// An append's entries of one partition and day, by sort-key prefix: one narrow bucket per hour,
/// or one wide bucket for the day when they are sparse (`SPARSE_PER_HOUR`).
fn buckets(entries: Vec<Entry>) -> Vec<(String, Vec<Entry>)> {
    let mut hours: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in &entries {
        hours.entry(hour(e.ts)).or_default().push(e.clone());
    }
    if hours.len() > 1 && entries.len() < SPARSE_PER_HOUR * hours.len() {
        vec![(wide_day(entries[0].ts), entries)]
    } else {
        hours.into_iter().collect()
    }
}

/// The posting items listing `records` for the append `batch`: per partition and day, one item
/// per hour or one wide item (more when entries outgrow an item), entries in time order.
pub(crate) fn posting_items<'a>(tenant: &str, batch: &str, records: impl IntoIterator<Item = &'a Record>) -> Vec<Item> {
    let mut groups: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    for r in records {
        let e = Entry::of(r);
        let day = wide_day(e.ts);
        for pk in posting_pks(tenant, r) {
            groups.entry((pk, day.clone())).or_default().push(e.clone());
        }
    }
    let mut items = Vec::new();
    for ((pk, _), mut entries) in groups {
        entries.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
        for (bucket, entries) in buckets(entries) {
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
                    ("sk".to_owned(), s(format!("{bucket}#{batch}#{n:03}"))),
                    ("e".to_owned(), AttributeValue::B(Blob::new(encode(chunk)))),
                ]));
            }
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

/// What one append of `records` writes to the time and action indexes: posting items, write
/// units and bytes stored (each item with DynamoDB's 100 bytes of overhead) — for the cost figures.
pub fn append_posting_cost(tenant: &str, records: &[Record]) -> (usize, u64, u64) {
    let items = posting_items(tenant, "01JBENCHBATCH0000000000000", records);
    let stored = items.iter().map(|i| size(i) as u64 + 100).sum();
    (items.len(), posting_units(&items), stored)
}

impl DynamoStore {
    /// Writes the time and action postings of an append's records (before the records themselves).
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

    /// Every item of the posting partition `pk`.
    async fn items_in(&self, pk: &str) -> StoreResult<Vec<Item>> {
        let query = |_: usize| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(pk))
        };
        Ok(self.read_pages(None, usize::MAX, &mut ReadStats::default(), query, |i| Ok(Some(i.clone()))).await?.items)
    }

    /// Every entry listed in the posting partition `pk` (for `upgrade-keys`).
    pub(super) async fn entries_of(&self, pk: &str) -> StoreResult<Vec<Entry>> {
        let mut out = Vec::new();
        for i in self.items_in(pk).await? {
            out.extend(decode_entries(entry_bytes(&i))?);
        }
        Ok(out)
    }
}

/// The entries of a posting item, encoded (`e`; none if it has no such attribute).
pub(super) fn entry_bytes(i: &Item) -> &[u8] {
    i.get("e").and_then(|v| v.as_b().ok()).map(|b| b.as_ref()).unwrap_or_default()
}

/// The posting items of a partition, as (sort key, entry ids) (tests).
#[cfg(test)]
pub(super) async fn partition(store: &DynamoStore, pk: &str) -> Vec<(String, Vec<String>)> {
    store
        .items_in(pk)
        .await
        .unwrap()
        .iter()
        .map(|i| {
            let ids = decode_entries(entry_bytes(i)).unwrap().into_iter().map(|e| e.id);
            (super::get_s(i, "sk").unwrap().to_owned(), ids.collect())
        })
        .collect()
}

/// Deletes every item of a posting partition, as a table written before it existed (tests).
#[cfg(test)]
pub(super) async fn clear_partition(store: &DynamoStore, pk: &str) {
    let items = store.items_in(pk).await.unwrap();
    let keys = items.iter().map(|i| DynamoStore::key(pk.to_owned(), super::get_s(i, "sk").unwrap()));
    store.batch_delete(keys.collect()).await.unwrap();
}

#[cfg(test)]
mod tests {
    use super::super::get_s;
    use super::*;
    use crate::store::{EventFilter, Order};

    #[test]
    fn entries_round_trip_and_a_truncated_one_is_corrupt() {
        let entries = vec![
            Entry { ts: 1_764_000_000_000_000, result: 2, id: "a-1".into(), fresh: false },
            Entry { ts: -5, result: 0, id: "x".repeat(300), fresh: false },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode_entries(&bytes).unwrap(), entries);
        assert!(matches!(decode_entries(&bytes[..bytes.len() - 1]), Err(StoreError::Corrupt(_))));
        assert!(decode_entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn an_append_writes_one_item_per_partition_and_hour_or_one_wide_item_a_day() {
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
        let keys = |items: &[Item]| -> Vec<(String, String)> {
            items.iter().map(|i| (get_s(i, "pk").unwrap().to_owned(), get_s(i, "sk").unwrap().to_owned())).collect()
        };
        let items = posting_items("t", "B1", &recs);
        // One minute before midnight and 99 s after it: two days (and months), two categories,
        // in the time and the action index; each day's entries fall in one hour.
        let (nov, dec) = ("2026113023#B1#000".to_owned(), "2026120100#B1#000".to_owned());
        assert_eq!(
            keys(&items),
            vec![
                ("T#t#PA#202611#audit#LOGIN".to_owned(), nov.clone()),
                ("T#t#PA#202611#sign_in#LOGIN".to_owned(), nov.clone()),
                ("T#t#PA#202612#audit#LOGIN".to_owned(), dec.clone()),
                ("T#t#PA#202612#sign_in#LOGIN".to_owned(), dec.clone()),
                ("T#t#PD#20261130#audit".to_owned(), nov.clone()),
                ("T#t#PD#20261130#sign_in".to_owned(), nov),
                ("T#t#PD#20261201#audit".to_owned(), dec.clone()),
                ("T#t#PD#20261201#sign_in".to_owned(), dec),
            ]
        );
        let listed: usize =
            items.iter().map(|i| decode_entries(i.get("e").unwrap().as_b().unwrap().as_ref()).unwrap().len()).sum();
        assert_eq!(listed, 2000, "each record in both indexes");
        assert!(posting_units(&items) < 60, "1000 records cost {} units of postings", posting_units(&items));

        // A quiet tenant's batch: 40 records 40 minutes apart, over 26 hours: per day one wide
        // item of the time and one of the action index, not one item per hour.
        let sparse: Vec<Record> = recs[..40]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut r = r.clone();
                r.category = Category::Audit;
                r.occurred_at = t0 - chrono::Duration::hours(23) + chrono::Duration::minutes(40 * i as i64);
                r
            })
            .collect();
        let items = posting_items("t", "B2", &sparse);
        let sks: Vec<String> = keys(&items).into_iter().map(|(_, sk)| sk).collect();
        assert_eq!(sks, ["W20261130#B2#000", "W20261201#B2#000", "W20261130#B2#000", "W20261201#B2#000"]);
        assert_eq!(posting_units(&items), 4, "four items under 1 KB, where items per hour would take 54");
        // Dense hours stay narrow even in a long batch.
        let dense: Vec<Record> = sparse.iter().chain(&recs[..999]).cloned().collect();
        let narrow =
            posting_items("t", "B3", &dense).iter().filter(|i| get_s(i, "sk").unwrap().starts_with('2')).count();
        assert!(narrow >= 4, "{narrow}");
    }

    /// The whole window's listing, in pages of `limit`, is `newest_first` newest first and its
    /// reverse oldest first.
    async fn pages_in_both_orders(store: &DynamoStore, t: &str, newest_first: &[String], limit: usize) {
        use crate::testkit::conformance::{all, window};
        let got: Vec<String> = all(store, t, &window(), limit).await.into_iter().map(|r| r.id).collect();
        assert_eq!(got, newest_first, "newest first, pages of {limit}");
        let oldest = EventFilter { order: Order::OldestFirst, ..window() };
        let got: Vec<String> = all(store, t, &oldest, limit).await.into_iter().map(|r| r.id).collect();
        assert_eq!(got, newest_first.iter().rev().cloned().collect::<Vec<_>>(), "oldest first, pages of {limit}");
    }

    /// Entries without a record, repeated entries and an entry whose record is stored at another
    /// time are each skipped or read once, on every page size and in both orders.
    #[tokio::test]
    async fn a_listing_keeps_one_record_per_entry_whose_body_is_its_own() {
        use crate::store::{PageRequest, RecordStore};
        use crate::testkit::conformance::{rec, t0, tenant, window};
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
            pages_in_both_orders(&store, &t, &want, limit).await;
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

    /// A window reaching back a year before a tenant's week of records reads the day partitions
    /// from its oldest record on, not the year's; a late record appended between two pages, older
    /// than any before, is still on the next page.
    #[tokio::test]
    async fn a_long_window_is_read_from_the_tenants_oldest_record_on() {
        use crate::store::{PageRequest, RecordStore};
        use crate::testkit::conformance::{rec, t0, tenant};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("long-window");
        let day = |d: i64| d * 24 * 60;
        let recs: Vec<Record> =
            (0..6).map(|i| rec(&t, &format!("r{i}"), day(i), "ACCESS_MEDIA", "ann", ResultCode::Ok)).collect();
        store.append(&t, &recs).await.unwrap();
        let year = EventFilter::window(t0() - chrono::Duration::days(365), t0() + chrono::Duration::days(7));
        let ids = |p: &crate::store::RecordPage| p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let first = store.query(&t, &year, PageRequest { limit: 4, after: None }).await.unwrap();
        assert_eq!(ids(&first), ["r5", "r4", "r3", "r2"]);
        store.append(&t, &[rec(&t, "late", -day(3), "ACCESS_MEDIA", "ann", ResultCode::Ok)]).await.unwrap();
        let second = store.query(&t, &year, PageRequest { limit: 4, after: first.next.clone() }).await.unwrap();
        assert_eq!(ids(&second), ["r1", "r0", "late"]);
        assert!(second.next.is_none());
        // Five days of partitions (two readers of each category's), where the year has 365.
        assert!(second.stats.queries < 300, "{:?}", second.stats);
        // The registry is read for plans of many groups only: a user's year is one partition range.
        let (http, counts) = crate::testkit::faults::matching_client(
            "GetItem",
            super::super::keys::TENANTS_PK,
            Some(std::time::Duration::ZERO),
        );
        let counted = crate::testkit::faults::store_over(&store.table, http).await;
        let read = |c: &crate::testkit::faults::FaultCounts| c.held.load(std::sync::atomic::Ordering::Relaxed);
        let user = EventFilter { user: Some("ann".into()), ..year.clone() };
        let page = counted.query(&t, &user, PageRequest { limit: 4, after: None }).await.unwrap();
        assert_eq!((ids(&page), read(&counts)), (vec!["r5".to_owned(), "r4".into(), "r3".into(), "r2".into()], 0));
        let page = counted.query(&t, &year, PageRequest { limit: 4, after: None }).await.unwrap();
        assert_eq!((page.records.len(), read(&counts)), (4, 1));
    }

    /// A backfill's wide items are read with the narrow ones, in both orders and across pages, by
    /// the time and the action index; a purge drops those of the whole days it emptied.
    #[tokio::test]
    async fn wide_items_are_read_merged_and_purged() {
        use crate::store::{PageRequest, RecordStore};
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("postings-wide");
        // A backfill over two days, 50 minutes apart (wide items), then a live hour of the
        // second day (narrow), some of it repeating the backfill's ids.
        let old: Vec<Record> = (0..40)
            .map(|i| {
                let action = if i % 3 == 0 { "LOGIN" } else { "ACCESS_MEDIA" };
                rec(&t, &format!("b{i:02}"), -600 + i * 50, action, "ann", ResultCode::Ok)
            })
            .collect();
        store.append(&t, &old).await.unwrap();
        let live: Vec<Record> = (0..30)
            .map(|i| rec(&t, &format!("l{i:02}"), 25 * 60 + i, "ACCESS_MEDIA", "bob", ResultCode::Fail))
            .collect();
        store.append(&t, &live).await.unwrap();
        store.append(&t, &old[30..]).await.unwrap();
        let audit = time_posting_pk(&t, t0(), Category::Audit);
        let wide = partition(&store, &audit).await.iter().filter(|(sk, _)| sk.starts_with(WIDE)).count();
        assert!(wide >= 1, "the backfill wrote wide items");
        let mut want: Vec<&Record> = old.iter().chain(&live).collect();
        want.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.id.clone())));
        let want: Vec<String> = want.iter().map(|r| r.id.clone()).collect();
        for limit in [1, 7, 100] {
            pages_in_both_orders(&store, &t, &want, limit).await;
            let media = EventFilter { actions: vec!["ACCESS_MEDIA".into()], ..window() };
            let got = all(&store, &t, &media, limit).await;
            assert_eq!(got.len(), 26 + 30, "ACCESS_MEDIA, pages of {limit}");
            let failed = EventFilter { result: Some(ResultCode::Fail), ..media };
            let page = store.query(&t, &failed, PageRequest { limit: 100, after: None }).await.unwrap();
            assert_eq!((page.plan.as_str(), page.records.len()), ("action", 30));
            assert_eq!(page.stats.items_read, 30, "entries of other results are not fetched");
        }
        // Purge the sign-ins before the second day's 02:00: the first day's wide items of LOGIN go.
        let before = (t0() + chrono::Duration::days(1)).date_naive().and_hms_opt(2, 0, 0).unwrap().and_utc();
        let gone = store.purge(&t, Category::SignIn, before, 100).await.unwrap();
        assert!(!gone.is_empty() && gone.iter().all(|r| r.occurred_at < before));
        // The backfill spans 31 October 22:00 to 2 November 06:30: whole days and months before
        // the cut's go, the cut's day keeps its wide item (it lists sign-ins after 02:00).
        let day = |d: i64| t0() + chrono::Duration::days(d);
        for (pk, left) in [
            (time_posting_pk(&t, day(-1), Category::SignIn), 0),
            (time_posting_pk(&t, day(0), Category::SignIn), 0),
            (time_posting_pk(&t, day(1), Category::SignIn), 2),
            (action_posting_pk(&t, day(-1), Category::SignIn, "LOGIN"), 0),
        ] {
            assert_eq!(partition(&store, &pk).await.len(), left, "{pk}");
        }
        let logins = partition(&store, &action_posting_pk(&t, day(0), Category::SignIn, "LOGIN")).await;
        let sks: Vec<&str> = logins.iter().map(|(sk, _)| &sk[..9]).collect();
        assert_eq!(sks, ["W20261102"; 2], "November's LOGIN items: only the cut's day");
        let logins = EventFilter { actions: vec!["LOGIN".into()], ..window() };
        let kept: Vec<String> = all(&store, &t, &logins, 5).await.into_iter().map(|r| r.id).collect();
        let expect: Vec<String> =
            old.iter().rev().filter(|r| r.action == "LOGIN" && r.occurred_at >= before).map(|r| r.id.clone()).collect();
        assert_eq!(kept, expect);
    }

    /// A record whose first listing (a wide item of a batch named long ago) failed to be written,
    /// resent and listed again in a fresh narrow item: a listing that meets both copies at once
    /// keeps the fresh one's mark, so a lagging replica's miss is read again consistently.
    #[tokio::test]
    async fn a_resent_record_listed_twice_is_read_again_consistently() {
        use crate::record::ResultCode;
        use crate::store::RecordStore;
        use crate::testkit::conformance::{all, rec, t0, tenant};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("fresh-twin");
        let recs = ["a", "r", "c"].map(|id| id.to_owned());
        let recs: Vec<Record> =
            recs.iter().zip([10, 130, 250]).map(|(id, m)| rec(&t, id, m, "LOGIN", "ann", ResultCode::Ok)).collect();
        let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis() as u64;
        store.put_postings(&t, &ulid::Ulid::from_parts(an_hour_ago, 7).to_string(), recs.iter()).await.unwrap();
        let items = partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await;
        assert!(items.iter().all(|(sk, _)| sk.starts_with(WIDE)), "one wide item: {items:?}");
        store.append(&t, &recs[1..2]).await.unwrap();
        let (http, _) = crate::testkit::faults::lagging_client();
        let lagging = crate::testkit::faults::store_over(&store.table, http).await;
        for order in [Order::OldestFirst, Order::NewestFirst] {
            let mut f = EventFilter::window(t0() - chrono::Duration::days(1), t0() + chrono::Duration::days(1));
            f.categories = vec![Category::SignIn];
            f.order = order;
            let found: Vec<String> = all(&lagging, &t, &f, 10).await.into_iter().map(|r| r.id).collect();
            assert_eq!(found, ["r"], "{order:?}");
        }
    }
}
