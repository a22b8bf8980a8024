//! `auditrail export`: creates an export on a running server, shows its progress, downloads it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use auditrail_shared::auth::Role;
use auditrail_shared::config::Config;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, json};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The server's base URL.
    #[arg(long, env = "AUDITRAIL_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A bearer token (compliance_analyst, cc_manager or tenant_admin). Without one, a token
    /// for `--tenant` is minted from the local data directory's key.
    #[arg(long, env = "AUDITRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, required_unless_present = "token")]
    tenant: Option<String>,
    /// `events` (the activity log) or `sign-ins`.
    #[arg(long, default_value = "events")]
    view: String,
    /// Start of the window (RFC 3339); default: the list's default.
    #[arg(long)]
    from: Option<String>,
    /// End of the window, exclusive (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    action: Vec<String>,
    #[arg(long)]
    category: Vec<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    result: Option<String>,
    /// csv, jsonl or ocsf (OCSF 1.1.0 events, docs/ocsf.md); checked by the server.
    #[arg(long, default_value = "csv")]
    format: String,
    /// zip, gzip or none (a password implies zip).
    #[arg(long)]
    compression: Option<String>,
    /// Archive password (letters, digits, `_ @ %`, at most 12); prefer the environment variable.
    #[arg(long, env = "AUDITRAIL_EXPORT_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// IANA zone for the times in the file.
    #[arg(long)]
    tz: Option<String>,
    /// Where to write the archive.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(args: ExportArgs, config: &Config) -> anyhow::Result<()> {
    let token = match (&args.token, &args.tenant) {
        (Some(t), _) => t.clone(),
        (None, Some(tenant)) => {
            config.authenticator()?.mint(tenant, "cli", Some("cli"), &[Role::ComplianceAnalyst], 3600)?
        }
        (None, None) => bail!("give --token (or AUDITRAIL_TOKEN) or --tenant"),
    };
    let mut filter = Map::new();
    filter.insert("view".into(), args.view.clone().into());
    for (k, v) in [("from", &args.from), ("to", &args.to), ("user", &args.user), ("result", &args.result)] {
        if let Some(v) = v {
            filter.insert(k.into(), v.clone().into());
        }
    }
    if !args.action.is_empty() {
        filter.insert("action".into(), json!(args.action));
    }
    if !args.category.is_empty() {
        filter.insert("category".into(), json!(args.category));
    }
    let mut body = json!({"filter": filter, "format": args.format});
    for (k, v) in [("compression", &args.compression), ("password", &args.password), ("tz", &args.tz)] {
        if let Some(v) = v {
            body[k] = v.clone().into();
        }
    }
    let client = auditrail_client::Client::new(&args.server, token)?;
    let task = client.create_export(&body).await.with_context(|| format!("creating the export at {}", args.server))?;
    let id = task["id"].as_str().context("the server returned no export id")?.to_owned();

    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} export {prefix}: {msg} [{elapsed}]").expect("template"));
    bar.set_prefix(id.clone());
    bar.enable_steady_tick(Duration::from_millis(120));
    let done = loop {
        let t = match client.export(&id).await {
            Ok(t) => t,
            Err(e) => {
                bar.abandon();
                return Err(e.into());
            }
        };
        let st = t["status"].as_str().unwrap_or("?").to_owned();
        bar.set_message(format!(
            "{st}, {} records, {}",
            t["records"].as_u64().unwrap_or(0),
            indicatif::HumanBytes(t["bytes"].as_u64().unwrap_or(0))
        ));
        match st.as_str() {
            "SUCCEEDED" => break t,
            "FAILED" | "EXPIRED" => {
                bar.abandon();
                bail!("export {id} {st}: {}", t["error"].as_str().unwrap_or("no reason given"));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    bar.finish();

    // The client follows the 303 to a presigned URL (AWS) on its own.
    let mut resp = client.download_export(&id).await?;
    let total = resp.content_length().or(done["bytes"].as_u64()).unwrap_or(0);
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}").expect("template"));
    let tmp = args.out.with_extension("part");
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    while let Some(chunk) = resp.chunk().await? {
        file.write_all(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    file.sync_all()?;
    std::fs::rename(&tmp, &args.out)?;
    bar.finish();
    eprintln!(
        "{} records → {} ({})",
        done["records"].as_u64().unwrap_or(0),
        args.out.display(),
        indicatif::HumanBytes(total)
    );
    Ok(())
}
