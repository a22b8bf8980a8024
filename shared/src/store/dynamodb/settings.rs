//! Settings and the tenant registry on DynamoDB: a setting is one item (`T#{tenant}#SET`, name)
//! holding its JSON; the registry is one partition (`TENANTS`) with an item per tenant, which
//! also notes the tenant's oldest record and each category's purge horizon (the bounds of the
//! retention purge).
//!
//! A category's horizon `h_{category}` is, once `hi_{category}` is set, a time no record of the
//! category is older than: a purge that emptied the category before a time raises it there (only
//! if it is still what the purge read), and an append of an older record lowers it. So the next
//! purge reads from the horizon, not from the tenant's oldest record — an hour of partitions, not
//! every day since the tenant began. Until a purge has set it (`hi_…` absent: a table written
//! before horizons, whose appends lowered no horizon), the purge reads from the oldest record.
//!
//! Only a *late* record (older than `late_after()`) can be older than a horizon: a purge's cut is at
//! least a day (`store::MIN_RETENTION_DAYS`) before it began, and a horizon never passes a cut. So an
//! append notes horizons for its late records alone (a live feed makes no horizon update), before
//! it lists any of them (`note_late`), for every record it was given whatever its outcome (a
//! record written by a try that failed comes back as a duplicate, listed again): first the latest
//! start of a late append of the category `hs_{category}` (raised to the append's start, never
//! lowered), then the oldest record of the late appends that started in the same quarter hour
//! (`ho_{category}_{k}`, see `QUARTER_SLOTS`), then the horizon, lowered to the record. A purge
//! raises the horizon only if it is still what the purge read, and no late append of the category
//! that started within the append grace (`postings_purge::APPEND_GRACE`, the longest an append
//! takes from its start to its writes) before the purge began reading may write a record below
//! the new horizon: none started then, or the quarters they started in noted no older record.
//! Such an append may write a record the purge did not see, at or after the horizon it read, so
//! lowering nothing, and it may stop for good after its writes. An append that started earlier has
//! written what it ever will before the purge read; and if the raise came before an append's
//! notes, the append lowers the raised horizon itself. So no record is ever left below a horizon,
//! whatever step an append stops at; and a tenant that sends late records all the time, each a few
//! days old, still has its purges raise the horizon of a category kept for months (the quarters
//! only hold back a raise past their records). `upgrade-keys` notes the records it lists in time
//! postings the same way. (`hl_{category}`, a late count bumped
//! after the writes by earlier versions, is still checked by the raise, for appends of those
//! versions in flight during a deployment.)

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::keys::{TENANTS_PK, settings_pk};
use super::{DynamoStore, classify, get_n, get_s, n, retry_throttled, s};
use crate::record::Category;
use crate::store::{ReadStats, SettingsStore, StoreError, StoreResult};

impl DynamoStore {
    /// An update of the tenant's registry item.
    pub(super) fn tenant_update(
        &self,
        tenant: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("pk", s(TENANTS_PK)).key("sk", s(tenant))
    }
}

/// Records newer than this before an append's start are not late (see the module's note): a day,
/// the shortest retention, less an hour for clocks.
pub(crate) fn late_after() -> chrono::Duration {
    chrono::Duration::days(i64::from(crate::store::MIN_RETENTION_DAYS)) - chrono::Duration::hours(1)
}

/// The oldest time of each category among `records` (µs), as `note_late` takes them.
pub(crate) fn oldest_by_category<'a>(
    records: impl IntoIterator<Item = &'a crate::record::Record>,
) -> BTreeMap<Category, i64> {
    let mut oldest = BTreeMap::new();
    for r in records {
        let ts = r.occurred_at.timestamp_micros();
        oldest.entry(r.category).and_modify(|t: &mut i64| *t = (*t).min(ts)).or_insert(ts);
    }
    oldest
}

/// Where a purge of one category starts reading, and what it read to raise the horizon after.
pub(crate) struct Horizon {
    /// The time no record of the category is older than, if known.
    pub start: Option<DateTime<Utc>>,
    /// The horizon attribute as read (absent: `None`).
    seen: Option<i64>,
    /// The category's late count as read (absent: `None`), written by earlier versions only.
    late: Option<i64>,
    /// When the purge read it (before reading the registry).
    pub read_at: DateTime<Utc>,
}

