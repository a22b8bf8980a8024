//! The export worker: claims a task, streams its records through the archive writer into a
//! multipart upload, and checkpoints after every part (query cursor, uploaded parts, writer
//! state), renewing its lease. Killed at any point, the next worker continues from the last
//! checkpoint: parts after it are uploaded again under the same numbers, which replaces them.
//! A failure ends the task in FAILED with a reason and aborts the upload, so no parts are left.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};

use super::writer::{ArchiveWriter, Limits, WriteError};
use super::{Checkpoint, ExportBody, archive_key};
use crate::crypto::{Sealer, seal_context};
use crate::jobs::{self, Task, TaskKind, TaskStatus};
use crate::record::{Actor, ActorKind, Record, ResultCode};
use crate::retention;
use crate::store::{BlobKey, BlobStore, PageRequest, RecordStore, SettingsStore, StoreError, StoreResult, TaskStore};

/// Transient failures (throttling) are retried by handing the task back this many times.
/// Records per query page (a part can only end at a page boundary).
pub const PAGE: usize = 1000;

/// What one `run` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished(TaskStatus),
    /// Handed back to the queue (time limit, or a transient failure) after a checkpoint.
    Released,
    /// Not claimable (finished, or another worker holds the lease).
    Skipped,
    /// Another worker took the task over, or it was deleted: nothing more was touched.
    LeaseLost,
}

enum Stop {
    LeaseLost,
    Failed { reason: String, transient: bool },
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Stop::LeaseLost,
            StoreError::Throttled => Stop::Failed { reason: "storage throttled".into(), transient: true },
            other => Stop::Failed { reason: other.to_string(), transient: false },
        }
    }
}

impl From<WriteError> for Stop {
    fn from(e: WriteError) -> Self {
        Stop::Failed { reason: e.to_string(), transient: false }
    }
}

#[derive(Clone)]
pub struct ExportWorker {
    pub records: Arc<dyn RecordStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub sealer: Sealer,
    pub limits: Limits,
    pub lease: Duration,
    /// Stop (after a checkpoint) when less than this is left before the deadline.
    pub margin: std::time::Duration,
    pub owner: String,
    /// Records per query page.
    pub page: usize,
}

impl ExportWorker {
    /// Runs (or continues) one export until it ends, the deadline nears, or the lease is lost.
    #[tracing::instrument(skip(self, deadline), fields(worker = %self.owner))]
    pub async fn run(&self, tenant: &str, id: &str, deadline: Option<Instant>) -> StoreResult<Outcome> {
        let Some(mut task) = jobs::claim(&*self.tasks, tenant, TaskKind::Export, id, &self.owner, self.lease).await?
        else {
            return Ok(Outcome::Skipped);
        };
        let mut body: ExportBody = task.body()?;
        if let Some(reason) = jobs::given_up(&task) {
            body.attempts = task.attempts;
            return self.fail(&mut task, &mut body, reason).await;
        }
        match self.work(&mut task, &mut body, deadline).await {
            Ok(o) => Ok(o),
            // Deleting a running export aborts its upload: the next part then fails. A user's
            // cancellation is not an operator's alarm, and there is nothing left to mark FAILED.
            // (A lookup that fails goes on as the failure it was: retried or FAILED.)
            Err(Stop::Failed { reason, .. })
                if matches!(self.tasks.get_task(tenant, TaskKind::Export, id).await, Ok(None)) =>
            {
                tracing::info!(task = %id, %reason, "export deleted while it ran; stopped");
                Ok(Outcome::LeaseLost)
            }
            Err(Stop::LeaseLost) => {
                tracing::warn!(task = %id, "export lease lost; another worker continues");
                Ok(Outcome::LeaseLost)
            }
            // The shared lifecycle (jobs::retry_or_fail): attempts on the task, re-queued if
            // transient and under the limit, FAILED with the reason otherwise.
            Err(Stop::Failed { reason, transient }) if transient && task.attempts + 1 < jobs::MAX_ATTEMPTS => {
                task.attempts += 1;
                tracing::warn!(task = %id, %reason, attempt = task.attempts, "export interrupted; re-queued");
                body.attempts = task.attempts;
                task.set_body(&body);
                jobs::release(&*self.tasks, &mut task).await.map(|_| Outcome::Released).or_else(lost)
            }
            Err(Stop::Failed { reason, transient }) => {
                task.attempts += 1;
                body.attempts = task.attempts;
                let reason =
                    if transient { format!("gave up after {} attempts: {reason}", task.attempts) } else { reason };
                self.fail(&mut task, &mut body, reason).await
            }
        }
    }

