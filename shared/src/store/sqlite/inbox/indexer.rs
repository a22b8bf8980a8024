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
