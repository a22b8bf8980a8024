//! The query planner: a filter becomes one indexed query per combination of its multi-valued
//! equalities (actions × categories × the two user columns), each ordered by time then id and
//! limited to the page, so the first page never sorts a whole range; `records` merges them.
//!
//! Free text (`q`) is served from one of two sources (`text::race` picks one): the
//! trigram index `records_text` (the candidates it names, joined to their rows) or a bounded
//! window of the equality index (at most `n` rows per branch, each checked). Either way every row
//! returned is checked with the same folded substring test, so the index only has to name a
//! superset.

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

use super::micros;
use crate::record::fold;
use crate::store::{EventFilter, Order, ReadStats, StoreError, StoreResult};

/// One equality branch of a planned query.
pub(super) struct Branch {
    pub sql: String,
    pub params: Vec<SqlValue>,
    pub index: &'static str,
}

/// Where a branch reads its rows from.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// The equality indexes (the text, if any, checked on every row of the range).
    Indexes,
    /// The rows the trigram index names for this `MATCH` expression (see [`trigram_match`]).
    Text(&'a str),
    /// The first `n` rows of each branch's index range; the third column is the body only for a
    /// row whose text matches (NULL otherwise), so the caller knows how far each branch read.
    Window(usize),
    /// The rows after this `seq` (the tail the text index does not name yet: `text::index_tail`),
    /// read by row id, the text checked on each.
    Tail(i64),
}

/// The low 40 bits of a text-index row id: the record's `seq` (the day is above them).
pub(super) const SEQ_MASK: i64 = (1 << 40) - 1;
pub(super) const DAY_MICROS: i64 = 86_400_000_000;

/// The text-index row ids of a filter's window: from its first day's to its last day's (see
/// `schema.sql`), whatever the tenant.
pub(super) fn text_rowids(f: &EventFilter) -> (i64, i64) {
    let first = micros(f.from).div_euclid(DAY_MICROS).max(0);
    let last = (micros(f.to) - 1).div_euclid(DAY_MICROS).max(0);
    (first << 40, (last << 40) | SEQ_MASK)
}

/// The `MATCH` expression for a folded search text: every distinct trigram of it, AND-ed (the
/// index keeps no positions, so this names a superset of the rows that contain the text; the
/// substring test decides). At most 16 trigrams, spread over the text. `None` below three
/// characters, where the index cannot help.
pub(super) fn trigram_match(folded: &str) -> Option<String> {
    let chars: Vec<char> = folded.chars().collect();
    if chars.len() < 3 {
        return None;
    }
    let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    let mut seen = std::collections::HashSet::new();
    grams.retain(|g| seen.insert(g.clone()));
    let step = grams.len().div_ceil(16);
    let picked: Vec<String> =
        grams.iter().step_by(step.max(1)).map(|g| format!("\"{}\"", g.replace('"', "\"\""))).collect();
    Some(picked.join(" AND "))
}

/// A filter's time range in µs, `[from, to)`, narrowed by a page's cursor. The range itself, not
/// only a test on it: SQLite bounds an index range by one comparison per side, and given `ts < to`
/// beside `(ts, id) < cursor` it started at `to` and read every row of the pages before, so page k
/// read k pages (a 1M-record export took 49 s instead of 4). Rows at the cursor's own time are
/// left to the row-value test.
pub(super) fn cursor_bounds(f: &EventFilter, after: Option<&(i64, String)>) -> (i64, i64) {
    let (from, to) = (micros(f.from), micros(f.to));
    match after {
        Some((ts, _)) if f.order == Order::NewestFirst => (from, to.min(ts.saturating_add(1))),
        Some((ts, _)) => (from.max(*ts), to),
        None => (from, to),
    }
}

