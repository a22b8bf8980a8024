//! Export writer figures: records → CSV → deflate → AES-256 ZIP, in constant memory, next to
//! 7-Zip compressing the same CSV (`7z a -tzip -mem=AES256`). Each size runs in a child process
//! so its peak RSS (VmHWM) is the writer's alone; records are generated page by page.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use auditrail_shared::export::rows::ExportView;
use auditrail_shared::export::writer::{ArchiveWriter, Limits, WriterState};
use auditrail_shared::export::{Compression, Format};
use auditrail_shared::record::{Actor, Record, ResultCode};
use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const PW: &str = "Bench_pw@1";

fn page(rng: &mut StdRng, start: usize, n: usize, now: chrono::DateTime<Utc>) -> Vec<Record> {
    const ACTIONS: [&str; 6] =
        ["LOGIN", "CREATE_EVALUATION", "CONVERSATION_SEARCH", "ACCESS_MEDIA", "COMPLETE_EVALUATION", "LOGOUT"];
    (start..start + n)
        .map(|i| {
            let user = rng.random_range(0..2000);
            let mut r = Record::system(
                "bench",
                ACTIONS[rng.random_range(0..ACTIONS.len())],
                Actor {
                    user_id: Some(format!("u-{user}")),
                    username: Some(format!("agent.{user}")),
                    full_name: Some(format!("Agent {user}")),
                    employee_id: Some(format!("{}", 10000 + user)),
                    ..Default::default()
                },
                Some(if rng.random_range(0..10) == 0 { ResultCode::Fail } else { ResultCode::Ok }),
                json!({"userId": format!("u-{user}"), "conversationId": format!("c-{}", rng.random_range(0..1_000_000))}),
            );
            r.id = format!("01J{i:023}");
            r.occurred_at = now - Duration::milliseconds(i as i64 * 250);
            r.source_ip = Some(format!("10.1.{}.{}", user % 250, i % 250));
            r
        })
        .collect()
}

/// The child: writes `n` records with the writer to `out`, prints JSON figures.
pub fn child(n: usize, compression: &str, level: u32, out: &str) -> anyhow::Result<()> {
    let compression = match compression {
        "zip" => Compression::Zip,
        "none" => Compression::None,
        other => anyhow::bail!("compression {other}"),
    };
    let password = (compression == Compression::Zip).then(|| PW.to_owned());
    let limits = Limits { level, ..Limits::default() };
    // Clients send milliseconds (as the seeds' logs do); nanoseconds would be noise.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    // A small export finishes in milliseconds: it is repeated (each time a new writer, as a new
    // task would be) and the median run counts, so one cold cache does not decide the figure.
    let reps = if n <= 100_000 { 25 } else { 1 };
    let mut runs = Vec::with_capacity(reps);
    let mut state = WriterState::default();
    for _ in 0..reps {
        let (busy, s) = one_run(n, compression, password.clone(), limits, now, out)?;
        runs.push(busy);
        state = s;
    }
    runs.sort();
    let busy = runs[runs.len() / 2];
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!(
        "{}",
        json!({"raw": state.raw_bytes, "archive": state.offset, "secs": busy.as_secs_f64(), "rss_mb": hwm_kb as f64 / 1024.0})
    );
    Ok(())
}

/// One export of `n` records into `out`: the time spent in the writer, and its final state.
fn one_run(
    n: usize,
    compression: Compression,
    password: Option<String>,
    limits: Limits,
    now: chrono::DateTime<Utc>,
    out: &str,
) -> anyhow::Result<(std::time::Duration, WriterState)> {
    let mut w = ArchiveWriter::new(
        ExportView::Events,
        Format::Csv,
        compression,
        None,
        password,
        now,
        limits,
        WriterState::default(),
    );
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut rng = StdRng::seed_from_u64(42);
    let mut busy = std::time::Duration::ZERO;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1000);
        let records = page(&mut rng, done, k, now);
        done += k;
        let last = done == n;
        let t = Instant::now();
        w.write(&records)?;
        let part = if last || w.is_full() { w.finish_part(last)? } else { None };
        busy += t.elapsed();
        if let Some(p) = part {
            file.write_all(&p)?;
        }
    }
    file.flush()?;
    Ok((busy, w.state().clone()))
}

fn run_child(n: usize, compression: &str, level: u32, out: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let o = Command::new(exe)
        .args(["--export-child", &n.to_string(), "--child-compression", compression, "--level", &level.to_string()])
        .arg("--child-out")
        .arg(out)
        .output()?;
    anyhow::ensure!(o.status.success(), "child failed: {}", String::from_utf8_lossy(&o.stderr));
    Ok(serde_json::from_slice(&o.stdout)?)
}

pub fn run(sizes: &[usize], levels: &[u32]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!("## Export to an AES-256 ZIP (one core; 7-Zip on the same CSV; up to 100k records the median of 25 runs)");
    println!("| records | CSV MB | writer | MB of CSV/s | archive MB | peak RSS MB |");
    println!("|---:|---:|---|---:|---:|---:|");
    for &n in sizes {
        let csv = dir.path().join("plain.csv");
        let plain = run_child(n, "none", 1, &csv)?;
        let raw = plain["raw"].as_f64().unwrap_or(0.0) / 1e6;
        for &level in levels {
            let zip = dir.path().join("ours.zip");
            let f = run_child(n, "zip", level, &zip)?;
            // The archive must open with the password.
            let t = Command::new("7z").args(["t", &format!("-p{PW}")]).arg(&zip).output()?;
            anyhow::ensure!(t.status.success(), "7z t failed: {}", String::from_utf8_lossy(&t.stdout));
            println!(
                "| {n} | {raw:.1} | Auditrail, libdeflate level {level} | {:.1} | {:.2} | {:.1} |",
                raw / f["secs"].as_f64().unwrap_or(1.0),
                f["archive"].as_f64().unwrap_or(0.0) / 1e6,
                f["rss_mb"].as_f64().unwrap_or(0.0)
            );
            std::fs::remove_file(&zip)?;
        }
        let seven = dir.path().join("7z.zip");
        let t = Instant::now();
        let o = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .args(["7z", "a", "-tzip", "-mem=AES256", &format!("-p{PW}"), "-mmt=1"])
            .arg(&seven)
            .arg(&csv)
            .output()?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(o.status.success(), "7z a failed: {}", String::from_utf8_lossy(&o.stderr));
        let rss_kb: f64 =
            String::from_utf8_lossy(&o.stderr).lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0.0);
        println!(
            "| {n} | {raw:.1} | 7-Zip default (`7z a -tzip -mem=AES256 -mmt=1`) | {:.1} | {:.2} | {:.1} |",
            raw / secs,
            std::fs::metadata(&seven)?.len() as f64 / 1e6,
            rss_kb / 1024.0
        );
        std::fs::remove_file(&seven)?;
        std::fs::remove_file(&csv)?;
    }
    Ok(())
}
