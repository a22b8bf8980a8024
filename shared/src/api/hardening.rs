//! Layers that keep every answer a problem document, whatever goes wrong below them: a panic in
//! a handler becomes a logged 500 carrying the request id (never a dropped connection), and an
//! error answered by the framework itself (a path that is not valid UTF-8, a body cut short) is
//! rewritten as `application/problem+json`.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body_util::BodyExt;

use crate::error::{FieldError, PROBLEM_JSON, Problem};

/// Every route's outer layers, outermost last: the request id and span, problem bodies for
/// every error, panics caught.
pub fn layers<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router
        .layer(axum::middleware::from_fn(catch_panic))
        .layer(axum::middleware::from_fn(problem_bodies))
        .layer(axum::middleware::from_fn(super::request_span))
}

/// The id `request_span` gave the request, for layers beneath it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Answers a panic below it with a 500 problem naming the request id, and logs the panic with
/// it (inside the request's span).
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            tracing::error!(request_id = %id, panic = %msg, "handler panicked");
            internal_problem(&id)
        }
    }
}

/// The generic 500 a client sees, with the id its log line carries.
pub fn internal_problem(request_id: &str) -> Response {
    let p = Problem {
        kind: "https://auditrail.dev/problems/internal".into(),
        title: "Internal Server Error".into(),
        status: 500,
        detail: format!("an internal error occurred; it has been logged with request id {request_id}"),
        errors: Vec::new(),
    };
    let mut body = serde_json::to_value(&p).unwrap_or_default();
    body["request_id"] = request_id.into();
    let mut resp = (StatusCode::INTERNAL_SERVER_ERROR, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(PROBLEM_JSON));
    resp
}

/// The largest plain-text error body the framework writes that is carried into a problem detail.
const MAX_DETAIL: usize = 2048;

/// Rewrites error answers that are not problem documents (axum's own rejections: an invalid
/// path segment, a body over the limit or cut short) as problems with the same status.
pub async fn problem_bodies(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_DETAIL).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let slug = status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace([' ', '\''], "-");
    let p = Problem {
        kind: format!("https://auditrail.dev/problems/{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        // A body over a route's limit is the body's fault, named as a field like any other.
        errors: match status {
            StatusCode::PAYLOAD_TOO_LARGE => vec![FieldError::new("body", detail.clone())],
            _ => Vec::new(),
        },
        detail,
    };
    let mut resp = p.into_response_with(status);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            resp.headers_mut().append(name.clone(), value.clone());
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn call(router: Router, req: axum::http::Request<Body>) -> (StatusCode, String, serde_json::Value, String) {
        let resp = router.oneshot(req).await.expect("an answer, not a dropped connection");
        let status = resp.status();
        let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, serde_json::from_slice(&body).unwrap_or_default(), id)
    }

    async fn boom() -> &'static str {
        panic!("chrono out of range")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem_with_the_request_id() {
        let boom = layers(Router::new().route("/boom", get(boom)));
        let req = axum::http::Request::get("/boom").header("x-request-id", "req-123").body(Body::empty()).unwrap();
        let (status, ct, body, id) = call(boom.clone(), req).await;
        assert_eq!(status, 500);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(body["status"], 500);
        assert_eq!(body["request_id"], "req-123");
        assert_eq!(id, "req-123");
        assert!(!body.to_string().contains("chrono"), "the panic message stays in the log: {body}");
        // Without a caller's id the generated one is in both the body and the header.
        let (_, _, body, id) = call(boom, axum::http::Request::get("/boom").body(Body::empty()).unwrap()).await;
        assert_eq!(body["request_id"], id.as_str());
        assert_eq!(id.len(), 26);
    }

    #[tokio::test]
    async fn framework_errors_become_problems() {
        let r = layers(
            Router::new()
                .route("/x/{id}", get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id })),
        );
        let (status, ct, body, _) = call(r, axum::http::Request::get("/x/%FF").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 400);
        assert_eq!(ct, PROBLEM_JSON);
        assert_eq!(body["status"], 400);
        assert!(body["detail"].as_str().unwrap().contains("UTF-8"), "{body}");
    }
}
