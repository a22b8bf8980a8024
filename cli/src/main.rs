//! `auditrail`: the local server (every route, embedded store) and development tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use auditrail_shared::api::{AppState, Routes, router};
use auditrail_shared::auth::Role;
use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::retention;
use clap::{Parser, Subcommand};

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
        /// How often the retention purge runs (seconds); it also runs at start-up.
        #[arg(long, default_value_t = 3600)]
        purge_every: u64,
    },
    /// Run the retention purge once for every tenant and print what it deleted.
    Purge,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::embedded(&cli.data_dir);
    match cli.command {
        Command::Purge => {
            init_tracing(false);
            let state = config.state().await?;
            let reports =
                retention::purge_all(&*state.records, &*state.blobs, &*state.settings, chrono::Utc::now()).await?;
            println!("{}", serde_json::to_string_pretty(&reports)?);
            Ok(())
        }
        Command::Serve { addr, demo, demo_size, json_logs, purge_every } => {
            init_tracing(json_logs);
            let state = config.state().await?;
            if demo {
                let created = auditrail_shared::demo::load(&*state.records, chrono::Utc::now(), demo_size).await?;
                state.records.maintain().await?;
                tracing::info!(created, tenants = ?auditrail_shared::demo::TENANTS, "demo data loaded");
            }
            tokio::spawn(purge_loop(state.clone(), std::time::Duration::from_secs(purge_every.max(1))));
            let app = router(state, Routes::All);
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            tracing::info!(addr = %local, data_dir = %cli.data_dir.display(), "auditrail serving");
            eprintln!(
                "Auditrail on http://{local}  (get a token: auditrail token --tenant acme-contact --role compliance_analyst)"
            );
            // Batches are large request bodies: do not let Nagle meet delayed ACKs.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
            Ok(())
        }
        Command::Token { tenant, roles, user, username, ttl } => {
            anyhow::ensure!(ttl > 0, "--ttl must be positive");
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r.trim()).with_context(|| {
                        format!("unknown role `{r}`; roles: {}", Role::ALL.map(|r| r.as_str()).join(", "))
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

/// The in-process retention purge (the scheduler function does this in AWS).
async fn purge_loop(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match retention::purge_all(&*state.records, &*state.blobs, &*state.settings, chrono::Utc::now()).await {
            Ok(reports) => {
                for r in reports.iter().filter(|r| !r.deleted.is_empty() || r.held) {
                    tracing::info!(tenant = %r.tenant, held = r.held, deleted = ?r.deleted, "retention purge");
                }
            }
            Err(e) => tracing::error!(error = %e, "retention purge failed"),
        }
    }
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
