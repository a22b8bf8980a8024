//! The retention purge's side of the posting items (`postings`): once the purge has removed a
//! category's records before a time, the items that list only those records are deleted — the
//! time postings of the category, and the action postings of the actions it removed — whole
//! hours (narrow items) and whole days (wide items) before it.
//!
//! An append lists its records before writing them, so a record older than the cut appended while
//! a purge ran may be listed in an item the purge would drop, and would be left without an entry:
//! never found, never purged. Items of batches named less than `APPEND_GRACE` before the purge
//! began reading are therefore kept (a batch id is a ULID), and the purge's horizon stays at the
//! earliest of them so that the next run reaches and drops them.
//!
//! The items of the hour (or day) a call stops in also list later records. The purge's last call
//! trims them of the entries before its cut (`trim`); a call that stops on its limit keeps them,
//! for the next call to drop. For time postings the next call drops them, since it drops every
//! whole day from where it reads; an action's items, though, are dropped only by a purge that
//! knows the action, and the next may remove no record of it. So a purge marks the actions of the
//! records it removes pending (`pending`) before it deletes them, drops the items of every pending
//! action, and clears the marks of those it left no item of (so do items kept for an append in
//! flight, and a purge stopped between its deletes and its drops).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::postings::{WIDE, action_partition, batch_named_at, hour, time_posting_pk, wide_day};
use super::{DynamoStore, Item, s};
use crate::record::Category;
use crate::store::{ReadStats, StoreError, StoreResult};

/// How long an append (or an erasure) may take from naming its batch to writing its records: a
/// purge keeps the posting items of batches named less than this before it began reading, since
/// they may list records it did not see (the ingest function times out after 30 s); a later purge
/// drops them.
pub(crate) const APPEND_GRACE: chrono::Duration = chrono::Duration::minutes(15);

impl DynamoStore {
    /// Deletes the time postings of `category` before the cut (the whole hours before it, the
    /// whole days for wide items) from `from` on, of batches named before its `read_at` −
    /// `APPEND_GRACE`: called once every record of the category before the cut is gone, so each
    /// entry of those items is of a record already gone (a later append of an older record lists
    /// it in a batch named after the purge began: kept).
    pub(crate) async fn drop_postings(
        &self,
        tenant: &str,
        category: Category,
        from: DateTime<Utc>,
        cut: Cut,
    ) -> StoreResult<Dropped> {
        let day =
            |d: chrono::NaiveDate| time_posting_pk(tenant, d.and_time(chrono::NaiveTime::MIN).and_utc(), category);
        let whole = from.date_naive().iter_days().take_while(|d| *d < cut.before.date_naive()).map(day).collect();
        self.drop_posting_items(whole, vec![day(cut.before.date_naive())], cut, false).await
    }

    /// Deletes the action postings of `category` before the cut of `actions` (those of the records
    /// the purge removed, and those pending, `pending`), from `from` on: called once every record
    /// of the category before the cut is gone (batches named before its `read_at` −
    /// `APPEND_GRACE` only, as `drop_postings`). `Dropped::pending` names the actions left with
    /// items.
    pub(crate) async fn drop_action_postings(
        &self,
        tenant: &str,
        category: Category,
        (actions, from): (&BTreeSet<String>, DateTime<Utc>),
        cut: Cut,
    ) -> StoreResult<Dropped> {
        let month = cut.before.format("%Y%m").to_string();
        let (mut whole, mut partial, mut of) = (Vec::new(), Vec::new(), BTreeMap::new());
        for a in actions {
            for m in super::keys::months(from.min(cut.before), cut.before) {
                let pk = action_partition(tenant, &m, category, a);
                of.insert(pk.clone(), a.clone());
                if m == month { partial.push(pk) } else { whole.push(pk) }
            }
        }
        let mut dropped = self.drop_posting_items(whole, partial, cut, true).await?;
        dropped.pending = dropped.kept_in.iter().filter_map(|pk| of.get(pk).cloned()).collect();
        Ok(dropped)
    }

