//! The inbox's indexer: a thread that moves the log's frames into SQLite behind the appends, many
//! per transaction and at a lower priority than the appends, and empties the log when idle.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::frames::{index_frames, io};
use super::{Frame, IDLE, INDEX_ROWS, INDEXER_NICE, Inbox};
use crate::store::StoreResult;
use crate::store::sqlite::Inner;

impl Inbox {
    /// With no append for a while and every frame indexed, empties the log, so the bodies of
    /// indexed records do not stay in it (unless an append holds the log: then next time).
    fn empty_when_idle(&self) {
        let Ok(mut log) = self.log.try_lock() else { return };
        if log.len == 0 && log.closed.is_empty() || self.state().indexed + 1 < log.next_frame {
            return;
        }
        if let Err(e) = self.empty(&mut log) {
            tracing::warn!(error = %e, "emptying the inbox's log failed; tried again when idle");
        }
    }

    /// The indexer's round: the frames at the queue's front (up to `INDEX_ROWS` records) into
    /// SQLite, then out of the tail.
    fn index_round(&self, inner: &Inner) -> StoreResult<bool> {
        let frames: Vec<Arc<Frame>> = {
            let st = self.state();
            // Under the state's lock, which an append holds to queue its frame: a test that holds
            // the indexer and then appends knows that frame stays in the tail.
            if self.held.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(false);
            }
            let mut rows = 0;
            st.queue
                .iter()
                .take_while(|f| {
                    let first = rows == 0;
                    rows += f.rows.len();
                    first || rows <= INDEX_ROWS
                })
                .cloned()
                .collect()
        };
        let Some(last) = frames.last().map(|f| f.no) else { return Ok(false) };
        {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            index_frames(&mut conn, &frames)?;
        }
        {
            let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
            for f in &frames {
                if let Some(t) = tail.get_mut(&f.tenant) {
                    for r in &f.rows {
                        t.by_id.remove(&r.record.id);
                        t.by_time.remove(&(r.ts, r.record.id.clone()));
                    }
                    if t.by_id.is_empty() {
                        tail.remove(&f.tenant);
                    }
                }
            }
        }
        let mut st = self.state();
        st.queue.drain(..frames.len());
        st.tail_rows -= frames.iter().map(|f| f.rows.len()).sum::<usize>();
        st.tail_bytes -= frames.iter().flat_map(|f| &f.rows).map(|r| r.body.len()).sum::<usize>();
        st.indexed = last;
        st.failing = None;
        self.changed.notify_all();
        Ok(true)
    }
}

