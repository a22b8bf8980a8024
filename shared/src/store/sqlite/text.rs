//! The free-text index (`records_text`, see schema.sql): kept in step with every erasure and
//! purge (`text_index`), appended rows indexed in batches (`index_tail`), and the choice of source
//! for a page with `q` (`race`): the candidates the index names with the rows not indexed yet, or a
//! bounded window of the filter's own index.

use chrono::{DateTime, Utc};

use super::planner::{DAY_MICROS, Hit, Source, cursor_bounds, plan, run_branches, text_rowids};
use crate::store::{EventFilter, Order, ReadStats, StoreError, StoreResult};

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

/// Rows up to this `seq` have their text indexed (`text_upto`, see schema.sql); later ones are the
/// tail, which a search reads directly.
pub(super) fn text_upto(conn: &rusqlite::Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT seq FROM text_upto")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::backend)
}

/// The last row's `seq` (0: none).
pub(super) fn last_seq(conn: &rusqlite::Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM records")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::backend)
}

/// Indexes the tail's text in one statement and moves the mark to the last row, in the caller's
/// transaction; the rows indexed. The append of a batch does not: its text went into the index in
/// the commit, where it cost more than every other index together (four clients: 44k events/s
/// with no text index at all, 26k–31k with it in the commit, 33k–37k with it in batches here;
/// README "Measured").
pub(super) fn index_tail(conn: &rusqlite::Connection) -> StoreResult<i64> {
    let (upto, last) = (text_upto(conn)?, last_seq(conn)?);
    if last <= upto {
        return Ok(0);
    }
    text_index(conn, TextOp::Index, "seq > ?1", upto)?;
    conn.prepare_cached("UPDATE text_upto SET seq = ?1")
        .and_then(|mut s| s.execute([last]))
        .map_err(StoreError::backend)?;
    Ok(last - upto)
}

/// Rows of the tail at which an append indexes it, so a search never reads more of it directly.
pub(super) const TEXT_BATCH: i64 = 8_192;

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
    let from_index = |named: usize, stats: &mut ReadStats| -> StoreResult<(Vec<Hit>, String)> {
        // Many candidates: those of the page's edge first, in spans of 1, 2, 4 … days, so a page
        // of a text common in the window is full after its newest (or oldest) days, where reading
        // every candidate of the window to sort them cost p99 50–70 ms at 1M records. A few: one
        // query (each span is a search of the index, ~1 ms when a trigram is common).
        // The index's mark first: the index names at least every row up to it in any later read
        // (it only rises), so the spans and the tail after it miss no row whatever the store's
        // indexer does between these statements (a row both name is returned once).
        let upto = text_upto(conn)?;
        let whole = [(f.from, f.to)];
        let spans = if named > SPAN_FROM.max(4 * (limit + 1)) { spans(f, after.as_ref()) } else { whole.to_vec() };
        let mut rows = Vec::new();
        for (from, to) in spans {
            let span = EventFilter { from, to, ..f.clone() };
            let branches = plan(tenant, &span, after.clone(), limit, Source::Text(trigrams));
            rows.extend(run_branches(conn, &branches, stats)?.0);
            if rows.len() > limit {
                break;
            }
        }
        // And the tail the index does not name yet, read directly (at most about `TEXT_BATCH`
        // rows): its page's worth of matches joins the spans' (the caller sorts and cuts).
        if upto < last_seq(conn)? {
            rows.extend(run_branches(conn, &plan(tenant, f, after.clone(), limit, Source::Tail(upto)), stats)?.0);
        }
        Ok((rows, "text".to_owned()))
    };
    if named <= first_budget {
        return from_index(named, stats);
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
            return from_index(named, stats);
        }
        // A branch that matched nothing gives no estimate: it grows fourfold like the others.
        let widest = needs.iter().copied().filter(|n| *n != usize::MAX).max().unwrap_or(0);
        budget = budget.saturating_mul(4).max(widest.saturating_add(widest / 4)).min(MAX_WINDOW);
    }
}

