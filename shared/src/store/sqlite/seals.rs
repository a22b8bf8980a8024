//! The journal and the seals in SQLite: a journal row per append batch, numbered in commit
//! order (so nothing committed can appear behind the sealer's position: no settle time), and a
//! row per seal with its JSON.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params_from_iter};

use super::{SqliteStore, decode};
use crate::record::Record;
use crate::seal::{PurgeNote, Seal};
use crate::store::{JournalEntry, SealStore, StoreError, StoreResult};

pub(super) fn insert_journal(
    tx: &Transaction<'_>,
    tenant: &str,
    batch: &str,
    ids: &[&str],
    purges: &[PurgeNote],
) -> StoreResult<()> {
    let ids = serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let purges = if purges.is_empty() {
        None
    } else {
        Some(serde_json::to_string(purges).map_err(|e| StoreError::Invalid(e.to_string()))?)
    };
    tx.prepare_cached("INSERT INTO journal (tenant, batch, ids, purges) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute(rusqlite::params![tenant, batch, ids, purges]))
        .map_err(StoreError::backend)?;
    Ok(())
}

fn pos(p: i64) -> String {
    format!("{p:020}")
}

fn unpos(p: Option<&str>) -> StoreResult<i64> {
    p.map_or(Ok(0), |p| p.parse().map_err(|_| StoreError::Invalid(format!("`{p}` is not a SQLite journal position"))))
}

fn seal_of(body: &str) -> StoreResult<Seal> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("seal: {e}")))
}

#[async_trait]
impl SealStore for SqliteStore {
    async fn journal(
        &self,
        tenant: &str,
        after: Option<&str>,
        to: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<JournalEntry>> {
        // A seal covers every record appended before it: the inbox's first.
        self.settled().await?;
        let (tenant, after) = (tenant.to_owned(), unpos(after)?);
        let to = match to {
            Some(t) => unpos(Some(t))?,
            None => i64::MAX,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT pos, batch, ids, purges FROM journal WHERE tenant = ?1 AND pos > ?2 AND pos <= ?3 \
                     ORDER BY pos LIMIT ?4",
                )
                .map_err(StoreError::backend)?;
            let rows = stmt
                .query_map(rusqlite::params![tenant, after, to, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(StoreError::backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (p, batch, ids, purges) = row.map_err(StoreError::backend)?;
                let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("journal {p}: {e}"));
                out.push(JournalEntry {
                    pos: pos(p),
                    batch,
                    ids: serde_json::from_str(&ids).map_err(corrupt)?,
                    purges: purges.map(|s| serde_json::from_str(&s)).transpose().map_err(corrupt)?.unwrap_or_default(),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn note_purges(&self, tenant: &str, batch: &str, notes: &[PurgeNote]) -> StoreResult<()> {
        let (tenant, batch, notes) = (tenant.to_owned(), batch.to_owned(), notes.to_vec());
        self.write(move |conn| {
            let tx = super::pool::write_transaction(conn)?;
            insert_journal(&tx, &tenant, &batch, &[], &notes)?;
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn records_by_id(&self, tenant: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (tenant, ids) = (tenant.to_owned(), ids.to_vec());
        self.read(move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!("SELECT body FROM records WHERE tenant = ? AND id IN ({marks})");
                let mut stmt = conn.prepare_cached(&sql).map_err(StoreError::backend)?;
                let params = std::iter::once(tenant.as_str()).chain(chunk.iter().map(String::as_str));
                let rows =
                    stmt.query_map(params_from_iter(params), |r| r.get::<_, String>(0)).map_err(StoreError::backend)?;
                for body in rows {
                    out.push(decode(&body.map_err(StoreError::backend)?)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn put_seal(&self, seal: &Seal) -> StoreResult<()> {
        let body = serde_json::to_string(seal).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let b = &seal.statement.body;
        let (tenant, seq, to_pos) = (b.tenant.clone(), b.seq as i64, b.to_pos.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO seals (tenant, seq, to_pos, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    rusqlite::params![tenant, seq, to_pos, body],
                )
                .map_err(StoreError::backend)?;
            if n == 0 { Err(StoreError::Conflict(format!("seal {seq} exists"))) } else { Ok(()) }
        })
        .await
    }

    async fn seals(&self, tenant: &str, from: u64, limit: usize) -> StoreResult<Vec<Seal>> {
        let tenant = tenant.to_owned();
        let (from, limit) = (i64::try_from(from).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT body FROM seals WHERE tenant = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")
                .map_err(StoreError::backend)?;
            let rows = stmt
                .query_map(rusqlite::params![tenant, from, limit], |r| r.get::<_, String>(0))
                .map_err(StoreError::backend)?;
            rows.map(|b| seal_of(&b.map_err(StoreError::backend)?)).collect()
        })
        .await
    }

    async fn last_seal(&self, tenant: &str) -> StoreResult<Option<Seal>> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM seals WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1")
                .and_then(|mut s| s.query_row([&tenant], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            body.as_deref().map(seal_of).transpose()
        })
        .await
    }

    async fn seal_of_batch(&self, tenant: &str, batch: &str) -> StoreResult<Option<Seal>> {
        let (tenant, batch) = (tenant.to_owned(), batch.to_owned());
        self.read(move |conn| {
            let p: Option<i64> = conn
                .prepare_cached("SELECT pos FROM journal WHERE tenant = ?1 AND batch = ?2 LIMIT 1")
                .and_then(|mut s| s.query_row([&tenant, &batch], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            let Some(p) = p else { return Ok(None) };
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM seals WHERE tenant = ?1 AND to_pos >= ?2 ORDER BY to_pos LIMIT 1")
                .and_then(|mut s| s.query_row([&tenant, &pos(p)], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            body.as_deref().map(seal_of).transpose()
        })
        .await
    }

    fn settle_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
