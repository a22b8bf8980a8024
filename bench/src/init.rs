//! Lambda cold start, measured on this machine: each function's host build (`cargo build
//! --release -p <function>`) is started as Lambda would start it — `AWS_LAMBDA_RUNTIME_API`
//! pointing at a minimal runtime-API stub, the table and bucket on the emulator, both keys in SSM
//! SecureString parameters — with every AWS call going through a counting proxy. Printed per
//! function: the time from process start to its first `GET /runtime/invocation/next`, the
//! network round trips it made before that, their time on the emulator, and the init time
//! beyond them (the goal: ≤ 30 ms, one round trip).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditrail_shared::store::dynamodb::{DynamoStore, dynamodb_client};
use auditrail_shared::testkit::moto as testenv;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const FUNCTIONS: [&str; 9] =
    ["ingest", "query", "exports", "export-worker", "dpo", "dpo-worker", "scheduler", "error-reports", "console"];

/// Forwards every request to the emulator, counting them and the time they took there.
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    calls: AtomicU64,
    nanos: AtomicU64,
    what: Mutex<Vec<String>>,
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let url = format!("{}{}", p.upstream, parts.uri.path_and_query().map_or("/", |q| q.as_str()));
    let mut out = p.client.request(parts.method.clone(), url).body(body);
    for (k, v) in &parts.headers {
        if k != http::header::HOST {
            out = out.header(k, v);
        }
    }
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let t = Instant::now();
    let resp = out.send().await;
    p.nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::SeqCst);
    p.calls.fetch_add(1, Ordering::SeqCst);
    p.what.lock().unwrap().push(format!(
        "{} {}{}",
        parts.method,
        parts.uri.path(),
        if target.is_empty() { String::new() } else { format!(" ({target})") }
    ));
    match resp {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            for (k, v) in &headers {
                if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
                    resp.headers_mut().insert(k, v.clone());
                }
            }
            resp
        }
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The runtime API's `next`: notes when it was first asked, then never answers.
async fn next(State(hit): State<Arc<(Mutex<Option<Instant>>, tokio::sync::Notify)>>) -> Body {
    hit.0.lock().unwrap().get_or_insert_with(Instant::now);
    hit.1.notify_one();
    std::future::pending::<()>().await;
    Body::from(Bytes::new())
}

async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr.to_string())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn run(bin_dir: &Path, runs: usize) -> anyhow::Result<()> {
    let moto = testenv::endpoint();
    let sdk = testenv::sdk_config(&moto).await;
    let name = format!("init-{}", ulid::Ulid::generate().to_string().to_lowercase());
    DynamoStore::new(dynamodb_client(&sdk), name.clone()).create_table().await?;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    auditrail_shared::blob::s3::S3BlobStore::new(s3, name.clone()).create_bucket().await?;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    for which in ["cursor", "export"] {
        ssm.put_parameter()
            .name(format!("/{name}/{which}-key"))
            .value(format!("{which}-key-for-the-init-bench-0123456789"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await?;
    }

    let proxy = Arc::new(Proxy {
        upstream: moto.clone(),
        client: reqwest::Client::new(),
        calls: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
        what: Mutex::new(Vec::new()),
    });
    let proxy_addr = serve(Router::new().fallback(forward).with_state(proxy.clone())).await?;

    println!("Lambda init on this machine (host release build; emulator behind a counting proxy), median of {runs}:");
    println!(
        "{:<14} {:>10} {:>12} {:>14} {:>16}  calls",
        "function", "init ms", "round trips", "on network ms", "beyond it ms"
    );
    for f in FUNCTIONS {
        let bin = bin_dir.join(f);
        anyhow::ensure!(bin.exists(), "{} is missing: cargo build --release -p {f}", bin.display());
        let (mut init, mut net, mut beyond) = (Vec::new(), Vec::new(), Vec::new());
        let mut trips = 0;
        let mut calls = Vec::new();
        for _ in 0..runs {
            let hit = Arc::new((Mutex::new(None), tokio::sync::Notify::new()));
            let stub =
                serve(Router::new().route("/2018-06-01/runtime/invocation/next", get(next)).with_state(hit.clone()))
                    .await?;
            proxy.calls.store(0, Ordering::SeqCst);
            proxy.nanos.store(0, Ordering::SeqCst);
            proxy.what.lock().unwrap().clear();
            let start = Instant::now();
            let mut child = std::process::Command::new(&bin)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", &stub)
                .env("AWS_LAMBDA_FUNCTION_NAME", f)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
                .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
                .env("AWS_ENDPOINT_URL", format!("http://{proxy_addr}"))
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AUDITRAIL_AUTH", "apigw")
                .env("AUDITRAIL_TABLE", &name)
                .env("AUDITRAIL_BUCKET", &name)
                .env("AUDITRAIL_CURSOR_KEY_PARAMETER", format!("/{name}/cursor-key"))
                .env("AUDITRAIL_EXPORT_KEY_PARAMETER", format!("/{name}/export-key"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .spawn()?;
            let reached = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    if let Some(t) = *hit.0.lock().unwrap() {
                        return t;
                    }
                    hit.1.notified().await;
                }
            })
            .await;
            let _ = child.kill();
            let _ = child.wait();
            let at = reached.map_err(|_| anyhow::anyhow!("{f} never asked for an event within 20 s"))?;
            let ms = (at - start).as_secs_f64() * 1e3;
            let on_net = proxy.nanos.load(Ordering::SeqCst) as f64 / 1e6;
            init.push(ms);
            net.push(on_net);
            beyond.push(ms - on_net);
            trips = proxy.calls.load(Ordering::SeqCst);
            calls = proxy.what.lock().unwrap().clone();
        }
        println!(
            "{f:<14} {:>10.1} {trips:>12} {:>14.1} {:>16.1}  {}",
            median(&mut init),
            median(&mut net),
            median(&mut beyond),
            calls.join(", ")
        );
    }
    Ok(())
}
