//! The DPO's routes (role `dpo`): personal-data search, CSV report, erasure jobs, audited
//! attachment downloads; and the attachment upload that personal-data records reference.
//! Criteria reach the audit trail only as salted hashes, with counts.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::problems::{BadRequest, Denied, NotFound, TooLarge, UnsupportedType};
use crate::auth::Principal;
use crate::dpo::erasure::{self, ErasureBody, ErasureResult};
use crate::dpo::search::{self, Criteria, Group, HARD_MAX_HITS, MAX_HITS, Outcome, SearchRequest};
use crate::error::{ApiError, ApiResult, PROBLEM_JSON, Problem, parse_json, quoted};
use crate::export::cells::write_row;
use crate::jobs::{TaskKind, TaskStatus};
use crate::record::{Record, ResultCode};
use crate::retention::attachment_key;
use crate::store::BlobKey;

/// Largest attachment uploaded through the API.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

fn hashed(state: &AppState, p: &Principal, c: &Criteria, req: &SearchRequest) -> Value {
    let mut m = Map::new();
    for (kind, value) in &c.normalised {
        m.insert((*kind).into(), state.sealer.fingerprint(&p.tenant_id, kind, value).into());
    }
    if let Some(n) = c.phone_digits {
        m.insert("phone_digits".into(), n.into());
    }
    if let Some(f) = req.from {
        m.insert("from".into(), f.to_rfc3339().into());
    }
    if let Some(t) = req.to {
        m.insert("to".into(), t.to_rfc3339().into());
    }
    if req.accept_large {
        m.insert("accept_large".into(), true.into());
    }
    Value::Object(m)
}

/// A search or report error: an API error, or the advice to narrow a large search.
pub enum DpoError {
    Api(ApiError),
    /// More hits than allowed: `count` of them (`None`: more than the hard ceiling).
    Large {
        count: Option<usize>,
    },
}

impl From<ApiError> for DpoError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<crate::store::StoreError> for DpoError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for DpoError {
    fn into_response(self) -> Response {
        let count = match self {
            Self::Api(e) => return e.into_response(),
            Self::Large { count } => count,
        };
        let detail = match count {
            Some(n) => format!(
                "{n} items match (more than {MAX_HITS}); define the criteria more specifically (e.g. a shorter time \
                 span with `from` and `to`, or more phone digits), or go on with `\"accept_large\": true` (at most \
                 {HARD_MAX_HITS} items)"
            ),
            None => format!(
                "more than {HARD_MAX_HITS} items match, more than one search returns; define the criteria more \
                 specifically (e.g. a shorter time span with `from` and `to`, or more phone digits)"
            ),
        };
        let problem = ApiError::TooMany(detail).problem();
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        body["count"] = count.map_or(Value::Null, Value::from);
        body["advice_limit"] = MAX_HITS.into();
        body["hard_limit"] = HARD_MAX_HITS.into();
        let mut resp = (StatusCode::UNPROCESSABLE_ENTITY, body.to_string()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        resp
    }
}

/// The 422 answer to a large search: a problem with the hit count and the limits.
#[derive(Serialize, ToSchema)]
pub struct LargeSearch {
    #[serde(flatten)]
    pub problem: Problem,
    /// How many items match; `null` when more than `hard_limit`.
    pub count: Option<usize>,
    /// Above this many hits the DPO is advised to narrow the search (1000, seed 002).
    pub advice_limit: usize,
    /// No search returns more than this many hits (10,000), even with `accept_large`.
    pub hard_limit: usize,
}

use super::record_use as audit;

/// Runs a search; too many hits is recorded and answered with 422, the count and the limits.
async fn run(
    state: &AppState,
    p: &Principal,
    req: &SearchRequest,
    action: &str,
) -> Result<(Vec<Record>, Value), DpoError> {
    let c = search::criteria(req)?;
    let criteria = hashed(state, p, &c, req);
    match search::search(&*state.subjects, &p.tenant_id, &c).await? {
        Outcome::TooMany { count } => {
            let hits = count.map_or(Value::from(format!("more than {HARD_MAX_HITS}")), Value::from);
            audit(state, p, action, ResultCode::Fail, json!({"criteria": criteria, "hits": hits})).await?;
            Err(DpoError::Large { count })
        }
        Outcome::Found { records, stats } => {
            tracing::info!(tenant = %p.tenant_id, read = stats.items_read, returned = stats.items_returned, "DPO search");
            Ok((records, criteria))
        }
    }
}

fn counts(records: &[Record]) -> Map<String, Value> {
    let mut m = Map::new();
    for &g in Group::ALL {
        m.insert(g.as_str().to_owned(), records.iter().filter(|r| Group::of(r.category) == g).count().into());
    }
    m
}

/// Search results: the seed's groups (contacts, directory entries, outbound campaign
/// customers, customer consents) plus audit records and error reports naming the subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub count: usize,
    #[schema(value_type = Object)]
    pub counts: Map<String, Value>,
    /// Group name → hits (each with the whole record and attachment download links).
    #[schema(value_type = Object)]
    pub groups: Map<String, Value>,
}

