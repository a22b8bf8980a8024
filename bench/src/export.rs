//! Export writer figures: records → CSV → deflate → AES-256 ZIP, in constant memory, on one
//! core and on every core side by side, next to 7-Zip compressing the same CSV
//! (`7z a -tzip -mem=AES256`). Each run is a child process, so its peak RSS (VmHWM) is its own;
//! the speed-up is measured apart, in one process that alternates the runs (`alternate`).
//! Records come from a pool of pages generated before the clock starts (compression threads
//! would otherwise run for free while the next page is generated); the pool's memory is
//! subtracted from the peak, which leaves the writer's.

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

pub(crate) fn page(rng: &mut StdRng, start: usize, n: usize, now: chrono::DateTime<Utc>) -> Vec<Record> {
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

/// Pages in the pool: 20,000 records, ~4 MB of CSV, so a page comes back far beyond deflate's
/// 32 KB window (the ratio is that of fresh rows) and beyond the CPU's caches.
const POOL_PAGES: usize = 20;

/// The pool of pages the children write, cycled.
fn pool(now: chrono::DateTime<Utc>) -> Vec<Vec<Record>> {
    let mut rng = StdRng::seed_from_u64(42);
    (0..POOL_PAGES).map(|p| page(&mut rng, p * 1000, 1000, now)).collect()
}

pub(crate) fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds of this process so far, all threads (utime + stime, in 1/100 s ticks).
pub(crate) fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<f64> = after.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    f.iter().sum::<f64>() / 100.0
}

/// The child: writes `n` records with the writer on `parallelism` cores (0: all) to `out`,
/// prints JSON figures.
pub fn child(n: usize, compression: &str, level: u32, parallelism: usize, out: &str) -> anyhow::Result<()> {
    let compression = match compression {
        "zip" => Compression::Zip,
        "none" => Compression::None,
        other => anyhow::bail!("compression {other}"),
    };
    let password = (compression == Compression::Zip).then(|| PW.to_owned());
    let limits = Limits { level, parallelism, ..Limits::default() };
    // Clients send milliseconds (as the seeds' logs do); nanoseconds would be noise.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let pool = pool(now);
    let base_kb = status_kb("VmRSS:");
    // A small export finishes in milliseconds: it is repeated (each time a new writer, as a new
    // task would be) and the median run counts, so one cold cache does not decide the figure;
    // a large one three times, so one burst of other work on a shared machine does not either.
    let reps = if n <= 100_000 { 25 } else { 3 };
    let mut runs = Vec::with_capacity(reps);
    let mut state = WriterState::default();
    for _ in 0..reps {
        let cpu = cpu_secs();
        let (busy, s) = one_run(n, compression, password.clone(), limits, now, &pool, out)?;
        runs.push((busy, cpu_secs() - cpu));
        state = s;
    }
    runs.sort_by_key(|r| r.0);
    let (busy, cpu) = runs[runs.len() / 2];
    let hwm_kb = status_kb("VmHWM:");
    println!(
        "{}",
        json!({
            "raw": state.raw_bytes,
            "archive": state.offset,
            "secs": busy.as_secs_f64(),
            "cpu_secs": cpu,
            "cores": limits.cores(),
            "rss_mb": hwm_kb as f64 / 1024.0,
            "writer_rss_mb": hwm_kb.saturating_sub(base_kb) as f64 / 1024.0,
        })
    );
    Ok(())
}

