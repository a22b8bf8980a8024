//! Settings and the tenant registry on DynamoDB: a setting is one item (`T#{tenant}#SET`, name)
//! holding its JSON; the registry is one partition (`TENANTS`) with an item per tenant, which
//! also notes the tenant's oldest record (the bound of the retention purge).

use async_trait::async_trait;
use chrono::Utc;

use super::keys::{TENANTS_PK, settings_pk};
use super::{DynamoStore, classify, get_s, n, retry_throttled, s};
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
