//! Export workers killed at points spread over the whole run (before and after part uploads,
//! mid-page, before completion) finish a valid archive with every record exactly once; an
//! S3 failure ends in FAILED with no multipart upload left behind; a completion whose answer is
//! lost succeeds at the next run, or on the last attempt fails leaving no archive; an erasure job killed
//! half-way is finished by the next worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use auditrail_shared::auth::Role;
use auditrail_shared::export::worker::Outcome;
use auditrail_shared::export::writer::Limits;
use auditrail_shared::jobs::{Task, TaskKind, TaskStatus};
use auditrail_shared::record::{Category, Record};
use auditrail_shared::store::{
    AppendOutcome, BeforePurge, EventFilter, PageRequest, Position, RecordPage, RecordStore, StoreError, StoreResult,
    TaskStore,
};
use auditrail_tests::blobs::{BlobCall, BlobFaults, FaultyBlobs};
use auditrail_tests::logs::Logs;
use auditrail_tests::{Killer, TestApp, event};
use serde_json::json;
use tower::ServiceExt;

struct R(Arc<dyn RecordStore>, Arc<Killer>);
struct T(Arc<dyn TaskStore>, Arc<Killer>);
struct S3(Arc<Killer>, S3Fault, std::sync::atomic::AtomicBool);

/// What the blob store in front of the real one does wrong.
#[derive(Clone, Copy, PartialEq)]
enum S3Fault {
    None,
    /// Every part after the first fails.
    UploadPart,
    /// The first completion is applied, and its answer lost: the caller hears a transient failure.
    CompletionLost,
}

#[async_trait]
impl RecordStore for R {
    async fn append(&self, t: &str, r: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        self.0.append(t, r).await
    }
    async fn get(&self, t: &str, id: &str) -> StoreResult<Option<Record>> {
        self.0.get(t, id).await
    }
    async fn purge_with(
        &self,
        t: &str,
        c: Category,
        b: chrono::DateTime<chrono::Utc>,
        l: usize,
        first: &dyn BeforePurge,
    ) -> StoreResult<Vec<Record>> {
        self.0.purge_with(t, c, b, l, first).await
    }
    async fn replace(&self, t: &str, r: &Record) -> StoreResult<()> {
        self.1.gate("replace-before").await;
        self.0.replace(t, r).await?;
        self.1.gate("replace-after").await;
        Ok(())
    }
    async fn query(&self, t: &str, f: &EventFilter, p: PageRequest) -> StoreResult<RecordPage> {
        self.1.gate("query-before").await;
        let page = self.0.query(t, f, p).await?;
        self.1.gate("query-after").await;
        Ok(page)
    }
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
}

#[async_trait]
impl TaskStore for T {
    async fn create_task(&self, t: &mut Task) -> StoreResult<()> {
        self.0.create_task(t).await
    }
    async fn get_task(&self, t: &str, k: TaskKind, id: &str) -> StoreResult<Option<Task>> {
        self.1.gate("get-task").await;
        self.0.get_task(t, k, id).await
    }
    async fn list_tasks(&self, t: &str, k: TaskKind, p: PageRequest) -> StoreResult<(Vec<Task>, Option<Position>)> {
        self.0.list_tasks(t, k, p).await
    }
    async fn save_task(&self, t: &mut Task) -> StoreResult<()> {
        self.1.gate("save-before").await;
        self.0.save_task(t).await?;
        self.1.gate("save-after").await;
        Ok(())
    }
    async fn delete_task(&self, t: &str, k: TaskKind, id: &str) -> StoreResult<()> {
        self.0.delete_task(t, k, id).await
    }
    async fn active_tasks(&self, k: TaskKind, l: usize) -> StoreResult<Vec<Task>> {
        self.0.active_tasks(k, l).await
    }
}

