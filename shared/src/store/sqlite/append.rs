//! The rows of an append in SQLite: each record's row, its subjects and request pair, and the
//! batch's journal entry, in the caller's transaction. An append runs it at once, or, in the
//! serving process, the inbox's indexer runs it behind the inbox's log (`inbox`).

use rusqlite::Transaction;

use super::pairs::pair_upsert;
use super::records::record_row;
use super::seals::insert_journal;
use super::subjects::insert_subjects;
use super::text::{TEXT_BATCH, index_tail, last_seq, text_upto};
use crate::record::Record;
use crate::store::{AppendOutcome, StoreError, StoreResult};

/// Inserts the stamped `rows` (each record with its stored body) of one batch; what happened to
/// each, in order (a record whose id is stored already is a duplicate and changes nothing).
pub(super) fn insert_rows(
    tx: &Transaction<'_>,
    tenant: &str,
    batch: &str,
    rows: &[(&Record, &str)],
) -> StoreResult<Vec<AppendOutcome>> {
    // New rows take row ids above the largest one and above the text index's mark (a purge may
    // have removed the rows below it: their ids are not reused for rows whose text is not indexed
    // yet).
    let upto = text_upto(tx)?;
    let mut next = last_seq(tx)?.max(upto) + 1;
    let mut out = Vec::with_capacity(rows.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO records (tenant, id, ts, category, action, user_id, username, employee_id, \
                 result, session_id, correlation_id, body, seq) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) ON CONFLICT (tenant, id) DO NOTHING",
            )
            .map_err(StoreError::backend)?;
        for (r, body) in rows {
            let row = record_row(tenant, r, body);
            let params = rusqlite::params![
                row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, next
            ];
            let n = stmt.execute(params).map_err(StoreError::backend)?;
            next += i64::from(n == 1);
            out.push(if n == 1 { AppendOutcome::Created } else { AppendOutcome::Duplicate });
            if n == 1 {
                insert_subjects(tx, tenant, r)?;
            }
            if n == 1
                && let (Some(phase), Some(corr)) = (r.phase, &r.correlation_id)
            {
                pair_upsert(tx, tenant, corr, r, phase)?;
            }
        }
    }
    // The journal entry commits with the records: the sealer reads it in commit order.
    let created: Vec<&str> =
        rows.iter().zip(&out).filter(|(_, o)| **o == AppendOutcome::Created).map(|((r, _), _)| r.id.as_str()).collect();
    if !created.is_empty() {
        insert_journal(tx, tenant, batch, &created, &[])?;
        // The text of the new rows waits for the tail's batch (`index_tail`), unless the tail is
        // full.
        if next - 1 - upto >= TEXT_BATCH {
            index_tail(tx)?;
        }
    }
    Ok(out)
}
