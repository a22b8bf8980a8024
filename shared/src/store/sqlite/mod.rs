//! Embedded record store: SQLite in WAL mode with `secure_delete`, one writer and a pool of
//! readers, and one index per access pattern of the spec.
//!
//! Access patterns and the index serving each (all tenant-first, ordered by time then id):
//! time range → `rec_time`; action → `rec_action`; category → `rec_category`; user → the union
//! of `rec_username` (lower-cased) and `rec_user_id_bare` (the user ids of records without a
//! username); sign-ins by employee id → `rec_employee`;
//! result → `rec_result`; co-browse session → `rec_session`; request pairs → `rec_correlation`;
//! idempotency → the unique `(tenant, id)`. A filter with several values of one attribute
//! (e.g. three actions) runs one indexed query per value and merges them, so the first page
//! never sorts a whole range.
//!
//! One file per port, mirroring `dynamodb`: `records`, `pairs` (request pairs), `settings` (and
//! the tenant registry), `tasks`, `subjects`; beneath them `schema.sql`, `pool` (opening,
//! configuring, the writer and the pooled readers), `planner` (a filter to indexed queries, and
//! running them) and `text` (the free-text index: kept in step, and raced against a window).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::Connection;

use crate::record::Record;
use crate::store::{StoreError, StoreResult};

mod append;
mod inbox;
mod pairs;
mod planner;
mod pool;
mod records;
mod seals;
mod settings;
mod subjects;
mod tasks;
mod text;

/// The schema, applied at every open (every statement is `IF NOT EXISTS`).
const SCHEMA: &str = include_str!("schema.sql");

/// The SQLite database file plus its connection pool. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// The rows a first round of a free-text race may read per source (`records::race`).
    text_budget: usize,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// The serving process's inbox (`SqliteStore::start_inbox`): appends are answered once in its
    /// log, and indexed into SQLite behind it.
    inbox: OnceLock<Arc<inbox::Inbox>>,
}

/// The idle read connections, each with the statistics generation it loaded its schema in: a
/// connection keeps the planner statistics it read when it opened, so after `ANALYZE`
/// (`SqliteStore::optimize`) the older ones are closed rather than reused.
#[derive(Default)]
struct Readers {
    generation: u64,
    idle: Vec<(u64, Connection)>,
}

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

fn decode(body: &str) -> StoreResult<Record> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use async_trait::async_trait;

    use super::SqliteStore;
    use crate::record::Record;
    use crate::seal::Seal;
    use crate::store::StoreError;

    /// One store file shared by every check (each check uses its own tenant), like production.
    async fn store() -> Arc<dyn crate::testkit::conformance::FullStore> {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static STORE: OnceLock<SqliteStore> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        Arc::new(STORE.get_or_init(|| SqliteStore::open(&dir.path().join("c.db")).unwrap()).clone())
    }

    crate::conformance_tests!(store: store);

    /// Writes beneath the port, for the integrity suite (`testkit::integrity`).
    #[async_trait]
    impl crate::testkit::integrity::Tamper for SqliteStore {
        async fn overwrite(&self, r: &Record) {
            let (body, r) = (serde_json::to_string(r).unwrap(), r.clone());
            self.write(move |c| {
                c.execute(
                    "UPDATE records SET body = ?3, ts = ?4 WHERE tenant = ?1 AND id = ?2",
                    rusqlite::params![r.tenant_id, r.id, body, r.occurred_at.timestamp_micros()],
                )
                .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        }

        async fn insert(&self, r: &Record) {
            let (body, r) = (serde_json::to_string(r).unwrap(), r.clone());
            self.write(move |c| {
                c.execute(
                    "INSERT INTO records (tenant, id, ts, category, action, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        r.tenant_id,
                        r.id,
                        r.occurred_at.timestamp_micros(),
                        r.category.as_str(),
                        r.action,
                        body
                    ],
                )
                .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        }

        async fn delete(&self, tenant: &str, id: &str) {
            let (t, id) = (tenant.to_owned(), id.to_owned());
            self.write(move |c| {
                c.execute("DELETE FROM records WHERE tenant = ?1 AND id = ?2", [t, id]).map_err(StoreError::backend)
            })
            .await
            .unwrap();
        }

        async fn delete_seal(&self, tenant: &str, seq: u64) {
            let t = tenant.to_owned();
            self.write(move |c| {
                c.execute("DELETE FROM seals WHERE tenant = ?1 AND seq = ?2", rusqlite::params![t, seq as i64])
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        }

        async fn overwrite_seal(&self, seal: &Seal) {
            let body = serde_json::to_string(seal).unwrap();
            let (t, seq) = (seal.statement.body.tenant.clone(), seal.seq() as i64);
            self.write(move |c| {
                c.execute("UPDATE seals SET body = ?3 WHERE tenant = ?1 AND seq = ?2", rusqlite::params![t, seq, body])
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        }
    }

    /// The integrity suite on one shared store file and blob directory.
    async fn rig() -> crate::testkit::integrity::Rig {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static STORE: OnceLock<SqliteStore> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let store = STORE.get_or_init(|| SqliteStore::open(&dir.path().join("i.db")).unwrap()).clone();
        let blobs = crate::blob::fs::FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        let app = crate::app::App::new(store.clone(), blobs, &[7; 32], &[8; 32]);
        crate::testkit::integrity::Rig { app, tamper: Arc::new(store), atomic_conditions: true }
    }

    crate::integrity_tests!(rig);
}