pub(super) fn plan(
    tenant: &str,
    f: &EventFilter,
    after: Option<(i64, String)>,
    limit: usize,
    source: Source<'_>,
) -> Vec<Branch> {
    let desc = f.order == Order::NewestFirst;
    // Equalities shared by every branch.
    let mut common: Vec<(&'static str, SqlValue)> = Vec::new();
    if let Some(e) = &f.employee_id {
        // The column (and its index) holds the employee ids of sign-ins only; a filter that can
        // match other records tests the body instead (no view offers one).
        let col = if f.sign_ins_only() { "employee_id" } else { "json_extract(body, '$.actor.employee_id')" };
        common.push((col, e.clone().into()));
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
    let (from, to) = cursor_bounds(f, after.as_ref());
    variants
        .into_iter()
        .map(|eqs| {
            let mut params: Vec<SqlValue> = vec![tenant.to_owned().into(), from.into(), to.into()];
            let mut sql = match source {
                // The index's candidates drive the join (CROSS JOIN keeps that order): at most
                // the few rows it names are read, whatever the window.
                Source::Text(m) => {
                    let (lo, hi) = text_rowids(f);
                    params.extend([m.to_owned().into(), lo.into(), hi.into()]);
                    let n = params.len();
                    format!(
                        "SELECT ts, id, body FROM records_text CROSS JOIN records \
                         ON records.seq = (records_text.rowid & {SEQ_MASK}) \
                         WHERE records_text MATCH ?{} AND records_text.rowid BETWEEN ?{} AND ?{n} \
                         AND tenant = ?1 AND ts >= ?2 AND ts < ?3",
                        n - 2,
                        n - 1
                    )
                }
                Source::Indexes | Source::Window(_) => {
                    String::from("SELECT ts, id, body FROM records WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3")
                }
                // By row id only (NOT INDEXED keeps SQLite off the other indexes): the tail is
                // short, a window of an index may be long.
                Source::Tail(upto) => {
                    params.push(upto.into());
                    format!(
                        "SELECT ts, id, body FROM records NOT INDEXED WHERE seq > ?{} \
                         AND tenant = ?1 AND ts >= ?2 AND ts < ?3",
                        params.len()
                    )
                }
            };
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
            let text_test = f.text.as_ref().map(|t| {
                params.push(fold(t).into());
                format!("instr(auditrail_fold(json_extract(body, '$.description')), ?{}) > 0", params.len())
            });
            if let (Some(test), Source::Indexes | Source::Text(_) | Source::Tail(_)) = (&text_test, source) {
                sql.push_str(&format!(" AND {test}"));
            }
            if let Some((ts, id)) = &after {
                params.push((*ts).into());
                params.push(id.clone().into());
                let op = if desc { "<" } else { ">" };
                sql.push_str(&format!(" AND (ts, id) {op} (?{}, ?{})", params.len() - 1, params.len()));
            }
            match (source, text_test) {
                (Source::Window(n), Some(test)) => {
                    sql.push_str(&format!(" ORDER BY ts {order}, id {order} LIMIT {}", n.min(i64::MAX as usize)));
                    sql = format!("SELECT ts, id, CASE WHEN {test} THEN body END FROM ({sql})");
                }
                _ => sql.push_str(&format!(" ORDER BY ts {order}, id {order} LIMIT {}", limit + 1)),
            }
            Branch { sql, params, index }
        })
        .collect()
}

/// A row as a branch returns it: time, id and the body (`None`: read but not a match).
type Row = (i64, String, Option<String>);
/// A matching row: time, id, body.
pub(super) type Hit = (i64, String, String);
/// Per branch: rows read, rows that matched.
type Reads = Vec<(usize, usize)>;

/// Runs every branch; returns the matching rows and, per branch, how many rows it read.
pub(super) fn run_branches(
    conn: &rusqlite::Connection,
    branches: &[Branch],
    stats: &mut ReadStats,
) -> StoreResult<(Vec<Hit>, Reads)> {
    let mut rows = Vec::new();
    let mut per_branch = Vec::with_capacity(branches.len());
    for b in branches {
        let mut stmt = conn.prepare_cached(&b.sql).map_err(StoreError::backend)?;
        let it = stmt
            .query_map(params_from_iter(b.params.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(StoreError::backend)?;
        let (mut read, mut matched) = (0, 0);
        for row in it {
            let (ts, id, body): Row = row.map_err(StoreError::backend)?;
            read += 1;
            if let Some(body) = body {
                matched += 1;
                rows.push((ts, id, body));
            }
        }
        stats.items_read += read as u64;
        stats.queries += 1;
        per_branch.push((read, matched));
    }
    Ok((rows, per_branch))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::record::{Category, ResultCode};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventFilter, PageRequest, RecordStore, StoreError};
    use crate::testkit::conformance::{rec, t0, window};

    /// One value of a query, on a reader.
    async fn scalar<T: rusqlite::types::FromSql + Send + 'static>(store: &SqliteStore, sql: &'static str) -> T {
        store.read(move |c| c.query_row(sql, [], |r| r.get(0)).map_err(StoreError::backend)).await.unwrap()
    }

    /// What SQLite does for each branch the planner makes of `f` (EXPLAIN QUERY PLAN details).
    async fn plans(store: &SqliteStore, f: EventFilter) -> Vec<String> {
        store
            .read(move |c| {
                let mut out = Vec::new();
                for b in super::plan("t", &f, None, 50, super::Source::Indexes) {
                    let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {}", b.sql)).map_err(StoreError::backend)?;
                    let rows = s
                        .query_map(rusqlite::params_from_iter(b.params.iter()), |r| r.get::<_, String>(3))
                        .map_err(StoreError::backend)?;
                    out.push(rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::backend)?.join("; "));
                }
                Ok(out)
            })
            .await
            .unwrap()
    }

    /// Every branch of every single filter is an index search in page order (no scan of the
    /// table, no sort of a range); the user filter's two branches use the username index and the
    /// index of user ids of records without a username, which holds no other row.
    #[tokio::test]
    async fn every_planned_branch_searches_an_index_and_user_ids_only_where_no_username() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let mut named = rec("t", "named", 1, "LOGIN", "Ann", ResultCode::Ok);
        named.actor.user_id = Some("u-1".into());
        let mut system = rec("t", "system", 2, "LOGIN", "x", ResultCode::Ok);
        system.actor.username = None;
        system.actor.user_id = Some("u-1".into());
        store.append("t", &[named, system]).await.unwrap();

        let user = plans(&store, EventFilter { user: Some("u-1".into()), ..window() }).await;
        assert_eq!(user.len(), 2);
        assert!(user.iter().any(|p| p.contains("USING INDEX rec_username ")), "{user:?}");
        assert!(user.iter().any(|p| p.contains("USING INDEX rec_user_id_bare ")), "{user:?}");
        let sql: String = scalar(&store, "SELECT sql FROM sqlite_schema WHERE name = 'rec_user_id_bare'").await;
        assert!(sql.ends_with("WHERE username IS NULL AND user_id IS NOT NULL"), "{sql}");
        // The filter still finds a user by id where no username names them, and by username.
        let ids = |f: EventFilter| {
            let store = store.clone();
            async move {
                let page = store.query("t", &f, PageRequest { limit: 10, after: None }).await.unwrap();
                page.records.into_iter().map(|r| r.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(EventFilter { user: Some("u-1".into()), ..window() }).await, ["system"]);
        assert_eq!(ids(EventFilter { user: Some("ANN".into()), ..window() }).await, ["named"]);

        let singles = [
            window(),
            EventFilter { actions: vec!["LOGIN".into()], ..window() },
            EventFilter { categories: vec![Category::SignIn], ..window() },
            EventFilter { employee_id: Some("e".into()), ..window() },
            EventFilter { result: Some(ResultCode::Fail), ..window() },
            EventFilter { session_id: Some("s".into()), ..window() },
            EventFilter { correlation_id: Some("c".into()), ..window() },
        ];
        // Employee ids are indexed for sign-ins only: a filter of sign-ins uses that index; one
        // that may match other records tests the body on another index's range, and finds them.
        let sign_ins = EventFilter { employee_id: Some("e".into()), categories: vec![Category::SignIn], ..window() };
        let p = plans(&store, sign_ins).await;
        assert!(p.iter().all(|p| p.contains("USING INDEX rec_employee ")), "{p:?}");
        let mut clicked = rec("t", "clicked", 3, "CLICK", "bo", ResultCode::Ok);
        clicked.actor.employee_id = Some("e-9".into());
        let mut signed_in = rec("t", "signed-in", 4, "LOGIN", "bo", ResultCode::Ok);
        signed_in.actor.employee_id = Some("e-9".into());
        assert!(signed_in.is_sign_in() && !clicked.is_sign_in());
        store.append("t", &[clicked, signed_in]).await.unwrap();
        assert_eq!(ids(EventFilter { employee_id: Some("e-9".into()), ..window() }).await, ["signed-in", "clicked"]);
        let logins = EventFilter { employee_id: Some("e-9".into()), actions: vec!["LOGIN".into()], ..window() };
        assert_eq!(ids(logins).await, ["signed-in"]);
        let employee_rows: i64 = scalar(&store, "SELECT count(*) FROM records WHERE employee_id IS NOT NULL").await;
        assert_eq!(employee_rows, 1, "the click's employee id is in its body, not in the index");

        for f in singles.into_iter().chain([EventFilter { user: Some("u".into()), ..window() }]) {
            for p in plans(&store, f.clone()).await {
                assert!(p.starts_with("SEARCH records USING INDEX rec_"), "{f:?}: {p}");
                assert!(!p.contains("TEMP B-TREE"), "{f:?}: {p}");
            }
        }
    }

    /// A page deep in a range costs what the first one costs: the cursor bounds the index range,
    /// so SQLite seeks to it instead of reading every row of the pages before (counted in VM
    /// steps, which count each row visited), newest first and oldest first.
    #[tokio::test]
    async fn a_deep_page_reads_no_more_than_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let recs: Vec<_> =
            (0..3000).map(|i| rec("t", &format!("r{i:05}"), i, "LOGIN", "ann", ResultCode::Ok)).collect();
        store.append("t", &recs).await.unwrap();
        for order in [crate::store::Order::NewestFirst, crate::store::Order::OldestFirst] {
            let f = EventFilter { order, from: t0(), to: t0() + Duration::days(3), ..window() };
            // The 10th row from the far end of the range: a cursor with 2,990 rows before it.
            let (near, far) = if order == crate::store::Order::NewestFirst { (2990, 10) } else { (9, 2989) };
            let steps = |at: Option<usize>| {
                let f = f.clone();
                let store = store.clone();
                async move {
                    store
                        .read(move |c| {
                            let after =
                                at.map(|i| (super::micros(t0() + Duration::minutes(i as i64)), format!("r{i:05}")));
                            let b = &super::plan("t", &f, after, 20, super::Source::Indexes)[0];
                            let mut s = c.prepare(&b.sql).map_err(StoreError::backend)?;
                            let n = s
                                .query_map(rusqlite::params_from_iter(b.params.iter()), |_| Ok(()))
                                .map_err(StoreError::backend)?
                                .count();
                            Ok((n, s.get_status(rusqlite::StatementStatus::VmStep)))
                        })
                        .await
                        .unwrap()
                }
            };
            let (first_rows, first) = steps(None).await;
            let (deep_rows, deep) = steps(Some(far)).await;
            let (near_rows, _) = steps(Some(near)).await;
            assert_eq!((first_rows, deep_rows, near_rows), (21, 10, 21), "{order:?}");
            assert!(deep <= first, "{order:?}: the deep page took {deep} VM steps, the first {first}");
        }
    }
}
