//! Export tasks and export schedules (compliance roles; schedules: tenant admins). Every create,
//! download and delete is recorded (DATA_EXPORT_*); passwords never leave the request.

use axum::Json;
use axum::body::Body;

use super::body::JsonBody;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::problems::{BadRequest, Denied, NotFound, TooLarge, UnsupportedType};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError, Problem, parse_json, quoted};
use crate::export::rows::ExportView;
use crate::export::schedule::{self, ScheduleInfo, ScheduleRequest};
use crate::export::{self, ExportBody, ExportInfo, ExportRequest, archive_key};
use crate::jobs::{Task, TaskKind, TaskStatus};
use crate::query::cursor::CursorBody;
use crate::query::paging::{Paging, Window};
use crate::record::ResultCode;
use crate::store::PageRequest;

/// How long a download link stays valid.
const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

async fn audit(state: &AppState, p: &Principal, action: &str, data: Value) -> ApiResult<()> {
    super::record_use(state, p, action, ResultCode::Ok, data).await
}

/// The caller's export: an agent (in through the sign-in log grant) sees only their own; another
/// user's or tenant's id is simply not there.
async fn export_of(state: &AppState, p: &Principal, id: &str) -> ApiResult<Task> {
    let task = task_of(state, p, TaskKind::Export, id).await?;
    if super::agent_scoped(p) && !requested_by(&task, p) {
        return Err(ApiError::NotFound(format!("no export {}", quoted(id))));
    }
    Ok(task)
}

/// Whether `p` created the export task.
fn requested_by(task: &Task, p: &Principal) -> bool {
    task.body::<ExportBody>().is_ok_and(|b| b.spec.requested_by.user_id.as_deref() == Some(p.user_id.as_str()))
}

/// The caller's task of `kind`; another tenant's id is simply not there.
async fn task_of(state: &AppState, p: &Principal, kind: TaskKind, id: &str) -> ApiResult<Task> {
    let missing = || ApiError::NotFound(format!("no {} {}", kind.as_str().replace('-', " "), quoted(id)));
    if !crate::jobs::valid_id(id) {
        return Err(missing());
    }
    state.tasks.get_task(&p.tenant_id, kind, id).await?.ok_or_else(missing)
}

