//! The HTTP/1.1 accept loop of `auditrail serve`, with the time limits `axum::serve` does not
//! set: a client must send its request head within `header` (also between requests on a
//! kept-alive connection) and its whole body within `body`, so connections that send an
//! incomplete request, or nothing, do not stay open.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // A request head over 64 KiB or 100 headers is refused (431) instead of buffered.
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header).max_buf_size(64 * 1024).max_headers(100);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Batches are large request bodies: do not let Nagle meet delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let body_limit = timeouts.body;
        let svc = app.clone().map_request(move |req: http::Request<hyper::body::Incoming>| {
            req.map(|b| with_deadline(Body::new(b), body_limit))
        });
        let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The body, failing with a timeout once `limit` has passed since the request head arrived.
fn with_deadline(body: Body, limit: Duration) -> Body {
    let deadline = tokio::time::Instant::now() + limit;
    let stream = futures_util::stream::unfold(Some(body.into_data_stream()), move |state| async move {
        let mut data = state?;
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(data))),
            Ok(None) => None,
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body did not arrive in time");
                Some((Err(axum::Error::new(e)), None))
            }
        }
    });
    Body::from_stream(stream)
}