/// Search personal data by e-mail, phone (last N digits) or first + last name (OR-ed).
#[utoipa::path(post, path = "/v1/dpo/searches", operation_id = "dpo_search", tag = "dpo",
    request_body(content = SearchRequest, content_type = "application/json"),
    responses(
        (status = 200, body = SearchResult),
        (status = 422, body = LargeSearch, content_type = "application/problem+json",
            description = "over 1000 hits (without `accept_large`) or over 10,000: the count, and the advice to narrow the search"),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Json<SearchResult>, DpoError> {
    let req: SearchRequest = parse_json(&body, "body")?;
    let (records, criteria) = run(&state, &p, &req, "DPO_SEARCH").await?;
    let counts = counts(&records);
    audit(
        &state,
        &p,
        "DPO_SEARCH",
        ResultCode::Ok,
        json!({"criteria": criteria, "hits": records.len(), "counts": counts}),
    )
    .await?;
    let mut groups = Map::new();
    for key in counts.keys() {
        groups.insert(key.clone(), Value::Array(Vec::new()));
    }
    for r in &records {
        if let Some(Value::Array(a)) = groups.get_mut(Group::of(r.category).as_str()) {
            a.push(search::hit(r, None));
        }
    }
    Ok(Json(SearchResult { count: records.len(), counts, groups }))
}

/// `POST /v1/dpo/reports`: the search, and what to leave out (everything is selected by default).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    #[serde(deserialize_with = "crate::error::object")]
    pub search: SearchRequest,
    #[serde(default)]
    pub exclude_items: Vec<String>,
    #[serde(default)]
    pub exclude_groups: Vec<Group>,
}

