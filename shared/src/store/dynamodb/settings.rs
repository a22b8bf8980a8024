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
//! lowered), then the horizon, lowered to the record. A purge raises the horizon only if it is
//! still what the purge read and no late append of the category started within the append grace
//! (`postings_purge::APPEND_GRACE`, the longest an append takes from its start to its writes)
//! before the purge began reading: such an append may write a record the purge did not see, at or
//! after the horizon it read, so lowering nothing, and it may stop for good after its writes. An
//! append that started earlier has written what it ever will before the purge read; and if the
//! raise came before an append's notes, the append lowers the raised horizon itself. So no
//! record is ever left below a horizon, whatever step an append stops at. `upgrade-keys` notes
//! the records it lists in time postings the same way. (`hl_{category}`, a late count bumped
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
        let notes = oldest.iter().filter(|(_, ts)| **ts < late_before).map(|(c, ts)| async move {
            let c = c.as_str();
            // `name` = `value` if `condition` holds (a refusal is no error).
            let set_if = |condition: &'static str, name: String, value: i64| {
                self.counters.registry_updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.update_with_retry(move || {
                    self.tenant_update(tenant)
                        .update_expression("SET #a = :v")
                        .condition_expression(condition)
                        .expression_attribute_names("#a", name.clone())
                        .expression_attribute_values(":v", n(value))
                })
            };
            let since = started.timestamp_micros();
            set_if("attribute_not_exists(#a) OR #a < :v", format!("hs_{c}"), since).await?;
            set_if("#a > :v", format!("h_{c}"), *ts).await
        });
        futures_util::future::try_join_all(notes).await.map(|_| ())
    }

    /// Raises a category's horizon to `before` once a purge has emptied the category before it,
    /// if no append has moved the horizon since the purge read it, nor started to append a late
    /// record of the category within the append grace before `first_read_at` (when the purge, or
    /// the first call of a purge in chunks, read it: see the module's note) or since.
    pub(crate) async fn raise_horizon(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        read: &Horizon,
        first_read_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let c = category.as_str();
        self.update_with_retry(|| {
            let u = self
                .tenant_update(tenant)
                .update_expression("SET #h = :b, #hi = :one")
                .expression_attribute_names("#h", format!("h_{c}"))
                .expression_attribute_names("#hi", format!("hi_{c}"))
                .expression_attribute_values(":b", n(before.timestamp_micros()))
                .expression_attribute_values(":one", n(1));
            let (u, h) = match read.seen {
                Some(seen) => (u.expression_attribute_values(":seen", n(seen)), "#h = :seen"),
                None => (u, "attribute_not_exists(#h)"),
            };
            let since = (first_read_at - self.append_grace).timestamp_micros();
            let u = u
                .expression_attribute_names("#hs", format!("hs_{c}"))
                .expression_attribute_values(":since", n(since))
                .expression_attribute_names("#hl", format!("hl_{c}"));
            let started = "(attribute_not_exists(#hs) OR #hs < :since)";
            match read.late {
                Some(late) => u
                    .condition_expression(format!("{h} AND {started} AND #hl = :late"))
                    .expression_attribute_values(":late", n(late)),
                None => u.condition_expression(format!("{h} AND {started} AND attribute_not_exists(#hl)")),
            }
        })
        .await
        .map(|_| ())
    }
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
