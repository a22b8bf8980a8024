//! The database file and its connections: one writer behind a mutex, a pool of read-only
//! readers, every connection configured alike (busy timeout, Unicode folding, `secure_delete`),
//! the writer in WAL mode. Every call runs on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::{Inner, SCHEMA, SqliteStore};
use crate::record::fold;
use crate::store::{StoreError, StoreResult};

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

fn table_exists(conn: &Connection, name: &str) -> StoreResult<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_schema WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
        .map_err(StoreError::backend)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`. Appended rows' text waits in the tail
    /// until an append fills it, `index_text` runs, or the text indexer (`start_text_indexer`).
    pub fn open(path: &Path) -> StoreResult<Self> {
        // Owner-only before SQLite opens it: the -wal and -shm files take its mode.
        crate::private_fs::ensure_file(path).map_err(StoreError::backend)?;
        let mut conn = Connection::open(path).map_err(StoreError::backend)?;
        configure(&conn).map_err(StoreError::backend)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(StoreError::backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(anyhow::anyhow!("SQLite refused WAL mode (got {mode})")));
        }
        // FULL: the WAL is synced at every commit, so a batch the client was told is stored
        // survives a power loss or an OS crash too (NORMAL may roll back the last commits). One
        // sync per append of up to 1,000 records.
        conn.pragma_update(None, "synchronous", "FULL").map_err(StoreError::backend)?;
        // Nine indexes over millions of rows: a 2 MB default page cache turns every insert into
        // random reads. 64 MiB keeps the index pages the writer touches in memory.
        conn.pragma_update(None, "cache_size", -65_536).map_err(StoreError::backend)?;
        // A checkpoint every 64 MiB of WAL instead of SQLite's 4 MiB: an append of 1,000 records
        // dirties pages across ten indexes, so the default checkpointed after nearly every commit,
        // writing each hot index page to the database file again and again (live ingest 12.3k →
        // 15–18k events/s, README "Measured"). Readers see no difference; `maintain` truncates.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384).map_err(StoreError::backend)?;
        // A store from before the text index gets it filled once, in the transaction that
        // creates it.
        let had_records = table_exists(&conn, "records")?;
        let had_text = table_exists(&conn, "records_text")?;
        // IMMEDIATE, like every write here: beside a server that is writing, the open waits for
        // the file's write lock (the busy timeout) instead of failing at once.
        let tx = write_transaction(&mut conn)?;
        tx.execute_batch(SCHEMA).map_err(StoreError::backend)?;
        if had_records && !had_text {
            super::text::index_all_text(&tx)?;
            tx.execute("UPDATE text_upto SET seq = (SELECT coalesce(max(seq), 0) FROM records)", [])
                .map_err(StoreError::backend)?;
        }
        tx.commit().map_err(StoreError::backend)?;
        conn.execute_batch("PRAGMA optimize=0x10002;").map_err(StoreError::backend)?;
        super::inbox::recover_if_unowned(&mut conn, path)?;
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(super::Readers::default()),
            inbox: std::sync::OnceLock::new(),
        });
        Ok(Self { inner, text_budget: super::text::TEXT_BUDGET })
    }

    /// Indexes the text of the rows appended since the last batch (`text::index_tail`); the rows
    /// indexed. The text indexer (`start_text_indexer`) does this a second after appends, and an
    /// append when the tail is full.
    pub async fn index_text(&self) -> StoreResult<i64> {
        self.write(index_tail_now).await
    }

    /// Makes this handle the file's serving process: an append is answered once its records are
    /// in the inbox's log (`inbox`), and an indexer thread moves them into SQLite behind it.
    /// Fails if another process serves the file. For `auditrail serve` only: a one-off command
    /// writes to SQLite directly.
    pub fn start_inbox(&self) -> StoreResult<()> {
        if self.inner.inbox.get().is_none() {
            let inbox = super::inbox::Inbox::start(&self.inner)?;
            let _ = self.inner.inbox.set(inbox);
        }
        Ok(())
    }

    /// Waits until every record appended through the inbox is in SQLite (at once without one):
    /// for readers of records other than a listing or a read by id, which read the inbox too.
    pub(super) async fn settled(&self) -> StoreResult<()> {
        let Some(inbox) = self.inner.inbox.get().cloned() else { return Ok(()) };
        tokio::task::spawn_blocking(move || inbox.settle()).await.map_err(StoreError::backend)?
    }

    /// The same store with another first-round budget for free-text pages (tests use a tiny one
    /// so that the bounded scan and its growth run on a few records).
    #[cfg(any(test, feature = "testkit"))]
    pub fn with_text_budget(mut self, rows: usize) -> Self {
        self.text_budget = rows.max(1);
        self
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
        tokio::task::spawn_blocking(move || inner.with_reader(f)).await.map_err(StoreError::backend)?
    }

    /// Indexes the text of new rows, refreshes the planner statistics (after a bulk load) and
    /// checkpoints the WAL.
    pub async fn optimize(&self) -> StoreResult<()> {
        self.settled().await?;
        let inner = self.inner.clone();
        self.write(move |c| {
            index_tail_now(c)?;
            c.execute_batch("ANALYZE;").map_err(StoreError::backend)?;
            // Readers opened before keep the statistics they loaded (a server's first readers:
            // those of an empty store, whose plans then read a whole index): new ones load these.
            let mut readers = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            readers.generation += 1;
            readers.idle.clear();
            drop(readers);
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(StoreError::backend)
        })
        .await
    }
}

impl Inner {
    /// Runs `f` on a pooled read connection, on this thread.
    pub(super) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let (generation, pooled) = {
            let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            let current = readers.generation;
            readers.idle.retain(|(g, _)| *g == current);
            (current, readers.idle.pop().map(|(_, c)| c))
        };
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(StoreError::backend)?;
                configure(&c).map_err(StoreError::backend)?;
                c.pragma_update(None, "query_only", "ON").map_err(StoreError::backend)?;
                c.pragma_update(None, "cache_size", -16_384).map_err(StoreError::backend)?;
                c
            }
        };
        let out = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.generation == generation && readers.idle.len() < 8 {
            readers.idle.push((generation, conn));
        }
        out
    }
}

/// A transaction that takes the file's write lock at its start (IMMEDIATE), so that another
/// process's writer makes it wait (the busy timeout), where a transaction that reads first fails at
/// once when it comes to write (SQLite calls no busy handler to upgrade a read transaction).
pub(super) fn write_transaction(conn: &mut Connection) -> StoreResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(StoreError::backend)
}

/// `text::index_tail` in a transaction of its own.
fn index_tail_now(conn: &mut Connection) -> StoreResult<i64> {
    let tx = write_transaction(conn)?;
    let n = super::text::index_tail(&tx)?;
    tx.commit().map_err(StoreError::backend)?;
    Ok(n)
}

/// How long after appends the store's indexer indexes their text (if no append filled the tail).
const TEXT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

impl SqliteStore {
    /// Starts the store's text indexer: a thread that indexes the tail's text every `TEXT_IDLE`,
    /// on the writer, while the store is open (it holds no reference to it between rounds). For
    /// the serving process only: another process's would take the file's write lock beside it.
    pub fn start_text_indexer(&self) {
        spawn_text_indexer(&self.inner)
    }
}

fn spawn_text_indexer(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let spawned = std::thread::Builder::new().name("auditrail-text-index".into()).spawn(move || {
        loop {
            std::thread::sleep(TEXT_IDLE);
            let Some(inner) = weak.upgrade() else { return };
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = index_tail_now(&mut conn) {
                tracing::warn!(error = %e, "indexing the text of new records failed; retried in a second");
            }
        }
    });
    if let Err(e) = spawned {
        // Searches still find every row (the tail is read directly) and appends index full tails.
        tracing::warn!(error = %e, "no text indexer thread: the text of new records is indexed by later appends");
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::store::StoreError;

    #[test]
    fn opens_in_wal_mode_with_secure_delete_and_durable_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        let conn = s.inner.writer.lock().unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).unwrap();
        // 2 = FULL: the WAL is synced at each commit, before the client hears "stored".
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let checkpoint: i64 = conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), secure, sync, checkpoint), ("wal", 1, 2, 16_384));
    }

    #[tokio::test]
    async fn a_store_with_the_index_of_every_user_id_loses_it_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        let indexes = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                store
                    .read(|c| {
                        let mut s = c
                            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name IN ('rec_user_id', 'rec_user_id_bare')")
                            .map_err(StoreError::backend)?;
                        s.query_map([], |r| r.get::<_, String>(0))
                            .map_err(StoreError::backend)?
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(StoreError::backend)
                    })
                    .await
                    .unwrap()
            }
        };
        store
            .write(|c| {
                c.execute_batch(
                    "CREATE INDEX rec_user_id ON records(tenant, user_id, ts, id) WHERE user_id IS NOT NULL;",
                )
                .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        assert_eq!(indexes(&store).await, ["rec_user_id_bare", "rec_user_id"]);
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(indexes(&store).await, ["rec_user_id_bare"]);
    }

    /// A reader opened on an empty store (a server's first ones) plans with the statistics of
    /// `optimize` afterwards: a user's failures are read along the user's index, not the index of
    /// every failure, once the statistics say which is smaller.
    #[tokio::test]
    async fn readers_plan_with_the_statistics_of_the_last_optimize() {
        use crate::record::ResultCode;
        use crate::store::RecordStore;
        use crate::testkit::conformance::rec;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let plan = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                store
                    .read(|c| {
                        c.query_row(
                            "EXPLAIN QUERY PLAN SELECT ts, id, body FROM records WHERE tenant = 't' AND ts >= 0 \
                             AND ts < 1e18 AND username = 'ann' AND result = 'FAIL' ORDER BY ts DESC, id DESC LIMIT 51",
                            [],
                            |r| r.get::<_, String>(3),
                        )
                        .map_err(StoreError::backend)
                    })
                    .await
                    .unwrap()
            }
        };
        let before = plan(&store).await;
        let recs: Vec<_> = (0..3000)
            .map(|i| {
                let (user, result) = if i % 100 == 0 { ("ann", ResultCode::Fail) } else { ("bob", ResultCode::Fail) };
                rec(
                    "t",
                    &format!("r{i}"),
                    i,
                    "LOGIN",
                    &format!("{user}{}", if user == "bob" { i % 50 } else { 0 }),
                    result,
                )
            })
            .collect();
        store.append("t", &recs).await.unwrap();
        store.optimize().await.unwrap();
        let after = plan(&store).await;
        assert!(after.contains("rec_username"), "before: {before}; after: {after}");
    }

    /// Two processes on one file (a server and a one-off command): an append while the other's
    /// writer holds the write lock waits for it (the busy timeout) instead of failing at once, as a
    /// transaction that read before writing did.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_waits_for_another_connection_that_is_writing() {
        use crate::record::ResultCode;
        use crate::store::RecordStore;
        use crate::testkit::conformance::rec;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (server, other) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
        server.append("t", &[rec("t", "a", 1, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        let holding = tokio::spawn(async move {
            other
                .write(|c| {
                    let tx = super::write_transaction(c)?;
                    tx.execute("UPDATE text_upto SET seq = seq", []).map_err(StoreError::backend)?;
                    std::thread::sleep(std::time::Duration::from_millis(700));
                    tx.commit().map_err(StoreError::backend)
                })
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        server.append("t", &[rec("t", "b", 2, "LOGIN", "ann", ResultCode::Ok)]).await.unwrap();
        holding.await.unwrap().unwrap();
        assert!(server.get("t", "b").await.unwrap().is_some());
    }
}
