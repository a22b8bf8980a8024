//! Records in and out: batch ingest, the activity log, the sign-in log and co-browse timelines.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::problems::{BadRequest, Denied, TooLarge, Unavailable, UnsupportedType};
use super::{AppState, Operation};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{self, BatchResult, Framing, MAX_BATCH_BYTES};
use crate::query::sign_in::SignInRow;
use crate::query::{self, ParsedQuery, View, render_time};
use crate::record::{Actor, ActorKind, Category, IncomingRecord, Record, ResultCode};
use crate::store::PageRequest;

/// Store a batch of records (JSON array or NDJSON, ≤ 1000 records, ≤ 5 MiB).
///
/// 200 when every item was stored (created or duplicate), 207 when some were rejected or
/// failed; the body lists every item's fate in input order. A replayed id is a duplicate.
#[utoipa::path(post, path = "/v1/events", operation_id = "ingest_events", tag = "events",
    request_body(content = Vec<IncomingRecord>, description = "JSON array, or NDJSON with Content-Type application/x-ndjson",
        content_type = "application/json"),
    responses(
        (status = 200, description = "every item stored", body = BatchResult),
        (status = 207, description = "some items rejected or failed", body = BatchResult),
        Denied, BadRequest, TooLarge, UnsupportedType, Unavailable,
    ))]
pub async fn ingest(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = batch_body(body)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let framing = Framing::detect(content_type, &body)?;
    let prepared = ingest::prepare(&body, framing, &p.tenant_id, Utc::now(), &state.limits)?;
    let result = store_batch(&state, &p.tenant_id, prepared).await?;
    let status = if result.all_stored() { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    Ok((status, Json(result)).into_response())
}

/// A batch's body, or the problem for one over the limit or unreadable.
pub(super) fn batch_body(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("a batch may be at most {MAX_BATCH_BYTES} bytes"))
        } else {
            ApiError::MalformedBody(e.body_text())
        }
    })
}

/// Appends a prepared batch's records and folds the outcomes into its result (logged).
pub(super) async fn store_batch(
    state: &AppState,
    tenant: &str,
    mut prepared: ingest::Prepared,
) -> ApiResult<BatchResult> {
    let records = std::mem::take(&mut prepared.records);
    let outcomes = if records.is_empty() { Vec::new() } else { state.records.append_owned(tenant, records).await? };
    let result = prepared.finish(&outcomes);
    tracing::info!(tenant = %tenant, created = result.created, duplicates = result.duplicates,
        rejected = result.rejected, failed = result.failed, "batch ingested");
    Ok(result)
}

/// A page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub count: usize,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The window searched, in the viewer's zone.
    pub from: String,
    pub to: String,
    pub tz: Option<String>,
    /// Present when the page ended before it was full because it reached the store's read budget
    /// (on DynamoDB, a free text `q` or a rare combination of filters): the window is searched from
    /// `to` back to this time (from `from` up to it, oldest first) and `next_cursor` searches on.
    /// A page can then hold fewer items than `limit`, even none, and still have a next page.
    pub searched_until: Option<String>,
}

/// Runs a listing, records the search as `op`'s audit action, and renders each record.
pub(super) async fn list<T: Serialize>(
    state: &AppState,
    p: &Principal,
    uri: &Uri,
    view: View,
    op: Operation,
    render: impl Fn(&Record, Option<Tz>) -> T,
) -> ApiResult<Json<Page<T>>> {
    let q: ParsedQuery =
        query::params::parse(uri.query().unwrap_or(""), view, &p.tenant_id, &state.cursor_key, Utc::now())?;
    let page =
        state.records.query(&p.tenant_id, &q.filter, PageRequest { limit: q.limit, after: q.after.clone() }).await?;
    let next_cursor = q.next_cursor(&state.cursor_key, &p.tenant_id, page.next.clone());
    tracing::info!(tenant = %p.tenant_id, plan = %page.plan, read = page.stats.items_read,
        returned = page.stats.items_returned, "listing served");

    let mut echo = q.echo.clone();
    echo.insert("returned".into(), page.records.len().into());
    super::record_use(state, p, op.audit_action(), ResultCode::Ok, Value::Object(echo)).await?;

    let items: Vec<T> = page.records.iter().map(|r| render(r, q.tz)).collect();
    Ok(Json(Page {
        count: items.len(),
        items,
        next_cursor,
        from: render_time(q.filter.from, q.tz),
        to: render_time(q.filter.to, q.tz),
        tz: q.tz.map(|z| z.name().to_owned()),
        searched_until: page.searched_until.map(|t| render_time(t, q.tz)),
    }))
}