    async fn fail(&self, task: &mut Task, body: &mut ExportBody, reason: String) -> StoreResult<Outcome> {
        tracing::error!(task = %task.id, %reason, "export failed");
        if let Some(c) = body.checkpoint.take() {
            let key = archive_key(task, &body.spec)?;
            self.blobs.abort_upload(&key, &c.upload_id).await?;
            if c.finishing {
                // The completion may have been applied and its answer lost (a timeout, a 5xx) on
                // the last try: a failed export leaves no archive, which neither an erasure's
                // withdrawal nor the expiry of succeeded exports would ever find.
                self.blobs.delete(&key).await?;
            }
        }
        task.failure = Some(reason.clone());
        body.error = Some(reason);
        body.finished_at = Some(Utc::now());
        body.spec.sealed_password = None;
        task.status = TaskStatus::Failed;
        task.lease = None;
        task.set_body(body);
        self.tasks.save_task(task).await.map(|_| Outcome::Finished(TaskStatus::Failed)).or_else(lost)
    }

    async fn save(&self, task: &mut Task, body: &ExportBody) -> Result<(), Stop> {
        task.set_body(body);
        jobs::checkpoint(&*self.tasks, task, self.lease).await.map_err(Stop::from)
    }

    async fn work(&self, task: &mut Task, body: &mut ExportBody, deadline: Option<Instant>) -> Result<Outcome, Stop> {
        let tenant = task.tenant_id.clone();
        if body.started_at.is_none() {
            body.started_at = Some(Utc::now());
        }
        let password = match &body.spec.sealed_password {
            None => None,
            Some(sealed) => {
                Some(self.sealer.open(&seal_context(&tenant, &task.id), sealed).map_err(|_| Stop::Failed {
                    reason: "the archive password cannot be decrypted (was the export key changed?)".into(),
                    transient: false,
                })?)
            }
        };
        let key = archive_key(task, &body.spec)?;
        let mut ck = match body.checkpoint.clone() {
            Some(c) => c,
            None => {
                // A worker killed between starting an upload and checkpointing it left an
                // upload nobody knows the id of: abort it before starting afresh.
                for (k, upload) in self.blobs.open_uploads(&tenant, key.area()).await? {
                    if k == key.as_str() {
                        self.blobs.abort_upload(&key, &upload).await?;
                    }
                }
                let upload_id = self.blobs.start_upload(&key, body.spec.content_type()).await?;
                let c = Checkpoint { upload_id, ..Default::default() };
                body.checkpoint = Some(c.clone());
                self.save(task, body).await?;
                c
            }
        };
        if ck.finishing {
            return self.complete(task, body, &ck, &key).await;
        }
        let spec = body.spec.clone();
        let mut writer = ArchiveWriter::new(
            spec.view,
            spec.format,
            spec.compression,
            spec.tz(),
            password,
            task.created_at,
            self.limits,
            ck.writer.clone(),
        );
        let mut cursor = ck.cursor.clone();
        // The pages written since the last part: (page number in this run, the cursor after
        // it, its records). A part holds whole entries, and an entry whole pages, so a
        // checkpoint resumes after the last page the parts hold — not necessarily the last read.
        let mut pages = VecDeque::new();
        let mut written = 0u64;
        let mut page =
            self.records.query(&tenant, &spec.filter, PageRequest { limit: self.page, after: cursor.clone() }).await?;
        loop {
            cursor = page.next.take();
            written += 1;
            pages.push_back((written, cursor.clone(), page.records.len() as u64));
            let last = cursor.is_none();
            // The next page is read while this one is written: the store's latency (a DynamoDB
            // Query, or SQLite reading and decoding on the blocking pool) overlaps the rows and
            // compression. One page ahead at most; its query starts first, so port calls keep
            // one order.
            let after = cursor.clone();
            let next = async {
                match after {
                    Some(after) => self
                        .records
                        .query(&tenant, &spec.filter, PageRequest { limit: self.page, after: Some(after) })
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            };
            // Rows and compression are CPU work (an 8 MiB entry is compressed whole, ~0.07 s):
            // done on the blocking pool so the runtime's threads keep serving.
            let write = tokio::task::spawn_blocking(move || {
                let part = writer.write(&page.records).and_then(|()| {
                    if last || writer.is_full() { writer.finish_part(last).map(Some) } else { Ok(None) }
                });
                (writer, part)
            });
            let (next, written_page) = tokio::join!(next, write);
            let (w, part) = written_page
                .map_err(|e| Stop::Failed { reason: format!("archive writer stopped: {e}"), transient: false })?;
            writer = w;
            let part = part?;
            // A page that failed to come is the same failure as before: the last checkpoint holds.
            let next = next?;
            let Some(part) = part else {
                page = next.expect("a page follows every page but the last, which ends a part");
                continue;
            };
            if let Some(bytes) = part {
                let number = ck.parts.len() as i32 + 1;
                let tag = self.blobs.upload_part(&key, &ck.upload_id, number, bytes.into()).await?;
                ck.parts.push((number, tag));
            }
            while pages.front().is_some_and(|&(n, _, _)| n <= writer.committed_pages()) {
                let (_, after, records) = pages.pop_front().expect("checked");
                ck.cursor = after;
                ck.records += records;
            }
            ck.writer = writer.state().clone();
            if last {
                ck.finishing = true;
                body.checkpoint = Some(ck.clone());
                self.save(task, body).await?;
                return self.complete(task, body, &ck, &key).await;
            }
            body.checkpoint = Some(ck.clone());
            self.save(task, body).await?;
            tracing::debug!(task = %task.id, parts = ck.parts.len(), records = ck.records, "export checkpoint");
            if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < self.margin) {
                jobs::release(&*self.tasks, task).await?;
                return Ok(Outcome::Released);
            }
            page = next.expect("a page follows every page but the last, which returned");
        }
    }

