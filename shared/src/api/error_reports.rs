//! Client error reports: upload (agents, service clients), list and download (admins, managers).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::events::{Page, list};
use super::problems::{BadRequest, Denied, NotFound, TooLarge, UnsupportedType};
use super::{AppState, Operation};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, quoted};
use crate::error_report::{self, ErrorReport, MAX_REPORT_BYTES};
use crate::query::{View, render_time};
use crate::record::{Category, ResultCode};
use crate::store::BlobKey;

#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    pub id: String,
    /// Uncompressed bytes stored.
    pub size: usize,
    pub entries: usize,
    /// JSON paths whose values were secrets (a key such as `finesse_password`, `token`,
    /// `api_key`, `authorization`) and were stored as `{redacted}`; the keys stay.
    pub redacted: Vec<String>,
}

/// Upload an error report (JSON, optionally `Content-Encoding: gzip`; ≤ 10 MiB uncompressed,
/// ≤ 1000 log entries). The value of every secret-looking key (passwords, tokens, API keys,
/// credentials, authorization headers; at any depth) is stored as `{redacted}` and its path
/// listed in `redacted`.
#[utoipa::path(post, path = "/v1/error-reports", operation_id = "upload_error_report", tag = "error-reports",
    request_body(content = ErrorReport, content_type = "application/json"),
    responses(
        (status = 201, body = Uploaded),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn upload(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("an error report may be at most {MAX_REPORT_BYTES} bytes"))
        } else {
            ApiError::MalformedBody(e.body_text())
        }
    })?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let mut bytes = error_report::decode_body(&body, encoding)?;
    // A byte order mark (Windows tools write one) is ignored, as on every JSON route.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let report = error_report::parse(&bytes)?;
    // Secrets never reach the store: redacted before the blob is written.
    let (bytes, redacted) = error_report::redact(bytes)?;
    let id = ulid::Ulid::generate().to_string();
    let key = BlobKey::error_report(&p.tenant_id, &id)?;
    state.note_tenant(&p.tenant_id).await?;
    state.blobs.put(&key, Bytes::from(bytes.clone()), "application/json").await?;
    let record = report.index_record(&p.tenant_id, &id, &p.actor(), bytes.len(), Utc::now());
    if let Err(e) = state.records.append(&p.tenant_id, &[record]).await {
        // No index record, no blob: a failed upload leaves nothing behind.
        if let Err(del) = state.blobs.delete(&key).await {
            tracing::error!(error = %del, "could not remove the blob of a failed error-report upload");
        }
        return Err(e.into());
    }
    Ok((StatusCode::CREATED, Json(Uploaded { id, size: bytes.len(), entries: report.log.len(), redacted })))
}

/// One row of the error-report list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRow {
    pub id: String,
    pub time: String,
    pub agent: Option<String>,
    pub employee_id: Option<String>,
    pub reason: Option<String>,
    pub teams: Vec<String>,
    pub size: u64,
    pub entries: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReportParams {
    from: Option<chrono::DateTime<Utc>>,
    to: Option<chrono::DateTime<Utc>>,
    /// The agent's username.
    agent: Option<String>,
    team: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
    tz: Option<String>,
}

/// Error reports of the tenant, newest first (default: the last 10 days).
#[utoipa::path(get, path = "/v1/error-reports", operation_id = "list_error_reports", tag = "error-reports", params(ReportParams),
    responses(
        (status = 200, body = Page<ReportRow>),
        Denied, BadRequest,
    ))]
pub async fn list_reports(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Page<ReportRow>>> {
    let team = serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
        .ok()
        .and_then(|q| q.into_iter().find(|(k, _)| k == "team").map(|(_, v)| v));
    let Json(mut page) = list(&state, &p, &uri, View::ErrorReports, Operation::ListErrorReports, |r, tz| {
        let data = r.data.clone().unwrap_or_default();
        ReportRow {
            id: r.id.clone(),
            time: render_time(r.occurred_at, tz),
            agent: r.actor.username.clone(),
            employee_id: r.actor.employee_id.clone(),
            reason: r.description.as_ref().and_then(|d| d["reason"].as_str()).map(str::to_owned),
            teams: serde_json::from_value(data["teams"].clone()).unwrap_or_default(),
            size: data["size"].as_u64().unwrap_or(0),
            entries: data["entries"].as_u64().unwrap_or(0),
        }
    })
    .await?;
    if let Some(team) = team {
        page.items.retain(|row| row.teams.iter().any(|t| t == &team));
        page.count = page.items.len();
    }
    Ok(Json(page))
}

/// Download one report as uploaded (JSON). Every download is recorded.
#[utoipa::path(get, path = "/v1/error-reports/{id}", operation_id = "download_error_report", tag = "error-reports",
    params(("id" = String, Path, description = "The report id returned by the upload")),
    responses(
        (status = 200, body = ErrorReport),
        Denied, NotFound,
    ))]
pub async fn download(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("no error report {}", quoted(&id)));
    let record = state.records.get(&p.tenant_id, &id).await?.ok_or_else(not_found)?;
    if record.category != Category::ErrorReport {
        return Err(not_found());
    }
    let key = BlobKey::error_report(&p.tenant_id, &id).map_err(|_| not_found())?;
    let bytes = state.blobs.get(&key).await?.ok_or_else(not_found)?;
    let action = Operation::DownloadErrorReport.audit_action();
    super::record_use(&state, &p, action, ResultCode::Ok, json!({"report_id": id, "size": bytes.len()})).await?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"error-report-{id}.json\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
