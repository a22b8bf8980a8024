//! Request pairs in SQLite: one row per correlation id, upserted by each side in the append's
//! transaction; partial indexes serve the slow (`req_delay`) and unfinished (`req_open`) listings.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params_from_iter, types::Value as SqlValue};
use serde_json::json;

use super::{SqliteStore, micros};
use crate::record::{Phase, Record, ResultCode};
use crate::store::{
    PageRequest, ReadStats, RequestPage, RequestPair, RequestQuery, RequestStore, StoreError, StoreResult,
};

/// Records one side of a request pair; the delay is computed once both sides are known.
pub(super) fn pair_upsert(
    tx: &rusqlite::Transaction<'_>,
    tenant: &str,
    corr: &str,
    r: &Record,
    phase: Phase,
) -> StoreResult<()> {
    let ts = micros(r.occurred_at);
    let sql = match phase {
        Phase::Start => {
            "INSERT INTO requests (tenant, correlation_id, action, start_id, start_ts) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, correlation_id) DO UPDATE SET start_id = excluded.start_id, start_ts = excluded.start_ts, \
             delay_ms = CASE WHEN end_ts IS NULL THEN NULL ELSE (end_ts - excluded.start_ts) / 1000 END"
        }
        Phase::End => {
            "INSERT INTO requests (tenant, correlation_id, action, end_id, end_ts, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (tenant, correlation_id) DO UPDATE SET end_id = excluded.end_id, end_ts = excluded.end_ts, \
             result = excluded.result, \
             delay_ms = CASE WHEN start_ts IS NULL THEN NULL ELSE (excluded.end_ts - start_ts) / 1000 END"
        }
    };
    let mut stmt = tx.prepare_cached(sql).map_err(StoreError::backend)?;
    match phase {
        Phase::Start => stmt.execute(rusqlite::params![tenant, corr, r.action, r.id, ts]),
        Phase::End => stmt.execute(rusqlite::params![tenant, corr, r.action, r.id, ts, r.result.map(|x| x.as_str())]),
    }
    .map_err(StoreError::backend)?;
    Ok(())
}

const PAIR_COLUMNS: &str = "correlation_id, action, start_id, end_id, start_ts, end_ts, delay_ms, result";

fn pair_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestPair> {
    let time = |v: Option<i64>| v.and_then(chrono::DateTime::from_timestamp_micros);
    Ok(RequestPair {
        correlation_id: row.get(0)?,
        action: row.get(1)?,
        start_id: row.get(2)?,
        end_id: row.get(3)?,
        started_at: time(row.get(4)?),
        ended_at: time(row.get(5)?),
        delay_ms: row.get(6)?,
        result: row.get::<_, Option<String>>(7)?.as_deref().and_then(ResultCode::parse),
    })
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn pair(&self, tenant: &str, correlation_id: &str) -> StoreResult<Option<RequestPair>> {
        self.settled().await?;
        let (tenant, corr) = (tenant.to_owned(), correlation_id.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {PAIR_COLUMNS} FROM requests WHERE tenant = ?1 AND correlation_id = ?2"
            ))
            .and_then(|mut s| s.query_row([&tenant, &corr], pair_row).optional())
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn pairs(&self, tenant: &str, q: &RequestQuery, page: PageRequest) -> StoreResult<RequestPage> {
        self.settled().await?;
        let limit = page.limit.max(1);
        // Position: the sort key and correlation id of the last pair returned.
        let after = page
            .after
            .map(|p| match (p.get("k").and_then(|v| v.as_i64()), p.get("c").and_then(|v| v.as_str())) {
                (Some(k), Some(c)) => Ok((k, c.to_owned())),
                _ => Err(StoreError::Invalid("cursor position is not a request position".into())),
            })
            .transpose()?;
        let (sql, mut params): (String, Vec<SqlValue>) = match q {
            RequestQuery::SlowerThan { min_delay_ms, from, to } => (
                format!(
                    "SELECT {PAIR_COLUMNS}, delay_ms AS k FROM requests WHERE tenant = ?1 AND delay_ms >= ?2 \
                     AND start_ts >= ?3 AND start_ts < ?4{} ORDER BY delay_ms DESC, correlation_id DESC LIMIT {}",
                    if after.is_some() { " AND (delay_ms, correlation_id) < (?5, ?6)" } else { "" },
                    limit + 1
                ),
                vec![tenant.to_owned().into(), (*min_delay_ms).into(), micros(*from).into(), micros(*to).into()],
            ),
            RequestQuery::Unfinished { started_before, from } => (
                format!(
                    "SELECT {PAIR_COLUMNS}, start_ts AS k FROM requests WHERE tenant = ?1 AND end_id IS NULL \
                     AND start_ts < ?2 AND start_ts >= ?3{} ORDER BY start_ts DESC, correlation_id DESC LIMIT {}",
                    if after.is_some() { " AND (start_ts, correlation_id) < (?4, ?5)" } else { "" },
                    limit + 1
                ),
                vec![tenant.to_owned().into(), micros(*started_before).into(), micros(*from).into()],
            ),
        };
        if let Some((k, c)) = after {
            params.push(k.into());
            params.push(c.into());
        }
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(StoreError::backend)?;
            let mut rows: Vec<(RequestPair, i64)> = stmt
                .query_map(params_from_iter(params.iter()), |r| Ok((pair_row(r)?, r.get(8)?)))
                .map_err(StoreError::backend)?
                .collect::<Result<_, _>>()
                .map_err(StoreError::backend)?;
            let read = rows.len() as u64;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = if more { rows.last().map(|(p, k)| json!({"k": k, "c": p.correlation_id})) } else { None };
            let pairs: Vec<RequestPair> = rows.into_iter().map(|(p, _)| p).collect();
            let stats =
                ReadStats { items_read: read, items_returned: pairs.len() as u64, queries: 1, ..Default::default() };
            Ok(RequestPage { pairs, next, stats })
        })
        .await
    }
}