    /// Completes the upload; if a killed worker already completed it, the archive is there.
    async fn complete(
        &self,
        task: &mut Task,
        body: &mut ExportBody,
        ck: &Checkpoint,
        key: &BlobKey,
    ) -> Result<Outcome, Stop> {
        match self.blobs.complete_upload(key, &ck.upload_id, &ck.parts).await {
            Ok(()) => {}
            Err(StoreError::NotFound) if self.blobs.open(key).await?.is_some() => {}
            Err(e) => return Err(e.into()),
        }
        self.succeed(task, body, ck, key).await
    }

    async fn succeed(
        &self,
        task: &mut Task,
        body: &mut ExportBody,
        ck: &Checkpoint,
        key: &BlobKey,
    ) -> Result<Outcome, Stop> {
        let now = Utc::now();
        // Unreadable settings stop the tenant's purge (and the admin is told on GET); an archive
        // finished meanwhile keeps their archive days if those can be read, else the default,
        // rather than failing after all its work.
        let (stored, read) = retention::load_stored(&*self.settings, &task.tenant_id).await?;
        if let Err(reason) = &read {
            tracing::warn!(tenant = %task.tenant_id, %reason, "retention settings unreadable; archive days read alone");
        }
        let days = retention::archive_days(stored.as_ref(), &read);
        body.records = ck.records;
        body.bytes = ck.writer.offset;
        body.checkpoint = None;
        body.spec.sealed_password = None;
        body.finished_at = Some(now);
        body.expires_at = Duration::try_days(i64::from(days)).and_then(|d| now.checked_add_signed(d));
        task.status = TaskStatus::Succeeded;
        task.lease = None;
        task.set_body(body);
        match self.tasks.save_task(task).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Deleted while the last part was uploading: do not leave its archive behind.
                if self.tasks.get_task(&task.tenant_id, TaskKind::Export, &task.id).await?.is_none() {
                    self.blobs.delete(key).await?;
                }
                return Err(Stop::LeaseLost);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(task = %task.id, records = body.records, bytes = body.bytes, "export finished");
        Ok(Outcome::Finished(TaskStatus::Succeeded))
    }

    /// Runs every claimable export once (the local worker's and a sweeper's loop body).
    pub async fn run_pending(&self) -> StoreResult<usize> {
        let mut ran = 0;
        for t in self.tasks.active_tasks(TaskKind::Export, 100).await? {
            if t.claimable(Utc::now()) {
                self.run(&t.tenant_id, &t.id, None).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }
}

fn lost(e: StoreError) -> StoreResult<Outcome> {
    match e {
        StoreError::Conflict(_) => Ok(Outcome::LeaseLost),
        other => Err(other),
    }
}

/// Marks finished exports past their expiry as EXPIRED and deletes their archives. Returns how
/// many expired.
pub async fn expire(
    tasks: &dyn TaskStore,
    blobs: &dyn BlobStore,
    records: &dyn RecordStore,
    tenant: &str,
    now: chrono::DateTime<Utc>,
) -> StoreResult<u64> {
    let mut expired = 0;
    let mut pages = crate::jobs::pages(tasks, tenant, TaskKind::Export);
    while let Some(page) = pages.next().await? {
        for mut t in page {
            if t.status != TaskStatus::Succeeded {
                continue;
            }
            let body: ExportBody = t.body()?;
            if body.expires_at.is_some_and(|e| e <= now) {
                blobs.delete(&archive_key(&t, &body.spec)?).await?;
                t.status = TaskStatus::Expired;
                match tasks.save_task(&mut t).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => expired += 1,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if expired > 0 {
        let rec = Record::system(
            tenant,
            "DATA_EXPORT_DELETE",
            Actor { kind: Some(ActorKind::System), username: Some("retention".into()), ..Default::default() },
            Some(ResultCode::Ok),
            serde_json::json!({"expired": expired}),
        );
        records.append(tenant, &[rec]).await?;
    }
    Ok(expired)
}
