//! Records in and out: batch ingest, the activity log, the sign-in log and co-browse timelines.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::{AppState, Operation};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{self, Framing, MAX_BATCH_BYTES};
use crate::query::{self, ParsedQuery, View, render_time};
use crate::record::{ActorKind, Record, ResultCode};
use crate::store::PageRequest;

/// `POST /v1/events`: 200 when every item was stored (created or duplicate), 207 when some were
/// rejected or failed; the body lists every item's fate in input order.
pub async fn ingest(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("a batch may be at most {MAX_BATCH_BYTES} bytes"))
        } else {
            ApiError::MalformedBody(e.body_text())
        }
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let framing = Framing::detect(content_type, &body)?;
    let prepared = ingest::prepare(&body, framing, &p.tenant_id, Utc::now(), &state.limits)?;
    let outcomes = if prepared.records.is_empty() {
        Vec::new()
    } else {
        state.records.append(&p.tenant_id, &prepared.records).await?
    };
    let result = prepared.finish(&outcomes);
    tracing::info!(tenant = %p.tenant_id, created = result.created, duplicates = result.duplicates,
        rejected = result.rejected, failed = result.failed, "batch ingested");
    let status = if result.all_stored() { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    Ok((status, Json(result)).into_response())
}

/// Runs a listing, records the search as `op`'s audit action, and renders each record.
async fn list(
    state: &AppState,
    p: &Principal,
    uri: &Uri,
    view: View,
    op: Operation,
    render: impl Fn(&Record, Option<Tz>) -> Value,
) -> ApiResult<Json<Value>> {
    let q: ParsedQuery =
        query::params::parse(uri.query().unwrap_or(""), view, &p.tenant_id, &state.cursor_key, Utc::now())?;
    let page =
        state.records.query(&p.tenant_id, &q.filter, PageRequest { limit: q.limit, after: q.after.clone() }).await?;
    let next_cursor = q.next_cursor(&state.cursor_key, &p.tenant_id, page.next.clone());
    tracing::info!(tenant = %p.tenant_id, plan = %page.plan, read = page.stats.items_read,
        returned = page.stats.items_returned, "listing served");

    let mut echo = q.echo.clone();
    echo.insert("returned".into(), page.records.len().into());
    let audit = Record::system(&p.tenant_id, op.audit_action(), p.actor(), Some(ResultCode::Ok), Value::Object(echo));
    state.records.append(&p.tenant_id, &[audit]).await?;

    let items: Vec<Value> = page.records.iter().map(|r| render(r, q.tz)).collect();
    Ok(Json(json!({
        "items": items,
        "count": items.len(),
        "next_cursor": next_cursor,
        "from": render_time(q.filter.from, q.tz),
        "to": render_time(q.filter.to, q.tz),
        "tz": q.tz.map(|z| z.name().to_owned()),
    })))
}

/// `GET /v1/events`: the activity log, newest first.
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    list(&state, &p, &uri, View::Events, Operation::SearchEvents, query::render_record).await
}

/// The sign-in log's operation label (seed 003) for an action.
pub fn operation_label(action: &str) -> &'static str {
    match action {
        "FORCIBLE_SIGN_IN" => "Forcible Sign In",
        "FORCIBLE_SIGN_OUT" => "Forcible Sign Out",
        "SIGN_OUT" | "LOGOUT" | "LOGOUT_ERROR" | "USER_LOGOUT" => "Sign Out",
        _ => "Sign In",
    }
}

/// `GET /v1/sign-ins`: the sign-in log with the seed's columns.
pub async fn sign_ins(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    list(&state, &p, &uri, View::SignIns, Operation::SearchSignIns, |r, tz| {
        json!({
            "id": r.id,
            "account": r.actor.username,
            "employee_id": r.actor.employee_id,
            "operation": operation_label(&r.action),
            "action": r.action,
            "time": render_time(r.occurred_at, tz),
            "result": match r.result { Some(ResultCode::Ok) => "Successful", _ => "Failed" },
            "sign_in_ip": r.source_ip,
            "failure_reason_code": r.failure_reason_code,
        })
    })
    .await
}

/// `GET /v1/sessions/{session_id}/events`: one co-browsing session, oldest first.
pub async fn session(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(session_id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    if session_id.is_empty() || session_id.len() > 256 {
        return Err(ApiError::field("session_id", "must be 1 to 256 characters"));
    }
    list(&state, &p, &uri, View::Session(session_id), Operation::ViewSession, |r, tz| {
        json!({
            "id": r.id,
            "time": render_time(r.occurred_at, tz),
            "type": r.action,
            "by": match r.actor.kind { Some(ActorKind::Customer) => "customer", Some(ActorKind::Agent) => "agent", _ => "other" },
            "actor": r.actor,
            "extra": r.data,
            "description": r.description,
        })
    })
    .await
}