/// The upload's calls are kill points, and fail as `S3Fault` says.
#[async_trait]
impl BlobFaults for S3 {
    async fn before(&self, call: BlobCall) -> StoreResult<()> {
        match call {
            BlobCall::StartUpload => self.0.gate("start-before").await,
            BlobCall::UploadPart(n) if self.1 == S3Fault::UploadPart && n >= 2 => {
                return Err(StoreError::Backend(anyhow::anyhow!("S3 UploadPart failed: InternalError (injected)")));
            }
            BlobCall::UploadPart(_) => self.0.gate("part-before").await,
            BlobCall::CompleteUpload => self.0.gate("complete-before").await,
            _ => {}
        }
        Ok(())
    }
    async fn after(&self, call: BlobCall) -> StoreResult<()> {
        match call {
            BlobCall::StartUpload => self.0.gate("start-after").await,
            BlobCall::UploadPart(_) => self.0.gate("part-after").await,
            BlobCall::CompleteUpload if self.1 == S3Fault::CompletionLost && !self.2.swap(true, Ordering::SeqCst) => {
                return Err(StoreError::Throttled);
            }
            BlobCall::CompleteUpload => self.0.gate("complete-after").await,
            _ => {}
        }
        Ok(())
    }
}

/// Records big enough that the export spans several parts on either back end (S3 parts are at
/// least 5 MiB; the embedded store's minimum is lowered for this test).
async fn seeded() -> (TestApp, Vec<String>, Limits) {
    let mut app = TestApp::new().await;
    // On the emulator, S3's 5 MiB parts: 9 MB of rows in fewer, larger records (moto reads a
    // whole table for each Query, so every record more slows every page of every run).
    let (n, pad, part) = if auditrail_tests::backend() == "dynamodb" {
        (750, 12_000, auditrail_shared::store::MIN_PART_BYTES)
    } else {
        (1500, 600, 64 * 1024)
    };
    if auditrail_tests::backend() == "sqlite" {
        let blobs =
            auditrail_shared::blob::fs::FsBlobStore::open(&app.dir.path().join("blobs")).unwrap().with_min_part(part);
        app.state.blobs = Arc::new(blobs);
    }
    let mut ids = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    // Batches under the 5 MiB body limit at 12 KB a record.
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|i| {
                // Pseudo-random text: compresses about as badly as real payload data.
                let noise: String = (0..pad)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        char::from(
                            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(seed % 62) as usize],
                        )
                    })
                    .collect();
                let mut e = event(&format!("k{i:05}"), 30 + (*i as i64 % 600), "CREATE_EVALUATION", "alice", "OK");
                e["description"] = json!({"note": noise});
                ids.push(format!("k{i:05}"));
                e
            })
            .collect();
        app.ingest("acme", &batch).await;
    }
    ids.sort();
    // One core: the kill points count port calls, and on several cores where parts are cut (so how
    // many calls an export makes) depends on which entries finished first. Resuming a writer on
    // several cores is tested in export::writer.
    (app, ids, Limits { part_bytes: part, entry_raw_bytes: part / 2, level: 1, parallelism: 1, ..Limits::default() })
}

fn worker(
    app: &TestApp,
    killer: &Arc<Killer>,
    limits: Limits,
    fault: S3Fault,
) -> auditrail_shared::export::worker::ExportWorker {
    let mut w = app.state.export_worker("w");
    w.records = Arc::new(R(app.state.records.clone(), killer.clone()));
    w.tasks = Arc::new(T(app.state.tasks.clone(), killer.clone()));
    w.blobs = Arc::new(FaultyBlobs(app.state.blobs.clone(), S3(killer.clone(), fault, Default::default())));
    w.limits = limits;
    w.lease = chrono::Duration::milliseconds(300);
    w.page = 100;
    w
}

async fn create(app: &TestApp) -> String {
    let tok = app.token("acme", &[Role::ComplianceAnalyst]);
    let r = app
        .post_json("/v1/exports", &tok, &json!({"filter": {"action": "CREATE_EVALUATION"}, "password": "Kill_me_1"}))
        .await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The archive's record ids, read back with 7-Zip.
async fn archive_ids(app: &TestApp, id: &str) -> Vec<String> {
    let tok = app.token("acme", &[Role::ComplianceAnalyst]);
    let (status, headers, mut bytes) = app.raw("GET", &format!("/v1/exports/{id}/download"), &tok).await;
    if status == 303 {
        bytes = reqwest::get(headers["location"].to_str().unwrap()).await.unwrap().bytes().await.unwrap().to_vec();
    } else {
        assert_eq!(status, 200);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), &bytes).unwrap();
    let out = std::process::Command::new("7z")
        .args(["x", "-pKill_me_1", "-y", "-oout", "a.zip"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let mut ids = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // The ID is the last column; descriptions here have no line breaks.
        ids.extend(text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().to_owned()));
    }
    assert!(files.len() >= 2, "several parts/entries: {files:?}");
    ids.sort();
    ids
}

