//! The inbox's tail: the records appended and not yet in SQLite, by tenant, in time order and by
//! id; read by listings and reads by id beside SQLite.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::{decode, micros};
use super::{BACKPRESSURE_WAIT, Inbox, TAIL_BYTES, TAIL_ROWS};
use crate::record::{Record, description_text, fold};
use crate::store::{EventFilter, Order, StoreResult};

/// One appended record: its stored body, and what a listing of the tail matches it on.
pub(super) struct Row {
    /// The record less what only its body needs (`Row::new`): what indexing and filters read.
    pub record: Record,
    pub body: String,
    pub(super) ts: i64,
    /// The description case-folded, computed when a search first needs it.
    text: OnceLock<Option<String>>,
}

#[derive(Default)]
pub(super) struct TenantTail {
    pub(super) by_time: BTreeMap<(i64, String), Arc<Row>>,
    /// Hashed with foldhash (seeded per process): SipHash was a third of putting a batch's rows
    /// in the tail.
    pub(super) by_id: HashMap<String, i64, foldhash::quality::RandomState>,
}

/// The tail's bounds and an append's longest wait for room in it (tests make them small).
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub(super) tail_rows: usize,
    pub(super) tail_bytes: usize,
    pub(super) wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { tail_rows: TAIL_ROWS, tail_bytes: TAIL_BYTES, wait: BACKPRESSURE_WAIT }
    }
}

impl Row {
    /// A tail row of a stamped record and its stored body. The row keeps what the indexer and the
    /// filters read; the rest (description, data, attachments, the integrity stamp …) is in
    /// `body` alone, which reads by id and text searches decode: a JSON description's map alone
    /// is a B-tree node of about 630 bytes, kept for every record until it is indexed.
    pub(in crate::store::sqlite) fn new(mut record: Record, body: String) -> Self {
        record.description = None;
        record.data = None;
        record.attachments = Vec::new();
        record.integrity = None;
        record.source_ip = None;
        record.failure_reason_code = None;
        record.actor.full_name = None;
        record.actor.role = None;
        Self { ts: micros(record.occurred_at), record, body, text: OnceLock::new() }
    }

    /// The description case-folded, as a search compares it (decoded from the body once, when
    /// first asked: the description alone, the other fields skipped).
    fn text(&self) -> Option<&str> {
        #[derive(serde::Deserialize)]
        struct Description {
            description: Option<serde_json::Value>,
        }
        self.text
            .get_or_init(|| {
                let d = serde_json::from_str::<Description>(&self.body).ok()?.description?;
                Some(fold(&description_text(&d)))
            })
            .as_deref()
    }
}

impl Inbox {
    /// A record of the tail by id.
    pub(in crate::store::sqlite) fn get(&self, tenant: &str, id: &str) -> Option<StoreResult<Record>> {
        let row = {
            let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
            let t = tail.get(tenant)?;
            let ts = *t.by_id.get(id)?;
            t.by_time.get(&(ts, id.to_owned()))?.clone()
        };
        Some(decode(&row.body))
    }

    /// The first `limit` records of the tail the filter matches after the cursor, in the
    /// filter's order, as (time, id, body).
    pub(in crate::store::sqlite) fn matches(
        &self,
        tenant: &str,
        filter: &EventFilter,
        after: Option<&(i64, String)>,
        limit: usize,
    ) -> Vec<(i64, String, String)> {
        let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tail.get(tenant) else { return Vec::new() };
        let (from, to) = crate::store::sqlite::planner::cursor_bounds(filter, after);
        if from >= to {
            return Vec::new();
        }
        let range = t.by_time.range((from, String::new())..(to, String::new()));
        let text = filter.text.as_deref().map(fold);
        // The range compared the times in µs, as SQLite does; the rest of the filter here.
        let rest =
            EventFilter { text: None, from: DateTime::<Utc>::MIN_UTC, to: DateTime::<Utc>::MAX_UTC, ..filter.clone() };
        let keep = |(key, row): &(&(i64, String), &Arc<Row>)| {
            let past = match (after, filter.order) {
                (Some(a), Order::NewestFirst) => **key < *a,
                (Some(a), Order::OldestFirst) => **key > *a,
                (None, _) => true,
            };
            past && rest.matches(&row.record)
                && text.as_deref().is_none_or(|q| row.text().is_some_and(|d| d.contains(q)))
        };
        let take = |(key, row): (&(i64, String), &Arc<Row>)| (key.0, key.1.clone(), row.body.clone());
        match filter.order {
            Order::NewestFirst => range.rev().filter(keep).take(limit).map(take).collect(),
            Order::OldestFirst => range.filter(keep).take(limit).map(take).collect(),
        }
    }
}
