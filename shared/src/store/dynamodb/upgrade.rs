//! Upgrading records stored under earlier key layouts. Layout 1 keyed the time, action, user,
//! category and employee indexes without the classes of today's layout (see `keys`); layouts 1
//! and 2 kept the time index in the GSI `g1`, where layout 3 has posting items (`postings`);
//! layouts 1 to 3 kept the action and category indexes in the GSIs `g2` and `g4`, where layout 4
//! has action postings (and category filters read the time postings, which are per category).
//! Their entries sit where the planner no longer reads: after deploying this version, an operator
//! runs `auditrail upgrade-keys` once against the table.
//!
//! No Scan: each tenant's partitions are known keys, read day by day from the tenant's oldest
//! record to tomorrow: the `g1` partitions of layouts 1 and 2 (layout 1: `T#{t}#D#{yyyymmdd}#{0..3}`,
//! layout 2: `…#{a|x}{k0|k1|f}`), then the day's time postings, whose records still carrying `g2`
//! or `g4` are layout 3's. The upgrade writes the postings of each page of records, then rewrites
//! each record's index keys in place without `g1`, `g2` and `g4` — one UpdateItem per record,
//! conditional on its body being the one read, so a record erased or purged meanwhile is left as
//! its writer left it (an erasure writes today's keys and postings itself). Idempotent: a
//! rewritten record has left the old indexes, so a re-run after a crash carries on where the last
//! one stopped (a posting written twice is read once), and a second run rewrites nothing.

use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::keys::{RECORD_SK, gsi, index_keys, record_pk};
use super::postings::time_posting_pk;
use super::{DynamoStore, Item, decode, get_s, s};
use crate::record::{Category, Record};
use crate::store::{ReadStats, StoreError, StoreResult};

/// Layout 1's time-index shards per tenant and day.
const LAYOUT1_SHARDS: u32 = 4;
/// Layout 2's time-index partitions per tenant and day: category class (audit or other) and
/// result class (the rest in two shards, or failures).
const LAYOUT2_CLASSES: [&str; 6] = ["ak0", "ak1", "af", "xk0", "xk1", "xf"];
/// Records rewritten at once.
const CONCURRENT_UPDATES: usize = 16;

/// What an upgrade did to one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantUpgrade {
    pub tenant: String,
    pub days: u64,
    pub records: u64,
}