    /// Deletes every posting item of the partitions `whole`, and of `partial` those of the whole
    /// hours (narrow) and days (wide) before the cut — of batches named before its `read_at` −
    /// `APPEND_GRACE`. The items of the hour (and day) of the cut also list later records: on the
    /// purge's last call they are trimmed of the entries before it (`trim`), otherwise kept and,
    /// with `name_kept`, read to name the partitions left with items (`Dropped::kept_in`).
    async fn drop_posting_items(
        &self,
        whole: Vec<String>,
        partial: Vec<String>,
        Cut { before, read_at, last }: Cut,
        name_kept: bool,
    ) -> StoreResult<Dropped> {
        let cut_bucket = last || name_kept;
        let ts = before.timestamp_micros();
        let named_before = (read_at - self.append_grace).timestamp_millis().max(0) as u64;
        let ranges = whole
            .into_iter()
            .map(|pk| (pk, None))
            .chain(partial.iter().flat_map(|pk| {
                [(pk.clone(), Some(("0".to_owned(), hour(ts)))), (pk.clone(), Some((WIDE.to_string(), wide_day(ts))))]
            }))
            .collect::<Vec<_>>();
        let keys: Vec<Vec<Item>> = futures_util::stream::iter(ranges.into_iter().map(|(pk, range)| async move {
            let query = |_: usize| {
                let q = self.client.query().table_name(&self.table).expression_attribute_values(":p", s(pk.clone()));
                match &range {
                    // Up to the end of the bucket of `before` (`{prefix}#{batch}#{n}`, a batch
                    // sorting before `~`), whose items are read to be kept, not dropped; or up
                    // to its start.
                    Some((lo, hi)) => q
                        .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
                        .expression_attribute_values(":lo", s(lo.clone()))
                        .expression_attribute_values(":hi", s(if cut_bucket { format!("{hi}#~") } else { hi.clone() })),
                    None => q.key_condition_expression("pk = :p"),
                }
                .projection_expression("pk, sk")
            };
            let keep = |i: &Item| Ok(Some(i.clone()));
            Ok::<_, StoreError>(self.read_pages(None, usize::MAX, &mut ReadStats::default(), query, keep).await?.items)
        }))
        .buffer_unordered(16)
        .try_collect()
        .await?;
        let cut = [hour(ts), wide_day(ts)];
        let (current, older): (Vec<Item>, Vec<Item>) =
            keys.into_iter().flatten().partition(|i| bucket_of(i).is_some_and(|b| cut.iter().any(|c| c == b)));
        let (keys, kept): (Vec<Item>, Vec<Item>) =
            older.into_iter().partition(|i| batch_named_at(i).is_none_or(|at| at < named_before));
        self.batch_delete(keys).await?;
        // The cut's items of old batches list no record in flight: trimmed on the last call.
        let (current_old, current_kept): (Vec<Item>, Vec<Item>) =
            current.into_iter().partition(|i| last && batch_named_at(i).is_none_or(|at| at < named_before));
        self.trim(current_old, before).await?;
        let kept_in =
            kept.iter().chain(&current_kept).filter_map(|i| super::get_s(i, "pk").map(str::to_owned)).collect();
        Ok(Dropped { kept_from: kept.iter().filter_map(bucket_start).min(), kept_in, pending: BTreeSet::new() })
    }

    /// Rewrites posting items (given by their keys) without their entries before `before`, whose
    /// records are gone; deletes those left empty. An item notes the cut it was trimmed to
    /// (`trimmed`), and is rewritten only to a later one: a purge with an earlier cut that read it
    /// before never puts back the entries a later one removed.
    async fn trim(&self, keys: Vec<Item>, before: DateTime<Utc>) -> StoreResult<()> {
        let ts = before.timestamp_micros();
        let mut writes = Vec::new();
        for item in self.batch_get(keys, false).await? {
            let entries = super::postings::decode_entries(super::postings::entry_bytes(&item))?;
            let left: Vec<_> = entries.iter().filter(|e| e.ts >= ts).cloned().collect();
            if left.len() < entries.len() {
                let key = Self::key(
                    super::get_s(&item, "pk").unwrap_or_default().to_owned(),
                    super::get_s(&item, "sk").unwrap_or_default(),
                );
                writes.push(super::pending::refused_is_done(self.trim_one(key, left, ts)));
            }
        }
        futures_util::stream::iter(writes).buffer_unordered(16).try_collect::<Vec<()>>().await.map(|_| ())
    }