/// Create an export task (202): the filter's records as CSV or JSON lines, zipped (optionally
/// AES-256 with a password), gzipped or plain. Agents granted the sign-in log export
/// (`PUT /v1/settings/access`) may export only `filter.view = "sign-ins"`, and see, download
/// and delete only their own export tasks.
#[utoipa::path(post, path = "/v1/exports", operation_id = "create_export", tag = "exports",
    request_body(content = ExportRequest, content_type = "application/json"),
    responses(
        (status = 202, body = ExportInfo, description = "queued; poll `GET /v1/exports/{id}`"),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let req: ExportRequest = parse_json(&body, "body")?;
    let resolved = export::resolve(req, &p.tenant_id, &state.cursor_key, Utc::now())?;
    if super::agent_scoped(&p) && resolved.view != ExportView::SignIns {
        let reason = "agents may export only the sign-in log: set `filter.view` to `sign-ins`";
        super::record_denial(&state, &p, super::Operation::CreateExport, "POST", "/v1/exports", reason).await;
        return Err(ApiError::Forbidden(reason.into()));
    }
    state.note_tenant(&p.tenant_id).await?;
    let task = export::create(&*state.tasks, &state.sealer, &p.tenant_id, p.actor(), resolved, None).await?;
    let info = ExportInfo::of(&task)?;
    audit(
        &state,
        &p,
        "DATA_EXPORT_CREATE",
        json!({"export_id": task.id, "view": info.view, "filter": info.filter, "from": info.from, "to": info.to,
               "format": info.format, "compression": info.compression, "encrypted": info.encrypted}),
    )
    .await?;
    state.jobs_queued.notify_waiters();
    let mut resp = (StatusCode::ACCEPTED, Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/exports/{}", task.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Query parameters of the task lists (documentation; parsing lives in `query::paging`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

async fn list_tasks<T>(
    state: &AppState,
    p: &Principal,
    uri: &Uri,
    kind: TaskKind,
    keep: impl Fn(&Task) -> bool,
    show: impl Fn(&Task) -> Result<T, crate::store::StoreError>,
) -> ApiResult<TaskPage<T>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("not a valid query string: {e}")))?;
    let mut errs = Vec::new();
    let mut paging = Paging::with_max_limit(100);
    for (k, v) in pairs {
        if !(matches!(k.as_str(), "limit" | "cursor") && paging.take(&k, &v, &mut errs)) {
            errs.push(FieldError::new(
                "query",
                format!("unknown field `{k}`, expected `limit` or `cursor`; this list accepts limit and cursor"),
            ));
        }
    }
    // A task list's cursor is bound to the tenant and the kind; it has no window.
    let none = Window { from: DateTime::UNIX_EPOCH, to: DateTime::UNIX_EPOCH };
    let (_, after) = paging.resume(&state.cursor_key, &p.tenant_id, kind.as_str(), none, &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    let limit = paging.limit;
    // Read on until the page is full of tasks the caller may see (positions are task ids).
    let mut tasks = Vec::new();
    let mut after = after;
    let next = loop {
        let (read, more) = state.tasks.list_tasks(&p.tenant_id, kind, PageRequest { limit, after }).await?;
        let mut read = read.into_iter();
        for t in read.by_ref() {
            if keep(&t) {
                tasks.push(t);
                if tasks.len() == limit {
                    break;
                }
            }
        }
        if tasks.len() == limit {
            let rest = read.next().is_some() || more.is_some();
            break tasks.last().filter(|_| rest).map(|t| crate::store::Position::String(t.id.clone()));
        }
        match more {
            None => break None,
            Some(m) => after = Some(m),
        }
    };
    let next_cursor = next.map(|pos| {
        state.cursor_key.seal(&CursorBody {
            v: 1,
            t: p.tenant_id.clone(),
            f: kind.as_str().into(),
            from: 0,
            to: 0,
            p: pos,
        })
    });
    Ok(TaskPage { items: tasks.iter().map(show).collect::<Result<_, _>>()?, next_cursor })
}

/// The tenant's exports, newest first.
#[utoipa::path(get, path = "/v1/exports", operation_id = "list_exports", tag = "exports", params(ListParams),
    responses(
        (status = 200, body = TaskPage<ExportInfo>),
        Denied, BadRequest,
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<TaskPage<ExportInfo>>> {
    let own_only = super::agent_scoped(&p);
    let keep = |t: &Task| !own_only || requested_by(t, &p);
    Ok(Json(list_tasks(&state, &p, &uri, TaskKind::Export, keep, ExportInfo::of).await?))
}

/// One export: status (QUEUED, RUNNING, SUCCEEDED, FAILED, EXPIRED), records and bytes written,
/// times, and the reason of a failure.
#[utoipa::path(get, path = "/v1/exports/{id}", operation_id = "get_export", tag = "exports",
    params(("id" = String, Path, description = "The export id")),
    responses(
        (status = 200, body = ExportInfo),
        Denied, NotFound,
    ))]
pub async fn show(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportInfo>> {
    Ok(Json(ExportInfo::of(&export_of(&state, &p, &id).await?)?))
}

/// Where to fetch an archive from (AWS: a presigned URL valid for five minutes).
#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadLink {
    pub url: String,
    pub expires_in_seconds: u64,
    pub file_name: String,
}