/// The time spans a page's text candidates are read in: from the page's edge (the window's newest
/// end, or its oldest for oldest-first; a cursor moves it), the rest of its UTC day, then 2, 4, 8 …
/// whole days, so a page reads at most about twice the days it needs and a long window takes a
/// logarithmic number of queries. Disjoint, in page order: every match of a span comes before
/// every match of the next.
fn spans(f: &EventFilter, after: Option<&(i64, String)>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let desc = f.order == Order::NewestFirst;
    let (mut lo, mut hi) = cursor_bounds(f, after);
    let mut out = Vec::new();
    let mut days = 1i64;
    while lo < hi {
        let (a, b) = if desc {
            let start = ((hi - 1).div_euclid(DAY_MICROS) - (days - 1)).saturating_mul(DAY_MICROS);
            (start.max(lo), hi)
        } else {
            let end = (lo.div_euclid(DAY_MICROS) + days).saturating_mul(DAY_MICROS);
            (lo, end.min(hi))
        };
        match (DateTime::from_timestamp_micros(a), DateTime::from_timestamp_micros(b)) {
            (Some(x), Some(y)) => out.push((x, y)),
            // Beyond chrono's range (a window no record can be in): one span of the whole.
            _ => return vec![(f.from, f.to)],
        }
        if desc {
            hi = a
        } else {
            lo = b
        }
        days = days.saturating_mul(2);
    }
    out
}

/// Candidates from which a page from the text index is read in [`spans`], not in one query.
const SPAN_FROM: usize = 400;

/// A window never asks SQLite for more rows than its LIMIT can hold (an integer).
const MAX_WINDOW: usize = i64::MAX as usize;

/// The rows a first round of [`race`] may read per source, by default.
pub(super) const TEXT_BUDGET: usize = 2_000;

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::spans;
    use crate::store::{EventFilter, Order};

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    /// Spans as (first day, hour) … (last day, hour) pairs.
    fn hours(f: &EventFilter, after: Option<(i64, String)>) -> Vec<((u32, u32), (u32, u32))> {
        use chrono::{Datelike, Timelike};
        let dh = |t: DateTime<Utc>| (t.day(), t.hour());
        spans(f, after.as_ref()).into_iter().map(|(a, b)| (dh(a), dh(b))).collect()
    }

    #[test]
    fn spans_start_at_the_page_edge_double_in_days_and_tile_the_window() {
        let mut f = EventFilter::window(at(1, 6), at(20, 9));
        // Newest first: the rest of the last day, then 2, 4, 8 … whole days, cut at `from`.
        assert_eq!(
            hours(&f, None),
            [((20, 0), (20, 9)), ((18, 0), (20, 0)), ((14, 0), (18, 0)), ((6, 0), (14, 0)), ((1, 6), (6, 0))]
        );
        f.order = Order::OldestFirst;
        assert_eq!(
            hours(&f, None),
            [((1, 6), (2, 0)), ((2, 0), (4, 0)), ((4, 0), (8, 0)), ((8, 0), (16, 0)), ((16, 0), (20, 9))]
        );
        // A cursor moves the edge: newest first up to its time (inclusive, the row-value test
        // decides ties), oldest first from it.
        let cursor = Some((at(10, 12).timestamp_micros(), "x".to_owned()));
        let first = spans(&f, cursor.as_ref())[0];
        assert_eq!(first, (at(10, 12), at(11, 0)));
        f.order = Order::NewestFirst;
        let first = spans(&f, cursor.as_ref())[0];
        assert_eq!(first, (at(10, 0), at(10, 12) + Duration::microseconds(1)));
        // Every span is non-empty, they touch end to end and cover the window exactly.
        for order in [Order::NewestFirst, Order::OldestFirst] {
            for (from, to) in [(at(1, 0), at(1, 1)), (at(1, 0), at(2, 0)), (at(1, 23), at(30, 1)), (at(3, 5), at(3, 5))]
            {
                let mut f = EventFilter::window(from, to);
                f.order = order;
                let mut s = spans(&f, None);
                assert!(s.iter().all(|(a, b)| a < b), "{s:?}");
                if order == Order::NewestFirst {
                    s.reverse();
                }
                assert!(s.windows(2).all(|w| w[0].1 == w[1].0), "{s:?}");
                assert_eq!(s.first().map(|x| x.0), (from < to).then_some(from));
                assert_eq!(s.last().map(|x| x.1), (from < to).then_some(to));
            }
        }
    }
}
