//! Asynchronous jobs (exports, DPO erasures) and export schedules as task records.
//!
//! A task is one document per tenant and kind, written with optimistic concurrency: every save
//! names the version it was read at, so a worker whose lease was taken over cannot overwrite
//! the new owner's progress (the version is the fencing token). A worker claims a task that is
//! `QUEUED`, or `RUNNING` with an expired lease, checkpoints its progress in the task body, and
//! renews the lease with every checkpoint.

use chrono::{DateTime, Duration, Utc};

use crate::store::{StoreError, StoreResult, TaskStore};
pub use crate::task::{BadBody, Lease, Task, TaskKind, TaskStatus, valid_id};

/// The tasks of one tenant and kind, read a page of 200 at a time, so a sweep over them holds one
/// page in memory: `while let Some(page) = pages.next().await? { … }`.
pub struct TaskPages<'a> {
    tasks: &'a dyn TaskStore,
    tenant: &'a str,
    kind: TaskKind,
    after: Option<crate::store::Position>,
    done: bool,
}

/// Every task of `kind` of `tenant`, page by page.
pub fn pages<'a>(tasks: &'a dyn TaskStore, tenant: &'a str, kind: TaskKind) -> TaskPages<'a> {
    TaskPages { tasks, tenant, kind, after: None, done: false }
}

impl TaskPages<'_> {
    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> StoreResult<Option<Vec<Task>>> {
        if self.done {
            return Ok(None);
        }
        let request = crate::store::PageRequest { limit: 200, after: self.after.take() };
        let (page, next) = self.tasks.list_tasks(self.tenant, self.kind, request).await?;
        self.done = next.is_none();
        self.after = next;
        Ok(Some(page))
    }
}