/// Download a finished export: `303` to a short-lived link (AWS), or the archive itself
/// (embedded store). Recorded as DATA_EXPORT_DOWNLOAD.
#[utoipa::path(get, path = "/v1/exports/{id}/download", operation_id = "download_export", tag = "exports",
    params(("id" = String, Path, description = "The export id")),
    responses(
        (status = 200, description = "the archive", content(
            (Vec<u8> = "application/zip"), (Vec<u8> = "application/gzip"),
            (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 303, body = DownloadLink, description = "fetch the archive from `Location`"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not finished"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "expired"),
        Denied, NotFound,
    ))]
pub async fn download(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let task = export_of(&state, &p, &id).await?;
    let body: ExportBody = task.body()?;
    match task.status {
        TaskStatus::Succeeded => {}
        TaskStatus::Expired => return Err(ApiError::Gone(format!("export `{id}` expired; create it again"))),
        other => {
            return Err(ApiError::Conflict(format!(
                "export `{id}` is {}; it can be downloaded once it is SUCCEEDED",
                other.as_str()
            )));
        }
    }
    let key = archive_key(&task, &body.spec)?;
    let file_name = body.spec.file_name();
    let link = state.blobs.download_url(&key, LINK_TTL).await?;
    let opened = match link {
        Some(_) => None,
        None => Some(state.blobs.open(&key).await?.ok_or_else(|| ApiError::Gone(format!("export `{id}` is gone")))?),
    };
    audit(&state, &p, "DATA_EXPORT_DOWNLOAD", json!({"export_id": id, "bytes": body.bytes, "records": body.records}))
        .await?;
    if let Some(url) = link {
        let mut resp = (
            StatusCode::SEE_OTHER,
            Json(DownloadLink { url: url.clone(), expires_in_seconds: LINK_TTL.as_secs(), file_name }),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    let (reader, len) = opened.expect("opened when there is no link");
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(body.spec.content_type()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"auditrail-{id}-{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Delete an export: its archive (or its unfinished upload) and its task. A running worker
/// notices and stops.
#[utoipa::path(delete, path = "/v1/exports/{id}", operation_id = "delete_export", tag = "exports",
    params(("id" = String, Path, description = "The export id")),
    responses(
        (status = 204, description = "deleted"),
        Denied, NotFound,
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let task = export_of(&state, &p, &id).await?;
    let body: ExportBody = task.body()?;
    let key = archive_key(&task, &body.spec)?;
    state.tasks.delete_task(&p.tenant_id, TaskKind::Export, &id).await?;
    if let Some(c) = &body.checkpoint {
        state.blobs.abort_upload(&key, &c.upload_id).await?;
    }
    state.blobs.delete(&key).await?;
    audit(&state, &p, "DATA_EXPORT_DELETE", json!({"export_id": id, "status": task.status})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Schedule an export: a cron expression (or a rate) and a window relative to each run.
#[utoipa::path(post, path = "/v1/export-schedules", tag = "exports",
    request_body(content = ScheduleRequest, content_type = "application/json"),
    responses(
        (status = 201, body = ScheduleInfo),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn create_schedule(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let req: ScheduleRequest = parse_json(&body, "body")?;
    let mut task = Task::new(&p.tenant_id, TaskKind::ExportSchedule, TaskStatus::Active, &Value::Null);
    let body = schedule::resolve(req, &p.tenant_id, &state.cursor_key, &state.sealer, &task.id, p.actor(), Utc::now())?;
    task.set_body(&body);
    state.note_tenant(&p.tenant_id).await?;
    state.tasks.create_task(&mut task).await?;
    let info = ScheduleInfo::of(&task)?;
    audit(
        &state,
        &p,
        "DATA_EXPORT_CHANGED",
        json!({"schedule_id": task.id, "created": {"name": info.name, "cron": info.cron, "every_minutes": info.every_minutes,
               "window": info.window, "filter": info.filter, "encrypted": info.encrypted}}),
    )
    .await?;
    let mut resp = (StatusCode::CREATED, Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/export-schedules/{}", task.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The tenant's export schedules, newest first.
#[utoipa::path(get, path = "/v1/export-schedules", tag = "exports", params(ListParams),
    responses(
        (status = 200, body = TaskPage<ScheduleInfo>),
        Denied, BadRequest,
    ))]
pub async fn list_schedules(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<TaskPage<ScheduleInfo>>> {
    Ok(Json(list_tasks(&state, &p, &uri, TaskKind::ExportSchedule, |_| true, ScheduleInfo::of).await?))
}

/// Stop and remove a schedule (its past exports stay).
#[utoipa::path(delete, path = "/v1/export-schedules/{id}", tag = "exports",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 204, description = "deleted"),
        Denied, NotFound,
    ))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    task_of(&state, &p, TaskKind::ExportSchedule, &id).await?;
    state.tasks.delete_task(&p.tenant_id, TaskKind::ExportSchedule, &id).await?;
    audit(&state, &p, "DATA_EXPORT_CHANGED", json!({"schedule_id": id, "deleted": true})).await?;
    Ok(StatusCode::NO_CONTENT)
}
