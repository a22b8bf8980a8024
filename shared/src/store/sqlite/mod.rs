//! Embedded record store: SQLite in WAL mode with `secure_delete`, one writer and a pool of
//! readers, and one index per access pattern of the spec.
//!
//! Access patterns and the index serving each (all tenant-first, ordered by time then id):
//! time range → `rec_time`; action → `rec_action`; category → `rec_category`; user → the union
//! of `rec_username` (lower-cased) and `rec_user_id`; sign-ins by employee id → `rec_employee`;
//! result → `rec_result`; co-browse session → `rec_session`; request pairs → `rec_correlation`;
//! idempotency → the unique `(tenant, id)`. A filter with several values of one attribute
//! (e.g. three actions) runs one indexed query per value and merges them, so the first page
//! never sorts a whole range.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter, types::Value as SqlValue};
use serde_json::json;

use super::{
    AppendOutcome, EventFilter, Order, PageRequest, ReadStats, RecordPage, RecordStore, RequestPage, RequestPair,
    RequestQuery, RequestStore, SettingsStore, StoreError, StoreResult,
};
use crate::record::{Category, Phase, Record, ResultCode, fold};

mod tasks;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS records (
    seq            INTEGER PRIMARY KEY,
    tenant         TEXT NOT NULL,
    id             TEXT NOT NULL,
    ts             INTEGER NOT NULL,
    category       TEXT NOT NULL,
    action         TEXT NOT NULL,
    user_id        TEXT,
    username       TEXT,
    employee_id    TEXT,
    result         TEXT,
    session_id     TEXT,
    correlation_id TEXT,
    body           TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS rec_time        ON records(tenant, ts, id);
CREATE INDEX IF NOT EXISTS rec_action      ON records(tenant, action, ts, id);
CREATE INDEX IF NOT EXISTS rec_category    ON records(tenant, category, ts, id);
CREATE INDEX IF NOT EXISTS rec_user_id     ON records(tenant, user_id, ts, id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_username    ON records(tenant, username, ts, id) WHERE username IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_employee    ON records(tenant, employee_id, ts, id) WHERE employee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_result      ON records(tenant, result, ts, id) WHERE result IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_session     ON records(tenant, session_id, ts, id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS rec_correlation ON records(tenant, correlation_id, ts, id) WHERE correlation_id IS NOT NULL;

-- Asynchronous actions paired at write time: one row per correlation id.
CREATE TABLE IF NOT EXISTS requests (
    tenant         TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    action         TEXT NOT NULL,
    start_id       TEXT,
    end_id         TEXT,
    start_ts       INTEGER,
    end_ts         INTEGER,
    delay_ms       INTEGER,
    result         TEXT,
    PRIMARY KEY (tenant, correlation_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS req_delay ON requests(tenant, delay_ms, correlation_id) WHERE delay_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS req_open  ON requests(tenant, start_ts, correlation_id) WHERE end_id IS NULL;

CREATE TABLE IF NOT EXISTS settings (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY) WITHOUT ROWID;

-- DPO subject index (dpo::subject keys); phone keys hold the digits reversed, so "the last N
-- digits" is a key-range lookup.
CREATE TABLE IF NOT EXISTS subjects (
    tenant    TEXT NOT NULL,
    key       TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (tenant, key, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subject_record ON subjects(tenant, record_id);

CREATE TABLE IF NOT EXISTS tasks (
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    status  TEXT NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_active ON tasks(kind, id) WHERE status IN ('QUEUED', 'RUNNING');
"#;

/// The SQLite database file plus its connection pool. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // SQLite's own `lower()` folds ASCII only; text search folds as every other back end does.
    // A substring search reads every candidate row anyway, so folding per row costs no index.
    conn.create_scalar_function(
        "auditrail_fold",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8 | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| fold(&s))),
    )?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        // Owner-only before SQLite opens it: the -wal and -shm files take its mode.
        crate::private_fs::ensure_file(path).map_err(StoreError::backend)?;
        let conn = Connection::open(path).map_err(StoreError::backend)?;
        configure(&conn).map_err(StoreError::backend)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(StoreError::backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(anyhow::anyhow!("SQLite refused WAL mode (got {mode})")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(StoreError::backend)?;
        // Nine indexes over millions of rows: a 2 MB default page cache turns every insert into
        // random reads. 64 MiB keeps the index pages the writer touches in memory.
        conn.pragma_update(None, "cache_size", -65_536).map_err(StoreError::backend)?;
        conn.execute_batch(SCHEMA).map_err(StoreError::backend)?;
        conn.execute_batch("PRAGMA optimize=0x10002;").map_err(StoreError::backend)?;
        Ok(Self {
            inner: Arc::new(Inner { path: path.to_owned(), writer: Mutex::new(conn), readers: Mutex::new(Vec::new()) }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection on the blocking pool.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_WRITE
                            | OpenFlags::SQLITE_OPEN_NO_MUTEX
                            | OpenFlags::SQLITE_OPEN_URI,
                    )
                    .map_err(StoreError::backend)?;
                    configure(&c).map_err(StoreError::backend)?;
                    c.pragma_update(None, "query_only", "ON").map_err(StoreError::backend)?;
                    c.pragma_update(None, "cache_size", -16_384).map_err(StoreError::backend)?;
                    c
                }
            };
            let out = f(&conn);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < 8 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// Refreshes the planner statistics (after a bulk load) and checkpoints the WAL.
    pub async fn optimize(&self) -> StoreResult<()> {
        self.write(|c| c.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);").map_err(StoreError::backend)).await
    }
}

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

fn decode(body: &str) -> StoreResult<Record> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// One equality branch of a planned query.
struct Branch {
    sql: String,
    params: Vec<SqlValue>,
    index: &'static str,
}

fn plan(tenant: &str, f: &EventFilter, after: Option<(i64, String)>, limit: usize) -> Vec<Branch> {
    let desc = f.order == Order::NewestFirst;
    // Equalities shared by every branch.
    let mut common: Vec<(&'static str, SqlValue)> = Vec::new();
    if let Some(e) = &f.employee_id {
        common.push(("employee_id", e.clone().into()));
    }
    if let Some(r) = f.result {
        common.push(("result", r.as_str().to_owned().into()));
    }
    if let Some(s) = &f.session_id {
        common.push(("session_id", s.clone().into()));
    }
    if let Some(s) = &f.correlation_id {
        common.push(("correlation_id", s.clone().into()));
    }

    // Multi-valued attributes become one branch per value (cartesian product).
    let mut variants: Vec<Vec<(&'static str, SqlValue)>> = vec![Vec::new()];
    let mut fan = |col: &'static str, vals: Vec<SqlValue>| {
        if vals.is_empty() {
            return;
        }
        variants = variants
            .iter()
            .flat_map(|v| {
                vals.iter().map(move |val| {
                    let mut v = v.clone();
                    v.push((col, val.clone()));
                    v
                })
            })
            .collect();
    };
    fan("action", f.actions.iter().map(|a| SqlValue::from(a.clone())).collect());
    fan("category", f.categories.iter().map(|c| SqlValue::from(c.as_str().to_owned())).collect());
    if let Some(u) = &f.user {
        variants = variants
            .into_iter()
            .flat_map(|v| {
                let mut by_name = v.clone();
                by_name.push(("username", fold(u).into()));
                let mut by_id = v;
                by_id.push(("user_id", u.clone().into()));
                [by_name, by_id]
            })
            .collect();
    }

    let order = if desc { "DESC" } else { "ASC" };
    variants
        .into_iter()
        .map(|eqs| {
            let mut sql = String::from("SELECT ts, id, body FROM records WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3");
            let mut params: Vec<SqlValue> = vec![tenant.to_owned().into(), micros(f.from).into(), micros(f.to).into()];
            // The index SQLite is expected to use: the most selective equality, in this order.
            let index =
                ["session_id", "correlation_id", "employee_id", "user_id", "username", "action", "category", "result"]
                    .into_iter()
                    .find(|col| eqs.iter().chain(common.iter()).any(|(c, _)| c == col))
                    .unwrap_or("time");
            for (col, val) in eqs.into_iter().chain(common.iter().cloned()) {
                params.push(val);
                // A user id only identifies records that have no username (see `EventFilter`).
                let col = if col == "user_id" { "username IS NULL AND user_id" } else { col };
                sql.push_str(&format!(" AND {col} = ?{}", params.len()));
            }
            if let Some(t) = &f.text {
                params.push(fold(t).into());
                sql.push_str(&format!(
                    " AND instr(auditrail_fold(json_extract(body, '$.description')), ?{}) > 0",
                    params.len()
                ));
            }
            if let Some((ts, id)) = &after {
                params.push((*ts).into());
                params.push(id.clone().into());
                let op = if desc { "<" } else { ">" };
                sql.push_str(&format!(" AND (ts, id) {op} (?{}, ?{})", params.len() - 1, params.len()));
            }
            sql.push_str(&format!(" ORDER BY ts {order}, id {order} LIMIT {}", limit + 1));
            Branch { sql, params, index }
        })
        .collect()
}

/// Records one side of a request pair; the delay is computed once both sides are known.
fn pair_upsert(tx: &rusqlite::Transaction<'_>, tenant: &str, corr: &str, r: &Record, phase: Phase) -> StoreResult<()> {
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

fn insert_subjects(tx: &rusqlite::Transaction<'_>, tenant: &str, r: &Record) -> StoreResult<()> {
    let keys = crate::record::subject::keys(r);
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
impl crate::store::SubjectStore for SqliteStore {
    async fn subject_lookup(
        &self,
        tenant: &str,
        key: &str,
        prefix: bool,
        (from, to): (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>),
        limit: usize,
    ) -> StoreResult<(Vec<Record>, ReadStats)> {
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
        Ok((records, ReadStats { items_read: n, items_returned: n, queries: 1 }))
    }
}

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
            let stats = ReadStats { items_read: read, items_returned: pairs.len() as u64, queries: 1 };
            Ok(RequestPage { pairs, next, stats })
        })
        .await
    }
}

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

#[async_trait]
impl RecordStore for SqliteStore {
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                debug_assert_eq!(r.tenant_id, tenant);
                let body = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok((r.clone(), body))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::SqliteStore;

    /// One store file shared by every check (each check uses its own tenant), like production.
    async fn store() -> Arc<dyn crate::store::conformance::FullStore> {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static STORE: OnceLock<SqliteStore> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        Arc::new(STORE.get_or_init(|| SqliteStore::open(&dir.path().join("c.db")).unwrap()).clone())
    }

    crate::conformance_tests!(store);

    #[test]
    fn opens_in_wal_mode_with_secure_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        let conn = s.inner.writer.lock().unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), secure), ("wal", 1));
    }
}