pub(super) fn spawn_indexer(inner: Weak<Inner>, inbox: Weak<Inbox>) -> StoreResult<()> {
    std::thread::Builder::new()
        .name("auditrail-inbox".into())
        .spawn(move || {
            // Behind the appends: on a busy machine the cores go to answering appends first (their
            // records are durable and listed from the tail), and the indexer catches up after.
            // SAFETY: setpriority on this thread's own id; a failure leaves the default priority.
            #[cfg(target_os = "linux")]
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, INDEXER_NICE)
            };
            loop {
                let (Some(inner), Some(inbox)) = (inner.upgrade(), inbox.upgrade()) else { return };
                if inbox.held.load(std::sync::atomic::Ordering::Relaxed) {
                    drop((inner, inbox));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                match inbox.index_round(&inner) {
                    Ok(true) => continue,
                    Ok(false) => {
                        let st = inbox.state();
                        if st.queue.is_empty() {
                            let (st, idle) = inbox.changed.wait_timeout(st, IDLE).unwrap_or_else(|p| p.into_inner());
                            drop(st);
                            if idle.timed_out() {
                                inbox.empty_when_idle();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "indexing the inbox failed; retried in a second");
                        inbox.state().failing = Some(e.to_string());
                        drop((inner, inbox));
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(io)
}

#[cfg(test)]
impl Inbox {
    pub(super) fn hold(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! The inbox under load and failure: a burst past the tail's bounds waits for the indexer, or
    //! is refused whole; a failing indexer refuses at once what needs room and catches up once it
    //! can write again; segments rotate, are deleted once indexed, and a crash's segments are all
    //! indexed at the next open.

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::super::frames::segments;
    use super::super::tests::{inbox, mixed, released, rows_in_sqlite, serving};
    use super::super::{Limits, dir_of};
    use crate::store::{AppendOutcome, RecordStore, StoreError};

    fn limits(store: &super::super::super::SqliteStore, rows: usize, bytes: usize, wait: Duration) {
        inbox(store).state().limits = Limits { tail_rows: rows, tail_bytes: bytes, wait };
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_past_the_tail_waits_for_the_indexer_or_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(serving(&dir.path().join("db")));
        limits(&store, 150, usize::MAX, Duration::from_secs(30));
        inbox(&store).hold(true);
        // The first batch fits; the second (100 + 100 > 150) waits until the indexer makes room.
        let first = mixed("t", "a", 100);
        assert_eq!(store.append("t", &first).await.unwrap(), vec![AppendOutcome::Created; 100]);
        let (s, second) = (store.clone(), mixed("t", "b", 100));
        let waiting = tokio::spawn(async move { s.append("t", &second).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "an append past the tail's bound waits for room");
        inbox(&store).hold(false);
        assert_eq!(waiting.await.unwrap().unwrap(), vec![AppendOutcome::Created; 100]);
        store.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 200);

        // Past its wait, by rows or by bytes, it is refused as throttled and nothing of it is kept.
        for (rows, bytes, prefix) in [(150, usize::MAX, "c"), (usize::MAX, 1000, "e")] {
            limits(&store, rows, bytes, Duration::from_millis(200));
            inbox(&store).hold(true);
            store.append("t", &mixed("t", prefix, 100)).await.unwrap();
            let refused = mixed("t", &format!("{prefix}x"), 100);
            match store.append("t", &refused).await {
                Err(StoreError::Throttled) => {}
                other => panic!("a full tail answered {other:?}"),
            }
            inbox(&store).hold(false);
            store.settled().await.unwrap();
            assert!(store.get("t", &refused[0].id).await.unwrap().is_none(), "nothing of a refused batch is stored");
            // Sent again, it is new.
            assert_eq!(store.append("t", &refused).await.unwrap(), vec![AppendOutcome::Created; 100]);
            store.settled().await.unwrap();
        }
        assert_eq!(rows_in_sqlite(&store).await, 600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_indexer_refuses_at_once_what_needs_room_and_catches_up_when_it_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = serving(&db);
        // Another connection makes every insert into the records fail, as a full disk would.
        let side = rusqlite::Connection::open(&db).unwrap();
        side.busy_timeout(Duration::from_secs(10)).unwrap();
        side.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;",
        )
        .unwrap();
        let durable = mixed("t", "a", 100);
        assert_eq!(store.append("t", &durable).await.unwrap(), vec![AppendOutcome::Created; 100]);
        let started = Instant::now();
        while inbox(&store).state().failing.is_none() {
            assert!(started.elapsed() < Duration::from_secs(20), "the indexer never failed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(inbox(&store).state().failing.as_deref().unwrap().contains("disk full (test)"));
        // Answered from the tail meanwhile; an append that needs room is refused without the wait.
        assert_eq!(store.get("t", &durable[42].id).await.unwrap().unwrap().id, durable[42].id);
        limits(&store, 150, usize::MAX, Duration::from_secs(30));
        let asked = Instant::now();
        let later = mixed("t", "b", 100);
        assert!(matches!(store.append("t", &later).await, Err(StoreError::Throttled)));
        assert!(asked.elapsed() < Duration::from_secs(5), "refused after {:?}", asked.elapsed());
        assert_eq!(rows_in_sqlite(&store).await, 0);

        // It can write again: what was answered is indexed, and appends go on.
        side.execute_batch("DROP TRIGGER refuse").unwrap();
        store.settled().await.unwrap();
        assert!(inbox(&store).state().failing.is_none());
        assert_eq!(rows_in_sqlite(&store).await, 100);
        assert_eq!(store.append("t", &later).await.unwrap(), vec![AppendOutcome::Created; 100]);
        assert_eq!(store.append("t", &durable[..3]).await.unwrap(), vec![AppendOutcome::Duplicate; 3]);
        store.settled().await.unwrap();
        assert_eq!(rows_in_sqlite(&store).await, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_rotate_are_deleted_once_indexed_and_a_crash_leaves_none_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let segment_bytes = |store: &super::super::super::SqliteStore| {
            inbox(store).log.lock().unwrap().segment_bytes = 16 << 10;
        };
        // Held, so nothing is indexed: ten frames of ~20 kB make ten segments; then the process dies.
        let store = serving(&db);
        segment_bytes(&store);
        inbox(&store).hold(true);
        for i in 0..10 {
            store.append("t", &mixed("t", &format!("a{i}-"), 30)).await.unwrap();
        }
        drop(store);
        released(&db).await;
        let left = segments(&dir_of(&db)).unwrap().len();
        assert!(left >= 5, "{left} segments for ten frames of ~20 kB with a 16 kB bound");

        // The next open indexes every frame of every segment once and deletes them.
        let store = serving(&db);
        assert_eq!(rows_in_sqlite(&store).await, 300);
        assert_eq!(segments(&dir_of(&db)).unwrap().len(), 1, "only the new run's segment");
        assert_eq!(store.append("t", &mixed("t", "a3-", 30)).await.unwrap(), vec![AppendOutcome::Duplicate; 30]);

        // Serving: a segment whose frames are indexed is deleted at the next rotation.
        segment_bytes(&store);
        for i in 0..10 {
            store.append("t", &mixed("t", &format!("b{i}-"), 30)).await.unwrap();
            store.settled().await.unwrap();
        }
        let left = segments(&dir_of(&db)).unwrap().len();
        assert!(left <= 2, "{left} segments kept after every frame was indexed");
        assert_eq!(rows_in_sqlite(&store).await, 600);
    }
}
