//! The DPO subject index in SQLite, with the uploads records name: a row per (tenant, key,
//! record), written in the append's transaction, rewritten by `replace`, deleted with the
//! record; a lookup joins its records.

use async_trait::async_trait;

use super::{SqliteStore, decode, micros};
use crate::record::Record;
use crate::store::{ReadStats, StoreError, StoreResult, SubjectStore};

pub(super) fn insert_subjects(tx: &rusqlite::Transaction<'_>, tenant: &str, r: &Record) -> StoreResult<()> {
    let keys = crate::record::subject::index_keys(r);
    if keys.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached("INSERT OR IGNORE INTO subjects (tenant, key, record_id) VALUES (?1, ?2, ?3)")
        .map_err(StoreError::backend)?;
    for k in keys {
        stmt.execute(rusqlite::params![tenant, k, r.id]).map_err(StoreError::backend)?;
    }
    Ok(())
}

#[async_trait]
impl SubjectStore for SqliteStore {
    async fn subject_lookup(
        &self,
        tenant: &str,
        key: &str,
        prefix: bool,
        (from, to): (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>),
        limit: usize,
    ) -> StoreResult<(Vec<Record>, ReadStats)> {
        self.settled().await?;
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        let (from, to) = (from.map_or(i64::MIN, micros), to.map_or(i64::MAX, micros));
        let bodies: Vec<String> = self
            .read(move |conn| {
                // A prefix is the key range [key, key + U+10FFFF): served by the primary key. The
                // window is applied in the join, before the limit.
                let upper = if prefix { format!("{key}\u{10FFFF}") } else { key.clone() };
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT r.body FROM records r WHERE r.tenant = ?1 AND r.ts >= ?5 AND r.ts < ?6 \
                         AND r.id IN (SELECT record_id FROM subjects WHERE tenant = ?1 AND key >= ?2 AND key <= ?3) \
                         LIMIT ?4",
                    )
                    .map_err(StoreError::backend)?;
                stmt.query_map(rusqlite::params![tenant, key, upper, limit as i64 + 1, from, to], |r| r.get(0))
                    .map_err(StoreError::backend)?
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::backend)
            })
            .await?;
        let records = bodies.iter().map(|b| decode(b)).collect::<StoreResult<Vec<_>>>()?;
        let n = records.len() as u64;
        Ok((records, ReadStats { items_read: n, items_returned: n, queries: 1, ..Default::default() }))
    }
}
