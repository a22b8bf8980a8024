//! Prints Auditrail's measured figures (run with `make bench`, i.e. a release build):
//!
//! 1. the ingest CPU path (split + parse + validate + build the stored form) in events/s on one
//!    core, next to plain `serde_json` parsing of the same bytes into `Value`;
//! 2. embedded-store ingest over real HTTP in batches of 1000;
//! 3. first-page latency (p50/p99) of `GET /v1/events` per filter at the loaded size, with the
//!    index the planner used and the rows read per row returned.

use std::time::{Duration, Instant};

use auditrail_shared::api::{router, routes};
use auditrail_shared::auth::Role;
use auditrail_shared::config::Config;
use auditrail_shared::ingest::{self, Framing};
use auditrail_shared::record::ValidationLimits;
use auditrail_shared::store::{EventFilter, PageRequest};
use axum::body::Body;
use chrono::{Duration as ChronoDuration, Utc};
use clap::Parser;
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tower::ServiceExt;

/// mimalloc (see `auditrail_shared::allocator`).
#[global_allocator]
static ALLOCATOR: auditrail_shared::allocator::Allocator = auditrail_shared::allocator::Allocator;

mod cost;
mod dpo;
mod dynamo;
mod export;
mod export_path;
mod init;
mod integrity;

#[derive(Parser)]
struct Args {
    /// Records to load for the latency table (spread over 30 days, 3 tenants, one with 80 %).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Records for the live-ingest measurement (one client, then four sharing them).
    #[arg(long, default_value_t = 200_000)]
    live_records: usize,
    /// Instead: only the live-ingest figure (`--live-records` per run).
    #[arg(long)]
    live_only: bool,
    /// Records for the CPU-path measurement.
    #[arg(long, default_value_t = 200_000)]
    cpu_records: usize,
    /// Requests per filter for the latency percentiles.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Instead: load this many records into DynamoDB on moto and print write units and read
    /// amplification per filter.
    #[arg(long)]
    dynamodb: Option<usize>,
    /// Instead: export figures for these record counts (comma-separated), e.g. 10000,1000000,5000000.
    #[arg(long, value_delimiter = ',')]
    export: Vec<usize>,
    /// Instead: the whole export path (store query, formatting, compression, upload) for this
    /// many records on the embedded store, and `--export-path-emulator` on DynamoDB + S3 (moto).
    #[arg(long)]
    export_path: Option<usize>,
    #[arg(long, default_value_t = 0)]
    export_path_emulator: usize,
    /// Deflate levels to compare in the export figures.
    #[arg(long, value_delimiter = ',', default_value = "5")]
    level: Vec<u32>,
    /// Instead: DPO search latency and erasure rate on this many records (embedded store).
    #[arg(long)]
    dpo: Option<usize>,
    /// Instead: DPO items read per hit on DynamoDB (moto) with this many records.
    #[arg(long)]
    dpo_dynamodb: Option<usize>,
    /// People the DPO records are about.
    #[arg(long, default_value_t = 100_000)]
    subjects: usize,
    /// Instead: Lambda init time of every function's host build in this directory (e.g.
    /// target/release after `cargo build --release -p ingest -p query …`), against a runtime-API
    /// stub and the emulator.
    #[arg(long)]
    init: Option<std::path::PathBuf>,
    /// Instead: tamper-evidence figures (stamping, sealing, proofs, verification) on this many
    /// records of the embedded store.
    #[arg(long)]
    integrity: Option<usize>,
    /// Starts per function for the init figures.
    #[arg(long, default_value_t = 5)]
    init_runs: usize,
    #[arg(long, hide = true)]
    export_child: Option<usize>,
    #[arg(long, hide = true, default_value = "zip")]
    child_compression: String,
    #[arg(long, hide = true, default_value = "")]
    child_out: String,
    /// Compression threads of an export child (0: every core).
    #[arg(long, hide = true, default_value_t = 0)]
    child_parallelism: usize,
    /// An export child that measures the speed-up in this many rounds (`export::alternate`).
    #[arg(long, hide = true)]
    child_alternate: Option<usize>,
}

