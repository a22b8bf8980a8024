//! Tamper-evidence figures (docs/integrity.md): what stamping and the journal cost an append on
//! the embedded store, sealing a million records, proof size and verification time, and a whole
//! tenant's verification.

use std::time::Instant;

use auditrail_shared::config::Config;
use auditrail_shared::ingest::{self, Framing};
use auditrail_shared::integrity::proof::{check, prove};
use auditrail_shared::integrity::verify::{Options, Verifier};
use auditrail_shared::record::integrity::{derive, stamp};
use auditrail_shared::record::{Record, ValidationLimits};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the `)`: field 3 is index 0, so utime (14) and stime (15) are 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let app = Config::embedded(dir.path()).app().await?;
    let now = Utc::now();
    let limits = ValidationLimits::default();
    let records: Vec<Vec<Record>> = super::batches(n, 11, now)
        .iter()
        .map(|b| ingest::prepare(b.as_bytes(), Framing::JsonArray, "t", now, &limits).map(|p| p.records))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // What stamping and deriving a leaf cost per record, on one core.
    let t = Instant::now();
    let mut stamped = 0usize;
    for batch in &records {
        for r in batch {
            let mut r = r.clone();
            stamp(&mut r, "01JBENCHBATCH0000000000000");
            std::hint::black_box(derive(&r));
            stamped += 1;
        }
    }
    let per = t.elapsed().as_secs_f64() / stamped as f64 * 1e6;

    // The same records appended twice over, to a tenant each: stamped inside the append (as in
    // production), and stamped beforehand (the append then only writes them and the journal).
    // The difference is what stamping adds to an append.
    let prestamped: Vec<Vec<Record>> = records
        .iter()
        .map(|b| {
            b.iter()
                .map(|r| {
                    let mut r = r.clone();
                    stamp(&mut r, "01JBENCHBATCH0000000000000");
                    r
                })
                .collect()
        })
        .collect();
    let t = Instant::now();
    for batch in &prestamped {
        app.records.append("pre", batch).await?;
    }
    let pre_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for batch in &records {
        app.records.append("t", batch).await?;
    }
    let append_s = t.elapsed().as_secs_f64();

    println!("## Tamper evidence (embedded store, {n} records of the bench mix)");
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| stamp + leaf (key, salts, commitments, JCS, SHA-256), one core | {per:.1} µs/record |");
    println!("| store.append with stamping and the journal, batches of 1000 | {:.0} records/s |", n as f64 / append_s);
    println!(
        "| the same, records stamped beforehand (what stamping adds: {:+.1} %) | {:.0} records/s |",
        100.0 * (append_s - pre_s) / pre_s,
        n as f64 / pre_s
    );

    let (c0, t) = (cpu_seconds(), Instant::now());
    let run = app.sealing().seal_tenant("t", Utc::now()).await?;
    let (seal_s, seal_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "| sealing {} records ({} seals of ≤ {} leaves) | {seal_s:.1} s wall, {seal_cpu:.1} s CPU |",
        run.leaves,
        run.seals,
        auditrail_shared::integrity::sealer::MAX_LEAVES
    );

    let key = app.signer.public_key_der().await?;
    let mut rng = StdRng::seed_from_u64(5);
    let (mut sizes, mut verify_us, mut prove_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..1000 {
        let id = format!("bench-{:09}", rng.random_range(0..n));
        let r = app.records.get("t", &id).await?.expect("stored");
        let t = Instant::now();
        let p = prove(&*app.seals, &*app.seal_blobs, "t", &r).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        prove_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        sizes.push(serde_json::to_vec(&p)?.len());
        let t = Instant::now();
        check(&p, &r, &key).map_err(|e| anyhow::anyhow!(e))?;
        verify_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let sizes: Vec<f64> = sizes.into_iter().map(|s| s as f64).collect();
    println!("| proof size (1000 random records) | {:.0} B average, {:.0} B largest |", avg(&sizes), max(&sizes));
    println!(
        "| proof verification (leaf, path, P-256 signature) | {:.0} µs average, {:.0} µs slowest |",
        avg(&verify_us),
        max(&verify_us)
    );
    println!("| proof served (seal lookup, digest read, path) | {:.1} ms average |", avg(&prove_ms));

    let t = Instant::now();
    let v = Verifier { seals: &*app.seals, records: &*app.records, blobs: &*app.seal_blobs, public_key: &key };
    let rep = v.verify("t", &Options::default()).await?;
    anyhow::ensure!(rep.ok(), "{:?}", rep.findings.first());
    println!(
        "| `auditrail verify` of the whole tenant ({} records, {} seals) | {:.1} s |\n",
        rep.records_checked,
        rep.seals,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