    /// Puts the posting item `key` with the entries `left` (deletes it if none), trimmed to `cut`,
    /// unless already trimmed to it or later.
    async fn trim_one(&self, key: Item, left: Vec<super::postings::Entry>, cut: i64) -> StoreResult<()> {
        let later = "attribute_exists(pk) AND (attribute_not_exists(trimmed) OR trimmed < :cut)";
        super::retry_throttled(|| async {
            if left.is_empty() {
                let d = self.client.delete_item().table_name(&self.table).set_key(Some(key.clone()));
                let d = d.condition_expression(later).expression_attribute_values(":cut", super::n(cut));
                d.send().await.map(|_| ()).map_err(|e| super::classify(e, &self.table))
            } else {
                let mut item = key.clone();
                item.insert("e".to_owned(), AttributeValue::B(Blob::new(super::postings::encode(&left))));
                item.insert("trimmed".to_owned(), super::n(cut));
                let p = self.client.put_item().table_name(&self.table).set_item(Some(item));
                let p = p.condition_expression(later).expression_attribute_values(":cut", super::n(cut));
                p.send().await.map(|_| ()).map_err(|e| super::classify(e, &self.table))
            }
        })
        .await
    }
}

/// Where a purge call's drops stop: every record of the category before `before` is gone; items
/// named before `read_at` − `APPEND_GRACE` list no record it did not see (`read_at`: when the call
/// began reading, or the first call of its chain); `last` if `before` is the purge's cut.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    pub before: DateTime<Utc>,
    pub read_at: DateTime<Utc>,
    pub last: bool,
}

/// What a purge's drop of posting items did.
#[derive(Debug, Default)]
pub(crate) struct Dropped {
    /// The start of the earliest hour (or day) of an item kept for an append maybe in flight:
    /// the next purge must read from there to drop it.
    pub kept_from: Option<DateTime<Utc>>,
    /// The partitions left with items that may list records gone: kept for an append in flight,
    /// or of the hour (or day) of the cut, which also lists later records.
    pub kept_in: BTreeSet<String>,
    /// Of an action drop, the actions of `kept_in`: pending (`pending`), so that the next purge
    /// drops their items though it may remove no record of them.
    pub pending: BTreeSet<String>,
}

/// A posting item's bucket: its hour (narrow) or `W` and its day (wide).
fn bucket_of(i: &Item) -> Option<&str> {
    super::get_s(i, "sk")?.split('#').next()
}