#[tokio::test]
async fn workers_killed_anywhere_still_produce_every_record_exactly_once() {
    let (app, want, limits) = seeded().await;
    // A clean run counts the port calls, so kill points can be spread over the whole run.
    let id = create(&app).await;
    let counter = Killer::new(i64::MAX);
    let w = worker(&app, &counter, limits, S3Fault::None);
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::Finished(TaskStatus::Succeeded));
    let total = counter.calls.load(Ordering::SeqCst);
    let log = counter.log.lock().unwrap().clone();
    let first = |what: &str| log.iter().position(|w| *w == what).expect("the clean run made that call") as i64 + 1;
    // An upload started but not yet checkpointed (its id is lost with the worker), inside the
    // first part upload (not sent / sent but not recorded), and just before completing.
    let aimed = [first("start-after"), first("part-before"), first("part-after"), first("complete-before")];
    assert!(total > 12, "{total} calls");
    assert_eq!(archive_ids(&app, &id).await, want);

    // Early, mid-page, around every kind of call, and just before the end.
    let points: Vec<i64> = if auditrail_tests::backend() == "dynamodb" {
        // The emulator is slow with 5 MiB parts: fewer spread points.
        vec![2, total / 2, total - 1]
    } else {
        vec![1, 2, 3, total / 5, total / 3, total / 2, 2 * total / 3, total - 3, total - 1]
    }
    .into_iter()
    .chain(aimed)
    .collect();
    for at in points {
        let id = create(&app).await;
        let killer = Killer::new(at);
        let doomed = worker(&app, &killer, limits, S3Fault::None);
        tokio::select! {
            r = doomed.run("acme", &id, None) => panic!("kill point {at} of {total} was never reached: {r:?}"),
            _ = killer.hit.notified() => {}
        }
        // The dead worker's lease runs out; the next worker continues from its checkpoint.
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        let next = worker(&app, &Killer::new(i64::MAX), limits, S3Fault::None);
        let mut outcome = next.run("acme", &id, None).await.unwrap();
        for _ in 0..3 {
            if outcome != Outcome::Skipped {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(350)).await;
            outcome = next.run("acme", &id, None).await.unwrap();
        }
        assert_eq!(outcome, Outcome::Finished(TaskStatus::Succeeded), "kill at call {at} of {total}");
        assert_eq!(archive_ids(&app, &id).await, want, "kill at call {at} of {total}");
        assert!(
            app.state.blobs.open_uploads("acme", "exports").await.unwrap().is_empty(),
            "kill at call {at}: no upload left open"
        );
    }
}

#[tokio::test]
async fn an_s3_failure_ends_in_failed_and_leaves_no_multipart_upload() {
    let (app, _, limits) = seeded().await;
    let id = create(&app).await;
    let w = worker(&app, &Killer::new(i64::MAX), limits, S3Fault::UploadPart);
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::Finished(TaskStatus::Failed));
    let tok = app.token("acme", &[Role::ComplianceAnalyst]);
    let t = app.get(&format!("/v1/exports/{id}"), &tok).await;
    assert_eq!(t.body["status"], "FAILED");
    assert!(t.body["error"].as_str().unwrap().contains("UploadPart failed"), "{:#}", t.body);
    assert!(app.state.blobs.open_uploads("acme", "exports").await.unwrap().is_empty(), "upload aborted");
    let r = app.get(&format!("/v1/exports/{id}/download"), &tok).await;
    r.assert_problem(409);
    let task = app.state.tasks.get_task("acme", TaskKind::Export, &id).await.unwrap().unwrap();
    assert!(!task.body.to_string().contains("sealed_password"), "the password is dropped when the task ends");
}

/// The export's owner deletes it (`DELETE /v1/exports/{id}`) just before its worker uploads part 2.
struct DeleteBeforePart2 {
    router: axum::Router,
    token: String,
    id: String,
    done: AtomicBool,
}