/// Query parameters of the activity log (documentation; parsing is strict and lives in `query::params`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsParams {
    /// Start of the window (RFC 3339); default `to` minus 10 days.
    from: Option<DateTime<Utc>>,
    /// End of the window, exclusive (RFC 3339); default now. At most 400 days after `from`.
    to: Option<DateTime<Utc>>,
    /// Activity; repeat the parameter or separate with commas for several.
    #[param(explode = true)]
    action: Option<Vec<String>>,
    /// `audit`, `sign_in`, `cobrowse`, `contact`, `consent`, `directory_entry`, `campaign_customer`, `error_report`.
    #[param(explode = true)]
    category: Option<Vec<Category>>,
    /// Username (case-insensitive); records without a username match on their user id.
    user: Option<String>,
    result: Option<ResultCode>,
    session_id: Option<String>,
    correlation_id: Option<String>,
    /// Text in the description (case-insensitive), at most 256 characters.
    q: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// IANA time zone to render times in, e.g. `Europe/Prague`.
    tz: Option<String>,
}

/// The activity log: records of the caller's tenant, newest first, last 10 days by default.
#[utoipa::path(get, path = "/v1/events", operation_id = "search_events", tag = "events", params(EventsParams),
    responses(
        (status = 200, body = Page<Record>),
        Denied, BadRequest, Unavailable,
    ))]
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Page<Value>>> {
    list(&state, &p, &uri, View::Events, Operation::SearchEvents, query::render_record).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SignInParams {
    /// `1d`, `3d` or `7d`; or give `from`/`to` instead. Default the last 10 days.
    period: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// Business account (sign-in username).
    account: Option<String>,
    /// Agent id.
    employee_id: Option<String>,
    /// Sign In, Sign Out, Forcible Sign In, Forcible Sign Out.
    operation: Option<String>,
    /// Successful or Failed.
    result: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
    tz: Option<String>,
}

/// The sign-in log (seed 003): every sign-in action of the catalogue (Huawei AICC, Keycloak, QM,
/// Chatvisor) whatever category it was stored under. Agents may read it once a tenant admin
/// grants it (`PUT /v1/settings/access`).
#[utoipa::path(get, path = "/v1/sign-ins", tag = "events", params(SignInParams),
    responses(
        (status = 200, body = Page<SignInRow>),
        Denied, BadRequest, Unavailable,
    ))]
pub async fn sign_ins(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Page<SignInRow>>> {
    list(&state, &p, &uri, View::SignIns, Operation::SearchSignIns, SignInRow::new).await
}

/// One event of a co-browsing session timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEvent {
    pub id: String,
    pub time: String,
    /// CLICK, SCROLL, FORM, INPUT, PAGE-CHANGE, SELECTION, CUSTOM_EVENT, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `agent`, `customer` or `other`.
    pub by: &'static str,
    pub actor: Actor,
    /// The event's extra information (element id, page, scroll position, …).
    pub extra: Option<Value>,
    pub description: Option<Value>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SessionParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
    tz: Option<String>,
}

/// One co-browsing session's timeline, oldest first (default window: the last 400 days).
#[utoipa::path(get, path = "/v1/sessions/{session_id}/events", tag = "events",
    params(("session_id" = String, Path, description = "The co-browsing session"), SessionParams),
    responses(
        (status = 200, body = Page<SessionEvent>),
        Denied, BadRequest, Unavailable,
    ))]
pub async fn session(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(session_id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Page<SessionEvent>>> {
    if session_id.is_empty() || session_id.len() > 256 {
        return Err(ApiError::field("session_id", "must be 1 to 256 characters"));
    }
    list(&state, &p, &uri, View::Session(session_id), Operation::ViewSession, |r, tz| SessionEvent {
        id: r.id.clone(),
        time: render_time(r.occurred_at, tz),
        kind: r.action.clone(),
        by: match r.actor.kind {
            Some(ActorKind::Customer) => "customer",
            Some(ActorKind::Agent) => "agent",
            _ => "other",
        },
        actor: r.actor.clone(),
        extra: r.data.clone(),
        description: r.description.clone(),
    })
    .await
}
