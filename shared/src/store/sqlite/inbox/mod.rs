//! The serving process's inbox: an append is durable, and answered, once its new records are a
//! frame in the inbox's log (written and synced); an indexer thread moves the frames into SQLite
//! behind it, many appends per transaction, on the other core. Until then the records are the
//! inbox's tail, held in memory: a listing reads it beside SQLite, a read by id looks in it first,
//! an append checks its ids against it, and every other reader of records (purge, erasure, DPO
//! search, request pairs, the sealer) first waits until the indexer has caught up (`settle`).
//!
//! The log is a directory beside the database (`<db>.inbox`) of segment files of frames:
//! `magic (4) | frame number (8) | payload length (4) | CRC-32 of number and payload (4) |
//! payload` (tenant, batch, each record's stored body). The indexer's transaction records the
//! last frame it took (`inbox_upto`), so at the next open every frame after it is indexed again
//! (a torn frame at the log's end was never answered and is cut off), and segments are deleted
//! once every frame in them is indexed. One process owns the inbox (a lock on `<db>.inbox/lock`);
//! a one-off command beside it leaves it alone, and, when no server runs, indexes what a crash
//! left in it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::Inner;
use crate::record::Record;
use crate::store::{AppendOutcome, StoreError, StoreResult};

mod frames;
mod indexer;
mod seen;
mod tail;

use tail::{Limits, Row, TenantTail};

pub(super) use frames::{dir_of, recover_if_unowned};
use frames::{encode, io, new_segment, recover, remove_indexed};
use indexer::spawn_indexer;

/// A segment is closed and a new one started past this size; closed segments are deleted once
/// indexed.
const SEGMENT_BYTES: u64 = 64 << 20;
/// The most records, and bytes of stored bodies, the tail holds in memory (each its body and the
/// fields filters and the indexer read, `Row::new`): an append that would pass either waits for the
/// indexer (at most `BACKPRESSURE_WAIT`; at once while the indexer is failing), then 503 and the
/// client retries.
pub(super) const TAIL_ROWS: usize = 262_144;
pub(super) const TAIL_BYTES: usize = 128 << 20;
/// The most records the indexer takes into one transaction.
const INDEX_ROWS: usize = 16_384;
/// The indexer thread's nice value (0 is the process's default; 19 the lowest priority).
const INDEXER_NICE: libc::c_int = 10;
/// With no append for this long, the indexer empties the log (`empty_when_idle`).
const IDLE: Duration = Duration::from_millis(500);
const BACKPRESSURE_WAIT: Duration = Duration::from_secs(30);
/// How long a reader that needs every appended record in SQLite waits for the indexer.
const SETTLE_WAIT: Duration = Duration::from_secs(120);

struct Frame {
    no: u64,
    tenant: String,
    batch: String,
    rows: Vec<Arc<Row>>,
}

pub(super) struct Log {
    file: File,
    path: PathBuf,
    len: u64,
    next_frame: u64,
    /// Closed segments and the last frame in each.
    closed: VecDeque<(PathBuf, u64)>,
    /// Set when a failed write could not be cut off: later frames would follow a torn one.
    broken: Option<String>,
    /// Each tenant's filter of the ids it may have stored.
    seen: seen::Seen,
    /// `SEGMENT_BYTES` (tests rotate sooner).
    segment_bytes: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<Frame>>,
    appended: u64,
    indexed: u64,
    tail_rows: usize,
    /// The stored bodies' bytes in the tail (the records' memory is about twice that).
    tail_bytes: usize,
    failing: Option<String>,
    limits: Limits,
}

pub(super) struct Inbox {
    dir: PathBuf,
    _lock: File,
    log: Mutex<Log>,
    tail: RwLock<HashMap<String, TenantTail>>,
    state: Mutex<State>,
    changed: Condvar,
    /// Tests hold the indexer to see the tail alone.
    held: std::sync::atomic::AtomicBool,
}