#[async_trait]
impl BlobFaults for DeleteBeforePart2 {
    async fn before(&self, call: BlobCall) -> StoreResult<()> {
        if call == BlobCall::UploadPart(2) && !self.done.swap(true, Ordering::SeqCst) {
            let req = http::Request::delete(format!("/v1/exports/{}", self.id))
                .header("authorization", format!("Bearer {}", self.token))
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(self.router.clone().oneshot(req).await.unwrap().status(), 204);
        }
        Ok(())
    }
}

/// A user cancelling a running export deletes it and aborts its upload under the worker: the
/// worker stops without an error in the log (a cancellation is not an operator's alarm) and
/// leaves nothing of the export behind.
#[tokio::test]
async fn an_export_deleted_while_it_runs_stops_its_worker_quietly() {
    let (app, _, limits) = seeded().await;
    let id = create(&app).await;
    let tok = app.token("acme", &[Role::ComplianceAnalyst]);
    let mut w = worker(&app, &Killer::new(i64::MAX), limits, S3Fault::None);
    let cancel =
        DeleteBeforePart2 { router: app.router.clone(), token: tok.clone(), id: id.clone(), done: false.into() };
    w.blobs = Arc::new(FaultyBlobs(app.state.blobs.clone(), cancel));
    let (logs, guard) = Logs::capture();
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::LeaseLost);
    drop(guard);
    assert_eq!(logs.at("ERROR"), Vec::<serde_json::Value>::new(), "no ERROR logged for a cancellation");
    assert!(logs.at("INFO").iter().any(|l| l["message"] == "export deleted while it ran; stopped"));
    app.get(&format!("/v1/exports/{id}"), &tok).await.assert_problem(404);
    assert!(app.state.blobs.open_uploads("acme", "exports").await.unwrap().is_empty(), "no upload left open");
}

