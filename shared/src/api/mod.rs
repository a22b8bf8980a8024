//! HTTP routers. The same `Router` serves `auditrail serve` and every Lambda function (through
//! `lambda_http`), so there is one code path for both.

mod body;
pub mod console;
mod dpo;
mod error_reports;
mod events;
mod exports;
mod guard;
pub mod hardening;
mod integrity;
#[cfg(feature = "lambda")]
pub mod lambda;
mod meta;
pub mod openapi;
pub mod problems;
mod requests;
mod settings;
mod sources;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use guard::{GatewayClaims, Operation, agent_scoped, record_denial};

use crate::app::App;
use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::error_report::MAX_REPORT_BYTES;
use crate::ingest::MAX_BATCH_BYTES;

/// The router's state: the service container and what only HTTP needs — the authenticator
/// that turns a bearer token (or API Gateway's claims) into a principal. Everything else is
/// reached through the container (`state.records`, `state.export_worker(..)`).
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub auth: Arc<Authenticator>,
    /// What `GET /v1/console/config` answers.
    pub console: Arc<console::ConsoleConfig>,
}

impl AppState {
    pub fn new(app: App, auth: Authenticator) -> Self {
        let console = Arc::new(console::ConsoleConfig::for_auth(&auth));
        Self { app, auth: Arc::new(auth), console }
    }

    /// The container and the authenticator the configuration names.
    pub async fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let auth = config.authenticator()?;
        let console = Arc::new(console::ConsoleConfig::from_config(config, &auth));
        Ok(Self { app: config.app().await?, auth: Arc::new(auth), console })
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut App {
        &mut self.app
    }
}

/// Records the caller's use of a route (a search, a download, an export or DPO action) as a
/// record of their tenant.
pub(crate) async fn record_use(
    state: &AppState,
    p: &crate::auth::Principal,
    action: &str,
    result: crate::record::ResultCode,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let mut rec = crate::record::Record::system(&p.tenant_id, action, p.actor(), Some(result), data);
    // What the caller typed into a filter may name a person: the record is then found by a DPO
    // search for them, and scrubbed by their erasure.
    rec.subject = rec.description.as_ref().and_then(crate::dpo::subject::typed_subject);
    state.records.append(&p.tenant_id, &[rec]).await?;
    Ok(())
}

/// Which routes a process serves, as types: each Lambda binary names its set at compile time,
/// so it links only its own handlers (and only `query` links the whole API for the document).
pub mod routes {
    /// A set of routes.
    pub trait Set {
        const INGEST: bool = false;
        const QUERY: bool = false;
        const EXPORTS: bool = false;
        const DPO: bool = false;
        const ERROR_REPORTS: bool = false;
        /// `GET /v1/openapi.json`, the whole API's document (wired to `query` on AWS).
        const DOC: bool = false;
        /// The console's public routes, `/v1/console/*` (the `console` function on AWS).
        const CONSOLE: bool = false;
    }
    /// Every route: `auditrail serve`, tests.
    pub struct All;
    impl Set for All {
        const INGEST: bool = true;
        const QUERY: bool = true;
        const EXPORTS: bool = true;
        const DPO: bool = true;
        const ERROR_REPORTS: bool = true;
        const DOC: bool = true;
        const CONSOLE: bool = true;
    }
    /// The web console's routes (`console`; its files are served by `auditrail-console-assets`).
    pub struct Console;
    impl Set for Console {
        const CONSOLE: bool = true;
    }
    /// Records and attachments in (`ingest`).
    pub struct Ingest;
    impl Set for Ingest {
        const INGEST: bool = true;
    }
    /// Every read view, settings, catalogue and the document (`query`).
    pub struct Query;
    impl Set for Query {
        const QUERY: bool = true;
        const DOC: bool = true;
    }
    /// Export tasks and schedules (`exports`).
    pub struct Exports;
    impl Set for Exports {
        const EXPORTS: bool = true;
    }
    /// DPO search, report, erasure (`dpo`).
    pub struct Dpo;
    impl Set for Dpo {
        const DPO: bool = true;
    }
    /// Client error reports (`error-reports`).
    pub struct ErrorReports;
    impl Set for ErrorReports {
        const ERROR_REPORTS: bool = true;
    }
}

/// The router for the routes of `R`; with `R::DOC`, also `GET /v1/openapi.json` describing the
/// whole API.
pub fn router<R: routes::Set>(state: AppState) -> Router {
    let (mut router, _) = api::<R>(state.clone()).split_for_parts();
    if R::DOC {
        // The committed document, not one built here: `query` would otherwise link every
        // handler of the API only to describe it. A test keeps the file equal to the handlers.
        let doc = || std::future::ready(([(axum::http::header::CONTENT_TYPE, "application/json")], openapi::DOCUMENT));
        router = router.route("/v1/openapi.json", get(doc));
    }
    hardening::layers(router.fallback(not_found).method_not_allowed_fallback(method_not_allowed)).with_state(state)
}

