//! `auditrail`: the local server (every route, embedded store) and development tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use auditrail_shared::api::{AppState, router, routes};
use auditrail_shared::app::App;
use auditrail_shared::auth::Role;
use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::{housekeeping, retention};
use clap::{Parser, Subcommand};

/// mimalloc (see `auditrail_shared::allocator`).
#[global_allocator]
static ALLOCATOR: auditrail_shared::allocator::Allocator = auditrail_shared::allocator::Allocator;

mod export;
mod integrity;
mod serve;

#[derive(Parser)]
#[command(name = "auditrail", version, about = "Audit trail and compliance back end for contact-centre software")]
struct Cli {
    /// Where the embedded store and the local signing keys live.
    #[arg(long, global = true, env = "AUDITRAIL_DATA_DIR", default_value = ".auditrail")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route on the embedded store (SQLite + blob folder), no AWS needed.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Load a realistic multi-tenant demo data set (tenants acme-contact and globex-care).
        #[arg(long)]
        demo: bool,
        /// Demo records per tenant.
        #[arg(long, default_value_t = 5000, requires = "demo")]
        demo_size: usize,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
        /// How often the retention purge and export expiry run (seconds); also at start-up.
        #[arg(long, default_value_t = 3600)]
        purge_every: u64,
        /// How often scheduled exports are checked and dead workers' jobs re-queued (seconds).
        #[arg(long, default_value_t = 30)]
        schedule_every: u64,
        /// How often the records stored since the last seal are sealed (seconds).
        #[arg(long, default_value_t = 300)]
        seal_every: u64,
        /// Seconds a client has to send a request's head (also between requests on a kept-alive
        /// connection) before the connection is closed.
        #[arg(long, env = "AUDITRAIL_HEADER_TIMEOUT", default_value_t = 10)]
        header_timeout: u64,
        /// Seconds a client has to send a request's whole body, from its head on.
        #[arg(long, env = "AUDITRAIL_BODY_TIMEOUT", default_value_t = 60)]
        body_timeout: u64,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Export records through a running server: creates the task, shows its progress and
    /// downloads the archive.
    Export(Box<export::ExportArgs>),
    /// Run the retention purge once for every tenant and print what it deleted.
    Purge,
    /// Once after upgrading a DynamoDB deployment from an earlier key layout: list every record
    /// stored under layouts 1 to 3 in today's time and action postings and rewrite its index keys
    /// (AUDITRAIL_TABLE; idempotent, resumable by running it again). Prints what it rewrote per
    /// tenant.
    UpgradeKeys,
    /// Seal what the journal holds since the last seal, now (every tenant, or one).
    Seal {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-derive every seal of a tenant from the store and name each discrepancy by record and
    /// kind (exit status 1 when anything is found).
    Verify(Box<integrity::VerifyArgs>),
    /// Print the public key seals are signed with (PEM), for an auditor to keep.
    PublicKey,
    /// Print a development token the local server accepts.
    Token {
        #[arg(long)]
        tenant: String,
        /// ingest, agent, cc_manager, compliance_analyst, tenant_admin, dpo (repeatable or comma-separated).
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        /// The user id (`sub`).
        #[arg(long, default_value = "dev-user")]
        user: String,
        /// The sign-in account shown in audit records.
        #[arg(long)]
        username: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
}

/// How `serve` authenticates; each flag overrides its `AUDITRAIL_*` variable.
#[derive(clap::Args)]
struct AuthArgs {
    /// `local`: tokens of `auditrail token` and the console's development sign-in (HS256, this
    /// server's key); `oidc`: an OpenID Connect issuer's RS256/ES256 access tokens [env:
    /// AUDITRAIL_AUTH]
    #[arg(long = "auth", value_parser = ["local", "oidc"])]
    mode: Option<String>,
    /// The issuer URL, exactly as tokens carry it in `iss` (e.g. a Keycloak realm's) [env:
    /// AUDITRAIL_OIDC_ISSUER]
    #[arg(long)]
    oidc_issuer: Option<String>,
    /// The `aud` tokens must carry [default: the client id] [env: AUDITRAIL_OIDC_AUDIENCE]
    #[arg(long)]
    oidc_audience: Option<String>,
    /// Accept a token without that `aud` whose `azp` is the audience (Keycloak access tokens)
    /// [env: AUDITRAIL_OIDC_AZP_FALLBACK=1]
    #[arg(long)]
    oidc_azp_fallback: bool,
    /// The console's client id at the issuer [env: AUDITRAIL_OIDC_CLIENT_ID]
    #[arg(long)]
    oidc_client_id: Option<String>,
    /// Dotted path of the claim holding the tenant id [default: tenant_id] [env:
    /// AUDITRAIL_OIDC_TENANT_CLAIM]
    #[arg(long)]
    oidc_tenant_claim: Option<String>,
    /// Dotted path of the claim holding the roles [default: realm_access.roles] [env:
    /// AUDITRAIL_OIDC_ROLES_CLAIM]
    #[arg(long)]
    oidc_roles_claim: Option<String>,
}

impl AuthArgs {
    fn apply(self, mut config: Config) -> Config {
        use auditrail_shared::config::AuthMode;
        match self.mode.as_deref() {
            Some("local") => config.auth = AuthMode::Local,
            Some("oidc") => config.auth = AuthMode::Oidc,
            _ => {}
        }
        let o = &mut config.oidc;
        for (flag, field) in [
            (self.oidc_issuer, &mut o.issuer),
            (self.oidc_audience, &mut o.audience),
            (self.oidc_client_id, &mut o.client_id),
            (self.oidc_tenant_claim, &mut o.tenant_claim),
            (self.oidc_roles_claim, &mut o.roles_claim),
        ] {
            if flag.is_some() {
                *field = flag;
            }
        }
        o.azp_fallback |= self.oidc_azp_fallback;
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The same `AUDITRAIL_*` variables as the functions (keys, auth mode, storage); the data
    // directory from `--data-dir`, which overrides `AUDITRAIL_DATA_DIR`.
    let config = Config { data_dir: cli.data_dir.clone(), ..Config::from_env()? };
    match cli.command {
        Command::Purge => {
            init_tracing(false);
            let state = config.app().await?;
            let reports = retention::purge_all(state.purge_stores(), chrono::Utc::now()).await?;
            println!("{}", serde_json::to_string_pretty(&reports)?);
            Ok(())
        }
        Command::Export(args) => export::run(*args, &config).await,
        Command::Seal { tenant } => {
            init_tracing(false);
            integrity::seal(&config.app().await?, tenant.as_deref()).await
        }
        Command::Verify(args) => integrity::verify(&config.app().await?, *args).await,
        Command::PublicKey => integrity::public_key(&config.app().await?).await,
        Command::UpgradeKeys => upgrade_keys(&config).await,
        Command::Serve {
            addr,
            demo,
            demo_size,
            json_logs,
            purge_every,
            schedule_every,
            seal_every,
            header_timeout,
            body_timeout,
            auth,
        } => {
            init_tracing(json_logs);
            // A server checks its table and bucket once at start-up (a typo fails here).
            let config = auth.apply(Config { check_on_start: true, serving: true, ..config });
            anyhow::ensure!(
                config.auth != auditrail_shared::config::AuthMode::ApiGateway,
                "AUDITRAIL_AUTH=apigw is for the Lambda functions behind API Gateway; `serve` takes local or oidc"
            );
            let state = AppState::from_config(&config).await?;
            if demo {
                let created = auditrail_shared::demo::load(&*state.records, chrono::Utc::now(), demo_size).await?;
                // Registered, so the background jobs (retention, sealing) find the demo tenants.
                for tenant in auditrail_shared::demo::TENANTS {
                    state.note_tenant(tenant).await?;
                }
                state.records.maintain().await?;
                tracing::info!(created, tenants = ?auditrail_shared::demo::TENANTS, "demo data loaded");
            }
            tokio::spawn(housekeeping_loop(
                state.app.clone(),
                std::time::Duration::from_secs(purge_every.max(1)),
                std::time::Duration::from_secs(schedule_every.max(1)),
            ));
            tokio::spawn(job_loop(state.app.clone()));
            tokio::spawn(seal_loop(state.app.clone(), std::time::Duration::from_secs(seal_every.max(1))));
            // The web console at `/`, the API at `/v1`, one origin.
            let console = auditrail_console_assets::Console::new(state.console.issuer.as_deref());
            if !auditrail_console_assets::built() {
                tracing::warn!("this binary has no web console built in: run `make console`, then build again");
            }
            let records = state.records.clone();
            let app = auditrail_console_assets::with_api(router::<routes::All>(state), console);
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            tracing::info!(addr = %local, data_dir = %cli.data_dir.display(), "auditrail serving");
            match config.auth {
                auditrail_shared::config::AuthMode::Local => eprintln!(
                    "Auditrail on http://{local}/ (the web console, with its development sign-in; the API under \
                     /v1; get a token: {})",
                    token_hint(&cli.data_dir)
                ),
                _ => eprintln!(
                    "Auditrail on http://{local}/ (the web console: sign in at {}; the API under /v1)",
                    config.oidc.issuer.as_deref().unwrap_or_default()
                ),
            }
            let timeouts = serve::Timeouts {
                header: std::time::Duration::from_secs(header_timeout.max(1)),
                body: std::time::Duration::from_secs(body_timeout.max(1)),
            };
            serve::run(listener, app, timeouts, shutdown()).await?;
            // What was answered is durable in the inbox's log; indexed now, the next start has
            // nothing to catch up on. A store that cannot index keeps it for the next start.
            match tokio::time::timeout(std::time::Duration::from_secs(60), records.settle()).await {
                Ok(Ok(())) => tracing::info!("every answered record is indexed; stopped"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "stopped; the records not indexed yet are indexed at the next start")
                }
                Err(_) => tracing::warn!("stopped after 60 s of indexing; the rest is indexed at the next start"),
            }
            Ok(())
        }
        Command::Token { tenant, roles, user, username, ttl } => {
            anyhow::ensure!(ttl > 0, "--ttl must be positive");
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r.trim()).with_context(|| {
                        format!(
                            "unknown role `{r}`; roles: {}",
                            Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let token =
                config.authenticator()?.mint(&tenant, &user, username.as_deref().or(Some(&user)), &roles, ttl)?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The command that mints a token this server accepts: with the data directory it reads its
/// key from, unless that is the default.
fn token_hint(data_dir: &std::path::Path) -> String {
    let mut hint = "auditrail token --tenant acme-contact --role compliance_analyst".to_owned();
    if data_dir != std::path::Path::new(".auditrail") {
        let shown = data_dir.display().to_string();
        let safe = shown.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b));
        if safe {
            hint.push_str(&format!(" --data-dir {shown}"));
        } else {
            hint.push_str(&format!(" --data-dir '{}'", shown.replace('\'', r"'\''")));
        }
    }
    hint
}

/// The in-process scheduler (the scheduler function does this in AWS): retention purge and
/// export expiry every `purge_every`, scheduled exports and dead-worker recovery every
/// `schedule_every`.
async fn housekeeping_loop(state: App, purge_every: std::time::Duration, schedule_every: std::time::Duration) {
    let mut tick = tokio::time::interval(schedule_every);
    let mut last_purge: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let purge = last_purge.is_none_or(|t| t.elapsed() >= purge_every);
        if purge {
            last_purge = Some(std::time::Instant::now());
        }
        match housekeeping::tick(&state, chrono::Utc::now(), purge).await {
            Ok(r) => {
                for p in r.purged.iter().filter(|r| !r.deleted.is_empty() || r.held) {
                    tracing::info!(tenant = %p.tenant, held = p.held, deleted = ?p.deleted, "retention purge");
                }
                if r.exports_expired > 0 || !r.scheduled_exports.is_empty() || r.requeued > 0 {
                    tracing::info!(expired = r.exports_expired, scheduled = ?r.scheduled_exports,
                        requeued = r.requeued, "housekeeping");
                }
            }
            Err(e) => tracing::error!(error = %e, "housekeeping failed"),
        }
    }
}

/// The in-process sealer (the scheduler function seals in AWS): every `every`, and at start-up.
async fn seal_loop(state: App, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match housekeeping::seal(&state, chrono::Utc::now()).await {
            Ok(runs) => {
                for r in runs.iter().filter(|r| r.seals > 0 || r.repaired > 0) {
                    tracing::info!(tenant = %r.tenant, seals = r.seals, records = r.leaves, "sealed");
                }
            }
            Err(e) => tracing::error!(error = %e, "sealing failed"),
        }
    }
}

/// The in-process job workers (the export-worker and dpo-worker functions in AWS): run queued
/// exports and erasures when one is created, and every few seconds.
async fn job_loop(state: App) {
    let owner = format!("serve-{}", ulid::Ulid::generate());
    let exports = state.export_worker(&owner);
    let erasures = state.erasure_worker(&owner);
    loop {
        // Registered before the run, so a task queued during it wakes the next round at once.
        let woken = state.jobs_queued.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Err(e) = exports.run_pending().await {
            tracing::error!(error = %e, "export worker failed");
        }
        if let Err(e) = erasures.run_pending().await {
            tracing::error!(error = %e, "erasure worker failed");
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

/// Completes at Ctrl-C (SIGINT) or SIGTERM (what `docker stop`, systemd and Kubernetes send).
async fn shutdown() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM cannot be caught: only Ctrl-C stops the server cleanly");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: open requests finish, then what they appended is indexed");
}

/// `auditrail upgrade-keys`: the DynamoDB layout upgrade, with a progress bar per tenant.
#[cfg(not(feature = "aws"))]
async fn upgrade_keys(_: &Config) -> anyhow::Result<()> {
    anyhow::bail!(
        "upgrade-keys works on DynamoDB: build with `--features aws` (the embedded store has nothing to upgrade)"
    )
}

/// `auditrail upgrade-keys`: the DynamoDB layout upgrade, with a progress bar per tenant.
#[cfg(feature = "aws")]
async fn upgrade_keys(config: &Config) -> anyhow::Result<()> {
    init_tracing(false);
    let store = config.dynamo_store()?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} days")?.progress_chars("=> "));
    let report = store
        .upgrade_keys(chrono::Utc::now(), &|tenant, day, days| {
            bar.set_message(tenant.to_owned());
            bar.set_length(days);
            bar.set_position(day);
        })
        .await?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