impl DynamoStore {
    /// A category's purge horizon, or else the tenant's oldest record.
    pub(crate) async fn horizon(&self, tenant: &str, category: Category) -> StoreResult<Horizon> {
        let read_at = Utc::now();
        let reg = self.get_item(TENANTS_PK.to_owned(), tenant).await?;
        let get = |k: &str| reg.as_ref().and_then(|i| get_n(i, k));
        let c = category.as_str();
        let seen = get(&format!("h_{c}"));
        let trusted = reg.as_ref().is_some_and(|i| i.contains_key(&format!("hi_{c}")));
        let start = if trusted { seen } else { get("oldest") };
        let late = get(&format!("hl_{c}"));
        Ok(Horizon { start: start.and_then(DateTime::from_timestamp_micros), seen, late, read_at })
    }

    /// For each category whose oldest record about to be appended is late (older than
    /// `late_after()` before `started`, when the append began): raises the category's latest late
    /// start to `started`, then lowers its horizon to that record (never sets an absent one: see the
    /// module's note). Called before the records are listed.
    pub(crate) async fn note_late(
        &self,
        tenant: &str,
        oldest: &BTreeMap<Category, i64>,
        started: DateTime<Utc>,
    ) -> StoreResult<()> {
        let late_before = (started - late_after()).timestamp_micros();
        let quarter = quarter_of(started);
        let notes = oldest.iter().filter(|(_, ts)| **ts < late_before).map(|(c, ts)| async move {
            let c = c.as_str();
            // `SET` the attributes of `values` if `condition` holds, and `first` unless set
            // (`if_not_exists`); whether it did.
            let set_if = |condition: &'static str, values: Vec<(String, i64)>, first: Option<(String, i64)>| {
                self.counters.registry_updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let mut set = (0..values.len()).map(|i| format!("#a{i} = :v{i}")).collect::<Vec<_>>();
                    if first.is_some() {
                        set.push("#f = if_not_exists(#f, :f)".to_owned());
                    }
                    let set = format!("SET {}", set.join(", "));
                    let done = self
                        .update_with_retry(|| {
                            let u = self.tenant_update(tenant).update_expression(&set).condition_expression(condition);
                            let u = match &first {
                                Some((name, value)) => u
                                    .expression_attribute_names("#f", name)
                                    .expression_attribute_values(":f", n(*value)),
                                None => u,
                            };
                            values.iter().enumerate().fold(u, |u, (i, (name, value))| {
                                u.expression_attribute_names(format!("#a{i}"), name)
                                    .expression_attribute_values(format!(":v{i}"), n(*value))
                            })
                        })
                        .await?;
                    StoreResult::Ok(done.is_some())
                }
            };
            let since = started.timestamp_micros();
            set_if("attribute_not_exists(#a0) OR #a0 < :v0", vec![(format!("hs_{c}"), since)], None).await?;
            // The oldest record of the late appends of this quarter hour: a new quarter in its slot,
            // else a lower time within the quarter; and when the category's slots were first
            // noted (`hf_`). Before the horizon: a raise that sees the start sees these too.
            let k = quarter.rem_euclid(QUARTER_SLOTS);
            let (hq, ho) = (format!("hq_{c}_{k}"), format!("ho_{c}_{k}"));
            let first = Some((format!("hf_{c}"), since));
            let fresh = "attribute_not_exists(#a0) OR #a0 < :v0";
            if !set_if(fresh, vec![(hq.clone(), quarter), (ho.clone(), *ts)], first.clone()).await? {
                set_if("#a0 = :v0 AND #a1 > :v1", vec![(hq, quarter), (ho, *ts)], first).await?;
            }
            set_if("#a0 > :v0", vec![(format!("h_{c}"), *ts)], None).await
        });
        futures_util::future::try_join_all(notes).await.map(|_| ())
    }

    /// Raises a category's horizon to `before` once a purge has emptied the category before it,
    /// if no append has moved the horizon since the purge read it, and no late append that may be
    /// in flight may write a record older than `before`: none started within the append grace
    /// before `first_read_at` (when the purge, or the first call of a purge in chunks, read it) or
    /// since, or those that did noted no record older than `before` (see the module's note). A
    /// refusal is no error. Whether it was raised.
    pub(crate) async fn raise_horizon(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        read: &Horizon,
        first_read_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let c = category.as_str();
        let since = first_read_at - self.append_grace;
        let old = quarter_of(since);
        let raised = self
            .update_with_retry(|| {
                let u = self
                    .tenant_update(tenant)
                    .update_expression("SET #h = :b, #hi = :one")
                    .expression_attribute_names("#h", format!("h_{c}"))
                    .expression_attribute_names("#hi", format!("hi_{c}"))
                    .expression_attribute_values(":b", n(before.timestamp_micros()))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_names("#hs", format!("hs_{c}"))
                    .expression_attribute_values(":since", n(since.timestamp_micros()))
                    .expression_attribute_names("#hl", format!("hl_{c}"))
                    .expression_attribute_values(":old", n(old));
                let (u, h) = match read.seen {
                    Some(seen) => (u.expression_attribute_values(":seen", n(seen)), "#h = :seen"),
                    None => (u, "attribute_not_exists(#h)"),
                };
                let (u, late) = match read.late {
                    Some(late) => (u.expression_attribute_values(":late", n(late)), "#hl = :late"),
                    None => (u, "attribute_not_exists(#hl)"),
                };
                // Every quarter from the one of `since` on noted nothing older than `before` (a
                // slot taken over by a later quarter meanwhile tells nothing: refused), and this
                // version noted the slots long enough before `since` that no append of an earlier
                // version, which notes none, can have started since (see `QUARTER_SLOTS`).
                let (u, mut quarters) = (0..QUARTER_SLOTS).fold((u, Vec::new()), |(u, mut q), k| {
                    q.push(format!("(attribute_not_exists(#q{k}) OR #q{k} < :old OR (#q{k} < :over AND #o{k} >= :b))"));
                    let u = u
                        .expression_attribute_names(format!("#q{k}"), format!("hq_{c}_{k}"))
                        .expression_attribute_names(format!("#o{k}"), format!("ho_{c}_{k}"));
                    (u, q)
                });
                quarters.push("#hf < :gate".to_owned());
                let u = u
                    .expression_attribute_values(":over", n(old + QUARTER_SLOTS))
                    .expression_attribute_names("#hf", format!("hf_{c}"))
                    .expression_attribute_values(":gate", n((since - self.append_grace).timestamp_micros()));
                let quiet = "attribute_not_exists(#hs) OR #hs < :since";
                u.condition_expression(format!("{h} AND {late} AND ({quiet} OR ({}))", quarters.join(" AND ")))
            })
            .await?;
        Ok(raised.is_some())
    }
}

