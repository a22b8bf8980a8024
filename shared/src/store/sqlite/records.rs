//! Records in SQLite: a row per record with its indexed columns and its body; appends are one
//! transaction that also writes the subject index and the request pairs; queries run the
//! planner's branches and merge them by (time, id).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params_from_iter};
use serde_json::json;

use super::pairs::pair_upsert;
use super::planner::plan;
use super::seals::insert_journal;
use super::subjects::insert_subjects;
use super::{SqliteStore, decode, micros};
use crate::record::{Category, Record, fold};
use crate::store::{
    AppendOutcome, EventFilter, Order, PageRequest, ReadStats, RecordPage, RecordStore, StoreError, StoreResult,
};

/// A record's indexed columns, in the order `?1`–`?12` of the insert and the update.
#[allow(clippy::type_complexity)]
fn record_row<'a>(
    tenant: &'a str,
    r: &'a Record,
    body: &'a str,
) -> (
    &'a str,
    &'a str,
    i64,
    &'static str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    Option<&'a str>,
    Option<&'static str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
) {
    (
        tenant,
        &r.id,
        micros(r.occurred_at),
        r.category.as_str(),
        &r.action,
        r.actor.user_id.as_deref(),
        r.actor.username.as_deref().map(fold),
        r.actor.employee_id.as_deref(),
        r.result.map(|x| x.as_str()),
        r.session_id.as_deref(),
        r.correlation_id.as_deref(),
        body,
    )
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        let batch = ulid::Ulid::generate().to_string();
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                debug_assert_eq!(r.tenant_id, tenant);
                let mut r = r.clone();
                crate::record::integrity::stamp(&mut r, &batch);
                let body = serde_json::to_string(&r).map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok((r, body))
            })
            .collect::<StoreResult<_>>()?;
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            let mut out = Vec::with_capacity(rows.len());
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO records (tenant, id, ts, category, action, user_id, username, employee_id, \
                         result, session_id, correlation_id, body) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12) \
                         ON CONFLICT (tenant, id) DO NOTHING",
                    )
                    .map_err(StoreError::backend)?;
                for (r, body) in &rows {
                    let n = stmt.execute(record_row(&tenant, r, body)).map_err(StoreError::backend)?;
                    out.push(if n == 1 { AppendOutcome::Created } else { AppendOutcome::Duplicate });
                    if n == 1 {
                        insert_subjects(&tx, &tenant, r)?;
                    }
                    if n == 1
                        && let (Some(phase), Some(corr)) = (r.phase, &r.correlation_id)
                    {
                        pair_upsert(&tx, &tenant, corr, r, phase)?;
                    }
                }
            }
            // The journal entry commits with the records: the sealer reads it in commit order.
            let created: Vec<&str> = rows
                .iter()
                .zip(&out)
                .filter(|(_, o)| **o == AppendOutcome::Created)
                .map(|((r, _), _)| r.id.as_str())
                .collect();
            if !created.is_empty() {
                insert_journal(&tx, &tenant, &batch, &created, &[])?;
            }
            tx.commit().map_err(StoreError::backend)?;
            Ok(out)
        })
        .await
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Record>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM records WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut s| s.query_row([&tenant, &id], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            body.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn query(&self, tenant: &str, filter: &EventFilter, page: PageRequest) -> StoreResult<RecordPage> {
        let after = match page.after {
            None => None,
            Some(p) => {
                let ts = p.get("ts").and_then(|v| v.as_i64());
                let id = p.get("id").and_then(|v| v.as_str()).map(str::to_owned);
                match (ts, id) {
                    (Some(ts), Some(id)) => Some((ts, id)),
                    _ => return Err(StoreError::Invalid("cursor position is not a SQLite position".into())),
                }
            }
        };
        let limit = page.limit.max(1);
        let branches = plan(tenant, filter, after, limit);
        let desc = filter.order == Order::NewestFirst;
        self.read(move |conn| {
            let mut rows: Vec<(i64, String, String)> = Vec::new();
            let mut stats = ReadStats::default();
            let plan_name = branches.first().map(|b| b.index).unwrap_or("time").to_owned();
            for b in &branches {
                let mut stmt = conn.prepare_cached(&b.sql).map_err(StoreError::backend)?;
                let it = stmt
                    .query_map(params_from_iter(b.params.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(StoreError::backend)?;
                for row in it {
                    rows.push(row.map_err(StoreError::backend)?);
                    stats.items_read += 1;
                }
                stats.queries += 1;
            }
            rows.sort_by(|a, b| {
                let o = (a.0, &a.1).cmp(&(b.0, &b.1));
                if desc { o.reverse() } else { o }
            });
            rows.dedup_by(|a, b| a.1 == b.1);
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = if more { rows.last().map(|(ts, id, _)| json!({"ts": ts, "id": id})) } else { None };
            let records = rows.iter().map(|(_, _, body)| decode(body)).collect::<StoreResult<Vec<_>>>()?;
            stats.items_returned = records.len() as u64;
            Ok(RecordPage { records, next, stats, plan: plan_name })
        })
        .await
    }

    async fn purge(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Record>> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            let rows: Vec<(i64, String)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT seq, body FROM records WHERE tenant = ?1 AND category = ?2 AND ts < ?3 \
                         ORDER BY ts, id LIMIT ?4",
                    )
                    .map_err(StoreError::backend)?;
                stmt.query_map(rusqlite::params![tenant, category.as_str(), micros(before), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(StoreError::backend)?
                .collect::<Result<_, _>>()
                .map_err(StoreError::backend)?
            };
            let mut out = Vec::with_capacity(rows.len());
            for (seq, body) in rows {
                let rec = decode(&body)?;
                tx.execute("DELETE FROM records WHERE seq = ?1", [seq]).map_err(StoreError::backend)?;
                tx.execute("DELETE FROM subjects WHERE tenant = ?1 AND record_id = ?2", rusqlite::params![tenant, rec.id])
                    .map_err(StoreError::backend)?;
                if let Some(corr) = &rec.correlation_id {
                    tx.execute(
                        "DELETE FROM requests WHERE tenant = ?1 AND correlation_id = ?2 AND (start_id = ?3 OR end_id = ?3)",
                        rusqlite::params![tenant, corr, rec.id],
                    )
                    .map_err(StoreError::backend)?;
                }
                out.push(rec);
            }
            tx.commit().map_err(StoreError::backend)?;
            Ok(out)
        })
        .await
    }

    async fn replace(&self, tenant: &str, r: &Record) -> StoreResult<()> {
        let body = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let (tenant, r) = (tenant.to_owned(), r.clone());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(StoreError::backend)?;
            let n = tx
                .execute(
                    "UPDATE records SET ts = ?3, category = ?4, action = ?5, user_id = ?6, username = ?7, employee_id = ?8, \
                     result = ?9, session_id = ?10, correlation_id = ?11, body = ?12 WHERE tenant = ?1 AND id = ?2",
                    record_row(&tenant, &r, &body),
                )
                .map_err(StoreError::backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.execute("DELETE FROM subjects WHERE tenant = ?1 AND record_id = ?2", rusqlite::params![tenant, r.id])
                .map_err(StoreError::backend)?;
            insert_subjects(&tx, &tenant, &r)?;
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn maintain(&self) -> StoreResult<()> {
        self.optimize().await
    }

    async fn wipe_removed(&self) -> StoreResult<()> {
        self.write(|c| {
            // A reader in the middle of a statement keeps the log busy: wait for it (readers
            // hold no transaction between calls), then give up as a transient failure, so the
            // job is retried rather than reported done with the bytes still in the log.
            for _ in 0..100 {
                let (busy, _, _): (i64, i64, i64) = c
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(StoreError::backend)?;
                if busy == 0 {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(StoreError::Backend(anyhow::anyhow!("the WAL stayed busy: removed data is not wiped yet")))
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
