//! `auditrail seal`, `auditrail verify` and `auditrail public-key`: tamper evidence from the
//! command line, on the store the configuration names (docs/integrity.md).

use std::path::PathBuf;

use anyhow::Context;
use auditrail_shared::app::App;
use auditrail_shared::integrity::verify::{Options, Report, Verifier, kinds};
use auditrail_shared::seal::{public_key_der_from_pem, public_key_pem};
use chrono::{DateTime, Utc};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The tenant whose trail to verify.
    #[arg(long)]
    tenant: String,
    /// Only records that occurred at or after this time (RFC 3339) are checked against their
    /// seals, and the scan for records no seal covers starts here (default: a day before the
    /// oldest sealed record). The chain of seals is always checked whole.
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// … and before this time.
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// A seal trusted from an earlier run, `SEQ:HASH` (the `last seal` line it printed): the
    /// chain must still hold it, so a trail cut off at its end is found.
    #[arg(long)]
    anchor: Option<String>,
    /// The public key (PEM) to check signatures with, kept by the auditor; default: this
    /// deployment's own key.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_anchor(s: &str) -> anyhow::Result<(u64, String)> {
    let (seq, hash) = s.split_once(':').context("--anchor takes SEQ:HASH, e.g. 41:3q2+7w…=")?;
    Ok((seq.parse().context("--anchor: SEQ is a seal's sequence number")?, hash.to_owned()))
}

fn spinner(msg: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Seals every tenant's pending journal now and prints what was sealed.
pub async fn seal(app: &App, tenant: Option<&str>) -> anyhow::Result<()> {
    let pb = spinner("sealing");
    let now = Utc::now();
    let runs = match tenant {
        Some(t) => vec![app.sealing().seal_tenant(t, now).await?],
        None => auditrail_shared::housekeeping::seal(app, now).await?,
    };
    pb.finish_and_clear();
    for r in &runs {
        println!(
            "{}: {} seal(s), {} record(s) sealed{}",
            r.tenant,
            r.seals,
            r.leaves,
            match r.repaired {
                0 => String::new(),
                n => format!(", {n} digest(s) written for seals a stopped run left without one"),
            }
        );
    }
    let settle = app.seals.settle_time();
    if !settle.is_zero() {
        println!("(records stored in the last {}s are sealed by the next run)", settle.as_secs());
    }
    Ok(())
}

/// Verifies one tenant's trail; fails (exit status 1) when anything is found.
pub async fn verify(app: &App, args: VerifyArgs) -> anyhow::Result<()> {
    let key = match &args.public_key {
        None => app.signer.public_key_der().await?,
        Some(path) => {
            let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            public_key_der_from_pem(&pem).with_context(|| path.display().to_string())?
        }
    };
    let opts = Options { from: args.from, to: args.to, anchor: args.anchor.as_deref().map(parse_anchor).transpose()? };
    let pb = spinner(&format!("verifying {}", args.tenant));
    let v = Verifier { seals: &*app.seals, records: &*app.records, blobs: &*app.seal_blobs, public_key: &key };
    let rep = v.verify(&args.tenant, &opts).await?;
    pb.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print_report(&rep);
    }
    anyhow::ensure!(rep.ok(), "{} finding(s): {:?}", rep.findings.len(), kinds(&rep));
    Ok(())
}

fn print_report(rep: &Report) {
    println!("tenant {}: {} seal(s), {} sealed record(s) checked", rep.tenant, rep.seals, rep.records_checked);
    for e in &rep.erased {
        println!("  {}: anonymised by DPO erasure {} (verified through its commitments)", e.record, e.jobs.join(", "));
    }
    for (c, n) in &rep.purged {
        println!("  {n} {} record(s) removed by a noted retention purge", c.as_str());
    }
    if rep.pending > 0 {
        println!("  {} record(s) stored after the last seal (sealed by the next run)", rep.pending);
    }
    if let Some((from, to)) = rep.scanned {
        println!("  scanned for records no seal covers: {} to {}", from.to_rfc3339(), to.to_rfc3339());
    }
    if let Some((seq, hash)) = &rep.last_seal {
        println!("  last seal: {seq}:{hash}  (keep it; pass it as --anchor next time)");
    }
    if rep.ok() {
        println!("OK: every sealed record verifies; nothing was changed, removed or slipped in");
    }
    for f in &rep.findings {
        let at = match (&f.record, f.seal) {
            (Some(r), Some(s)) => format!("record {r} (seal {s})"),
            (Some(r), None) => format!("record {r}"),
            (None, Some(s)) => format!("seal {s}"),
            (None, None) => String::new(),
        };
        println!("  {}: {at}: {}", <&str>::from(f.kind), f.detail);
    }
}

/// The seal-signing public key as PEM, for the auditor to keep.
pub async fn public_key(app: &App) -> anyhow::Result<()> {
    print!("{}", public_key_pem(&app.signer.public_key_der().await?)?);
    Ok(())
}
