//! Test code, out of the product: compiled for this crate's own tests and, behind the `testkit`
//! feature, for the `tests` and `bench` crates. The functions and the CLI never enable it.
//!
//! - `conformance`: the suite every adapter passes, one file per port (records, request pairs,
//!   settings, tasks, subjects, blobs), and `conformance_tests!`, which runs the listed checks on a
//!   back end; a check that is written but not listed fails a test of the suite.
//! - `moto` (with `aws`): the DynamoDB/S3 emulator, fresh tables and buckets, whole-store dumps.
//! - `faults` (with `aws`): an HTTP client that throttles and leaves batches unprocessed; its
//!   tests on the DynamoDB adapter are `dynamo_faults`.
//! - `differential` (tests): random records and filters give the same pages on every back end.

pub mod conformance;
// Random records and filters on SQLite, DynamoDB (moto) and the matcher: the same pages.
#[cfg(all(test, feature = "aws", feature = "embedded"))]
mod differential;
// The DynamoDB adapter under injected faults.
#[cfg(all(test, feature = "aws"))]
mod dynamo_faults;
#[cfg(feature = "aws")]
pub mod faults;
pub mod integrity;
#[cfg(feature = "aws")]
pub mod moto;

/// One plain-HTTP request to the emulator (a presigned URL), without another client dependency:
/// the response body, after asserting a 2xx status.
pub async fn plain_http(method: &str, url: &str, body: Option<&[u8]>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an emulator URL (plain HTTP)");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut sock = tokio::net::TcpStream::connect(host).await.expect("connect to the emulator");
    let body = body.unwrap_or_default();
    let head = format!("{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n", body.len());
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let status = String::from_utf8_lossy(&buf[..split]).into_owned();
    assert!(status.starts_with("HTTP/1.0 2") || status.starts_with("HTTP/1.1 2"), "{status}");
    buf[split..].to_vec()
}