/// The personal-data report: a CSV with all details of the selected items.
#[utoipa::path(post, path = "/v1/dpo/reports", tag = "dpo",
    request_body(content = ReportRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the report", content_type = "text/csv"),
        (status = 422, body = LargeSearch, content_type = "application/problem+json",
            description = "over 1000 hits (without `search.accept_large`) or over 10,000: the count, and the advice to narrow the search"),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn report(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> Result<Response, DpoError> {
    let req: ReportRequest = parse_json(&body, "body")?;
    let (mut records, criteria) = run(&state, &p, &req.search, "DPO_REPORT").await?;
    records.retain(|r| !req.exclude_items.contains(&r.id) && !req.exclude_groups.contains(&Group::of(r.category)));
    let mut bytes = Vec::new();
    let header = [
        "Group",
        "ID",
        "Time",
        "Category",
        "Activity",
        "E-mails",
        "Phones",
        "First name",
        "Last name",
        "Agent",
        "Result",
        "Description",
        "Data",
        "Attachments",
    ];
    write_row(&mut bytes, header);
    for r in &records {
        let s = r.subject.clone().unwrap_or_default();
        let text = |v: &Option<Value>| {
            v.as_ref()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .unwrap_or_default()
        };
        let group = Group::of(r.category).as_str().to_owned();
        let row = [
            group,
            r.id.clone(),
            crate::query::render_time(r.occurred_at, None),
            r.category.as_str().to_owned(),
            r.action.clone(),
            s.emails.join("; "),
            s.phones.join("; "),
            s.first_name.unwrap_or_default(),
            s.last_name.unwrap_or_default(),
            r.actor.full_name.clone().or(r.actor.username.clone()).unwrap_or_default(),
            r.result.map(|x| x.as_str().to_owned()).unwrap_or_default(),
            text(&r.description),
            text(&r.data),
            r.attachments
                .iter()
                .map(|a| format!("{} ({} bytes)", a.name, a.size.unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("; "),
        ];
        write_row(&mut bytes, row);
    }
    audit(
        &state,
        &p,
        "DPO_REPORT",
        ResultCode::Ok,
        json!({"criteria": criteria, "items": records.len(), "counts": counts(&records),
        "excluded_items": req.exclude_items.len(), "excluded_groups": req.exclude_groups}),
    )
    .await?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"personal-data-report.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /v1/dpo/erasures`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Record ids from a search (1 to 1000).
    pub items: Vec<String>,
}

/// An erasure job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureInfo {
    pub id: String,
    pub status: TaskStatus,
    pub items: usize,
    /// Items processed so far.
    pub done: usize,
    pub result: ErasureResult,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// Runs that ended in an error so far (FAILED after 5, or at once for a permanent error).
    pub attempts: u32,
}

impl ErasureInfo {
    fn of(t: &crate::jobs::Task) -> Result<Self, crate::store::StoreError> {
        let b: ErasureBody = t.body()?;
        Ok(Self {
            id: t.id.clone(),
            status: t.status,
            items: b.items.len(),
            done: b.next,
            result: b.result,
            created_at: crate::query::render_time(t.created_at, None),
            finished_at: b.finished_at.map(|f| crate::query::render_time(f, None)),
            error: b.error.or_else(|| t.failure.clone()),
            attempts: t.attempts,
        })
    }
}

/// Erase the selected items (202): personal values replaced with `{Anonymized by DPO}`, index
/// entries, attachments, recordings, error-report blobs and export archives that contain them deleted.
#[utoipa::path(post, path = "/v1/dpo/erasures", tag = "dpo",
    request_body(content = ErasureRequest, content_type = "application/json"),
    responses(
        (status = 202, body = ErasureInfo),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn erase(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let req: ErasureRequest = parse_json(&body, "body")?;
    let mut task = erasure::prepare(&*state.records, &state.sealer, &p.tenant_id, req.items, p.actor()).await?;
    state.tasks.create_task(&mut task).await?;
    let info = ErasureInfo::of(&task)?;
    audit(&state, &p, "DPO_ERASURE", ResultCode::Ok, json!({"erasure_id": task.id, "items": info.items})).await?;
    state.jobs_queued.notify_waiters();
    let mut resp = (StatusCode::ACCEPTED, Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/dpo/erasures/{}", task.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// An erasure job's progress and what it did.
#[utoipa::path(get, path = "/v1/dpo/erasures/{id}", tag = "dpo",
    params(("id" = String, Path, description = "The erasure id")),
    responses(
        (status = 200, body = ErasureInfo),
        Denied, NotFound,
    ))]
pub async fn erasure_status(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ErasureInfo>> {
    let missing = || ApiError::NotFound(format!("no erasure {}", quoted(&id)));
    if !crate::jobs::valid_id(&id) {
        return Err(missing());
    }
    let t = state.tasks.get_task(&p.tenant_id, TaskKind::Erasure, &id).await?.ok_or_else(missing)?;
    Ok(Json(ErasureInfo::of(&t)?))
}

/// Download one attachment or recording of a record (recorded as DPO_DOWNLOAD).
#[utoipa::path(get, path = "/v1/dpo/attachments/{record_id}/{n}", tag = "dpo",
    params(("record_id" = String, Path, description = "The record"), ("n" = usize, Path, description = "The attachment's position")),
    responses(
        (status = 200, description = "the file, with the content type it was uploaded with", content_type = "*/*"),
        Denied, NotFound,
    ))]
pub async fn attachment(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((record_id, n)): Path<(String, String)>,
) -> ApiResult<Response> {
    let missing = || ApiError::NotFound(format!("no attachment {n} on record {}", quoted(&record_id)));
    let n: usize = n.parse().map_err(|_| missing())?;
    let r = state.records.get(&p.tenant_id, &record_id).await?.ok_or_else(missing)?;
    let a = r.attachments.get(n).ok_or_else(missing)?;
    let key = attachment_key(&p.tenant_id, a).ok_or_else(missing)?;
    let (reader, len) = state.blobs.open(&key).await?.ok_or_else(missing)?;
    audit(&state, &p, "DPO_DOWNLOAD", ResultCode::Ok, json!({"record_id": record_id, "attachment": n, "size": len}))
        .await?;
    let mut resp = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(reader)));
    let h = resp.headers_mut();
    let ct = a.content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
    h.insert(header::CONTENT_TYPE, ct.unwrap_or(HeaderValue::from_static("application/octet-stream")));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    Ok(resp)
}

/// A stored attachment: reference it from a record as `attachments: [{"blob": …, "name": …}]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedAttachment {
    pub blob: String,
    pub size: usize,
    pub content_type: String,
}

