//! Request pairs (seed 004's asynchronous QM actions): the start and end of one action with the
//! delay between them, and the slow or never-finished ones of a tenant.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::problems::{BadRequest, Denied, NotFound, Unavailable};
use super::{AppState, Operation};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, quoted};
use crate::query::params::parse_requests;
use crate::query::{render_record, render_time};
use crate::record::{Record, ResultCode};
use crate::store::{PageRequest, RequestPair};

/// One request: both records (as stored, if present) and the delay.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestTrace {
    #[serde(flatten)]
    #[schema(value_type = RequestPair)]
    pub pair: Value,
    #[schema(value_type = Option<Record>)]
    pub start: Option<Value>,
    #[schema(value_type = Option<Record>)]
    pub end: Option<Value>,
}

/// A page of request pairs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    #[schema(value_type = Vec<RequestPair>)]
    pub items: Vec<Value>,
    pub count: usize,
    pub next_cursor: Option<String>,
    pub from: String,
    pub to: String,
}

/// A pair with its times in the viewer's zone.
fn render_pair(pair: &RequestPair, tz: Option<Tz>) -> Value {
    let mut v = serde_json::to_value(pair).unwrap_or(Value::Null);
    for (key, t) in [("started_at", pair.started_at), ("ended_at", pair.ended_at)] {
        if let Some(t) = t {
            v[key] = render_time(t, tz).into();
        }
    }
    v
}

/// The one parameter of a single request's view: `tz`.
pub(super) fn parse_trace_query(raw: &str) -> ApiResult<Option<Tz>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::field("query", format!("not a valid query string: {e}")))?;
    let mut tz = None;
    for (k, v) in pairs {
        match k.as_str() {
            "tz" => {
                tz = Some(
                    v.parse::<Tz>()
                        .map_err(|_| ApiError::field("tz", "not an IANA time zone name (e.g. Europe/Prague)"))?,
                )
            }
            other => return Err(ApiError::field(other, "unknown parameter; this view accepts tz")),
        }
    }
    Ok(tz)
}

async fn audit(state: &AppState, p: &Principal, description: Value) -> ApiResult<()> {
    super::record_use(state, p, Operation::ViewRequests.audit_action(), ResultCode::Ok, description).await
}

/// The start and end of one asynchronous action and the delay between them. Another tenant's
/// correlation id is simply not found.
#[utoipa::path(get, path = "/v1/requests/{correlation_id}", tag = "requests",
    params(("correlation_id" = String, Path, description = "The correlation id both records carry"),
        ("tz" = Option<String>, Query, description = "IANA zone the times are shown in (default UTC)")),
    responses(
        (status = 200, body = RequestTrace),
        Denied, BadRequest, NotFound,
    ))]
pub async fn trace(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(correlation_id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<RequestTrace>> {
    let tz = parse_trace_query(uri.query().unwrap_or(""))?;
    let pair = state
        .requests
        .pair(&p.tenant_id, &correlation_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no request with correlation id {}", quoted(&correlation_id))))?;
    let fetch = |id: Option<String>| {
        let state = state.clone();
        let tenant = p.tenant_id.clone();
        async move {
            match id {
                Some(id) => state.records.get(&tenant, &id).await.map(|r| r.map(|r| render_record(&r, tz))),
                None => Ok(None),
            }
        }
    };
    let start = fetch(pair.start_id.clone()).await?;
    let end = fetch(pair.end_id.clone()).await?;
    audit(&state, &p, json!({"correlation_id": correlation_id})).await?;
    Ok(Json(RequestTrace { pair: render_pair(&pair, tz), start, end }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RequestParams {
    /// Finished requests that took at least this long, slowest first.
    #[param(minimum = 0)]
    min_delay_ms: Option<i64>,
    /// Starts with no end after this long (`30s`, `10m`, `2h`, `1d`), newest first.
    unfinished_for: Option<String>,
    /// Start of the window the requests started in; default `to` minus 10 days.
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
    tz: Option<String>,
}

/// Slow (`min_delay_ms`) or never-finished (`unfinished_for`) asynchronous actions.
#[utoipa::path(get, path = "/v1/requests", operation_id = "list_requests", tag = "requests", params(RequestParams),
    responses(
        (status = 200, body = RequestList),
        Denied, BadRequest, Unavailable,
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<RequestList>> {
    let q = parse_requests(uri.query().unwrap_or(""), &p.tenant_id, &state.cursor_key, Utc::now())?;
    let page =
        state.requests.pairs(&p.tenant_id, &q.query, PageRequest { limit: q.limit, after: q.after.clone() }).await?;
    let mut echo = q.echo.clone();
    echo.insert("returned".into(), page.pairs.len().into());
    audit(&state, &p, Value::Object(echo)).await?;
    Ok(Json(RequestList {
        count: page.pairs.len(),
        next_cursor: q.next_cursor(&state.cursor_key, &p.tenant_id, page.next),
        items: page.pairs.iter().map(|pair| render_pair(pair, q.tz)).collect(),
        from: render_time(q.from, q.tz),
        to: render_time(q.to, q.tz),
    }))
}
