//! The moto emulator for tests and benches: DynamoDB and S3 on 127.0.0.1.
//!
//! `AUDITRAIL_MOTO_ENDPOINT` points at running servers (the test script starts one per core for
//! the whole run, comma-separated: moto works one request at a time, so each test process takes
//! a server no other running test holds, and parallel tests do not queue on one); otherwise one
//! is started per test process from `AUDITRAIL_MOTO_SERVER` or
//! `<workspace>/.venv/bin/moto_server` on a free port, and a watchdog stops it when the process
//! exits. If neither works the caller gets an error saying how to install it — tests that need
//! the emulator fail, they never skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;

use crate::blob::s3::S3BlobStore;
use crate::store::ReadStats;
use crate::store::dynamodb::{DynamoStore, aws_http_client, dynamodb_client};

static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();

fn moto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("AUDITRAIL_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    // shared/ → workspace root
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

fn start() -> Result<String, String> {
    if let Ok(list) = std::env::var("AUDITRAIL_MOTO_ENDPOINT") {
        let all: Vec<&str> = list.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if all.is_empty() {
            return Err("AUDITRAIL_MOTO_ENDPOINT is set but names no endpoint".into());
        }
        return Ok(claim(&all).to_owned());
    }
    let bin = moto_binary();
    if !bin.exists() {
        return Err(format!("moto_server not found at {} — run scripts/setup-tools.sh", bin.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    // The watchdog shell stops moto within a second of this process exiting.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill $m",
        pid = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("moto_server did not listen on 127.0.0.1:{port} within 30 s"))
}

/// One of `endpoints` that no other live process has claimed (an advisory lock on a file named
/// after it, held until this process exits), or, when all are taken, one by process id.
fn claim<'a>(endpoints: &[&'a str]) -> &'a str {
    static HELD: OnceLock<std::fs::File> = OnceLock::new();
    for e in endpoints {
        let name: String = e.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let path = std::env::temp_dir().join(format!("auditrail-moto-{name}.lock"));
        let Ok(file) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = HELD.set(file);
            return e;
        }
    }
    endpoints[std::process::id() as usize % endpoints.len()]
}

/// The emulator's endpoint, starting it if needed. Panics with instructions if it cannot run.
pub fn endpoint() -> String {
    match ENDPOINT.get_or_init(start) {
        Ok(e) => e.clone(),
        Err(e) => panic!("the DynamoDB/S3 emulator is required: {e}"),
    }
}

/// SDK configuration for the emulator (static test credentials, us-east-1).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_http_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

/// A fresh table and bucket on the emulator.
pub async fn fresh() -> (DynamoStore, S3BlobStore) {
    let cfg = sdk_config(&endpoint()).await;
    let name = format!("t-{}", ulid::Ulid::generate().to_string().to_lowercase());
    let store = DynamoStore::new(dynamodb_client(&cfg), name.clone());
    store.create_table().await.expect("create table on the emulator");
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&cfg).force_path_style(true).build());
    let blobs = S3BlobStore::new(s3, name);
    blobs.create_bucket().await.expect("create bucket on the emulator");
    (store, blobs)
}

/// Puts `state` on the emulator: every store it has is the table (records, request pairs,
/// settings, tasks, subjects, seals), every blob the bucket; its keys and limits stay.
pub fn onto(state: &mut crate::api::AppState, table: &DynamoStore, bucket: &S3BlobStore) {
    use std::sync::Arc;
    state.records = Arc::new(table.clone());
    state.requests = Arc::new(table.clone());
    state.settings = Arc::new(table.clone());
    state.tasks = Arc::new(table.clone());
    state.subjects = Arc::new(table.clone());
    state.seals = Arc::new(table.clone());
    state.blobs = Arc::new(bucket.clone());
    state.seal_blobs = Arc::new(bucket.clone());
}

/// Every item of the table as text — for tests that prove a value is gone from the whole
/// store (a Scan; never used on a request path).
pub async fn dump_table(store: &DynamoStore) -> String {
    let scan = |_| store.client.scan().table_name(&store.table);
    let keep = |item: &crate::store::dynamodb::Item| Ok(Some(format!("{item:?}\n")));
    store.read_pages(None, usize::MAX, &mut ReadStats::default(), scan, keep).await.expect("scan").items.concat()
}

/// Every object of the bucket, keys and bytes concatenated — for tests that prove a value is
/// gone from the whole bucket.
pub async fn dump_bucket(blobs: &S3BlobStore) -> Vec<u8> {
    let (client, bucket) = (&blobs.client, &blobs.bucket);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let list = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list the bucket");
        for o in list.contents() {
            let key = o.key().unwrap_or_default();
            out.extend_from_slice(key.as_bytes());
            let obj = client.get_object().bucket(bucket).key(key).send().await.expect("get an object");
            out.extend_from_slice(&obj.body.collect().await.expect("read an object").into_bytes());
        }
        match list.next_continuation_token {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
}
