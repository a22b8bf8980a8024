//! Events in the shape their source emits them: Keycloak's own event JSON.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problems::{BadRequest, Denied, TooLarge, Unavailable, UnsupportedType};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::ingest::{self, BatchResult, Framing};
use crate::keycloak;

/// The batch's fate, and the Keycloak types the catalogue did not know.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeycloakBatchResult {
    #[serde(flatten)]
    pub batch: BatchResult,
    /// Per Keycloak type (`TYPE`, or `RESOURCE.OPERATION` for admin events) the catalogue does
    /// not know, how many events of this batch were stored as `custom:keycloak.…` actions.
    pub unknown_types: BTreeMap<String, usize>,
}

/// Store Keycloak events as Keycloak emits them: its user-event and admin-event JSON (the
/// representations of `GET /admin/realms/{realm}/events` and `/admin-events`), one object, a
/// JSON array or NDJSON (≤ 1000 events, ≤ 5 MiB).
///
/// Keycloak's event id is the idempotency key (a replay is a duplicate); an unknown type is
/// stored as `custom:keycloak.TYPE` and counted in `unknown_types`. The mapping is in the
/// README (Keycloak). 200 when every event was stored, 207 otherwise, as `POST /v1/events`.
#[utoipa::path(post, path = "/v1/sources/keycloak/events", operation_id = "ingest_keycloak_events", tag = "events",
    request_body(content = Vec<serde_json::Value>, description = "Keycloak events: one object, a JSON array, or NDJSON with Content-Type application/x-ndjson",
        content_type = "application/json"),
    responses(
        (status = 200, description = "every event stored", body = KeycloakBatchResult),
        (status = 207, description = "some events rejected or failed", body = KeycloakBatchResult),
        Denied, BadRequest, TooLarge, UnsupportedType, Unavailable,
    ))]
pub async fn keycloak_events(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = super::events::batch_body(body)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let framing = Framing::detect_one_or_many(content_type, &body)?;
    let settings = keycloak::load(&*state.settings, &p.tenant_id).await?;
    let now = Utc::now();
    let mut unknown_types = BTreeMap::new();
    let prepared = ingest::prepare_with(&body, framing, &state.limits, |raw| {
        let mapped = keycloak::map_event(raw, &settings)?;
        let record = mapped.record.into_record(&p.tenant_id, now, &state.limits)?;
        if let Some(t) = mapped.unknown_type {
            *unknown_types.entry(t).or_insert(0) += 1;
        }
        Ok(record)
    })?;
    let batch = super::events::store_batch(&state, &p.tenant_id, prepared).await?;
    if !unknown_types.is_empty() {
        tracing::info!(tenant = %p.tenant_id, unknown = unknown_types.values().sum::<usize>(), "keycloak types not in the catalogue");
    }
    let status = if batch.all_stored() { StatusCode::OK } else { StatusCode::MULTI_STATUS };
    Ok((status, Json(KeycloakBatchResult { batch, unknown_types })).into_response())
}