/// The speed-up child: `rounds` rounds, each the same export once on one core, once on every
/// core and twice at once, each of those two on one core (two threads, one writer each), in an
/// order that rotates from round to round. Printed per round: one core's seconds ÷ every core's
/// (the speed-up) and two one-core exports' throughput ÷ one's (what this machine gives two
/// independent copies of the same work — the most any parallel writer could reach in that
/// minute). Runs seconds apart in one process, so the VM's minute-to-minute swings hit all three
/// alike; children minutes apart do not measure the writer but the VM.
pub fn alternate(n: usize, level: u32, rounds: usize, out: &str) -> anyhow::Result<()> {
    let one = Limits { level, parallelism: 1, ..Limits::default() };
    let all = Limits { level, parallelism: 0, ..Limits::default() };
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let pool = pool(now);
    let run = |limits: Limits, out: &str| one_run(n, Compression::Zip, Some(PW.to_owned()), limits, now, &pool, out);
    let (mut speedup, mut ceiling) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let twin = format!("{out}.twin");
    for round in 0..rounds {
        let mut secs = [0.0f64; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            secs[which] = match which {
                0 => run(one, out)?.0.as_secs_f64(),
                1 => run(all, out)?.0.as_secs_f64(),
                _ => {
                    let t = Instant::now();
                    std::thread::scope(|s| {
                        let other = s.spawn(|| run(one, &twin).map(drop));
                        let mine = run(one, out).map(drop);
                        other.join().expect("a one-core export thread panicked").and(mine)
                    })?;
                    t.elapsed().as_secs_f64()
                }
            };
        }
        speedup.push(secs[0] / secs[1]);
        ceiling.push(2.0 * secs[0] / secs[2]);
    }
    let _ = std::fs::remove_file(&twin);
    println!("{}", json!({"speedup": speedup, "ceiling": ceiling}));
    Ok(())
}

/// One export of `n` records (the pool's pages, cycled) into `out`: the time from the first
/// record to the last part, and the writer's final state.
fn one_run(
    n: usize,
    compression: Compression,
    password: Option<String>,
    limits: Limits,
    now: chrono::DateTime<Utc>,
    pool: &[Vec<Record>],
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
    // Wall time, parts written to the file included: with compression threads, time outside
    // the writer's calls is not idle.
    let t = Instant::now();
    let mut done = 0;
    for records in pool.iter().cycle() {
        let k = (n - done).min(records.len());
        done += k;
        let last = done == n;
        w.write(&records[..k])?;
        if (last || w.is_full())
            && let Some(p) = w.finish_part(last)?
        {
            file.write_all(&p)?;
        }
        if last {
            break;
        }
    }
    file.flush()?;
    Ok((t.elapsed(), w.state().clone()))
}

fn run_child(
    n: usize,
    compression: &str,
    level: u32,
    parallelism: usize,
    out: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let o = Command::new(exe)
        .args(["--export-child", &n.to_string(), "--child-compression", compression, "--level", &level.to_string()])
        .args(["--child-parallelism", &parallelism.to_string()])
        .arg("--child-out")
        .arg(out)
        .output()?;
    anyhow::ensure!(o.status.success(), "child failed: {}", String::from_utf8_lossy(&o.stderr));
    Ok(serde_json::from_slice(&o.stdout)?)
}

/// `7z a` of the CSV on `threads` threads: seconds, archive bytes, peak RSS in MB.
fn seven_zip(csv: &std::path::Path, out: &std::path::Path, threads: usize) -> anyhow::Result<(f64, f64, f64)> {
    let t = Instant::now();
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .args(["7z", "a", "-tzip", "-mem=AES256", &format!("-p{PW}"), &format!("-mmt={threads}")])
        .arg(out)
        .arg(csv)
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(o.status.success(), "7z a failed: {}", String::from_utf8_lossy(&o.stderr));
    let rss_kb: f64 =
        String::from_utf8_lossy(&o.stderr).lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0.0);
    let bytes = std::fs::metadata(out)?.len() as f64;
    std::fs::remove_file(out)?;
    Ok((secs, bytes, rss_kb / 1024.0))
}

/// Rounds of the speed-up child: many for small exports (milliseconds each), fewer for large.
fn rounds(n: usize) -> usize {
    match n {
        0..=100_000 => 25,
        100_001..=1_000_000 => 7,
        _ => 3,
    }
}

/// The speed-up child's rounds: (speed-ups, two one-core exports at once ÷ one).
fn run_alternate(n: usize, level: u32, out: &std::path::Path) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let o = Command::new(std::env::current_exe()?)
        .args(["--export-child", &n.to_string(), "--level", &level.to_string()])
        .args(["--child-alternate", &rounds(n).to_string()])
        .arg("--child-out")
        .arg(out)
        .output()?;
    anyhow::ensure!(o.status.success(), "speed-up child failed: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let list = |k: &str| v[k].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
    let (speedup, ceiling): (Vec<f64>, Vec<f64>) = (list("speedup"), list("ceiling"));
    anyhow::ensure!(!speedup.is_empty() && speedup.len() == ceiling.len(), "speed-up child printed {v}");
    let _ = std::fs::remove_file(out);
    Ok((speedup, ceiling))
}

