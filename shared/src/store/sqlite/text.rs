//! The free-text index (`records_text`, see schema.sql): kept in step with every write,
//! erasure and purge (`text_index`), and the choice of source for a page with `q` (`race`): the
//! candidates the index names, or a bounded window of the filter's own index.

use super::planner::{Hit, Source, plan, run_branches, text_rowids};
use crate::store::{EventFilter, ReadStats, StoreError, StoreResult};

/// What [`text_index`] does to the text index for some rows.
#[derive(Clone, Copy)]
pub(super) enum TextOp {
    /// Adds their entries (new rows, or rows just changed).
    Index,
    /// Removes their entries, before the rows change or go: FTS5's 'delete' with the text indexed.
    Unindex,
}

/// Keeps the text index (`records_text`, see schema.sql) in step for the rows `cond` (on `?1`)
/// selects, in row-id order.
pub(super) fn text_index(conn: &rusqlite::Connection, op: TextOp, cond: &str, arg: i64) -> StoreResult<()> {
    let (cmd, col) = match op {
        TextOp::Index => ("", ""),
        TextOp::Unindex => ("records_text, ", "'delete', "),
    };
    conn.prepare_cached(&format!(
        "INSERT INTO records_text({cmd}rowid, text) \
         SELECT {col}((ts / 86400000000) << 40) | seq, auditrail_fold(json_extract(body, '$.description')) \
         FROM records WHERE {cond} ORDER BY ((ts / 86400000000) << 40) | seq"
    ))
    .and_then(|mut s| s.execute([arg]))
    .map_err(StoreError::backend)?;
    Ok(())
}

/// Indexes the text of every record (a store from before the text index, once).
pub(super) fn index_all_text(conn: &rusqlite::Connection) -> StoreResult<()> {
    text_index(conn, TextOp::Index, "?1 = ?1", 0)
}

/// Serves a page with a text of three characters or more from the cheaper of two sources. The
/// trigram index is asked how many rows it names (counted up to a budget); a rare text is served
/// from those candidates alone. Otherwise the newest rows of the filter's own index are read, at
/// most the budget per branch: done when every branch found more than a page or reached the end of
/// its range. If not, the rows read say how dense the matches are, hence how many rows would fill
/// the page: when the index names fewer (now counted up to 16 budgets), its candidates serve the
/// page; else the window is read again with that many rows (at least four times the budget). A
/// rare text in a busy window and a common text with a rare filter are both fast; a page reads a
/// small multiple of what the cheaper source needs.
#[allow(clippy::too_many_arguments)]
pub(super) fn race(
    conn: &rusqlite::Connection,
    tenant: &str,
    f: &EventFilter,
    after: Option<(i64, String)>,
    limit: usize,
    trigrams: &str,
    first_budget: usize,
    stats: &mut ReadStats,
) -> StoreResult<(Vec<Hit>, String)> {
    // Rows the index names in the window's days (any tenant), counted up to `upto` (an index
    // lookup, not a read of the rows).
    let (lo, hi) = text_rowids(f);
    let count = |upto: usize, stats: &mut ReadStats| -> StoreResult<usize> {
        let n = conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM records_text \
                 WHERE records_text MATCH ?1 AND rowid BETWEEN ?2 AND ?3 LIMIT ?4)",
            )
            .and_then(|mut s| s.query_row(rusqlite::params![trigrams, lo, hi, upto as i64 + 1], |r| r.get::<_, i64>(0)))
            .map_err(StoreError::backend)? as usize;
        stats.queries += 1;
        stats.items_read += n as u64;
        Ok(n)
    };
    let cap = first_budget.saturating_mul(16);
    let mut named = count(first_budget, stats)?;
    let from_index = |stats: &mut ReadStats| -> StoreResult<(Vec<Hit>, String)> {
        let branches = plan(tenant, f, after.clone(), limit, Source::Text(trigrams));
        Ok((run_branches(conn, &branches, stats)?.0, "text".to_owned()))
    };
    if named <= first_budget {
        return from_index(stats);
    }
    let mut budget = first_budget.max(limit + 1);
    loop {
        let branches = plan(tenant, f, after.clone(), limit, Source::Window(budget));
        let (rows, per_branch) = run_branches(conn, &branches, stats)?;
        if per_branch.iter().all(|&(read, matched)| read < budget || matched > limit) {
            let name = branches.first().map(|b| b.index).unwrap_or("time");
            return Ok((rows, format!("{name}+scan")));
        }
        // Rows each unfinished branch would need for a page, at the density it found.
        let needs: Vec<usize> = per_branch
            .iter()
            .filter(|&&(read, matched)| read >= budget && matched <= limit)
            .map(|&(read, matched)| (limit + 1).saturating_mul(read).checked_div(matched).unwrap_or(usize::MAX))
            .collect();
        let window_cost = needs.iter().fold(0usize, |a, n| a.saturating_add(*n));
        if named == first_budget + 1 {
            named = count(cap, stats)?;
        }
        if named <= cap && named <= window_cost {
            return from_index(stats);
        }
        // A branch that matched nothing gives no estimate: it grows fourfold like the others.
        let widest = needs.iter().copied().filter(|n| *n != usize::MAX).max().unwrap_or(0);
        budget = budget.saturating_mul(4).max(widest.saturating_add(widest / 4)).min(MAX_WINDOW);
    }
}

/// A window never asks SQLite for more rows than its LIMIT can hold (an integer).
const MAX_WINDOW: usize = i64::MAX as usize;

/// The rows a first round of [`race`] may read per source, by default.
pub(super) const TEXT_BUDGET: usize = 2_000;