/// Claims a task for `owner` for `lease`: `None` when it is not claimable or another worker got
/// it first.
pub async fn claim(
    tasks: &dyn TaskStore,
    tenant: &str,
    kind: TaskKind,
    id: &str,
    owner: &str,
    lease: Duration,
) -> StoreResult<Option<Task>> {
    let Some(mut task) = tasks.get_task(tenant, kind, id).await? else { return Ok(None) };
    let now = Utc::now();
    if !task.claimable(now) {
        return Ok(None);
    }
    task.status = TaskStatus::Running;
    task.lease = Some(Lease { owner: owner.to_owned(), until: now + lease });
    match tasks.save_task(&mut task).await {
        Ok(()) => Ok(Some(task)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Saves a running task's checkpoint and renews its lease. A `Conflict` means the lease was
/// lost: the caller must stop without touching anything else.
pub async fn checkpoint(tasks: &dyn TaskStore, task: &mut Task, lease: Duration) -> StoreResult<()> {
    if let Some(l) = task.lease.as_mut() {
        l.until = Utc::now() + lease;
    }
    tasks.save_task(task).await
}

/// Hands a running task back to the queue (e.g. before a Lambda time limit) so the next
/// invocation continues from the last checkpoint.
pub async fn release(tasks: &dyn TaskStore, task: &mut Task) -> StoreResult<()> {
    task.status = TaskStatus::Queued;
    task.lease = None;
    tasks.save_task(task).await
}

/// Runs of a task that may end in a transient error before it is FAILED.
pub const MAX_ATTEMPTS: u32 = 5;

/// The one end of a run that failed, for every job kind: the attempt is counted; a permanent
/// error, or a transient one at the [`MAX_ATTEMPTS`]th attempt, makes the task FAILED with the
/// reason, otherwise it goes back to the queue. Returns the new status. A `Conflict` means the
/// lease was lost (the new owner decides).
pub async fn retry_or_fail(tasks: &dyn TaskStore, task: &mut Task, error: &StoreError) -> StoreResult<TaskStatus> {
    task.attempts += 1;
    task.lease = None;
    if error.is_transient() && task.attempts < MAX_ATTEMPTS {
        tracing::warn!(task = %task.id, %error, attempt = task.attempts, "task run failed; re-queued");
        task.status = TaskStatus::Queued;
    } else {
        let reason = if error.is_transient() {
            format!("gave up after {} attempts: {error}", task.attempts)
        } else {
            format!("permanent error: {error}")
        };
        tracing::error!(task = %task.id, %reason, "task failed");
        task.status = TaskStatus::Failed;
        task.failure = Some(reason);
    }
    tasks.save_task(task).await?;
    Ok(task.status)
}

/// Puts running tasks whose lease expired back into the queue (the sweeper: in AWS a new stream
/// record starts a worker for each). A worker that stopped without a word (crash, time limit)
/// used up an attempt. After the [`MAX_ATTEMPTS`]th, the task is queued once more with its
/// failure set, so that a worker ends it FAILED with its kind's cleanup ([`given_up`]: an export
/// aborts its upload and drops its password, an erasure drops its sealed identifiers and records
/// its end); if even that worker dies, the sweeper marks it FAILED itself. Returns how many were
/// re-queued or failed.
pub async fn requeue_expired(tasks: &dyn TaskStore, kind: TaskKind, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut n = 0;
    for mut t in tasks.active_tasks(kind, 1000).await? {
        if t.status == TaskStatus::Running && t.lease_expired(now) {
            t.attempts += 1;
            t.lease = None;
            if t.attempts >= MAX_ATTEMPTS {
                let reason = format!(
                    "gave up after {} attempts: the worker stopped before its lease expired",
                    t.attempts.min(MAX_ATTEMPTS)
                );
                tracing::error!(task = %t.id, %reason, "task given up");
                t.failure = Some(reason);
            } else {
                tracing::warn!(task = %t.id, attempt = t.attempts, "worker stopped; task re-queued");
            }
            t.status = if t.attempts > MAX_ATTEMPTS { TaskStatus::Failed } else { TaskStatus::Queued };
            match tasks.save_task(&mut t).await {
                Ok(()) => n += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

/// Whether a claimed task was given up by the sweeper and is only to be ended FAILED, with the
/// reason; workers check this right after the claim.
pub fn given_up(task: &Task) -> Option<String> {
    (task.attempts >= MAX_ATTEMPTS)
        .then(|| task.failure.clone().unwrap_or_else(|| format!("gave up after {} attempts", task.attempts)))
}

/// The tasks of `kind` a DynamoDB stream event asks to run, as (sequence number, tenant, id):
/// records whose new image is such a task in QUEUED (the event source filter sends only
/// those; this re-checks).
pub fn queued_in_stream_event(event: &serde_json::Value, kind: TaskKind) -> Vec<(String, String, String)> {
    let s = |v: &serde_json::Value, k: &str| v[k]["S"].as_str().map(str::to_owned);
    event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let image = &r["dynamodb"]["NewImage"];
            if s(image, "kind")? != kind.as_str() || s(image, "status")? != TaskStatus::Queued.as_str() {
                return None;
            }
            let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default().to_owned();
            Some((seq, s(image, "tenant")?, s(image, "sk")?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Permanent errors fail at once with the reason; transient ones re-queue until the limit.
    #[tokio::test]
    async fn a_failed_run_is_retried_if_transient_and_failed_with_a_reason_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("j.db")).unwrap();
        let lease = Duration::seconds(60);
        let new = || async {
            let mut t = Task::new("acme", TaskKind::Erasure, TaskStatus::Queued, &serde_json::json!({}));
            store.create_task(&mut t).await.unwrap();
            t
        };

        let t = new().await;
        let mut run = claim(&store, "acme", TaskKind::Erasure, &t.id, "w", lease).await.unwrap().unwrap();
        let status = retry_or_fail(&store, &mut run, &StoreError::Invalid("bad key".into())).await.unwrap();
        let got = store.get_task("acme", TaskKind::Erasure, &t.id).await.unwrap().unwrap();
        assert_eq!((status, got.status, got.attempts), (TaskStatus::Failed, TaskStatus::Failed, 1));
        assert!(got.failure.as_deref().unwrap().contains("bad key"), "{got:?}");

        let t = new().await;
        for i in 1..=MAX_ATTEMPTS {
            let mut run = claim(&store, "acme", TaskKind::Erasure, &t.id, "w", lease).await.unwrap().unwrap();
            retry_or_fail(&store, &mut run, &StoreError::Throttled).await.unwrap();
            let got = store.get_task("acme", TaskKind::Erasure, &t.id).await.unwrap().unwrap();
            assert_eq!(got.attempts, i);
            let want = if i < MAX_ATTEMPTS { TaskStatus::Queued } else { TaskStatus::Failed };
            assert_eq!(got.status, want, "attempt {i}");
        }
        let got = store.get_task("acme", TaskKind::Erasure, &t.id).await.unwrap().unwrap();
        assert!(got.failure.as_deref().unwrap().contains("5 attempts"), "{got:?}");
        assert!(claim(&store, "acme", TaskKind::Erasure, &t.id, "w", lease).await.unwrap().is_none());
    }

    /// Workers that die without a word: re-queued until the limit, then queued once more to be
    /// ended by a worker (`given_up`), then FAILED by the sweeper if that worker dies too.
    #[tokio::test]
    async fn the_sweeper_requeues_dead_workers_then_has_the_task_ended_then_fails_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("j.db")).unwrap();
        let mut t = Task::new("acme", TaskKind::Export, TaskStatus::Queued, &serde_json::json!({}));
        store.create_task(&mut t).await.unwrap();
        let later = || Utc::now() + Duration::seconds(120);
        for i in 1..=MAX_ATTEMPTS + 1 {
            let run = claim(&store, "acme", TaskKind::Export, &t.id, "w", Duration::seconds(60)).await.unwrap();
            let run = run.expect("claimable while queued");
            assert_eq!(given_up(&run).is_some(), i > MAX_ATTEMPTS, "run {i}");
            // The worker dies; the sweeper comes by after the lease.
            assert_eq!(requeue_expired(&store, TaskKind::Export, later()).await.unwrap(), 1);
            let got = store.get_task("acme", TaskKind::Export, &t.id).await.unwrap().unwrap();
            assert_eq!(got.attempts, i);
            let want = if i <= MAX_ATTEMPTS { TaskStatus::Queued } else { TaskStatus::Failed };
            assert_eq!(got.status, want, "after run {i}");
            if i >= MAX_ATTEMPTS {
                assert!(got.failure.as_deref().unwrap().contains("gave up after 5 attempts"), "{got:?}");
            }
        }
    }

    #[test]
    fn stream_events_start_only_queued_tasks_of_the_kind() {
        let rec = |kind: &str, status: &str, seq: &str| {
            serde_json::json!({"eventName": "MODIFY", "dynamodb": {"SequenceNumber": seq, "NewImage": {
                "pk": {"S": "T#acme#J#export"}, "sk": {"S": "01JTASK"}, "tenant": {"S": "acme"},
                "kind": {"S": kind}, "status": {"S": status}, "ver": {"N": "3"}}}})
        };
        let event = serde_json::json!({"Records": [
            rec("export", "QUEUED", "1"), rec("export", "RUNNING", "2"), rec("erasure", "QUEUED", "3"),
            {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "4", "OldImage": {}}}
        ]});
        assert_eq!(
            queued_in_stream_event(&event, TaskKind::Export),
            vec![("1".into(), "acme".into(), "01JTASK".into())]
        );
        assert_eq!(
            queued_in_stream_event(&event, TaskKind::Erasure),
            vec![("3".into(), "acme".into(), "01JTASK".into())]
        );
    }
}
