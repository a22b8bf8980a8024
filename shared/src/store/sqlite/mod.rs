//! Embedded record store: SQLite in WAL mode with `secure_delete`, one writer and a pool of
//! readers, and one index per access pattern of the spec.
//!
//! Access patterns and the index serving each (all tenant-first, ordered by time then id):
//! time range → `rec_time`; action → `rec_action`; category → `rec_category`; user → the union
//! of `rec_username` (lower-cased) and `rec_user_id`; sign-ins by employee id → `rec_employee`;
//! result → `rec_result`; co-browse session → `rec_session`; request pairs → `rec_correlation`;
//! idempotency → the unique `(tenant, id)`. A filter with several values of one attribute
//! (e.g. three actions) runs one indexed query per value and merges them, so the first page
//! never sorts a whole range.
//!
//! One file per port, mirroring `dynamodb`: `records`, `pairs` (request pairs), `settings` (and
//! the tenant registry), `tasks`, `subjects`; beneath them `schema.sql`, `pool` (opening,
//! configuring, the writer and the pooled readers) and `planner` (a filter to indexed queries).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::record::Record;
use crate::store::{StoreError, StoreResult};

mod pairs;
mod planner;
mod pool;
mod records;
mod seals;
mod settings;
mod subjects;
mod tasks;

/// The schema, applied at every open (every statement is `IF NOT EXISTS`).
const SCHEMA: &str = include_str!("schema.sql");

/// The SQLite database file plus its connection pool. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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

    use super::SqliteStore;

    /// One store file shared by every check (each check uses its own tenant), like production.
    async fn store() -> Arc<dyn crate::testkit::conformance::FullStore> {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static STORE: OnceLock<SqliteStore> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        Arc::new(STORE.get_or_init(|| SqliteStore::open(&dir.path().join("c.db")).unwrap()).clone())
    }

    crate::conformance_tests!(store: store);

    /// The integrity suite on one shared store file and blob directory.
    async fn rig() -> crate::testkit::integrity::Rig {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        static STORE: OnceLock<SqliteStore> = OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let store = STORE.get_or_init(|| SqliteStore::open(&dir.path().join("i.db")).unwrap()).clone();
        let blobs = crate::blob::fs::FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        let app = crate::app::App::new(store.clone(), blobs, &[7; 32], &[8; 32]);
        crate::testkit::integrity::Rig { app, tamper: Arc::new(store) }
    }

    crate::integrity_tests!(rig);
}