/// Late appends are grouped by the quarter hour they started in (its number since 1970): the
/// registry keeps, per category, the oldest record noted by the late appends of each of the last
/// `QUARTER_SLOTS` quarters (`ho_{category}_{k}`, with the quarter in `hq_{category}_{k}`, for k
/// = quarter mod `QUARTER_SLOTS`; a slot is taken over by the quarter `QUARTER_SLOTS` later).
/// Eight slots hold two hours, more than a purge's reach back (the append grace and a chain's life,
/// `purge_chain::CHAIN_LIFE`); a raise that finds a slot of its reach taken over by a later
/// quarter is refused.
///
/// Appends of versions before the slots (2026-12-05) note only their start (`hs_`): one of them
/// in flight may write a record below a raise that the slots allow. So the slots count only once
/// this version has noted them (`hf_{category}`, its first slot note) more than the append grace
/// before the purge's `first_read_at − grace`: the older versions' appends started before that,
/// at the end of the deployment at the latest, so they have written all they ever will when the
/// purge reads (a deployment takes less than the grace to replace every function, and no
/// function runs longer than it, 900 s).
const QUARTER_SLOTS: i64 = 8;

fn quarter_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(15 * 60)
}

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn get_setting(&self, tenant: &str, name: &str) -> StoreResult<Option<serde_json::Value>> {
        self.get_item(settings_pk(tenant), name)
            .await?
            .as_ref()
            .and_then(|i| get_s(i, "value"))
            .map(|v| serde_json::from_str(v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn put_setting(&self, tenant: &str, name: &str, value: &serde_json::Value) -> StoreResult<()> {
        let (pk, value) = (settings_pk(tenant), value.to_string());
        retry_throttled(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(name))
                .item("value", s(&value))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.table))
        })
        .await
    }

    async fn swap_setting(
        &self,
        tenant: &str,
        name: &str,
        expected: Option<&serde_json::Value>,
        value: &serde_json::Value,
    ) -> StoreResult<()> {
        let (pk, text) = (settings_pk(tenant), value.to_string());
        // The stored text is `Value::to_string` of what was written, as `expected` is of what was
        // read back (serde_json's maps are sorted): equal values give equal text.
        let expected = expected.map(ToString::to_string);
        let outcome = retry_throttled(|| async {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(name))
                .item("value", s(&text));
            let put = match &expected {
                Some(old) => put.condition_expression("#v = :old").expression_attribute_values(":old", s(old)),
                None => put.condition_expression("attribute_not_exists(#v)"),
            };
            put.expression_attribute_names("#v", "value").send().await.map(|_| ()).map_err(|e| classify(e, &self.table))
        })
        .await;
        match outcome {
            // A put applied whose answer was lost (a timeout, a 5xx) fails its condition when
            // retried: the stored value being ours is that success, not a conflict.
            Err(StoreError::Conflict(_)) => match self.get_setting(tenant, name).await? {
                Some(stored) if stored == *value => Ok(()),
                _ => Err(StoreError::Conflict(format!("setting {name} changed meanwhile"))),
            },
            other => other,
        }
    }

    async fn register_tenant(&self, tenant: &str) -> StoreResult<()> {
        self.update_with_retry(|| {
            self.tenant_update(tenant)
                .update_expression("SET registered = if_not_exists(registered, :t)")
                .expression_attribute_values(":t", n(Utc::now().timestamp()))
        })
        .await
        .map(|_| ())
    }

    async fn tenants(&self) -> StoreResult<Vec<String>> {
        let query = |_| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(TENANTS_PK))
        };
        let keep = |i: &super::Item| Ok(get_s(i, "sk").map(str::to_owned));
        Ok(self.read_pages(None, usize::MAX, &mut ReadStats::default(), query, keep).await?.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ResultCode;
    use crate::store::RecordStore;
    use crate::testkit::conformance::{rec, t0, tenant};

    /// The category's horizon as the registry holds it (µs).
    async fn horizon_of(store: &DynamoStore, t: &str) -> Option<i64> {
        let reg = store.get_item(TENANTS_PK.to_owned(), t).await.unwrap().unwrap();
        get_n(&reg, "h_sign_in")
    }

    /// A tenant whose sign-ins were purged up to day 1 (the horizon), on a store without grace.
    async fn purged(name: &str) -> (DynamoStore, String, impl Fn(i64) -> DateTime<Utc>) {
        let (store, _) = crate::testkit::moto::fresh().await;
        let store = store.with_append_grace(chrono::Duration::zero());
        let t = tenant(name);
        let day = |d: i64| t0() + chrono::Duration::days(d);
        store.append(&t, &[rec(&t, "old", 0, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        assert_eq!(store.purge(&t, Category::SignIn, day(1), 100).await.unwrap().len(), 1);
        assert_eq!(horizon_of(&store, &t).await, Some(day(1).timestamp_micros()));
        // As if that was hours ago: the quarter slots forget its append.
        let slots = (0..QUARTER_SLOTS).map(|k| format!("hq_sign_in_{k}, ho_sign_in_{k}")).collect::<Vec<_>>();
        store.tenant_update(&t).update_expression(format!("REMOVE {}", slots.join(", "))).send().await.unwrap();
        (store, t, day)
    }

    /// A late append that started after the purge read (so may be in flight) holds the raise back
    /// only if it noted a record older than the raise's target: a tenant sending some late record
    /// every few minutes, each a few days old, does not keep a category kept for months from
    /// ever raising its horizon.
    #[tokio::test]
    async fn a_late_append_of_records_after_the_cut_lets_the_horizon_rise() {
        let (store, t, day) = purged("late-stream").await;
        let read = store.horizon(&t, Category::SignIn).await.unwrap();
        store.append(&t, &[rec(&t, "late", 6 * 24 * 60, "LOGIN", "bob", ResultCode::Ok)]).await.unwrap();
        assert!(store.raise_horizon(&t, Category::SignIn, day(5), &read, read.read_at).await.unwrap());
        assert_eq!(horizon_of(&store, &t).await, Some(day(5).timestamp_micros()));
        // The same append, in flight as far as a purge (in chunks) that first read before it
        // started knows, is older than that purge's cut.
        let again = store.horizon(&t, Category::SignIn).await.unwrap();
        assert!(!store.raise_horizon(&t, Category::SignIn, day(8), &again, read.read_at).await.unwrap());
        assert_eq!(horizon_of(&store, &t).await, Some(day(5).timestamp_micros()));
        let gone = store.purge(&t, Category::SignIn, day(8), 100).await.unwrap();
        assert_eq!(gone.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["late"]);
    }

    /// The oldest record a quarter hour's late appends noted holds back the raises of purges that
    /// read within the grace after that quarter, and no later one: its slot is then ignored, and
    /// taken over by the quarter two hours on, which refuses a raise that still counts the first.
    /// The slots count only once this version has noted them for longer than the grace.
    #[tokio::test]
    async fn the_oldest_late_record_of_each_quarter_hour_holds_back_the_raises_of_its_time() {
        let (store, t, day) = purged("late-quarters").await;
        let now = Utc::now();
        let q = quarter_of(now);
        let note = |quarter: i64, oldest: i64, first: DateTime<Utc>| {
            let k = quarter.rem_euclid(QUARTER_SLOTS);
            store
                .tenant_update(&t)
                .update_expression("SET hs_sign_in = :s, hf_sign_in = :f, #q = :q, #o = :o")
                .expression_attribute_names("#q", format!("hq_sign_in_{k}"))
                .expression_attribute_names("#o", format!("ho_sign_in_{k}"))
                .expression_attribute_values(":s", n(now.timestamp_micros()))
                .expression_attribute_values(":f", n(first.timestamp_micros()))
                .expression_attribute_values(":q", n(quarter))
                .expression_attribute_values(":o", n(day(oldest).timestamp_micros()))
                .send()
        };
        let day = &day;
        let raise = |to: i64, first_read_at: DateTime<Utc>| {
            let (store, t) = (&store, &t);
            async move {
                let read = store.horizon(t, Category::SignIn).await.unwrap();
                store.raise_horizon(t, Category::SignIn, day(to), &read, first_read_at).await.unwrap()
            }
        };
        let long_ago = now - chrono::Duration::days(1);
        // This quarter's late appends noted a record of day 2: below day 5, above day 1.
        note(q, 2, long_ago).await.unwrap();
        assert!(!raise(5, now).await);
        assert!(raise(2, now).await);
        // Two hours back, the same slot: past, whatever its record.
        note(q - QUARTER_SLOTS, 2, long_ago).await.unwrap();
        assert!(raise(5, now).await);
        assert_eq!(horizon_of(&store, &t).await, Some(day(5).timestamp_micros()));
        // A purge that first read two hours back counted that quarter's slot, which this quarter
        // has taken over since: refused, however late its record.
        note(q, 9, long_ago).await.unwrap();
        assert!(!raise(6, now - chrono::Duration::hours(2)).await);
        assert!(raise(6, now).await);
        // Slots first noted within the grace before the purge's reach (here: no grace, after its
        // first read) may sit beside an earlier version's append, which notes none: refused.
        note(q, 9, now + chrono::Duration::seconds(1)).await.unwrap();
        assert!(!raise(7, now).await);
        note(q, 9, long_ago).await.unwrap();
        assert!(raise(7, now).await);
    }

    /// Two late appends in one quarter hour: the slot keeps the older of their records, so a
    /// purge that read before both is held back below it, not below the first's. And the slot is
    /// noted before the horizon: an append that stops at its horizon note has noted its quarter.
    #[tokio::test]
    async fn a_quarter_hour_keeps_the_oldest_record_of_its_late_appends() {
        use crate::testkit::faults::{matching_client, store_over};
        let (store, t, day) = purged("late-quarter").await;
        let read = store.horizon(&t, Category::SignIn).await.unwrap();
        store.append(&t, &[rec(&t, "a", 6 * 24 * 60, "LOGIN", "bob", ResultCode::Ok)]).await.unwrap();
        store.append(&t, &[rec(&t, "b", 4 * 24 * 60, "LOGIN", "bob", ResultCode::Ok)]).await.unwrap();
        let again = store.horizon(&t, Category::SignIn).await.unwrap();
        assert!(!store.raise_horizon(&t, Category::SignIn, day(5), &again, read.read_at).await.unwrap());
        assert!(store.raise_horizon(&t, Category::SignIn, day(4), &again, read.read_at).await.unwrap());

        let (store, t, day) = purged("late-quarter-stop").await;
        let (http, _) = matching_client("UpdateItem", "\"h_sign_in\"", None);
        let stopping = store_over(&store.table, http).await.with_append_grace(chrono::Duration::zero());
        let late = rec(&t, "late", 3 * 24 * 60, "LOGIN", "bob", ResultCode::Ok);
        assert!(stopping.append(&t, std::slice::from_ref(&late)).await.is_err());
        let reg = store.get_item(TENANTS_PK.to_owned(), &t).await.unwrap().unwrap();
        let k = quarter_of(Utc::now()).rem_euclid(QUARTER_SLOTS);
        assert_eq!(get_n(&reg, &format!("ho_sign_in_{k}")), Some(late.occurred_at.timestamp_micros()));
        assert_eq!(horizon_of(&store, &t).await, Some(day(1).timestamp_micros()), "the horizon note stopped");
    }
}
