//! Settings and the tenant registry in SQLite: a row per (tenant, name) holding its JSON, and a
//! row per tenant that has data.

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::SqliteStore;
use crate::store::{SettingsStore, StoreError, StoreResult};

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn get_setting(&self, tenant: &str, name: &str) -> StoreResult<Option<serde_json::Value>> {
        let (tenant, name) = (tenant.to_owned(), name.to_owned());
        self.read(move |conn| {
            let v: Option<String> = conn
                .prepare_cached("SELECT value FROM settings WHERE tenant = ?1 AND name = ?2")
                .and_then(|mut s| s.query_row([&tenant, &name], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            v.map(|v| serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
        })
        .await
    }

    async fn put_setting(&self, tenant: &str, name: &str, value: &serde_json::Value) -> StoreResult<()> {
        let (tenant, name, value) = (tenant.to_owned(), name.to_owned(), value.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO settings (tenant, name, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant, name) DO UPDATE SET value = excluded.value",
                rusqlite::params![tenant, name, value],
            )
            .map_err(StoreError::backend)?;
            Ok(())
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
        let (tenant, name, value) = (tenant.to_owned(), name.to_owned(), value.to_string());
        let expected = expected.map(ToString::to_string);
        self.write(move |conn| {
            let n = match &expected {
                // Compared as JSON, not as text: SQLite's json() normalises both sides.
                Some(old) => conn.execute(
                    "UPDATE settings SET value = ?3 WHERE tenant = ?1 AND name = ?2 AND json(value) = json(?4)",
                    rusqlite::params![tenant, name, value, old],
                ),
                None => conn.execute(
                    "INSERT INTO settings (tenant, name, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (tenant, name) DO NOTHING",
                    rusqlite::params![tenant, name, value],
                ),
            }
            .map_err(StoreError::backend)?;
            // As on DynamoDB, a swap repeated once applied (a retry) finds its own value: done.
            let ours = || -> StoreResult<bool> {
                conn.prepare_cached("SELECT json(value) = json(?3) FROM settings WHERE tenant = ?1 AND name = ?2")
                    .and_then(|mut st| st.query_row(rusqlite::params![tenant, name, value], |r| r.get(0)).optional())
                    .map(|same: Option<bool>| same == Some(true))
                    .map_err(StoreError::backend)
            };
            if n == 1 || ours()? {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!("setting {name} changed meanwhile")))
            }
        })
        .await
    }

    async fn register_tenant(&self, tenant: &str) -> StoreResult<()> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            conn.execute("INSERT OR IGNORE INTO tenants (tenant) VALUES (?1)", [tenant])
                .map_err(StoreError::backend)?;
            Ok(())
        })
        .await
    }

    async fn tenants(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT tenant FROM tenants ORDER BY tenant").map_err(StoreError::backend)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(StoreError::backend)?
                .collect::<Result<_, _>>()
                .map_err(StoreError::backend)
        })
        .await
    }
}