impl DynamoStore {
    /// Rewrites the index keys of every record stored under layout 1, tenant by tenant;
    /// `progress(tenant, day done, days)` after each day.
    pub async fn upgrade_keys(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(&str, u64, u64) + Sync),
    ) -> StoreResult<Vec<TenantUpgrade>> {
        let mut out = Vec::new();
        for tenant in crate::store::SettingsStore::tenants(self).await? {
            let Some(oldest) = self.oldest(&tenant).await? else {
                continue;
            };
            let (first, last) = (oldest.date_naive(), (now + Duration::days(1)).date_naive());
            let days = (last - first).num_days().max(0) as u64 + 1;
            let mut done = TenantUpgrade { tenant: tenant.clone(), days, records: 0 };
            for (i, day) in first.iter_days().take(days as usize).enumerate() {
                let layout1 = (0..LAYOUT1_SHARDS).map(|n| n.to_string());
                for part in layout1.chain(LAYOUT2_CLASSES.iter().map(|c| c.to_string())) {
                    let pk = format!("T#{tenant}#D#{}#{part}", day.format("%Y%m%d"));
                    done.records += self.upgrade_partition(&tenant, &pk).await?;
                }
                done.records += self.upgrade_listed(&tenant, day).await?;
                progress(&tenant, i as u64 + 1, days);
            }
            out.push(done);
        }
        Ok(out)
    }

    /// Rewrites every record of one `g1` partition; returns how many it rewrote.
    async fn upgrade_partition(&self, tenant: &str, pk: &str) -> StoreResult<u64> {
        let mut start: Option<Item> = None;
        let mut rewritten = 0;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(gsi("g1"))
                .key_condition_expression("g1 = :p")
                .expression_attribute_values(":p", s(pk))
                .limit(100);
            let page = self.read_page(start.take(), &mut ReadStats::default(), query, |i| Ok(Some(i.clone()))).await?;
            rewritten += self.move_records(tenant, &page.items).await?;
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(rewritten),
            }
        }
    }

    /// Rewrites the day's layout-3 records: those its time postings list that still carry `g2` or
    /// `g4`; returns how many it rewrote.
    async fn upgrade_listed(&self, tenant: &str, day: chrono::NaiveDate) -> StoreResult<u64> {
        let at = day.and_time(chrono::NaiveTime::MIN).and_utc();
        let mut ids = std::collections::BTreeSet::new();
        for c in Category::ALL {
            ids.extend(self.entries_of(&time_posting_pk(tenant, at, *c)).await?.into_iter().map(|e| e.id));
        }
        let keys = ids.iter().map(|id| Self::key(record_pk(tenant, id), RECORD_SK)).collect();
        let old: Vec<Item> = self
            .batch_get(keys, true)
            .await?
            .into_iter()
            .filter(|i| i.contains_key("g2") || i.contains_key("g4"))
            .collect();
        let mut rewritten = 0;
        for chunk in old.chunks(100) {
            rewritten += self.move_records(tenant, chunk).await?;
        }
        Ok(rewritten)
    }

    /// Notes record items as an append of late records would (a purge run before the upgrade may
    /// have raised a horizon past them, unlisted as they were), lists them in today's postings,
    /// then rewrites their keys; returns how many it rewrote.
    async fn move_records(&self, tenant: &str, items: &[Item]) -> StoreResult<u64> {
        let records = items.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        let started = Utc::now();
        let batch = format!("upgrade-{}", ulid::Ulid::generate());
        self.note_late(tenant, &super::settings::oldest_by_category(&records), started).await?;
        self.put_postings(tenant, &batch, &records).await?;
        let rewrites = items.iter().zip(&records).map(|(item, record)| self.rewrite(item, record));
        let updated: Vec<bool> =
            futures_util::stream::iter(rewrites).buffer_unordered(CONCURRENT_UPDATES).try_collect().await?;
        Ok(updated.into_iter().filter(|u| *u).count() as u64)
    }

    /// Sets one record's index keys to today's layout (no `g1`, `g2`, `g4`), if its body is still
    /// the one read.
    async fn rewrite(&self, item: &Item, record: &Record) -> StoreResult<bool> {
        let body = get_s(item, "body").unwrap_or_default().to_owned();
        let (pk, sk) = match (get_s(item, "pk"), get_s(item, "sk")) {
            (Some(pk), Some(sk)) => (pk.to_owned(), sk.to_owned()),
            _ => return Err(StoreError::Corrupt("a record item without its key".into())),
        };
        let keys = index_keys(record);
        let set: Vec<String> = keys.iter().map(|(k, _)| format!("#{k} = :{k}")).collect();
        let updated = self
            .update_with_retry(|| {
                let mut u = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk.clone(), &sk)))
                    .update_expression(if set.is_empty() {
                        "REMOVE g1, g2, g4".to_owned()
                    } else {
                        format!("SET {} REMOVE g1, g2, g4", set.join(", "))
                    })
                    .condition_expression("#body = :body")
                    .expression_attribute_names("#body", "body")
                    .expression_attribute_values(":body", s(body.clone()));
                for (k, v) in &keys {
                    u = u
                        .expression_attribute_names(format!("#{k}"), *k)
                        .expression_attribute_values(format!(":{k}"), s(v));
                }
                u
            })
            .await?;
        Ok(updated.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Category, Record, ResultCode};
    use crate::store::{EventFilter, PageRequest, RecordStore};
    use crate::testkit::conformance::{rec, tenant, window};

    /// Layout 1's keys of a record (as written before the classes).
    fn layout1(r: &Record) -> Vec<(&'static str, String)> {
        use sha2::Digest;
        let t = &r.tenant_id;
        let h = sha2::Sha256::digest(r.id.as_bytes());
        let shard = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % LAYOUT1_SHARDS;
        let (day, month) = (r.occurred_at.format("%Y%m%d"), r.occurred_at.format("%Y%m"));
        let mut out = vec![("g1", format!("T#{t}#D#{day}#{shard}")), ("g2", format!("T#{t}#A#{}#{month}", r.action))];
        if let Some(u) = super::super::keys::user_key(r) {
            out.push(("g3", format!("T#{t}#U#{u}")));
        }
        if r.category != Category::Audit {
            out.push(("g4", format!("T#{t}#C#{}#{month}", r.category.as_str())));
        }
        out
    }

    /// Records written under layout 1 are invisible to today's filters until the upgrade, found
    /// by every filter after it; a second run rewrites nothing.
    #[tokio::test]
    async fn an_upgrade_makes_layout_1_records_found_again_and_is_idempotent() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("upgrade");
        let mut recs: Vec<Record> = (0..30)
            .map(|i| {
                let res = if i % 3 == 0 { ResultCode::Fail } else { ResultCode::Ok };
                rec(&t, &format!("r{i:02}"), i, "ACCESS_MEDIA", if i % 2 == 0 { "ann" } else { "bob" }, res)
            })
            .collect();
        recs[5].category = Category::SignIn;
        store.append(&t, &recs).await.unwrap();
        // Put them back the way layout 1 wrote them.
        for r in &recs {
            let keys = layout1(r);
            let set: Vec<String> = keys.iter().map(|(k, _)| format!("{k} = :{k}")).collect();
            let mut u = store
                .client
                .update_item()
                .table_name(&store.table)
                .set_key(Some(DynamoStore::key(super::super::keys::record_pk(&t, &r.id), "R")))
                .update_expression(format!("SET {}", set.join(", ")));
            for (k, v) in &keys {
                u = u.expression_attribute_values(format!(":{k}"), s(v));
            }
            u.send().await.unwrap();
        }
        let ann = EventFilter { user: Some("ann".into()), ..window() };
        let page = |f: EventFilter| {
            let store = store.clone();
            let t = t.clone();
            async move { store.query(&t, &f, PageRequest { limit: 100, after: None }).await.unwrap().records.len() }
        };
        assert_eq!(page(ann.clone()).await, 0, "layout-1 entries are not where the planner reads");

        let seen = std::sync::Mutex::new(Vec::new());
        let report = store.upgrade_keys(Utc::now(), &|t, d, n| seen.lock().unwrap().push((t.to_owned(), d, n))).await;
        let report = report.unwrap();
        let mine = report.iter().find(|u| u.tenant == t).expect("the tenant is upgraded");
        assert_eq!(mine.records, 30);
        assert!(seen.lock().unwrap().iter().any(|(x, d, n)| *x == t && d == n), "progress reaches the last day");

        assert_eq!(page(ann.clone()).await, 15);
        assert_eq!(page(EventFilter { result: Some(ResultCode::Fail), ..ann }).await, 5);
        assert_eq!(page(EventFilter { actions: vec!["ACCESS_MEDIA".into()], ..window() }).await, 30);
        assert_eq!(page(EventFilter { categories: vec![Category::SignIn], ..window() }).await, 1);
        assert_eq!(page(window()).await, 30);

        let again = store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        assert_eq!(again.iter().find(|u| u.tenant == t).unwrap().records, 0, "nothing is left in layout 1");
    }

    /// Puts records back as layout 2 wrote them: a `g1` key on the item, no time posting items.
    async fn to_layout_2(store: &DynamoStore, recs: &[Record]) {
        for r in recs {
            let (t, class) = (&r.tenant_id, if r.category == Category::Audit { "ak0" } else { "xk1" });
            store
                .client
                .update_item()
                .table_name(&store.table)
                .set_key(Some(DynamoStore::key(record_pk(t, &r.id), RECORD_SK)))
                .update_expression("SET g1 = :g")
                .expression_attribute_values(":g", s(format!("T#{t}#D#{}#{class}", r.occurred_at.format("%Y%m%d"))))
                .send()
                .await
                .unwrap();
            super::super::postings::clear_partition(store, &time_posting_pk(t, r.occurred_at, r.category)).await;
        }
    }

    /// A retention purge run between deploying this version and `upgrade-keys` finds none of the
    /// layout-2 records it should remove (they are not in the time postings yet) and raises its
    /// horizon past them; the upgrade lowers it again as it lists them, so the next purge does.
    #[tokio::test]
    async fn records_an_upgrade_lists_below_a_purge_horizon_are_purged() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(Duration::zero());
        let t = tenant("upgrade-purged");
        let recs: Vec<Record> =
            (0..5).map(|i| rec(&t, &format!("r{i:02}"), i * 70, "ACCESS_MEDIA", "ann", ResultCode::Ok)).collect();
        store.append(&t, &recs).await.unwrap();
        to_layout_2(&store, &recs).await;
        let cut = crate::testkit::conformance::t0() + Duration::days(5);
        assert!(store.purge(&t, Category::Audit, cut, 100).await.unwrap().is_empty(), "not listed yet");
        store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        let gone = store.purge(&t, Category::Audit, cut, 100).await.unwrap();
        assert_eq!(gone.len(), 5, "every record older than the cut, listed by the upgrade, is purged");
        assert!(crate::testkit::conformance::all(&store, &t, &window(), 10).await.is_empty());
    }

    /// Records of layout 2 (time index in `g1`, no postings) are missing from time listings until
    /// the upgrade lists them in postings and takes them out of `g1`; a second run does nothing.
    #[tokio::test]
    async fn an_upgrade_moves_layout_2_time_entries_to_postings() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("upgrade2");
        let mut recs: Vec<Record> =
            (0..25).map(|i| rec(&t, &format!("r{i:02}"), i * 70, "ACCESS_MEDIA", "ann", ResultCode::Ok)).collect();
        recs[3].category = Category::SignIn;
        store.append(&t, &recs).await.unwrap();
        to_layout_2(&store, &recs).await;
        let count = |f: EventFilter| {
            let store = store.clone();
            let t = t.clone();
            async move { crate::testkit::conformance::all(&store, &t, &f, 10).await.len() }
        };
        assert_eq!(count(window()).await, 0, "layout-2 time entries are not where the planner reads");
        let report = store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        assert_eq!(report.iter().find(|u| u.tenant == t).unwrap().records, 25);
        assert_eq!(count(window()).await, 25);
        assert_eq!(count(EventFilter { categories: vec![Category::SignIn], ..window() }).await, 1);
        let item = store.get_item(super::super::keys::record_pk(&t, "r07"), "R").await.unwrap().unwrap();
        assert!(!item.contains_key("g1"), "the record left the old time index");
        let again = store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        assert_eq!(again.iter().find(|u| u.tenant == t).unwrap().records, 0, "nothing is left in `g1`");
        assert_eq!(count(window()).await, 25);
    }

    /// Records of layout 3 (action and category entries in `g2`/`g4`, no action postings) are
    /// missing from action filters until the upgrade lists them in action postings and takes them
    /// out of `g2` and `g4`; a second run does nothing.
    #[tokio::test]
    async fn an_upgrade_moves_layout_3_action_entries_to_postings() {
        let (store, _) = crate::testkit::moto::fresh().await;
        let t = tenant("upgrade3");
        let recs: Vec<Record> = (0..24)
            .map(|i| {
                let action = if i % 4 == 0 { "LOGIN" } else { "ACCESS_MEDIA" };
                rec(&t, &format!("r{i:02}"), i * 100, action, "ann", ResultCode::Ok)
            })
            .collect();
        store.append(&t, &recs).await.unwrap();
        // Back to layout 3: `g2` (and `g4` for sign-ins) on the item, no action postings.
        for r in &recs {
            let month = r.occurred_at.format("%Y%m");
            let mut set = vec![("g2", format!("T#{t}#A#{}#k#{month}", r.action))];
            if r.category != Category::Audit {
                set.push(("g4", format!("T#{t}#C#{}#k#{month}", r.category.as_str())));
            }
            let expr: Vec<String> = set.iter().map(|(k, _)| format!("{k} = :{k}")).collect();
            let mut u = store
                .client
                .update_item()
                .table_name(&store.table)
                .set_key(Some(DynamoStore::key(record_pk(&t, &r.id), RECORD_SK)))
                .update_expression(format!("SET {}", expr.join(", ")));
            for (k, v) in &set {
                u = u.expression_attribute_values(format!(":{k}"), s(v));
            }
            u.send().await.unwrap();
            super::super::postings::clear_partition(
                &store,
                &super::super::postings::action_posting_pk(&t, r.occurred_at, r.category, &r.action),
            )
            .await;
        }
        let count = |f: EventFilter| {
            let store = store.clone();
            let t = t.clone();
            async move { crate::testkit::conformance::all(&store, &t, &f, 10).await.len() }
        };
        let media = EventFilter { actions: vec!["ACCESS_MEDIA".into()], ..window() };
        assert_eq!(count(media.clone()).await, 0, "layout-3 action entries are not where the planner reads");
        let report = store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        assert_eq!(report.iter().find(|u| u.tenant == t).unwrap().records, 24);
        assert_eq!(count(media).await, 18);
        assert_eq!(count(EventFilter { actions: vec!["LOGIN".into()], ..window() }).await, 6);
        assert_eq!(count(window()).await, 24);
        let item = store.get_item(record_pk(&t, "r04"), RECORD_SK).await.unwrap().unwrap();
        assert!(!item.contains_key("g2") && !item.contains_key("g4"), "the record left the old indexes");
        let again = store.upgrade_keys(Utc::now(), &|_, _, _| {}).await.unwrap();
        assert_eq!(again.iter().find(|u| u.tenant == t).unwrap().records, 0, "nothing is left in `g2`");
    }
}
