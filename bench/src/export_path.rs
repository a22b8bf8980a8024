//! The whole export path, not only the writer: `n` records in a store, `POST /v1/exports` (an AES
//! ZIP of the events view), then the worker as the export function runs it: store query pages of
//! 1,000, rows formatted, entries compressed on every core, parts uploaded as they fill,
//! checkpoints after each. Timed from the worker's start to the task's end, on the embedded store
//! (SQLite + files) and on the emulator (DynamoDB + S3 on moto). The emulator is a Python process
//! on the same two cores, so its figure says what the worker's own path costs beside a slow
//! store, not what DynamoDB would give.

use std::time::Instant;

use auditrail_shared::api::{AppState, router, routes};
use auditrail_shared::auth::Role;
use auditrail_shared::config::Config;
use auditrail_shared::export::ExportBody;
use auditrail_shared::jobs::{TaskKind, TaskStatus};
use auditrail_shared::record::Record;
use axum::body::Body;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::export::{cpu_secs, page, status_kb};

const TENANT: &str = "bench";

/// Records of the export bench's mix, newest first 250 ms apart, appended in batches of 1,000.
async fn load(state: &AppState, n: usize, now: DateTime<Utc>) -> anyhow::Result<f64> {
    let mut rng = StdRng::seed_from_u64(7);
    let t = Instant::now();
    let bar = indicatif::ProgressBar::new(n as u64).with_message("loading");
    for start in (0..n).step_by(1000) {
        let recs: Vec<Record> = page(&mut rng, start, 1000.min(n - start), now);
        let out = state.records.append(TENANT, &recs).await?;
        anyhow::ensure!(out.len() == recs.len(), "append returned {} outcomes for {}", out.len(), recs.len());
        bar.inc(recs.len() as u64);
    }
    bar.finish_and_clear();
    Ok(t.elapsed().as_secs_f64())
}

/// Peak RSS from now on: Linux resets VmHWM to the current RSS on `5` in `clear_refs`.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One backend: load, request, run the worker, print a row.
async fn one(label: &str, state: AppState, n: usize) -> anyhow::Result<()> {
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let load_s = load(&state, n, now).await?;
    let app = router::<routes::All>(state.clone());
    let token = state.auth.mint(TENANT, "bench", Some("analyst"), &[Role::ComplianceAnalyst], 36_000)?;
    let from = now - chrono::Duration::milliseconds(n as i64 * 250 + 1000);
    let body = json!({
        // Up to the newest record (at `now`) only: the request's own audit record, stamped when
        // it is made, must not join the export (it did when the load took under a second).
        "filter": {"from": from.to_rfc3339(), "to": (now + chrono::Duration::milliseconds(1)).to_rfc3339()},
        "password": "Bench_pw@1",
    });
    let req = axum::http::Request::post("/v1/exports")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    let res = app.oneshot(req).await?;
    let status = res.status();
    let created: Value = serde_json::from_slice(&res.into_body().collect().await?.to_bytes())?;
    anyhow::ensure!(status == 202, "export request refused: {created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let worker = state.export_worker("bench");
    reset_peak_rss();
    let base_kb = status_kb("VmRSS:");
    let (cpu, t) = (cpu_secs(), Instant::now());
    let outcome = worker.run(TENANT, &id, None).await?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
    let peak_kb = status_kb("VmHWM:");
    let task = state.tasks.get_task(TENANT, TaskKind::Export, &id).await?.expect("the task");
    let b: ExportBody = task.body()?;
    anyhow::ensure!(
        task.status == TaskStatus::Succeeded && b.records == n as u64,
        "export ended {:?} ({outcome:?}) with {} of {n} records: {:?}",
        task.status,
        b.records,
        b.error
    );
    println!(
        "| {label} | {n} | {load_s:.1} | {secs:.1} | {:.0} | {:.1} | {cpu:.1} | {:.0} | {:.2} |",
        n as f64 / secs,
        b.bytes as f64 / 1e6,
        peak_kb.saturating_sub(base_kb) as f64 / 1024.0,
        cpu / secs,
    );
    Ok(())
}

/// `n` records through the embedded store's path, then `m` through the emulator's.
pub async fn run(n: usize, m: usize) -> anyhow::Result<()> {
    println!("## Whole export path (query pages of 1,000 + CSV rows + AES ZIP level 5 on every core + parts uploaded)");
    println!("| store | records | load s | export s | records/s | archive MB | CPU s | RSS growth MB | cores busy |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    if n > 0 {
        let dir = tempfile::tempdir()?;
        let state = AppState::from_config(&Config::embedded(dir.path())).await?;
        one("embedded (SQLite + files)", state, n).await?;
    }
    if m > 0 {
        let dir = tempfile::tempdir()?;
        let mut state = AppState::from_config(&Config::embedded(dir.path())).await?;
        let (records, blobs) = auditrail_shared::testkit::moto::fresh().await;
        auditrail_shared::testkit::moto::onto(&mut state, &records, &blobs);
        one("emulator (DynamoDB + S3 on moto)", state, m).await?;
    }
    println!();
    Ok(())
}