const ACTIONS: [(&str, Option<&str>); 12] = [
    ("LOGIN", None),
    ("LOGOUT", None),
    ("LOGIN_ERROR", None),
    ("SIGN_IN", None),
    ("CONVERSATION_SEARCH", Some("start")),
    ("CONVERSATION_SEARCH", Some("end")),
    ("CREATE_EVALUATION", None),
    ("COMPLETE_EVALUATION", None),
    ("ACCESS_MEDIA", None),
    ("TAB_OPENED", None),
    ("START_CALL", None),
    ("CLICK", None),
];

pub(crate) fn record(rng: &mut StdRng, i: usize, now: chrono::DateTime<Utc>) -> Value {
    let (action, phase) = ACTIONS[rng.random_range(0..ACTIONS.len())];
    let user = rng.random_range(0..2000);
    let at = now - ChronoDuration::seconds(rng.random_range(1..30 * 86_400));
    let result = match rng.random_range(0..100) {
        0..=89 => "OK",
        90..=97 => "FAIL",
        _ => "UNAUTHORIZED",
    };
    let mut r = json!({
        "id": format!("bench-{i:09}"),
        "occurred_at": at.to_rfc3339(),
        "action": action,
        "actor": {"user_id": format!("u-{user}"), "username": format!("agent.{user}"), "full_name": format!("Agent {user}"), "employee_id": format!("{}", 10000 + user)},
        "result": result,
        "source_ip": format!("10.1.{}.{}", user % 250, i % 250),
        "description": {"userId": format!("u-{user}"), "conversationId": format!("c-{}", rng.random_range(0..1_000_000))},
    });
    if action == "CLICK" {
        r["session_id"] = json!(format!("cb-{}", i / 20));
        r["actor"]["kind"] = json!(if i.is_multiple_of(2) { "agent" } else { "customer" });
        r["data"] = json!({"element": "#buy"});
        r.as_object_mut().unwrap().remove("result");
    }
    if let Some(p) = phase {
        r["phase"] = json!(p);
        r["correlation_id"] = json!(format!("req-{}", i / 2));
        if p == "start" {
            r.as_object_mut().unwrap().remove("result");
        }
    }
    r
}

pub(crate) fn batches(n: usize, seed: u64, now: chrono::DateTime<Utc>) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n.div_ceil(1000))
        .map(|b| {
            let items: Vec<Value> = (b * 1000..((b + 1) * 1000).min(n)).map(|i| record(&mut rng, i, now)).collect();
            Value::Array(items).to_string()
        })
        .collect()
}

/// Batches of the bench mix as a live client sends them: ids `live-{client}-{i}` (in order), or
/// random UUIDs (`random_ids`, as a client minting v4 UUIDs sends them), each record stamped in
/// the second before it is sent (in order, a few per millisecond), not spread over 30 days as a
/// backfill would be.
fn live_batches(n: usize, client: usize, now: chrono::DateTime<Utc>, random_ids: bool) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(100 + client as u64);
    let mut ids = StdRng::seed_from_u64(200 + client as u64);
    let start = now - ChronoDuration::seconds(60);
    (0..n.div_ceil(1000))
        .map(|b| {
            let items: Vec<Value> = (b * 1000..((b + 1) * 1000).min(n))
                .map(|i| {
                    let mut r = record(&mut rng, i, now);
                    r["id"] = json!(match random_ids {
                        true => uuid_v4(&mut ids),
                        false => format!("live-{client}-{i:09}"),
                    });
                    r["occurred_at"] = json!((start + ChronoDuration::microseconds(i as i64 * 50)).to_rfc3339());
                    r
                })
                .collect();
            Value::Array(items).to_string()
        })
        .collect()
}