/// Upload an attachment, recording or photo (≤ 10 MiB) to reference from records.
#[utoipa::path(post, path = "/v1/attachments", tag = "dpo",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = UploadedAttachment),
        Denied, BadRequest, TooLarge,
    ))]
pub async fn upload_attachment(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<UploadedAttachment>)> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes"))
        } else {
            ApiError::MalformedBody(e.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(ApiError::field("body", "an attachment must not be empty"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|c| c.len() <= 128)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let blob = ulid::Ulid::generate().to_string();
    state.note_tenant(&p.tenant_id).await?;
    state.blobs.put(&BlobKey::attachment(&p.tenant_id, &blob)?, body.clone(), &content_type).await?;
    Ok((StatusCode::CREATED, Json(UploadedAttachment { blob, size: body.len(), content_type })))
}

/// Where to PUT a large attachment.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadLink {
    /// Reference it from a record as `attachments: [{"blob": …, "name": …}]` once uploaded.
    pub blob: String,
    /// `PUT` the file's bytes here (`Content-Type: application/octet-stream`).
    pub url: String,
    pub expires_in_seconds: u64,
}

/// A presigned URL (15 minutes) to upload a large attachment or recording straight to S3.
/// The embedded store has none: there, POST the file to `/v1/attachments`.
#[utoipa::path(post, path = "/v1/attachments/upload-url", tag = "dpo",
    responses(
        (status = 201, body = UploadLink),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "no presigned uploads here"),
        Denied,
    ))]
pub async fn upload_link(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<(StatusCode, Json<UploadLink>)> {
    let blob = ulid::Ulid::generate().to_string();
    let ttl = std::time::Duration::from_secs(15 * 60);
    let key = BlobKey::attachment(&p.tenant_id, &blob)?;
    let url = state.blobs.upload_url(&key, ttl).await?.ok_or_else(|| {
        ApiError::Conflict(format!(
            "this deployment stores attachments itself: POST the file (≤ {MAX_ATTACHMENT_BYTES} bytes) to /v1/attachments"
        ))
    })?;
    state.note_tenant(&p.tenant_id).await?;
    Ok((StatusCode::CREATED, Json(UploadLink { blob, url, expires_in_seconds: ttl.as_secs() })))
}
