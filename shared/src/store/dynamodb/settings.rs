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

/// Where a purge of one category starts reading, and what it read to raise the horizon after.
pub(crate) struct Horizon {
    /// The time no record of the category is older than, if known.
    pub start: Option<DateTime<Utc>>,
    /// The horizon attribute as read (absent: `None`).
    seen: Option<i64>,
}

impl DynamoStore {
    /// A category's purge horizon, or else the tenant's oldest record.
    pub(crate) async fn horizon(&self, tenant: &str, category: Category) -> StoreResult<Horizon> {
        let reg = self.get_item(TENANTS_PK.to_owned(), tenant).await?;
        let get = |k: &str| reg.as_ref().and_then(|i| get_n(i, k));
        let c = category.as_str();
        let seen = get(&format!("h_{c}"));
        let trusted = reg.as_ref().is_some_and(|i| i.contains_key(&format!("hi_{c}")));
        let start = if trusted { seen } else { get("oldest") };
        Ok(Horizon { start: start.and_then(DateTime::from_timestamp_micros), seen })
    }

    /// Lowers the horizon of each category to its oldest record just appended (never sets an
    /// absent one: see the module's note).
    pub(crate) async fn note_horizons(&self, tenant: &str, oldest: &BTreeMap<Category, i64>) -> StoreResult<()> {
        let mut updates = Vec::new();
        for (c, ts) in oldest {
            updates.push(self.update_with_retry(move || {
                self.tenant_update(tenant)
                    .update_expression("SET #h = :t")
                    .condition_expression("#h > :t")
                    .expression_attribute_names("#h", format!("h_{}", c.as_str()))
                    .expression_attribute_values(":t", n(*ts))
            }));
        }
        futures_util::future::try_join_all(updates).await.map(|_| ())
    }

    /// Raises a category's horizon to `before` once a purge has emptied the category before it,
    /// if no append has moved the horizon since the purge read it.
    pub(crate) async fn raise_horizon(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        read: &Horizon,
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
            match read.seen {
                Some(seen) => u.condition_expression("#h = :seen").expression_attribute_values(":seen", n(seen)),
                None => u.condition_expression("attribute_not_exists(#h)"),
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
