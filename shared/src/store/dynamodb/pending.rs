//! Actions a retention purge left posting items of (`postings_purge`): one item per tenant,
//! category and action (`T#{tenant}#PEND`, `{category}#{action}`) whose `reach` (µs) is the latest
//! cut up to which a purge may have left that action's items listing records it removed — the
//! items of the hour (or day) a call stopped in on its limit, which also list later records (the
//! last call trims them instead), those of appends in flight, or all of them when the purge
//! stopped between deleting the records and dropping their items. The next purge drops the items of every pending action, though it may remove no record
//! of it, and clears the mark once it has dropped them up to `reach` and kept none.
//!
//! Conditional writes keep the marks right when purges overlap or stop midway: a mark is only
//! raised (a purge with an earlier cut never lowers one), and it is cleared only by a purge that
//! reached it, so a purge that read an action's items up to an earlier cut cannot clear the mark
//! a later purge left. A purge marks the actions of the records it is about to delete before it
//! deletes them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::{DynamoStore, classify, get_n, get_s, n, retry_throttled, s};
use crate::record::Category;
use crate::store::{ReadStats, StoreError, StoreResult};

/// Marks written or cleared at once.
const CONCURRENT: usize = 16;

fn pending_pk(tenant: &str) -> String {
    format!("T#{tenant}#PEND")
}

fn pending_sk(category: Category, action: &str) -> String {
    format!("{}#{action}", category.as_str())
}

impl DynamoStore {
    /// The category's pending actions and each one's reach.
    pub(crate) async fn pending_actions(
        &self,
        tenant: &str,
        category: Category,
    ) -> StoreResult<BTreeMap<String, DateTime<Utc>>> {
        let (pk, prefix) = (pending_pk(tenant), format!("{}#", category.as_str()));
        let query = |_| {
            self.client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :p AND begins_with(sk, :c)")
                .expression_attribute_values(":p", s(&pk))
                .expression_attribute_values(":c", s(&prefix))
        };
        let keep = |i: &super::Item| {
            let action = get_s(i, "sk").and_then(|sk| sk.strip_prefix(&prefix)).map(str::to_owned);
            let reach = get_n(i, "reach").and_then(DateTime::from_timestamp_micros);
            Ok(action.zip(reach))
        };
        Ok(self.read_pages(None, usize::MAX, &mut ReadStats::default(), query, keep).await?.items.into_iter().collect())
    }

    /// Marks `actions` of the category pending up to `reach` (a mark already further is kept).
    pub(crate) async fn mark_pending(
        &self,
        tenant: &str,
        category: Category,
        actions: Vec<String>,
        reach: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write_marks(tenant, category, actions, reach, true).await
    }

    /// Clears the marks of `actions` whose items a purge dropped up to `reached` and kept none of,
    /// unless a purge has since marked them further.
    pub(crate) async fn clear_pending(
        &self,
        tenant: &str,
        category: Category,
        actions: Vec<String>,
        reached: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write_marks(tenant, category, actions, reached, false).await
    }

    /// Raises (`raise`) or clears the marks of `actions`, `CONCURRENT` at a time.
    async fn write_marks(
        &self,
        tenant: &str,
        category: Category,
        actions: Vec<String>,
        at: DateTime<Utc>,
        raise: bool,
    ) -> StoreResult<()> {
        let at = at.timestamp_micros();
        // (A loop, not `map`: the future must be Send, and a closure over borrowed names is not
        // general enough for that.)
        let mut writes = Vec::with_capacity(actions.len());
        for a in &actions {
            writes.push(self.write_mark(pending_pk(tenant), pending_sk(category, a), at, raise));
        }
        futures_util::stream::iter(writes).buffer_unordered(CONCURRENT).try_collect::<Vec<()>>().await.map(|_| ())
    }

    /// Raises one mark to `at` (if below), or deletes it (if not beyond `at`).
    async fn write_mark(&self, pk: String, sk: String, at: i64, raise: bool) -> StoreResult<()> {
        refused_is_done(retry_throttled(|| async {
            if raise {
                let u = self.client.update_item().table_name(&self.table).key("pk", s(&pk)).key("sk", s(&sk));
                let u = u
                    .update_expression("SET reach = :r")
                    .condition_expression("attribute_not_exists(reach) OR reach < :r")
                    .expression_attribute_values(":r", n(at));
                u.send().await.map(|_| ()).map_err(|e| classify(e, &self.table))
            } else {
                let d = self.client.delete_item().table_name(&self.table).key("pk", s(&pk)).key("sk", s(&sk));
                let d = d.condition_expression("reach <= :r").expression_attribute_values(":r", n(at));
                d.send().await.map(|_| ()).map_err(|e| classify(e, &self.table))
            }
        }))
        .await
    }
}