/// The start of a posting item's hour (narrow) or day (wide).
fn bucket_start(i: &Item) -> Option<DateTime<Utc>> {
    let bucket = bucket_of(i)?;
    // `yyyymmddhh`, or `W` + `yyyymmdd` from midnight.
    let hour = bucket.strip_prefix(WIDE).map_or_else(|| bucket.to_owned(), |day| format!("{day}00"));
    chrono::NaiveDateTime::parse_from_str(&format!("{hour}0000"), "%Y%m%d%H%M%S").ok().map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::super::postings::{action_posting_pk, partition};
    use super::*;
    use crate::record::{Record, ResultCode};
    use crate::store::EventFilter;

    /// A purge that has removed every record of a category before a time drops that category's
    /// posting items of the whole hours before it, and nothing else.
    #[tokio::test]
    async fn a_purge_drops_the_posting_items_it_emptied() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("postings-purge");
        // Every 20 minutes for 10 hours: sign-ins (LOGIN) and audit records alternately.
        let recs: Vec<Record> = (0..30)
            .map(|i| {
                let action = if i % 2 == 0 { "LOGIN" } else { "ACCESS_MEDIA" };
                rec(&t, &format!("r{i:02}"), i * 20, action, "ann", ResultCode::Ok)
            })
            .collect();
        assert_eq!(recs[0].category, Category::SignIn);
        // Live appends of one record: narrow items, one per hour.
        for r in &recs {
            store.append(&t, std::slice::from_ref(r)).await.unwrap();
        }
        let before = t0() + chrono::Duration::minutes(5 * 60 + 30);
        let gone = store.purge(&t, Category::SignIn, before, 100).await.unwrap();
        assert_eq!(gone.len(), 9, "sign-ins at 0:00, 0:40 … 5:20");
        let sign_ins = partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await;
        let hours: Vec<&str> = sign_ins.iter().map(|(sk, _)| &sk[8..10]).collect();
        let hours: Vec<&str> = hours.into_iter().fold(Vec::new(), |mut v, h| {
            if v.last() != Some(&h) {
                v.push(h)
            }
            v
        });
        let first = t0().format("%H").to_string().parse::<u32>().unwrap();
        let left: Vec<String> = (first + 6..first + 10).map(|h| format!("{h:02}")).collect();
        assert_eq!(hours, left, "the hours before 5:00 are dropped, the cut's trimmed (its one item listed 5:20)");
        assert_eq!(partition(&store, &time_posting_pk(&t, t0(), Category::Audit)).await.len(), 15, "audit untouched");
        let logins = partition(&store, &action_posting_pk(&t, t0(), Category::SignIn, "LOGIN")).await;
        let login_items: Vec<&String> = logins.iter().map(|(sk, _)| sk).collect();
        assert_eq!(login_items, sign_ins.iter().map(|(sk, _)| sk).collect::<Vec<_>>(), "and so are LOGIN's");
        let media = partition(&store, &action_posting_pk(&t, t0(), Category::Audit, "ACCESS_MEDIA")).await;
        assert_eq!(media.len(), 15, "other categories' actions untouched");
        let ids: Vec<String> = all(&store, &t, &window(), 7).await.into_iter().map(|r| r.id).collect();
        let gone: Vec<&str> = gone.iter().map(|r| r.id.as_str()).collect();
        let kept: Vec<String> =
            recs.iter().rev().filter(|r| !gone.contains(&r.id.as_str())).map(|r| r.id.clone()).collect();
        assert_eq!(ids, kept);
    }

    /// A purge keeps the posting items of batches named within `APPEND_GRACE` before it began: an
    /// append in flight may list a record older than the cut that the purge did not see. A later
    /// purge (here: one without grace) finds that record and drops everything.
    #[tokio::test]
    async fn a_purge_keeps_the_postings_of_appends_in_flight() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("postings-grace");
        let recs: Vec<Record> =
            (0..10).map(|i| rec(&t, &format!("r{i:02}"), i * 20, "LOGIN", "ann", ResultCode::Ok)).collect();
        store.append(&t, &recs).await.unwrap();
        let pk = time_posting_pk(&t, t0(), Category::SignIn);
        // The next day: the day's wide item (ten records over three hours) goes too.
        let before = t0() + chrono::Duration::days(1);
        assert_eq!(store.purge(&t, Category::SignIn, before, 100).await.unwrap().len(), 10);
        assert!(!partition(&store, &pk).await.is_empty(), "a batch named a moment ago keeps its items");
        // An append of an older record, as one in flight during the purge would have made it.
        let late = rec(&t, "late", 30, "LOGIN", "bob", ResultCode::Ok);
        store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        let sign_ins = EventFilter { categories: vec![Category::SignIn], ..window() };
        let found: Vec<String> = all(&store, &t, &sign_ins, 10).await.into_iter().map(|r| r.id).collect();
        assert_eq!(found, ["late"], "the late record is listed, so the next purge finds it");
        let later = store.clone().with_append_grace(chrono::Duration::zero());
        assert_eq!(later.purge(&t, Category::SignIn, before, 100).await.unwrap().len(), 1);
        assert!(partition(&store, &pk).await.is_empty(), "then every item of the emptied day goes");
        let logins = action_posting_pk(&t, t0(), Category::SignIn, "LOGIN");
        assert!(partition(&store, &logins).await.is_empty(), "and of LOGIN's");
    }

    /// The category's horizon, as the registry holds it (µs), and whether a purge set it.
    async fn horizon_of(store: &DynamoStore, t: &str, c: Category) -> (Option<i64>, bool) {
        let reg = store.get_item(super::super::keys::TENANTS_PK.to_owned(), t).await.unwrap().unwrap();
        (super::super::get_n(&reg, &format!("h_{}", c.as_str())), reg.contains_key(&format!("hi_{}", c.as_str())))
    }

    /// A purge that emptied a category before a time raises its horizon there, so the next one
    /// reads from it; a later append of an older record lowers it again, and the next purge finds
    /// that record. An append of late records that may be in flight holds the horizon back.
    #[tokio::test]
    async fn a_purge_reads_from_its_category_horizon() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{all, rec, t0, tenant, window};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("horizon");
        let recs: Vec<Record> =
            (0..10).map(|i| rec(&t, &format!("r{i:02}"), i * 20, "LOGIN", "ann", ResultCode::Ok)).collect();
        store.append(&t, &recs).await.unwrap();
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await, (None, false), "no purge yet: none");
        let before = t0() + chrono::Duration::days(1);
        // With the grace: the batch's items stay, and the horizon is not set, the batch's append
        // having started within the grace (as far as the purge knows, it may be in flight; the
        // quarter slots it noted count only once noted for longer than the grace: `settings`).
        assert_eq!(store.purge(&t, Category::SignIn, before, 100).await.unwrap().len(), 10);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await, (None, false));
        // Without it (as a purge 15 minutes later): the items go, the horizon moves to the cut.
        let later = store.clone().with_append_grace(chrono::Duration::zero());
        assert!(later.purge(&t, Category::SignIn, before, 100).await.unwrap().is_empty());
        assert!(partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await.is_empty());
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await, (Some(before.timestamp_micros()), true));
        // A record older than the horizon arrives: the horizon follows it, and the purge finds it.
        let late = rec(&t, "late", 30, "LOGIN", "bob", ResultCode::Ok);
        store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(late.occurred_at.timestamp_micros()));
        let gone = later.purge(&t, Category::SignIn, before, 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"]);
        let sign_ins = EventFilter { categories: vec![Category::SignIn], ..window() };
        assert!(all(&store, &t, &sign_ins, 10).await.is_empty());
        // Another category keeps no horizon of its own until purged.
        assert_eq!(horizon_of(&store, &t, Category::Audit).await, (None, false));
    }

    /// A late record appended while a purge runs (after it read the category, before it raised the
    /// horizon), no older than the horizon it read, lowers nothing; its start, after the purge
    /// read, makes the raise fail, so the next purge still reads from below the record and removes
    /// it. Live appends send
    /// no registry update but a process's first note of the tenant's oldest record.
    #[tokio::test]
    async fn a_late_append_during_a_purge_keeps_the_horizon_below_it() {
        use std::sync::atomic::Ordering;

        use crate::store::RecordStore;
        use crate::testkit::conformance::{rec, t0, tenant};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("late-horizon");
        let day = |d: i64| t0() + chrono::Duration::days(d);
        store.append(&t, &[rec(&t, "old", 0, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        assert_eq!(store.purge(&t, Category::SignIn, day(1), 100).await.unwrap().len(), 1);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await, (Some(day(1).timestamp_micros()), true));

        // The next run reads the horizon; a late record between it and the run's cut arrives.
        let read = store.horizon(&t, Category::SignIn).await.unwrap();
        let late = rec(&t, "late", 3 * 24 * 60, "LOGIN", "bob", ResultCode::Ok);
        store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(day(1).timestamp_micros()));
        // The run did not see it: its raise to the cut is refused, and the next run removes it.
        store.raise_horizon(&t, Category::SignIn, day(5), &read, read.read_at).await.unwrap();
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(day(1).timestamp_micros()));
        let gone = store.purge(&t, Category::SignIn, day(5), 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"]);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(day(5).timestamp_micros()));

        // Live records: nothing to note for the horizons, and this process knows `oldest`.
        let live = |id: &str| {
            let mut r = rec(&t, id, 0, "LOGIN", "cy", ResultCode::Ok);
            r.occurred_at = Utc::now();
            r
        };
        let updates = |s: &DynamoStore| s.counters().registry_updates.load(Ordering::Relaxed);
        let sent = updates(&store);
        store.append(&t, &[live("live-1"), live("live-2")]).await.unwrap();
        assert_eq!(updates(&store) - sent, 0);
        // Another process notes it once, then no more.
        let other = DynamoStore::new(store.client.clone(), store.table.clone());
        other.append(&t, &[live("live-3")]).await.unwrap();
        other.append(&t, &[live("live-4")]).await.unwrap();
        assert_eq!(updates(&other), 1);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(day(5).timestamp_micros()));
    }

    /// An append that wrote a late record but failed before noting it is resent by its client: the
    /// resend, a duplicate, lists the record again and lowers the horizon, though a purge between
    /// the two dropped the record's first listing. The next purge removes it.
    #[tokio::test]
    async fn a_resent_late_append_lists_the_record_and_lowers_the_horizon() {
        use crate::store::{AppendOutcome, RecordStore};
        use crate::testkit::conformance::{rec, t0, tenant};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("late-resent");
        let day = |d: i64| t0() + chrono::Duration::days(d);
        store.append(&t, &[rec(&t, "old", 0, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        assert_eq!(store.purge(&t, Category::SignIn, day(1), 100).await.unwrap().len(), 1);
        // A sign-in of 03:00 the next day, below the horizon (08:00); its append fails before the
        // notes (as if: the horizon is put back as it was).
        let late = rec(&t, "late", 19 * 60, "LOGIN", "bob", ResultCode::Ok);
        assert!(late.occurred_at < day(1));
        store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        store
            .tenant_update(&t)
            .update_expression("SET h_sign_in = :h")
            .expression_attribute_values(":h", super::super::n(day(1).timestamp_micros()))
            .send()
            .await
            .unwrap();
        // The next purge does not reach it, and drops its day's items with its listing.
        assert!(store.purge(&t, Category::SignIn, day(2), 100).await.unwrap().is_empty());
        let pk = time_posting_pk(&t, late.occurred_at, Category::SignIn);
        assert!(partition(&store, &pk).await.is_empty());
        // The client resends the batch.
        let resent = store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        assert_eq!(resent, [AppendOutcome::Duplicate]);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(late.occurred_at.timestamp_micros()));
        let gone = store.purge(&t, Category::SignIn, day(2), 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"]);
        assert!(store.get(&t, "late").await.unwrap().is_none());
        assert!(partition(&store, &pk).await.is_empty());
    }

    /// An append of a late record notes it (its start, then the horizon) before it lists or writes
    /// anything: here its postings are throttled for good, so it stops right after its notes. Its
    /// record is never stored below the horizon, at whatever step it stops.
    #[tokio::test]
    async fn a_late_append_notes_its_record_before_listing_it() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{rec, t0, tenant};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("late-noted");
        let day = |d: i64| t0() + chrono::Duration::days(d);
        store.append(&t, &[rec(&t, "old", 0, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        assert_eq!(store.purge(&t, Category::SignIn, day(1), 100).await.unwrap().len(), 1);
        let (http, counts) = crate::testkit::faults::matching_client("BatchWriteItem", "\"PutRequest\"", None);
        let faulty = crate::testkit::faults::store_over(&store.table, http).await;
        let late = rec(&t, "late", 19 * 60, "LOGIN", "bob", ResultCode::Ok);
        let before = Utc::now();
        assert!(faulty.append(&t, std::slice::from_ref(&late)).await.is_err());
        assert!(counts.throttled.load(std::sync::atomic::Ordering::Relaxed) > 0);
        assert!(store.get(&t, "late").await.unwrap().is_none(), "stopped before its writes");
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, Some(late.occurred_at.timestamp_micros()));
        let reg = store.get_item(super::super::keys::TENANTS_PK.to_owned(), &t).await.unwrap().unwrap();
        let start = super::super::get_n(&reg, "hs_sign_in").expect("the late append's start");
        assert!(start >= before.timestamp_micros() && start <= Utc::now().timestamp_micros());
    }

    /// A late append runs while a purge is between its reading and its raise: its record is at or
    /// after the horizon the purge read (so lowers nothing), is written after the purge listed the
    /// category, and nothing of the append comes after its writes (here: an update of the late
    /// count of earlier versions is throttled for good, as if it stopped there). The purge's raise
    /// is refused, the append having started within the grace before the purge read, so every
    /// later purge finds the record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_append_during_a_purge_leaves_no_record_below_the_horizon() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{rec, t0, tenant};
        use crate::testkit::faults::{matching_client, store_over};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("late-concurrent");
        let sign_in = |id: &str, minutes: i64| rec(&t, id, minutes, "LOGIN", "ann", ResultCode::Ok);
        store.append(&t, &[sign_in("a", 10), sign_in("b", 240)]).await.unwrap();
        // The horizon at the first record's hour's end.
        assert_eq!(store.purge(&t, Category::SignIn, t0() + chrono::Duration::hours(1), 100).await.unwrap().len(), 1);
        let (read, _) = horizon_of(&store, &t, Category::SignIn).await;
        // A purge to the next day, whose raise is held back 4 s.
        let (http, _) = matching_client("UpdateItem", "hi_sign_in", Some(std::time::Duration::from_secs(4)));
        let slow = store_over(&store.table, http).await.with_append_grace(chrono::Duration::zero());
        let (t2, cut) = (t.clone(), t0() + chrono::Duration::days(1));
        let purge = tokio::spawn(async move { slow.purge(&t2, Category::SignIn, cut, 100).await });
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (http, _) = matching_client("UpdateItem", "hl_sign_in", None);
        let stopping = store_over(&store.table, http).await.with_append_grace(chrono::Duration::zero());
        let late = sign_in("late", 120);
        assert!(late.occurred_at.timestamp_micros() > read.unwrap(), "after the horizon the purge read");
        let _ = stopping.append(&t, std::slice::from_ref(&late)).await;
        assert!(store.get(&t, "late").await.unwrap().is_some(), "written");
        let gone = purge.await.unwrap().unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(horizon_of(&store, &t, Category::SignIn).await.0, read, "the raise was refused");
        let gone = store.purge(&t, Category::SignIn, t0() + chrono::Duration::days(2), 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"], "not stranded");
        assert!(partition(&store, &time_posting_pk(&t, late.occurred_at, Category::SignIn)).await.is_empty());
    }

    /// A late append lists its record below where a purge in chunks' first call stopped, after it
    /// listed. The next calls, reading on from there, do not see the record, but drop only items
    /// named before the grace preceding the first call: its listing stays for the next purge.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_of_chunks_keeps_the_listing_of_a_record_it_did_not_read() {
        use crate::store::RecordStore;
        use crate::testkit::conformance::{rec, t0, tenant};
        use crate::testkit::faults::{matching_client, store_over};
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant("chain-listing");
        let sign_in = |id: &str, minutes: i64| rec(&t, id, minutes, "LOGIN", "ann", ResultCode::Ok);
        let day = 24 * 60;
        store
            .append(&t, &[sign_in("a", 0), sign_in("b", 60), sign_in("c", day), sign_in("d", day + 60)])
            .await
            .unwrap();
        let cut = t0() + chrono::Duration::days(3);
        // Every raise of the chain's store is held back 4 s.
        let (http, _) = matching_client("UpdateItem", "hi_sign_in", Some(std::time::Duration::from_secs(4)));
        let chain = store_over(&store.table, http).await.with_append_grace(chrono::Duration::zero());
        let first = {
            let (chain, t) = (chain.clone(), t.clone());
            tokio::spawn(async move { chain.purge(&t, Category::SignIn, cut, 2).await })
        };
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let late = sign_in("late", 30);
        store.append(&t, std::slice::from_ref(&late)).await.unwrap();
        let gone = first.await.unwrap().unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let mut ids = Vec::new();
        loop {
            let gone = chain.purge(&t, Category::SignIn, cut, 2).await.unwrap();
            ids.extend(gone.iter().map(|r| r.id.clone()));
            if gone.len() < 2 {
                break;
            }
        }
        assert_eq!(ids, ["c", "d"], "from where the first call stopped");
        let items = partition(&store, &time_posting_pk(&t, late.occurred_at, Category::SignIn)).await;
        assert!(items.iter().any(|(_, ids)| ids.contains(&"late".to_owned())), "still listed: {items:?}");
        let later =
            DynamoStore::new(store.client.clone(), store.table.clone()).with_append_grace(chrono::Duration::zero());
        let gone = later.purge(&t, Category::SignIn, cut, 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"]);
        assert!(partition(&store, &time_posting_pk(&t, late.occurred_at, Category::SignIn)).await.is_empty());
    }
}