/// A completion applied whose answer is lost: before the last attempt the next run finds the
/// archive and succeeds; on the last attempt the export fails and leaves no archive behind (only a
/// succeeded export's archive is withdrawn by an erasure or expires).
#[tokio::test]
async fn a_completion_whose_answer_is_lost_succeeds_or_fails_leaving_no_archive() {
    let (app, want, limits) = seeded().await;
    let id = create(&app).await;
    let w = worker(&app, &Killer::new(i64::MAX), limits, S3Fault::CompletionLost);
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::Released);
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::Finished(TaskStatus::Succeeded));
    assert_eq!(archive_ids(&app, &id).await, want);

    let w = worker(&app, &Killer::new(i64::MAX), limits, S3Fault::CompletionLost);
    let id = create(&app).await;
    let mut task = app.state.tasks.get_task("acme", TaskKind::Export, &id).await.unwrap().unwrap();
    task.attempts = auditrail_shared::jobs::MAX_ATTEMPTS - 1;
    app.state.tasks.save_task(&mut task).await.unwrap();
    assert_eq!(w.run("acme", &id, None).await.unwrap(), Outcome::Finished(TaskStatus::Failed));
    let task = app.state.tasks.get_task("acme", TaskKind::Export, &id).await.unwrap().unwrap();
    let body: auditrail_shared::export::ExportBody = task.body().unwrap();
    let key = auditrail_shared::export::archive_key(&task, &body.spec).unwrap();
    assert!(app.state.blobs.open(&key).await.unwrap().is_none(), "a failed export left its archive");
    assert!(app.state.blobs.open_uploads("acme", "exports").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_erasure_killed_half_way_is_finished_by_the_next_worker() {
    let app = TestApp::new().await;
    let batch: Vec<_> = (0..60)
        .map(|i| {
            let mut e = event(&format!("p{i:03}"), 10 + i, "CONTACT", "agent", "OK");
            e["subject"] = json!({"emails": ["kill.me@example.com"], "phones": ["+420 777 000 111"]});
            e["description"] = json!({"body": "call kill.me@example.com back"});
            e
        })
        .collect();
    app.ingest("acme", &batch).await;
    let dpo = app.token("acme", &[Role::Dpo]);
    let found = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "kill.me@example.com"})).await;
    assert_eq!(found.body["count"], 60);
    let items: Vec<String> = found.body["groups"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    let r = app.post_json("/v1/dpo/erasures", &dpo, &json!({"items": items})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();

    let worker = |killer: &Arc<Killer>| {
        let mut w = app.state.erasure_worker("w");
        w.records = Arc::new(R(app.state.records.clone(), killer.clone()));
        w.tasks = Arc::new(T(app.state.tasks.clone(), killer.clone()));
        w.lease = chrono::Duration::milliseconds(300);
        w
    };
    // Gates: claim (get + save: 3); per batch the plan's checkpoint (2), 20 replacements (40),
    // the checkpoint (2): the 66th gate is inside the second batch, after its plan was saved and
    // eight of its records were anonymised.
    let killer = Killer::new(66);
    let doomed = worker(&killer);
    tokio::select! {
        r = doomed.run("acme", &id) => panic!("the kill point was never reached: {r:?}"),
        _ = killer.hit.notified() => {}
    }
    let mid = app.get(&format!("/v1/dpo/erasures/{id}"), &dpo).await;
    assert_eq!(mid.body["status"], "RUNNING");
    assert_eq!(mid.body["done"], 20, "the checkpoint after the first batch");
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(worker(&Killer::new(i64::MAX)).run("acme", &id).await.unwrap(), Some(TaskStatus::Succeeded));
    let done = app.get(&format!("/v1/dpo/erasures/{id}"), &dpo).await;
    // The records of the lost batch were anonymised again (idempotent), counted once, and not
    // as "unchanged": the saved plan says they were changed by this job.
    assert_eq!(done.body["result"]["anonymized"], 60, "{:#}", done.body);
    assert_eq!(done.body["result"]["unchanged"], 0, "{:#}", done.body);
    let again = app.post_json("/v1/dpo/searches", &dpo, &json!({"email": "kill.me@example.com"})).await;
    assert_eq!(again.body["count"], 0);
    for i in 0..60 {
        let r = app.state.records.get("acme", &format!("p{i:03}")).await.unwrap().unwrap();
        assert_eq!(r.description.unwrap()["body"], "{Anonymized by DPO}", "p{i:03}");
    }
}

#[tokio::test]
async fn an_erasure_whose_workers_keep_dying_ends_failed_with_its_record_and_without_its_identifiers() {
    let app = TestApp::new().await;
    let mut e = event("p1", 10, "CONTACT", "agent", "OK");
    e["subject"] = json!({"emails": ["die.hard@example.com"]});
    app.ingest("acme", &[e]).await;
    let dpo = app.token("acme", &[Role::Dpo]);
    let r = app.post_json("/v1/dpo/erasures", &dpo, &json!({"items": ["p1"]})).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let later = || chrono::Utc::now() + chrono::Duration::minutes(10);
    for attempt in 1..=auditrail_shared::jobs::MAX_ATTEMPTS {
        // Killed right after its claim (get + save: 3 gates), in the plan's checkpoint.
        let killer = Killer::new(4);
        let mut w = app.state.erasure_worker("w");
        w.tasks = Arc::new(T(app.state.tasks.clone(), killer.clone()));
        tokio::select! {
            r = w.run("acme", &id) => panic!("the kill point was never reached: {r:?}"),
            _ = killer.hit.notified() => {}
        }
        auditrail_shared::jobs::requeue_expired(&*app.state.tasks, TaskKind::Erasure, later()).await.unwrap();
        let s = app.get(&format!("/v1/dpo/erasures/{id}"), &dpo).await;
        assert_eq!((s.body["status"].as_str(), s.body["attempts"].as_u64()), (Some("QUEUED"), Some(attempt as u64)));
    }
    // The next worker only ends it, with the erasure's own cleanup and record.
    app.state.erasure_worker("w").run_pending().await.unwrap();
    let s = app.get(&format!("/v1/dpo/erasures/{id}"), &dpo).await;
    assert_eq!(s.body["status"], "FAILED", "{:#}", s.body);
    assert!(s.body["error"].as_str().unwrap().contains("gave up after 5 attempts"), "{:#}", s.body);
    let task = app.state.tasks.get_task("acme", TaskKind::Erasure, &id).await.unwrap().unwrap();
    assert!(task.body["sealed_identifiers"].is_null(), "the identifiers are dropped when the job ends");
    let ended =
        app.get("/v1/events?action=DPO_ERASURE_COMPLETED", &app.token("acme", &[Role::ComplianceAnalyst])).await;
    assert_eq!(ended.items().len(), 1, "{:#}", ended.body);
    assert_eq!(ended.items()[0]["result"], "FAIL");
    assert_eq!(ended.items()[0]["description"]["erasure_id"], id.as_str());
}
