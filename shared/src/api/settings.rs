//! Tenant settings: retention per category and the legal hold (tenant admins only).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use serde_json::json;

use super::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem, parse_json};
use crate::record::{Record, ResultCode};
use crate::retention::{self, Retention, RetentionUpdate};

/// The tenant's retention settings (defaults until changed).
#[utoipa::path(get, path = "/v1/settings/retention", tag = "settings",
    responses(
        (status = 200, body = Retention),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_retention(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Retention>> {
    Ok(Json(retention::load(&*state.settings, &p.tenant_id).await?))
}

/// Set days per category (others keep their defaults) and the legal hold.
#[utoipa::path(put, path = "/v1/settings/retention", tag = "settings",
    request_body(content = RetentionUpdate, content_type = "application/json"),
    responses(
        (status = 200, body = Retention),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_retention(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Json<Retention>> {
    let update: RetentionUpdate = parse_json(&body, "body")?;
    let new = update.resolve()?;
    let old = retention::load(&*state.settings, &p.tenant_id).await?;
    state
        .settings
        .put_setting(&p.tenant_id, retention::SETTING, &serde_json::to_value(&new).map_err(ApiError::internal)?)
        .await?;
    state.settings.register_tenant(&p.tenant_id).await?;
    let mut audit = vec![Record::system(
        &p.tenant_id,
        "RETENTION_CHANGE",
        p.actor(),
        Some(ResultCode::Ok),
        json!({"old": old, "new": new}),
    )];
    if old.legal_hold != new.legal_hold {
        audit.push(Record::system(
            &p.tenant_id,
            "LEGAL_HOLD_CHANGE",
            p.actor(),
            Some(ResultCode::Ok),
            json!({"legal_hold": new.legal_hold}),
        ));
    }
    state.records.append(&p.tenant_id, &audit).await?;
    Ok(Json(new))
}
