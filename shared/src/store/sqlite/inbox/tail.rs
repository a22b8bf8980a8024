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
    /// Keyed by `(row.ts, row.record.id)`.
    pub(super) by_time: BTreeMap<(i64, String), Arc<Row>>,
    /// Hashed with foldhash's quality hasher, randomly seeded per map: SipHash was a third of
    /// putting a batch's rows in the tail. foldhash does not claim resistance to an attacker who
    /// can see timings and choose keys; here the keys are an authenticated tenant's own ids, the
    /// hashes never leave the process, and the map holds at most the tail's 262,144 rows.
    pub(super) by_id: HashMap<String, i64, foldhash::quality::RandomState>,
    /// Once armed, the next listing of this tenant's tail meets the barrier twice after its
    /// first chunk (tests).
    #[cfg(test)]
    pub(super) pause: Option<Arc<(std::sync::atomic::AtomicBool, std::sync::Barrier)>>,
}

/// Rows a listing of the tail takes under the tail's lock at a time; it matches them after
/// letting go of it (tests take few, to cross chunks).
const SCAN_CHUNK: usize = if cfg!(test) { 3 } else { 4096 };

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
    /// filters read (attachments too: the uploads a record names are index entries, and few
    /// records have any); the rest (description, data, the integrity stamp …) is in
    /// `body` alone, which reads by id and text searches decode: a JSON description's map alone
    /// is a B-tree node of about 630 bytes, kept for every record until it is indexed.
    pub(in crate::store::sqlite) fn new(mut record: Record, body: String) -> Self {
        record.description = None;
        record.data = None;
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
    ///
    /// The window's rows are taken under the tail's lock a chunk at a time and matched outside
    /// it: a first text search decodes each row's description (a second and more over a full
    /// tail), which held off every append (each needs the lock to add its rows) and, behind an
    /// append waiting for it, every other read. A row indexed meanwhile is in SQLite, which the
    /// caller reads after the tail; one in both is merged there.
    pub(in crate::store::sqlite) fn matches(
        &self,
        tenant: &str,
        filter: &EventFilter,
        after: Option<&(i64, String)>,
        limit: usize,
    ) -> Vec<(i64, String, String)> {
        use std::ops::Bound::{Excluded, Included};
        let (from, to) = crate::store::sqlite::planner::cursor_bounds(filter, after);
        if from >= to || limit == 0 {
            return Vec::new();
        }
        let newest_first = filter.order == Order::NewestFirst;
        let text = filter.text.as_deref().map(fold);
        // The range compared the times in µs, as SQLite does; the rest of the filter here.
        let rest =
            EventFilter { text: None, from: DateTime::<Utc>::MIN_UTC, to: DateTime::<Utc>::MAX_UTC, ..filter.clone() };
        let keep = |row: &Row| {
            let key = (row.ts, row.record.id.as_str());
            let past = match (after, newest_first) {
                (Some(a), true) => key < (a.0, a.1.as_str()),
                (Some(a), false) => key > (a.0, a.1.as_str()),
                (None, _) => true,
            };
            past && rest.matches(&row.record)
                && text.as_deref().is_none_or(|q| row.text().is_some_and(|d| d.contains(q)))
        };
        let mut found = Vec::new();
        // The last key taken: the next chunk begins past it.
        let mut edge: Option<(i64, String)> = None;
        loop {
            #[cfg(test)]
            let pause;
            let chunk: Vec<Arc<Row>> = {
                let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
                let Some(t) = tail.get(tenant) else { break };
                #[cfg(test)]
                {
                    pause = t.pause.clone();
                }
                let (lo, hi) = ((from, String::new()), (to, String::new()));
                let bounds = match (edge.take(), newest_first) {
                    (None, _) => (Included(lo), Excluded(hi)),
                    (Some(e), true) => (Included(lo), Excluded(e)),
                    (Some(e), false) => (Excluded(e), Excluded(hi)),
                };
                let range = t.by_time.range(bounds);
                if newest_first {
                    range.rev().take(SCAN_CHUNK).map(|(_, r)| r.clone()).collect()
                } else {
                    range.take(SCAN_CHUNK).map(|(_, r)| r.clone()).collect()
                }
            };
            #[cfg(test)]
            if let Some((armed, meet)) = pause.as_deref()
                && armed.swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                meet.wait();
                meet.wait();
            }
            for row in &chunk {
                if keep(row) {
                    found.push((row.ts, row.record.id.clone(), row.body.clone()));
                    if found.len() == limit {
                        return found;
                    }
                }
            }
            match chunk.last() {
                Some(last) if chunk.len() == SCAN_CHUNK => edge = Some((last.ts, last.record.id.clone())),
                _ => break,
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    //! A listing of the tail lets appends in while it matches its rows.

    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::super::tests::{inbox, mixed, serving};
    use crate::store::{AppendOutcome, PageRequest, RecordStore};
    use crate::testkit::conformance::window;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_go_on_while_a_listing_matches_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(serving(&dir.path().join("db")));
        inbox(&store).hold(true);
        store.append("t", &mixed("t", "a", 20)).await.unwrap();
        let pause = Arc::new((AtomicBool::new(true), Barrier::new(2)));
        inbox(&store).tail.write().unwrap().get_mut("t").unwrap().pause = Some(pause.clone());
        let meet = |p: Arc<(AtomicBool, Barrier)>| {
            tokio::task::spawn_blocking(move || {
                p.1.wait();
            })
        };

        // A text search (every description matches), newest first, stopped after its first chunk.
        let mut f = window();
        f.text = Some("NOVÁKOVÁ".into());
        let s = store.clone();
        let search = tokio::spawn(async move { s.query("t", &f, PageRequest { limit: 100, after: None }).await });
        meet(pause.clone()).await.unwrap();
        // Meanwhile an append, which needs the tail's lock to add its rows, is answered.
        let s = store.clone();
        let append = tokio::spawn(async move { s.append("t", &mixed("t", "b", 5)).await });
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            while !append.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        // The search goes on (it would otherwise keep the lock, and the append waiting, for good).
        meet(pause).await.unwrap();
        assert!(answered, "an append waited for a listing of the tail to finish");
        assert_eq!(append.await.unwrap().unwrap(), vec![AppendOutcome::Created; 5]);
        // The rest of the window was read after the append: its rows are on the page too.
        let page = search.await.unwrap().unwrap();
        let mut ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        let want: Vec<String> = (0..20).map(|i| format!("a{i:03}")).chain((0..5).map(|i| format!("b{i:03}"))).collect();
        assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