/// An embedded store in `dir` served over real HTTP on 127.0.0.1 (TCP_NODELAY: without it a
/// 1000-record body meets delayed ACKs on loopback): its state, the router, the address.
async fn serve_embedded(
    dir: &std::path::Path,
) -> anyhow::Result<(auditrail_shared::api::AppState, axum::Router, std::net::SocketAddr)> {
    let state =
        auditrail_shared::api::AppState::from_config(&Config { serving: true, ..Config::embedded(dir) }).await?;
    let app = router::<routes::All>(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(axum::serve(listener, app.clone()).into_future());
    Ok((state, app, addr))
}

/// Posts each body to `POST /v1/events` in turn, as one client on one connection.
async fn post_all(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    token: &str,
    bodies: Vec<String>,
) -> anyhow::Result<()> {
    for body in bodies {
        let r = client
            .post(format!("http://{addr}/v1/events"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        // A client reads every item's fate; a response dropped unread would also cost the
        // connection (hyper reuses one only once its body is read to the end).
        let status = r.status();
        let text = r.text().await?;
        anyhow::ensure!(status == 200, "ingest failed: {text}");
    }
    Ok(())
}

/// Live ingest as clients see it: a fresh embedded store behind real HTTP, `n` records of the
/// bench mix per client in batches of 1000, one client (one connection), then four at once.
/// Each response is sent once its batch is committed (and, with `synchronous = FULL`, on disk).
/// A random (version 4) UUID from `rng`.
fn uuid_v4(rng: &mut StdRng) -> String {
    let h = format!("{:032x}", rng.random::<u128>());
    let variant = ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)];
    format!("{}-{}-4{}-{variant}{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..])
}

async fn live_ingest(n: usize) -> anyhow::Result<Vec<tempfile::TempDir>> {
    println!(
        "## Live ingest over HTTP (fresh store, records stamped as they are sent, batches of 1000; median of {LIVE_ROUNDS} rounds, range in brackets)"
    );
    // Each run's store goes back to the caller: its server's tasks outlive the loop.
    let mut dirs = Vec::new();
    for (clients, random_ids) in [(1usize, false), (4, false), (1, true), (4, true)] {
        let (mut answered, mut indexed) = (Vec::new(), Vec::new());
        let per = n / clients;
        for _ in 0..LIVE_ROUNDS {
            let dir = tempfile::tempdir()?;
            let (a, i) = live_round(dir.path(), clients, per, random_ids).await?;
            answered.push(a);
            indexed.push(i);
            dirs.push(dir);
        }
        let ids = if random_ids { "random UUIDs" } else { "ids in order" };
        println!(
            "{clients} client(s), {ids}, {} records: answered {}; all indexed {}",
            per * clients,
            median_range(&mut answered),
            median_range(&mut indexed)
        );
    }
    println!();
    Ok(dirs)
}

/// Rounds of each live-ingest figure: on two shared cores one round varies by ±20 %.
const LIVE_ROUNDS: usize = 3;

/// `median events/s [min–max]` of rates.
fn median_range(rates: &mut [f64]) -> String {
    rates.sort_by(f64::total_cmp);
    format!("{:.0} events/s [{:.0}–{:.0}]", rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

/// One live-ingest round on a fresh store in `dir`: events/s answered, and until all indexed.
async fn live_round(dir: &std::path::Path, clients: usize, per: usize, random_ids: bool) -> anyhow::Result<(f64, f64)> {
    let (state, _, addr) = serve_embedded(dir).await?;
    let now = Utc::now();
    let work: Vec<(String, Vec<String>)> = (0..clients)
        .map(|c| {
            let token = state.auth.mint("live", "bench", None, &[Role::Ingest], 36_000)?;
            Ok((token, live_batches(per, c, now, random_ids)))
        })
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (token, bodies) in work {
        let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
        tasks.push(tokio::spawn(async move { post_all(&client, addr, &token, bodies).await }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    // Every record answered is durable (the inbox's log); then indexed into SQLite behind the
    // answers: the sustained rate, and nothing left running into the next measurement.
    state.records.settle().await?;
    let indexed = t.elapsed().as_secs_f64();
    let n = (per * clients) as f64;
    Ok((n / secs, n / indexed))
}

/// The ingest CPU path over `bodies` on this thread: records prepared, seconds.
pub(crate) fn prepare_secs(bodies: &[String], now: chrono::DateTime<Utc>) -> (usize, f64) {
    let limits = ValidationLimits::default();
    let t = Instant::now();
    let mut ok = 0usize;
    for b in bodies {
        let p = ingest::prepare(b.as_bytes(), Framing::JsonArray, "bench", now, &limits).unwrap();
        ok += p.records.len();
        // Building the stored form includes serialising it, as the store does.
        for r in &p.records {
            std::hint::black_box(serde_json::to_string(r).unwrap());
        }
    }
    (ok, t.elapsed().as_secs_f64())
}

fn cpu_path(n: usize) {
    let now = Utc::now();
    let bodies = batches(n, 7, now);
    let bytes: usize = bodies.iter().map(String::len).sum();
    let t = Instant::now();
    let mut plain = 0usize;
    for b in &bodies {
        let v: Vec<Value> = serde_json::from_str(b).unwrap();
        plain += v.len();
    }
    let plain_s = t.elapsed().as_secs_f64();
    let (ok, ours_s) = prepare_secs(&bodies, now);
    assert_eq!(ok, n, "every generated record is valid");
    println!("## Ingest CPU path (one core, {n} records, {:.1} MB)", bytes as f64 / 1e6);
    println!("| path | events/s | MB/s |");
    println!("|---|---:|---:|");
    println!(
        "| serde_json → Value (plain parse) | {:.0} | {:.1} |",
        plain as f64 / plain_s,
        bytes as f64 / 1e6 / plain_s
    );
    println!(
        "| split + parse + validate + stored form | {:.0} | {:.1} |",
        ok as f64 / ours_s,
        bytes as f64 / 1e6 / ours_s
    );
    println!("ratio to plain parse: {:.0} %", 100.0 * plain_s / ours_s);
    // What the ingest function spends of CPU on a batch before its writes (Lambda bills wall
    // time; the writes' latency comes on top, see the cost table of `--dynamodb`).
    println!(
        "CPU per batch of 1000 (the Lambda ingest path before DynamoDB): {:.2} ms\n",
        1000.0 * ours_s / ok as f64 * 1000.0
    );
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Warnings and errors of the product (a 500's cause) on stderr, beside the figures.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    if let Some(n) = args.dynamodb {
        return dynamo::run(n).await;
    }
    if let Some(n) = args.dpo {
        return dpo::run(n, args.subjects, args.samples).await;
    }
    if let Some(n) = args.dpo_dynamodb {
        return dpo::dynamodb(n, args.subjects).await;
    }
    if let Some(n) = args.integrity {
        return integrity::run(n).await;
    }
    if let Some(dir) = &args.init {
        return init::run(dir, args.init_runs.max(1)).await;
    }
    if let (Some(n), Some(rounds)) = (args.export_child, args.child_alternate) {
        return export::alternate(n, args.level[0], rounds, &args.child_out);
    }
    if let Some(n) = args.export_child {
        return export::child(n, &args.child_compression, args.level[0], args.child_parallelism, &args.child_out);
    }
    if let Some(n) = args.export_path {
        return export_path::run(n, args.export_path_emulator).await;
    }
    if !args.export.is_empty() {
        return export::run(&args.export, &args.level);
    }
    if args.live_only {
        return live_ingest(args.live_records).await.map(drop);
    }
    cpu_path(args.cpu_records);
    // The live runs' stores stay until the end: their servers (an idle inbox empties its log)
    // outlive the measurement.
    let _live = live_ingest(args.live_records).await?;

    let dir = tempfile::tempdir()?;
    let (state, app, addr) = serve_embedded(dir.path()).await?;

    // 3 tenants, one with 80 % of the volume.
    let now = Utc::now();
    let tenants = [("big", 0.8), ("mid", 0.15), ("small", 0.05)];
    // TCP_NODELAY: without it a 1000-record body meets delayed ACKs on loopback.
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    // The bodies are built before the clock starts: a client sends records it already has, so
    // the figure is the server's (and the connection's), not the bench's JSON building.
    let mut work = Vec::new();
    for (k, (tenant, share)) in tenants.iter().enumerate() {
        let n = (args.records as f64 * share) as usize;
        let token = state.auth.mint(tenant, "bench", None, &[Role::Ingest], 36_000)?;
        work.push((n, token, batches(n, k as u64, now)));
    }
    let t = Instant::now();
    let mut loaded = 0;
    for (n, token, bodies) in work {
        post_all(&client, addr, &token, bodies).await?;
        loaded += n;
    }
    let secs = t.elapsed().as_secs_f64();
    state.records.settle().await?;
    let indexed = t.elapsed().as_secs_f64();
    println!("## Embedded store ingest over HTTP (batches of 1000, one client)");
    println!(
        "{loaded} records answered in {secs:.1} s: {:.0} events/s; all indexed after {indexed:.1} s: {:.0} events/s\n",
        loaded as f64 / secs,
        loaded as f64 / indexed
    );
    let t = Instant::now();
    state.records.maintain().await?;
    println!("ANALYZE + checkpoint: {:.1} s\n", t.elapsed().as_secs_f64());

    let reader = state.auth.mint("big", "bench", None, &[Role::ComplianceAnalyst], 36_000)?;
    // A session and a request that exist inside the default 10-day window.
    let sample = |action: &str| {
        let mut f = EventFilter::window(Utc::now() - ChronoDuration::days(9), Utc::now());
        f.actions = vec![action.to_owned()];
        f
    };
    let click = state.records.query("big", &sample("CLICK"), PageRequest { limit: 1, after: None }).await?;
    let search =
        state.records.query("big", &sample("CONVERSATION_SEARCH"), PageRequest { limit: 1, after: None }).await?;
    let session_q =
        format!("session_id={}", click.records.first().and_then(|r| r.session_id.clone()).unwrap_or_default());
    let corr_q =
        format!("correlation_id={}", search.records.first().and_then(|r| r.correlation_id.clone()).unwrap_or_default());
    // Free-text rows end an hour ago: every request records its filters (`AUDIT_SEARCH`, with the
    // `q`), and those records must not be what the next request finds.
    let past = (Utc::now() - ChronoDuration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let text_q = |q: &str| format!("{q}&to={past}");
    let text_rows: Vec<(&str, String)> = vec![
        ("text (q), rare", text_q("q=c-12345")),
        ("text (q), 0.55 %", text_q("q=u-42")),
        ("text (q), every record", text_q("q=conversationid")),
        ("q + user", text_q("q=c-1&user=agent.42")),
        ("q + result", text_q("q=c-12345&result=FAIL")),
        ("q + action", text_q("q=u-42&action=LOGIN")),
        ("q + category", text_q("q=u-42&category=sign_in")),
        ("q + user + result", text_q("q=conversationid&user=agent.42&result=FAIL")),
    ];
    let fixed: [(&str, String); 11] = [
        ("none (last 10 days)", "".to_owned()),
        ("action", "action=ACCESS_MEDIA".to_owned()),
        ("action ×3", "action=LOGIN,LOGOUT,LOGIN_ERROR".to_owned()),
        ("user", "user=agent.42".to_owned()),
        ("result", "result=UNAUTHORIZED".to_owned()),
        ("category", "category=sign_in".to_owned()),
        ("session", session_q.clone()),
        ("correlation", corr_q.clone()),
        ("user + result", "user=agent.42&result=FAIL".to_owned()),
        ("action + result", "action=LOGIN&result=FAIL".to_owned()),
        ("category + user", "category=sign_in&user=agent.7".to_owned()),
    ];
    let filters: Vec<(&str, String)> = fixed.into_iter().chain(text_rows).collect();
    println!("## First-page latency, GET /v1/events (limit 50), tenant with 80 % of {loaded} records");
    println!("| filter | index | rows read / returned | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|");
    for (name, q) in &filters {
        let (name, q) = (*name, q.as_str());
        let mut lat = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            let req = http::Request::get(format!("/v1/events?{q}"))
                .header("authorization", format!("Bearer {reader}"))
                .body(Body::empty())?;
            let t = Instant::now();
            let resp = app.clone().oneshot(req).await?;
            let status = resp.status();
            let _ = resp.into_body().collect().await?;
            lat.push(t.elapsed());
            if status != 200 {
                // The store's own error, which the API logs but does not show.
                let parsed = auditrail_shared::query::params::parse(
                    q,
                    auditrail_shared::query::View::Events,
                    "big",
                    &state.cursor_key,
                    Utc::now(),
                );
                let direct = match parsed {
                    Ok(p) => format!(
                        "{:?}",
                        state.records.query("big", &p.filter, PageRequest { limit: 50, after: None }).await.err()
                    ),
                    Err(e) => format!("{e:?}"),
                };
                anyhow::bail!("{q}: {status}; the store says {direct}");
            }
        }
        lat.sort();
        // The plan and amplification straight from the store for the same filter.
        let parsed = auditrail_shared::query::params::parse(
            q,
            auditrail_shared::query::View::Events,
            "big",
            &state.cursor_key,
            Utc::now(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let f: EventFilter = parsed.filter;
        let page = state.records.query("big", &f, PageRequest { limit: 50, after: None }).await?;
        let amp = page.stats.items_read as f64 / page.stats.items_returned.max(1) as f64;
        println!("| {name} | {} | {amp:.2} | {:.2} | {:.2} |", page.plan, pct(&lat, 0.5), pct(&lat, 0.99));
    }
    Ok(())
}