impl Inbox {
    /// Takes the inbox of the database at `db` (failing if another process serves it), indexes
    /// what the last run left in it and starts its indexer.
    pub(super) fn start(inner: &Arc<Inner>) -> StoreResult<Arc<Self>> {
        let dir = dir_of(&inner.path);
        if !dir.exists() {
            crate::private_fs::create_dir(&dir).map_err(io)?;
            if let Some(parent) = dir.parent() {
                File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        let lock = frames::lock(&dir)?.ok_or_else(|| {
            StoreError::Backend(anyhow::anyhow!("another process serves this store ({} is locked)", dir.display()))
        })?;
        let next = {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            recover(&mut conn, &dir)?
        };
        let (file, path) = new_segment(&dir, next)?;
        let inbox = Arc::new(Self {
            dir,
            _lock: lock,
            log: Mutex::new(Log {
                file,
                path,
                len: 0,
                next_frame: next,
                closed: VecDeque::new(),
                broken: None,
                seen: Default::default(),
                segment_bytes: SEGMENT_BYTES,
            }),
            tail: RwLock::new(HashMap::new()),
            state: Mutex::new(State { appended: next - 1, indexed: next - 1, ..State::default() }),
            changed: Condvar::new(),
            held: std::sync::atomic::AtomicBool::new(false),
        });
        spawn_indexer(Arc::downgrade(inner), Arc::downgrade(&inbox))?;
        Ok(inbox)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a stamped batch: duplicates (in the tail, in SQLite, or earlier in the batch) are
    /// dropped, the new records written to the log and synced, then added to the tail.
    pub(super) async fn append(
        self: Arc<Self>,
        inner: Arc<Inner>,
        tenant: &str,
        batch: String,
        rows: Vec<(Record, String)>,
    ) -> StoreResult<Vec<AppendOutcome>> {
        let tenant = tenant.to_owned();
        tokio::task::spawn_blocking(move || self.append_now(&inner, tenant, batch, rows))
            .await
            .map_err(StoreError::backend)?
    }

    fn append_now(
        self: &Arc<Self>,
        inner: &Arc<Inner>,
        tenant: String,
        batch: String,
        rows: Vec<(Record, String)>,
    ) -> StoreResult<Vec<AppendOutcome>> {
        // Before the log's lock, which other appends (and erasures) need meanwhile; appends
        // waiting together may pass the bound by their own batches.
        self.wait_for_room(rows.len(), rows.iter().map(|(_, b)| b.len()).sum())?;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &log.broken {
            return Err(StoreError::Backend(anyhow::anyhow!("the inbox's log is unusable: {why}")));
        }
        let mut out = vec![AppendOutcome::Created; rows.len()];
        let mut unseen = Vec::with_capacity(rows.len());
        {
            // The tail before SQLite: a record leaves the tail only once it is committed there.
            let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
            let mine = tail.get(&tenant);
            let mut batch_ids =
                HashSet::with_capacity_and_hasher(rows.len(), foldhash::quality::RandomState::default());
            for (i, (r, _)) in rows.iter().enumerate() {
                if !batch_ids.insert(r.id.as_str()) || mine.is_some_and(|t| t.by_id.contains_key(&r.id)) {
                    out[i] = AppendOutcome::Duplicate;
                } else {
                    unseen.push(i);
                }
            }
        }
        self.check_stored(inner, &mut log.seen, &tenant, &rows, unseen, &mut out)?;
        let created: Vec<Arc<Row>> = rows
            .into_iter()
            .zip(&out)
            .filter(|(_, o)| **o == AppendOutcome::Created)
            .map(|((r, body), _)| Arc::new(Row::new(r, body)))
            .collect();
        if created.is_empty() {
            return Ok(out);
        }
        if log.len >= log.segment_bytes {
            // Before the write: a failure here leaves nothing written.
            self.close_segment(&mut log)?;
        }
        let no = log.next_frame;
        let bytes = encode(no, &tenant, &batch, &created);
        if let Err(e) = log.file.write_all(&bytes).and_then(|()| log.file.sync_data()) {
            // Cut the frame off, so that the next one does not follow a torn one.
            if let Err(cut) = log.file.set_len(log.len).and_then(|()| log.file.sync_data()) {
                log.broken = Some(cut.to_string());
            }
            return Err(io(e));
        }
        log.len += bytes.len() as u64;
        log.next_frame += 1;
        log.seen.add(&tenant, created.iter().map(|r| r.record.id.as_str()));
        let frame = Arc::new(Frame { no, tenant, batch, rows: created });
        {
            let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
            let mine = tail.entry(frame.tenant.clone()).or_default();
            for r in &frame.rows {
                mine.by_id.insert(r.record.id.clone(), r.ts);
                mine.by_time.insert((r.ts, r.record.id.clone()), r.clone());
            }
        }
        let mut st = self.state();
        st.tail_rows += frame.rows.len();
        st.tail_bytes += frame.rows.iter().map(|r| r.body.len()).sum::<usize>();
        st.appended = no;
        st.queue.push_back(frame);
        self.changed.notify_all();
        Ok(out)
    }

    fn wait_for_room(&self, rows: usize, bytes: usize) -> StoreResult<()> {
        let mut st = self.state();
        let Limits { tail_rows, tail_bytes, wait } = st.limits;
        let deadline = Instant::now() + wait;
        while st.tail_rows > 0 && (st.tail_rows + rows > tail_rows || st.tail_bytes + bytes > tail_bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || st.failing.is_some() {
                return Err(StoreError::Throttled);
            }
            st = self.changed.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(())
    }

    /// Starts a new segment and deletes the closed ones whose frames are all indexed.
    fn close_segment(&self, log: &mut Log) -> StoreResult<()> {
        let (file, path) = new_segment(&self.dir, log.next_frame)?;
        let old = std::mem::replace(&mut log.path, path);
        log.file = file;
        log.len = 0;
        log.closed.push_back((old, log.next_frame - 1));
        let indexed = self.state().indexed;
        remove_indexed(&mut log.closed, indexed, &self.dir);
        Ok(())
    }

    /// Waits until every record appended so far is in SQLite.
    pub(super) fn settle(&self) -> StoreResult<()> {
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut st = self.state();
        let target = st.appended;
        while st.indexed < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let why = st.failing.clone().unwrap_or_else(|| "it is behind".into());
                return Err(StoreError::Backend(anyhow::anyhow!("new records are not indexed yet: {why}")));
            }
            st = self.changed.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(())
    }

    /// Once every record appended is in SQLite, empties the log: no byte of a record's stored
    /// body stays in it after an erasure (the caller changed the row in SQLite).
    pub(super) fn clear(&self) -> StoreResult<()> {
        // Outside the log's lock first, so that appends go on while the indexer catches up; then
        // under it, for the few appended meanwhile.
        self.settle()?;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        self.settle()?;
        self.empty(&mut log).map_err(io)?;
        if log.closed.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Backend(anyhow::anyhow!("indexed inbox segments could not be deleted")))
        }
    }

    /// Empties the current segment and deletes the closed ones (every frame indexed: the
    /// caller checked, holding the log); a log that could not be cut before is usable again.
    pub(super) fn empty(&self, log: &mut Log) -> std::io::Result<()> {
        log.file.set_len(0).and_then(|()| log.file.sync_data())?;
        log.len = 0;
        log.broken = None;
        remove_indexed(&mut log.closed, u64::MAX, &self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The inbox: appends answered from the log before SQLite has them, found by listings and reads
    //! by id meanwhile, checked for duplicates against both; a crash's frames indexed at the next
    //! open; one serving process per file; an erasure leaves no byte of the old body in the log.

    use std::path::Path;
    use std::sync::{Arc, OnceLock};

    use chrono::Duration;
    use serde_json::json;

    use super::super::SqliteStore;
    use super::frames::{encode, segments};
    use super::{Inbox, dir_of};
    use crate::record::{Record, ResultCode};
    use crate::store::{AppendOutcome, EventFilter, Order, RecordStore, SealStore, StoreError, SubjectStore};
    use crate::testkit::conformance::{all, rec, t0, window};

    pub(super) fn serving(path: &Path) -> SqliteStore {
        let store = SqliteStore::open(path).unwrap();
        store.start_inbox().unwrap();
        store
    }

    pub(super) fn inbox(store: &SqliteStore) -> &Arc<Inbox> {
        store.inner.inbox.get().expect("a serving store")
    }

    pub(super) async fn rows_in_sqlite(store: &SqliteStore) -> i64 {
        store
            .read(|c| c.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).map_err(StoreError::backend))
            .await
            .unwrap()
    }

    pub(super) fn mixed(tenant: &str, prefix: &str, n: i64) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let (action, user) = [("LOGIN", "ann"), ("LOGOUT", "bob"), ("CONTACT_UPDATE", "cid")][i as usize % 3];
                let result = if i % 4 == 0 { ResultCode::Fail } else { ResultCode::Ok };
                let mut r = rec(tenant, &format!("{prefix}{i:03}"), i / 2, action, user, result);
                r.description = Some(json!({"note": format!("call {prefix}{i} Nováková")}));
                r
            })
            .collect()
    }

    /// Every page of `f` over the store against the reference (`EventFilter::matches` over `recs`),
    /// in both orders.
    async fn pages_match(store: &SqliteStore, tenant: &str, recs: &[Record], f: &EventFilter) {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let f = EventFilter { order, ..f.clone() };
            let mut want: Vec<&Record> = recs.iter().filter(|r| f.matches(r)).collect();
            want.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
            if order == Order::NewestFirst {
                want.reverse();
            }
            let got = all(store, tenant, &f, 7).await;
            let got: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
            let want: Vec<&str> = want.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(got, want, "{f:?}");
        }
    }

    async fn filters_match(store: &SqliteStore, tenant: &str, recs: &[Record]) {
        let mut filters = vec![window()];
        let mut f = window();
        f.actions = vec!["LOGIN".into(), "CONTACT_UPDATE".into()];
        filters.push(f);
        let mut f = window();
        f.user = Some("BOB".into());
        f.result = Some(ResultCode::Ok);
        filters.push(f);
        let mut f = window();
        f.text = Some("NOVÁK".into());
        f.from = t0() + Duration::minutes(5);
        filters.push(f);
        let mut f = window();
        f.text = Some("a7 n".into());
        filters.push(f);
        for f in &filters {
            pages_match(store, tenant, recs, f).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_is_listed_and_read_before_it_is_indexed_and_its_ids_are_checked_against_both() {
        let dir = tempfile::tempdir().unwrap();
        let store = serving(&dir.path().join("db"));
        inbox(&store).hold(true);
        let mut recs = mixed("t", "a", 40);
        assert_eq!(store.append("t", &recs).await.unwrap(), vec![AppendOutcome::Created; 40]);
        store.append("other", &mixed("other", "a", 3)).await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 0, "the indexer is held: the records are in the log only");
        // Read by id and listed by every filter from the tail alone, each tenant its own.
        let held = store.get("t", "a008").await.unwrap().unwrap();
        assert_eq!(held.actor.username.as_deref(), Some("cid"));
        // Whole, as stored: the tail keeps only what filters read, a read decodes the body.
        assert_eq!((&held.description, &held.data), (&recs[8].description, &recs[8].data));
        assert!(held.description.is_some() && held.integrity.is_some(), "{held:?}");
        assert!(store.get("other", "a008").await.unwrap().is_none());
        assert_eq!(store.get("other", "a002").await.unwrap().unwrap().tenant_id, "other");
        filters_match(&store, "t", &recs).await;
        // Duplicates: of the tail, and within the batch.
        let again = [recs[3].clone(), mixed("t", "b", 1)[0].clone(), mixed("t", "b", 1)[0].clone()];
        assert_eq!(
            store.append("t", &again).await.unwrap(),
            [AppendOutcome::Duplicate, AppendOutcome::Created, AppendOutcome::Duplicate]
        );
        recs.push(again[1].clone());

        // Indexed: the same answers from SQLite, and ids checked against it.
        inbox(&store).hold(false);
        store.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 44);
        assert_eq!(store.append("t", &recs[..2]).await.unwrap(), [AppendOutcome::Duplicate, AppendOutcome::Duplicate]);
        filters_match(&store, "t", &recs).await;

        // Half in SQLite, half in the tail: pages run across both, in both orders.
        inbox(&store).hold(true);
        let later = mixed("t", "c", 30);
        store.append("t", &later).await.unwrap();
        recs.extend(later);
        assert_eq!(rows_in_sqlite(&store).await, 44);
        filters_match(&store, "t", &recs).await;
        inbox(&store).hold(false);
        store.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 74);
        filters_match(&store, "t", &recs).await;
    }

    /// Waits until no process holds the inbox's lock (a dropped store's indexer lets go within a
    /// round).
    pub(super) async fn released(db: &Path) {
        for _ in 0..100 {
            let lock = std::fs::OpenOptions::new().write(true).open(dir_of(db).join("lock")).unwrap();
            if lock.try_lock().is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the inbox's lock was never released");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_records_a_crash_left_in_the_log_are_indexed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = serving(&db);
        inbox(&store).hold(true);
        let mut recs = mixed("t", "a", 12);
        recs[7].subject = Some(crate::record::Subject { emails: vec!["Jan@Example.com".into()], ..Default::default() });
        store.append("t", &recs[..6]).await.unwrap();
        store.append("t", &recs[6..]).await.unwrap();
        // The process dies: nothing was indexed, and a frame was being written when it did.
        drop(store);
        released(&db).await;
        let segs = segments(&dir_of(&db)).unwrap();
        assert_eq!(segs.len(), 1);
        let torn = encode(99, "t", "batch", &[]);
        std::fs::OpenOptions::new().append(true).open(&segs[0]).unwrap().write_all(&torn[..torn.len() - 3]).unwrap();

        // A one-off command's open indexes both whole frames, with their journal and subjects.
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 12);
        let journal = store.journal("t", None, None, 10).await.unwrap();
        assert_eq!(journal.iter().map(|j| j.ids.len()).collect::<Vec<_>>(), [6, 6]);
        let key = crate::record::subject::email_key("jan@example.com").unwrap();
        let (found, _) = store.subject_lookup("t", &key, false, (None, None), 10).await.unwrap();
        assert_eq!(found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a007"]);
        assert!(segments(&dir_of(&db)).unwrap().is_empty(), "indexed segments are deleted");
        drop(store);

        // Served again: frame numbers go on past the indexed ones, and the next crash is recovered too.
        let store = serving(&db);
        inbox(&store).hold(true);
        store.append("t", &mixed("t", "b", 3)).await.unwrap();
        drop(store);
        released(&db).await;
        let store = serving(&db);
        assert_eq!(rows_in_sqlite(&store).await, 15);
        store.append("t", &mixed("t", "c", 2)).await.unwrap();
        store.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 17);
    }

    #[tokio::test]
    async fn a_damaged_frame_before_the_end_of_the_log_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        drop(SqliteStore::open(&db).unwrap());
        let inbox_dir = dir_of(&db);
        std::fs::create_dir(&inbox_dir).unwrap();
        let row = |id: &str| {
            let r = rec("t", id, 1, "LOGIN", "ann", ResultCode::Ok);
            Arc::new(super::Row::new(r.clone(), serde_json::to_string(&r).unwrap()))
        };
        let mut first = encode(1, "t", "b1", &[row("x")]);
        let n = first.len();
        first[n - 5] ^= 0x20;
        std::fs::write(inbox_dir.join(format!("{:020}.log", 1)), &first).unwrap();
        std::fs::write(inbox_dir.join(format!("{:020}.log", 2)), encode(2, "t", "b2", &[row("y")])).unwrap();
        match SqliteStore::open(&db) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("damaged"), "{m}"),
            other => panic!("opened over a damaged log: {:?}", other.map(|_| ())),
        }
        assert_eq!(segments(&inbox_dir).unwrap().len(), 2, "nothing is deleted");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_process_serves_a_file_and_a_one_off_beside_it_leaves_its_inbox_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let server = serving(&db);
        inbox(&server).hold(true);
        server.append("t", &mixed("t", "a", 5)).await.unwrap();
        let one_off = SqliteStore::open(&db).unwrap();
        assert_eq!(rows_in_sqlite(&one_off).await, 0, "the server's frames are the server's to index");
        match one_off.start_inbox() {
            Err(e) => assert!(e.to_string().contains("another process serves this store"), "{e}"),
            Ok(()) => panic!("two processes serve one file"),
        }
        inbox(&server).hold(false);
        server.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&one_off).await, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erasure_leaves_no_byte_of_the_old_record_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = serving(&db);
        let mut r = rec("t", "a", 1, "LOGIN", "ann", ResultCode::Ok);
        r.description = Some(json!({"caller": "Zdeňka Přibylová +420 777 123 456"}));
        store.append("t", &[r.clone(), rec("t", "b", 2, "LOGIN", "bob", ResultCode::Ok)]).await.unwrap();
        let log_holds = |needle: &str| {
            segments(&dir_of(&db)).unwrap().iter().any(|p| {
                let bytes = std::fs::read(p).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
        };
        assert!(log_holds("Přibylová"), "the probe finds the appended body");
        // What the erasure job does: replace the record, then wipe what was removed.
        let mut erased = store.get("t", "a").await.unwrap().unwrap();
        erased.description = Some(json!("{Anonymized by DPO}"));
        store.replace("t", &erased).await.unwrap();
        store.wipe_removed().await.unwrap();
        assert!(!log_holds("Přibylová") && !log_holds("777 123"), "the old body is still in the log");
        // Idle, with everything indexed, the log empties by itself: no body waits in it for the next
        // erasure or purge.
        store.append("t", &[rec("t", "d", 4, "LOGIN", "Jiří Dvořák", ResultCode::Ok)]).await.unwrap();
        assert!(log_holds("Jiří Dvořák"));
        let mut waited = 0;
        while log_holds("Jiří Dvořák") {
            assert!(waited < 100, "the idle log was never emptied");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            waited += 1;
        }
        assert_eq!(store.get("t", "d").await.unwrap().unwrap().actor.username.as_deref(), Some("Jiří Dvořák"));
        // The log goes on after it, and what is appended next survives a crash.
        inbox(&store).hold(true);
        store.append("t", &[rec("t", "c", 3, "LOGIN", "cid", ResultCode::Ok)]).await.unwrap();
        drop(store);
        released(&db).await;
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 4);
        assert_eq!(store.get("t", "a").await.unwrap().unwrap().description, Some(json!("{Anonymized by DPO}")));
    }

    use std::io::Write;

    /// The conformance suite on a serving store: every port's checks with appends through the inbox.
    mod conformance {
        use super::*;

        async fn store() -> Arc<dyn crate::testkit::conformance::FullStore> {
            static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
            static STORE: OnceLock<SqliteStore> = OnceLock::new();
            let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
            Arc::new(STORE.get_or_init(|| serving(&dir.path().join("c.db"))).clone())
        }

        crate::conformance_tests!(store: store);
    }
}
