//! HTTP routers. The same `Router` serves `auditrail serve` and every Lambda function (through
//! `lambda_http`), so there is one code path for both.

mod events;
mod guard;
#[cfg(feature = "lambda")]
pub mod lambda;
mod meta;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub use guard::{GatewayClaims, Operation, record_denial};

use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::ingest::MAX_BATCH_BYTES;
use crate::query::CursorKey;
use crate::record::ValidationLimits;
use crate::store::{BlobStore, RecordStore};

/// Everything a handler may need, built once per process.
#[derive(Clone)]
pub struct AppState {
    pub records: Arc<dyn RecordStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<Authenticator>,
    pub cursor_key: CursorKey,
    pub limits: ValidationLimits,
}

/// Which routes a process serves; each Lambda function mounts only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    All,
    Ingest,
    Query,
}

pub fn router(state: AppState, routes: Routes) -> Router {
    let g = |op| axum::middleware::from_fn_with_state((state.clone(), op), guard::check);
    let mut r = Router::new().route("/v1/health", get(meta::health)).route("/v1/catalogue", get(meta::catalogue));
    if matches!(routes, Routes::All | Routes::Ingest) {
        r = r.route(
            "/v1/events",
            post(events::ingest).route_layer(g(Operation::IngestEvents)).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        );
    }
    if matches!(routes, Routes::All | Routes::Query) {
        r = r
            .route("/v1/events", get(events::search).route_layer(g(Operation::SearchEvents)))
            .route("/v1/sign-ins", get(events::sign_ins).route_layer(g(Operation::SearchSignIns)))
            .route("/v1/sessions/{session_id}/events", get(events::session).route_layer(g(Operation::ViewSession)));
    }
    r.fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see GET /v1/openapi.json".into())
}

async fn method_not_allowed() -> impl IntoResponse {
    let p = crate::error::Problem {
        kind: "https://auditrail.dev/problems/method-not-allowed".into(),
        title: "Method Not Allowed".into(),
        status: 405,
        detail: "this route does not accept that method".into(),
        errors: Vec::new(),
    };
    p.into_response_with(StatusCode::METHOD_NOT_ALLOWED)
}
