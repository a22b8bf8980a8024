//! Task records in SQLite: one row per task, the whole task as JSON, the version as the
//! optimistic-concurrency guard, a partial index over queued and running tasks.

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use super::SqliteStore;
use crate::store::{PageRequest, Position, StoreError, StoreResult, TaskStore};
use crate::task::{Task, TaskKind};

fn decode(body: &str) -> StoreResult<Task> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("task: {e}")))
}

fn decode_all(rows: Vec<String>) -> StoreResult<Vec<Task>> {
    rows.iter().map(|b| decode(b)).collect()
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, task: &mut Task) -> StoreResult<()> {
        task.version = 1;
        let t = task.clone();
        self.write(move |conn| {
            let body = serde_json::to_string(&t).map_err(StoreError::backend)?;
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO tasks (tenant, kind, id, status, version, body) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
                    rusqlite::params![t.tenant_id, t.kind.as_str(), t.id, t.status.as_str(), body],
                )
                .map_err(StoreError::backend)?;
            if n == 0 { Err(StoreError::Conflict(format!("task {} exists", t.id))) } else { Ok(()) }
        })
        .await
    }

    async fn get_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<Option<Task>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let body: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM tasks WHERE tenant = ?1 AND kind = ?2 AND id = ?3")
                    .and_then(|mut s| {
                        s.query_row(rusqlite::params![tenant, kind.as_str(), id], |r| r.get(0)).optional()
                    })
                    .map_err(StoreError::backend)
            })
            .await?;
        body.as_deref().map(decode).transpose()
    }

    async fn list_tasks(
        &self,
        tenant: &str,
        kind: TaskKind,
        page: PageRequest,
    ) -> StoreResult<(Vec<Task>, Option<Position>)> {
        let after = match &page.after {
            None => None,
            Some(p) => Some(p.as_str().ok_or_else(|| StoreError::Invalid("bad task position".into()))?.to_owned()),
        };
        let tenant = tenant.to_owned();
        let limit = page.limit.max(1);
        let rows: Vec<String> = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body FROM tasks WHERE tenant = ?1 AND kind = ?2 AND (?3 IS NULL OR id < ?3) \
                         ORDER BY id DESC LIMIT ?4",
                    )
                    .map_err(StoreError::backend)?;
                stmt.query_map(rusqlite::params![tenant, kind.as_str(), after, limit as i64 + 1], |r| r.get(0))
                    .map_err(StoreError::backend)?
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::backend)
            })
            .await?;
        Ok(crate::store::task_page(decode_all(rows)?, limit))
    }

    async fn save_task(&self, task: &mut Task) -> StoreResult<()> {
        let next = task.next_version();
        let t = next.clone();
        self.write(move |conn| {
            let body = serde_json::to_string(&t).map_err(StoreError::backend)?;
            let n = conn
                .execute(
                    "UPDATE tasks SET status = ?1, version = ?2, body = ?3 \
                     WHERE tenant = ?4 AND kind = ?5 AND id = ?6 AND version = ?7",
                    rusqlite::params![
                        t.status.as_str(),
                        t.version as i64,
                        body,
                        t.tenant_id,
                        t.kind.as_str(),
                        t.id,
                        t.version as i64 - 1
                    ],
                )
                .map_err(StoreError::backend)?;
            if n == 0 { Err(StoreError::Conflict(format!("task {} changed or vanished", t.id))) } else { Ok(()) }
        })
        .await?;
        *task = next;
        Ok(())
    }

    async fn delete_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<()> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM tasks WHERE tenant = ?1 AND kind = ?2 AND id = ?3",
                rusqlite::params![tenant, kind.as_str(), id],
            )
            .map_err(StoreError::backend)?;
            Ok(())
        })
        .await
    }

    async fn active_tasks(&self, kind: TaskKind, limit: usize) -> StoreResult<Vec<Task>> {
        let rows: Vec<String> = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body FROM tasks INDEXED BY task_active \
                         WHERE kind = ?1 AND status IN ('QUEUED', 'RUNNING') ORDER BY id LIMIT ?2",
                    )
                    .map_err(StoreError::backend)?;
                stmt.query_map(rusqlite::params![kind.as_str(), limit as i64], |r| r.get(0))
                    .map_err(StoreError::backend)?
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::backend)
            })
            .await?;
        decode_all(rows)
    }
}