/// The `(method, path)` pairs the routes of `R` serve (methods lower-case, paths as
/// documented, the document itself included): what a function behind API Gateway must be wired to.
pub fn served<R: routes::Set>(state: AppState) -> Vec<(String, String)> {
    let (_, doc) = api::<R>(state).split_for_parts();
    let doc = serde_json::to_value(doc).unwrap_or_default();
    let mut out = Vec::new();
    if R::DOC {
        out.push(("get".to_owned(), "/v1/openapi.json".to_owned()));
    }
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch" | "head") {
                    out.push((method.clone(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Gives every request an id (the caller's `x-request-id` if it is sane, else a ULID), a
/// tracing span carrying it, and the id in the response, so a 500's log line can be found.
pub(crate) async fn request_span(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    req.extensions_mut().insert(hardening::RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request done")
    });
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Every route with its OpenAPI operation; a handler cannot be mounted without its docs.
fn api<R: routes::Set>(state: AppState) -> OpenApiRouter<AppState> {
    let guarded = |(schemas, mut paths, method_router): UtoipaMethodRouter<AppState>, op: Operation| {
        // The document says who may call each operation (`x-roles`), as the guard enforces it.
        let roles: Vec<&str> = op.roles().iter().map(|r| r.as_str()).collect();
        for item in paths.paths.values_mut() {
            for o in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                let ext = utoipa::openapi::extensions::ExtensionsBuilder::new().add("x-roles", roles.clone()).build();
                o.extensions.get_or_insert_with(Default::default).merge(ext);
            }
        }
        (schemas, paths, method_router.route_layer(from_fn_with_state((state.clone(), op), guard::check)))
    };
    let mut r = OpenApiRouter::new().routes(routes!(meta::health)).routes(routes!(meta::catalogue));
    if R::CONSOLE {
        r = r.routes(routes!(console::config)).routes(routes!(console::dev_sign_in));
    }
    if R::INGEST {
        let (schemas, paths, ingest) = guarded(routes!(events::ingest), Operation::IngestEvents);
        r = r.routes((schemas, paths, ingest.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))));
        let (schemas, paths, keycloak) = guarded(routes!(sources::keycloak_events), Operation::IngestEvents);
        r = r.routes((schemas, paths, keycloak.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))));
        let (schemas, paths, upload) = guarded(routes!(dpo::upload_attachment), Operation::UploadAttachment);
        r = r.routes((schemas, paths, upload.layer(DefaultBodyLimit::max(dpo::MAX_ATTACHMENT_BYTES))));
        r = r.routes(guarded(routes!(dpo::upload_link), Operation::UploadAttachment));
    }
    if R::QUERY {
        r = r
            .routes(guarded(routes!(events::search), Operation::SearchEvents))
            .routes(guarded(routes!(events::sign_ins), Operation::SearchSignIns))
            .routes(guarded(routes!(events::session), Operation::ViewSession))
            .routes(guarded(routes!(integrity::get_event), Operation::ViewRecord))
            .routes(guarded(routes!(integrity::proof), Operation::ViewIntegrity))
            .routes(guarded(routes!(integrity::list_seals), Operation::ViewIntegrity))
            .routes(guarded(routes!(integrity::seal_digest), Operation::ViewIntegrity))
            .routes(guarded(routes!(integrity::consistency), Operation::ViewIntegrity))
            .routes(guarded(routes!(requests::list), Operation::ViewRequests))
            .routes(guarded(routes!(requests::trace), Operation::ViewRequests))
            .routes(guarded(routes!(settings::get_retention), Operation::ViewSettings))
            .routes(guarded(routes!(settings::put_retention), Operation::ChangeSettings))
            .routes(guarded(routes!(settings::get_access), Operation::ViewSettings))
            .routes(guarded(routes!(settings::put_access), Operation::ChangeAccess))
            .routes(guarded(routes!(settings::get_keycloak), Operation::ViewSettings))
            .routes(guarded(routes!(settings::put_keycloak), Operation::ChangeKeycloakSettings));
    }
    if R::ERROR_REPORTS {
        let (schemas, paths, upload) = guarded(routes!(error_reports::upload), Operation::UploadErrorReport);
        r = r
            .routes((schemas, paths, upload.layer(DefaultBodyLimit::max(MAX_REPORT_BYTES))))
            .routes(guarded(routes!(error_reports::list_reports), Operation::ListErrorReports))
            .routes(guarded(routes!(error_reports::download), Operation::DownloadErrorReport));
    }
    if R::DPO {
        r = r
            .routes(guarded(routes!(dpo::search), Operation::DpoSearch))
            .routes(guarded(routes!(dpo::report), Operation::DpoReport))
            .routes(guarded(routes!(dpo::erase), Operation::DpoErasure))
            .routes(guarded(routes!(dpo::erasure_status), Operation::DpoErasureStatus))
            .routes(guarded(routes!(dpo::attachment), Operation::DpoDownload));
    }
    if R::EXPORTS {
        r = r
            .routes(guarded(routes!(exports::create), Operation::CreateExport))
            .routes(guarded(routes!(exports::list), Operation::ViewExports))
            .routes(guarded(routes!(exports::show), Operation::ViewExports))
            .routes(guarded(routes!(exports::download), Operation::DownloadExport))
            .routes(guarded(routes!(exports::delete), Operation::DeleteExport))
            .routes(guarded(routes!(exports::create_schedule), Operation::ManageExportSchedules))
            .routes(guarded(routes!(exports::list_schedules), Operation::ViewExportSchedules))
            .routes(guarded(routes!(exports::delete_schedule), Operation::ManageExportSchedules));
    }
    r
}

/// The console's public routes alone, on their own state (no store): the `console` Lambda
/// function mounts this under the console's files.
pub fn console_router(state: console::ConsoleState) -> Router {
    let (router, _) =
        OpenApiRouter::new().routes(routes!(console::config)).routes(routes!(console::dev_sign_in)).split_for_parts();
    hardening::layers(router.fallback(not_found).method_not_allowed_fallback(method_not_allowed)).with_state(state)
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