/// One child's figures: seconds, CPU seconds, writer RSS, whole RSS, archive bytes.
struct Child {
    secs: f64,
    cpu: f64,
    writer_rss: f64,
    rss: f64,
    archive: f64,
}

impl Child {
    fn of(f: &serde_json::Value) -> Self {
        let g = |k: &str| f[k].as_f64().unwrap_or(0.0);
        Self {
            secs: g("secs").max(1e-9),
            cpu: g("cpu_secs"),
            writer_rss: g("writer_rss_mb"),
            rss: g("rss_mb"),
            archive: g("archive"),
        }
    }
}

/// A zip child on `parallelism` cores whose archive must open with the password in 7-Zip.
fn zip_child(n: usize, level: u32, parallelism: usize, zip: &std::path::Path) -> anyhow::Result<Child> {
    let f = Child::of(&run_child(n, "zip", level, parallelism, zip)?);
    let t = Command::new("7z").args(["t", &format!("-p{PW}")]).arg(zip).output()?;
    anyhow::ensure!(t.status.success(), "7z t failed: {}", String::from_utf8_lossy(&t.stdout));
    std::fs::remove_file(zip)?;
    Ok(f)
}

/// `median× [min–max]` of ratios.
fn median_range(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.2}× [{:.2}–{:.2}]", v[v.len() / 2], v[0], v[v.len() - 1])
}

pub fn run(sizes: &[usize], levels: &[u32]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cores = Limits::default().cores();
    println!(
        "## Export to an AES-256 ZIP, one core and all {cores} (7-Zip on the same CSV; each child the median of its runs: 25 up to 100k records, else 3)"
    );
    println!(
        "Peak RSS: the writer's (the child's VmHWM less its RSS once the record pool is built), the child's whole peak in brackets. \
         Cores used: CPU time ÷ wall time of the run (below {cores} on {cores} cores when other work shares them). \
         Speed-up: one process exports the same records on one core, on all {cores} and twice at once (two threads, one core's writer \
         each) in turn, seconds apart, rounds of the three (25 up to 100k records, 7 up to 1M, else 3): one core's time ÷ all {cores}'s \
         per round, median [range]; beside it, two one-core exports at once ÷ one — what this machine gives two independent copies of \
         the same work in those minutes, the most a parallel writer could reach."
    );
    println!(
        "| records | CSV MB | writer | 1 core: MB of CSV/s | records/s | peak RSS MB | {cores} cores: MB of CSV/s | records/s | peak RSS MB | cores used | speed-up | 2 one-core exports at once | archive MB |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let csv = dir.path().join("plain.csv");
        let plain = run_child(n, "none", 1, 1, &csv)?;
        let raw = plain["raw"].as_f64().unwrap_or(0.0) / 1e6;
        for &level in levels {
            let zip = dir.path().join("ours.zip");
            let one = zip_child(n, level, 1, &zip)?;
            let all = zip_child(n, level, 0, &zip)?;
            let (mut speedups, mut ceilings) = run_alternate(n, level, &zip)?;
            let cell = |c: &Child| {
                format!("{:.1} | {:.0} | {:.1} ({:.1})", raw / c.secs, n as f64 / c.secs, c.writer_rss, c.rss)
            };
            println!(
                "| {n} | {raw:.1} | Auditrail, libdeflate level {level} | {} | {} | {:.2} | {} | {} | {:.2} |",
                cell(&one),
                cell(&all),
                all.cpu / all.secs,
                median_range(&mut speedups),
                median_range(&mut ceilings),
                all.archive / 1e6,
            );
        }
        let seven = dir.path().join("7z.zip");
        let (one, bytes, rss_one) = seven_zip(&csv, &seven, 1)?;
        let (all, _, rss_all) = seven_zip(&csv, &seven, cores)?;
        println!(
            "| {n} | {raw:.1} | 7-Zip default (`7z a -tzip -mem=AES256 -mmt=1`, `-mmt={cores}`) | {:.1} | {:.0} | {rss_one:.1} | {:.1} | {:.0} | {rss_all:.1} | — | {:.2}× | — | {:.2} |",
            raw / one,
            n as f64 / one,
            raw / all,
            n as f64 / all,
            one / all,
            bytes / 1e6,
        );
        std::fs::remove_file(&csv)?;
    }
    Ok(())
}