/// A conditional write whose condition was refused has nothing left to do.
pub(super) async fn refused_is_done(write: impl std::future::Future<Output = StoreResult<()>>) -> StoreResult<()> {
    match write.await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;

    use aws_smithy_runtime_api::client::http::SharedHttpClient;
    use chrono::Duration;

    use super::super::postings::{action_posting_pk, partition, time_posting_pk};
    use super::*;
    use crate::record::{Record, ResultCode};
    use crate::store::RecordStore;
    use crate::testkit::conformance::{rec, t0, tenant};

    /// The store on the emulator through `http` (a fault client), without the append grace.
    async fn over(store: &DynamoStore, http: SharedHttpClient) -> DynamoStore {
        crate::testkit::faults::store_over(&store.table, http).await.with_append_grace(Duration::zero())
    }

    async fn pending(store: &DynamoStore, t: &str) -> BTreeSet<String> {
        store.pending_actions(t, Category::SignIn).await.unwrap().into_keys().collect()
    }

    async fn items(store: &DynamoStore, t: &str, action: &str) -> Vec<(String, Vec<String>)> {
        partition(store, &action_posting_pk(t, t0(), Category::SignIn, action)).await
    }

    fn sign_in(t: &str, id: &str, minutes: i64, action: &str) -> Record {
        rec(t, id, minutes, action, "ann", ResultCode::Ok)
    }

    /// The items of a purge's cut hour also list later records: the purge trims them of the
    /// entries of the records it removed (deleting those left empty), so no purged record's id,
    /// time or result stays in the table, however long until a later cut passes that hour (a
    /// retention lengthened meanwhile), and no action is left pending.
    #[tokio::test]
    async fn the_items_of_a_cut_hour_are_trimmed_of_the_records_purged() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(Duration::zero());
        let t = tenant("cut-hour");
        // A LOGIN at 08:10 and one at 08:50 in one append (one item per partition), a LOGOUT at
        // 08:20 in another.
        store.append(&t, &[sign_in(&t, "login-10", 10, "LOGIN"), sign_in(&t, "login-50", 50, "LOGIN")]).await.unwrap();
        store.append(&t, &[sign_in(&t, "logout-20", 20, "LOGOUT")]).await.unwrap();
        let time_pk = time_posting_pk(&t, t0(), Category::SignIn);
        let times = || partition(&store, &time_pk);
        assert_eq!(times().await.len(), 2);
        // Cut at 08:30: both 08:1x and 08:2x go; the hour's items keep only the 08:50 LOGIN.
        assert_eq!(store.purge(&t, Category::SignIn, t0() + Duration::minutes(30), 100).await.unwrap().len(), 2);
        let ids = |items: Vec<(String, Vec<String>)>| items.into_iter().flat_map(|(_, ids)| ids).collect::<Vec<_>>();
        assert_eq!(ids(times().await), ["login-50"]);
        assert_eq!(ids(items(&store, &t, "LOGIN").await), ["login-50"]);
        assert!(items(&store, &t, "LOGOUT").await.is_empty(), "left empty: deleted");
        assert!(pending(&store, &t).await.is_empty());
        let sign_ins =
            crate::store::EventFilter { categories: vec![Category::SignIn], ..crate::testkit::conformance::window() };
        let listed = crate::testkit::conformance::all(&store, &t, &sign_ins, 10).await;
        assert_eq!(listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["login-50"]);
        // A day later, everything goes.
        assert_eq!(store.purge(&t, Category::SignIn, t0() + Duration::days(1), 100).await.unwrap().len(), 1);
        assert!(times().await.is_empty());
        assert!(items(&store, &t, "LOGIN").await.is_empty());
        assert!(pending(&store, &t).await.is_empty());
    }

    /// A purge that stops after deleting its records, before dropping their action items (here:
    /// those reads are throttled for good), has marked their actions first: a later purge drops
    /// the items though no record of the action is left to find.
    #[tokio::test]
    async fn a_purge_stopped_after_its_deletes_leaves_its_actions_pending() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(Duration::zero());
        let t = tenant("pending-stopped");
        for (m, a) in [(10, "LOGIN"), (90, "LOGOUT")] {
            store.append(&t, &[sign_in(&t, &format!("{a}-{m}"), m, a)]).await.unwrap();
        }
        let (http, _) = crate::testkit::faults::matching_client("Query", "#PA#", None);
        let faulty = over(&store, http).await;
        let cut = t0() + Duration::hours(1);
        assert!(faulty.purge(&t, Category::SignIn, cut, 100).await.is_err());
        assert!(store.get(&t, "LOGIN-10").await.unwrap().is_none(), "the LOGIN is deleted");
        assert_eq!(pending(&store, &t).await, BTreeSet::from(["LOGIN".to_owned()]));
        assert!(store.purge(&t, Category::SignIn, cut, 100).await.unwrap().is_empty());
        assert!(items(&store, &t, "LOGIN").await.is_empty(), "dropped by the next run");
        assert!(pending(&store, &t).await.is_empty());
        assert_eq!(store.purge(&t, Category::SignIn, t0() + Duration::days(1), 100).await.unwrap().len(), 1);
        assert!(store.purge(&t, Category::SignIn, t0() + Duration::days(2), 100).await.unwrap().is_empty());
        for a in ["LOGIN", "LOGOUT"] {
            assert!(items(&store, &t, a).await.is_empty(), "{a}");
        }
        assert!(pending(&store, &t).await.is_empty());
    }

    /// A mark is cleared only by a purge that reached it: here a backfill of older sign-ins
    /// lowers the horizon below an action's kept items, and the next run, in chunks of one
    /// record (from the horizon: a lowered one ends the chain of chunks), drops nothing of that
    /// action in its first chunks — the mark stays until a chunk reaches the items.
    #[tokio::test]
    async fn a_purge_in_chunks_keeps_a_mark_it_has_not_reached() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(Duration::zero());
        let t = tenant("pending-chunks");
        store.append(&t, &[sign_in(&t, "login", 10, "LOGIN"), sign_in(&t, "later", 40, "LOGIN")]).await.unwrap();
        // A first chunk (of a purge it does not finish) keeps the items of the hour it stopped in.
        let cut = t0() + Duration::days(1);
        assert_eq!(store.purge(&t, Category::SignIn, cut, 1).await.unwrap().len(), 1);
        assert_eq!(pending(&store, &t).await, BTreeSet::from(["LOGIN".to_owned()]));
        // Three LOGOUTs from 06:00: older than the horizon.
        let backfill: Vec<Record> = (0..3).map(|i| sign_in(&t, &format!("bf{i}"), -120 + i * 10, "LOGOUT")).collect();
        store.append(&t, &backfill).await.unwrap();
        let mut gone = Vec::new();
        loop {
            let chunk = store.purge(&t, Category::SignIn, cut, 1).await.unwrap();
            if gone.len() < 3 {
                assert!(pending(&store, &t).await.contains("LOGIN"), "after {gone:?}");
            }
            let last = chunk.is_empty();
            gone.extend(chunk.into_iter().map(|r| r.id));
            if last {
                break;
            }
        }
        assert_eq!(gone, ["bf0", "bf1", "bf2", "later"]);
        for a in ["LOGIN", "LOGOUT"] {
            assert!(items(&store, &t, a).await.is_empty(), "{a}");
        }
        assert!(pending(&store, &t).await.is_empty());
    }

    /// Two purges at once: one with an earlier cut, slow to reach the action postings, and the
    /// first chunk of one with a later cut, which keeps the items of the hour it stopped in. The slow one, finishing last,
    /// cannot clear the mark the other left: a later purge still drops those items.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_purge_does_not_clear_the_mark_of_a_later_one() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(Duration::zero());
        let t = tenant("pending-race");
        for (m, id) in [(10, "login-10"), (70, "login-70"), (80, "login-80")] {
            store.append(&t, &[sign_in(&t, id, m, "LOGIN")]).await.unwrap();
        }
        let (http, _) =
            crate::testkit::faults::matching_client("Query", "#PA#", Some(std::time::Duration::from_secs(4)));
        let slow = over(&store, http).await;
        let (t2, early_cut) = (t.clone(), t0() + Duration::minutes(30));
        let early = tokio::spawn(async move { slow.purge(&t2, Category::SignIn, early_cut, 100).await });
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        // A first chunk of a later purge, which keeps the items of the hour it stopped in.
        let gone = store.purge(&t, Category::SignIn, t0() + Duration::days(1), 1).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["login-70"]);
        assert_eq!(early.await.unwrap().unwrap().len(), 1);
        assert_eq!(pending(&store, &t).await, BTreeSet::from(["LOGIN".to_owned()]), "the later mark stands");
        assert_eq!(store.purge(&t, Category::SignIn, t0() + Duration::days(1), 100).await.unwrap().len(), 1);
        assert!(items(&store, &t, "LOGIN").await.is_empty());
        assert!(pending(&store, &t).await.is_empty());
    }

    /// A purge in chunks moves its horizon with each chunk: the next chunk reads from where the
    /// last one stopped, so the bodies read stay about the records removed (not the square of
    /// them), and bodies missing from old batches are not read again strongly consistent. Within
    /// the grace after the backfill (its append may be in flight, as far as the purge knows) the
    /// horizon stays, the chunks keep the backfill's items, and each still reads from where the
    /// last stopped (`purge_chain::Chain`); the first purge after the grace drops the items.
    #[tokio::test]
    async fn a_purge_in_chunks_reads_each_record_about_once() {
        for within_grace in [false, true] {
            let (store, _) = crate::testkit::moto::fresh().await;
            let t = tenant("pending-reads");
            const N: usize = 1000;
            let recs: Vec<Record> = (0..N).map(|i| sign_in(&t, &format!("r{i:04}"), i as i64, "LOGIN")).collect();
            store.append(&t, &recs).await.unwrap();
            let (http, counts) = crate::testkit::faults::faulty_client(0.0);
            let counted = match within_grace {
                true => crate::testkit::faults::store_over(&store.table, http).await,
                false => over(&store, http).await,
            };
            let cut = t0() + Duration::days(2);
            let mut gone = 0;
            loop {
                let n = counted.purge(&t, Category::SignIn, cut, 100).await.unwrap().len();
                gone += n;
                if n < 100 {
                    break;
                }
            }
            assert_eq!(gone, N);
            let (eventual, consistent) =
                (counts.eventual_keys.load(Ordering::Relaxed), counts.consistent_keys.load(Ordering::Relaxed));
            let reads =
                format!("{eventual} + {consistent} body reads for {N} records, within the grace: {within_grace}");
            assert!(eventual + consistent <= 2 * N as u64, "{reads}");
            if within_grace {
                assert!(!partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await.is_empty());
                assert!(!items(&store, &t, "LOGIN").await.is_empty());
                let later = store.clone().with_append_grace(Duration::zero());
                assert!(later.purge(&t, Category::SignIn, cut, 100).await.unwrap().is_empty());
            } else {
                assert_eq!(consistent, 0, "{reads}");
            }
            assert!(partition(&store, &time_posting_pk(&t, t0(), Category::SignIn)).await.is_empty());
            assert!(items(&store, &t, "LOGIN").await.is_empty());
            assert!(pending(&store, &t).await.is_empty());
        }
    }

    /// An erasure rewrites a record and then lists it again; a purge that removes the record in
    /// between (and clears the action's mark, having kept nothing) would leave the new listing —
    /// the purged record's id, time and result — below its horizon for good. The erasure notes
    /// the record as a late append does first (the purge's raise is refused) and marks its
    /// action pending once listed, so a later purge drops that listing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erasure_racing_a_purge_leaves_no_listing_of_the_purged_record() {
        use crate::testkit::faults::{matching_client, store_over};
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("erasure-race");
        let r = sign_in(&t, "r", 0, "LOGIN");
        store.append(&t, std::slice::from_ref(&r)).await.unwrap();
        // A grace of 3.5 s: the append (3 s before the erasure) is past it when the purge reads
        // (2 s after the erasure began), the erasure within it.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let racing = store.clone().with_append_grace(Duration::milliseconds(3500));
        let store = store.with_append_grace(Duration::zero());
        // The erasure's listing is held back 4 s; the purge runs meanwhile.
        let (http, _) = matching_client("BatchWriteItem", "\"PutRequest\"", Some(std::time::Duration::from_secs(4)));
        let eraser = store_over(&store.table, http).await;
        let erasure = {
            let (t, mut erased) = (t.clone(), r.clone());
            erased.actor.username = Some("erased".into());
            tokio::spawn(async move { eraser.replace(&t, &erased).await })
        };
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let gone = racing.purge(&t, Category::SignIn, t0() + Duration::days(2), 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r"]);
        assert!(items(&store, &t, "LOGIN").await.is_empty(), "the append's listing is dropped");
        erasure.await.unwrap().unwrap();
        assert!(store.get(&t, "r").await.unwrap().is_none());
        assert!(!items(&store, &t, "LOGIN").await.is_empty(), "the erasure's listing, written after the purge");
        store.purge(&t, Category::SignIn, t0() + Duration::days(3), 100).await.unwrap();
        assert!(partition(&store, &time_posting_pk(&t, r.occurred_at, Category::SignIn)).await.is_empty());
        assert!(items(&store, &t, "LOGIN").await.is_empty());
        assert!(pending(&store, &t).await.is_empty());
    }
}
