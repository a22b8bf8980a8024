//! Tenant settings (tenant admins only): retention per category and the legal hold; what agents
//! may do with the sign-in log.

use super::body::JsonBody;
use axum::Json;
use axum::extract::{Extension, State};
use serde_json::json;

use super::AppState;
use super::problems::{BadRequest, Conflict, Denied, TooLarge, UnsupportedType};
use crate::access::{self, Access};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, parse_json};
use crate::keycloak::{self, KeycloakSettings};
use crate::record::{Record, ResultCode};
use crate::retention::{self, Retention, RetentionUpdate};

/// The tenant's retention settings (defaults until changed). 409 when the stored settings
/// cannot be read (the purge stops for the tenant): a complete PUT replaces them.
#[utoipa::path(get, path = "/v1/settings/retention", tag = "settings",
    responses(
        (status = 200, body = Retention),
        Denied, Conflict,
    ))]
pub async fn get_retention(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Retention>> {
    Ok(Json(retention::load_stored(&*state.settings, &p.tenant_id).await?.1.map_err(unreadable)?))
}

/// Stored retention settings that cannot be read (written by a newer version, or damaged): what
/// the admin can do about it.
fn unreadable(reason: String) -> ApiError {
    ApiError::Conflict(format!(
        "the stored retention settings cannot be read ({reason}), so nothing of this tenant is purged; \
         PUT complete settings (every category in `days`, `legal_hold` and `export_archive_days`) to replace them"
    ))
}

/// Change days per category (`null`: back to the default) and the legal hold; what the body
/// leaves out keeps its current value. Merged over the stored settings and stored only if they
/// did not change meanwhile (retried; 409 if they kept changing). Stored settings that cannot be
/// read are replaced only by a complete body (every category, `legal_hold`,
/// `export_archive_days`); a partial one is a 409 saying so.
#[utoipa::path(put, path = "/v1/settings/retention", tag = "settings",
    request_body(content = RetentionUpdate, content_type = "application/json"),
    responses(
        (status = 200, body = Retention),
        Denied, BadRequest, Conflict, TooLarge, UnsupportedType,
    ))]
pub async fn put_retention(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Retention>> {
    let update: RetentionUpdate = parse_json(&body, "body")?;
    // Merged over what is stored, and stored only if that is still what was read: a change made
    // meanwhile (another admin setting the legal hold) is merged again, never undone.
    let mut attempt = 0;
    let (old, replaced, new) = loop {
        let (stored, read) = retention::load_stored(&*state.settings, &p.tenant_id).await?;
        // Unreadable: nothing of them can be kept, so only complete settings replace them (the
        // audit's `old` is then null, and the value replaced is recorded as it was stored).
        let old = match read {
            Ok(old) => Some(old),
            Err(_) if update.is_complete() => None,
            Err(reason) => return Err(unreadable(reason)),
        };
        let new = update.clone().resolve(old.as_ref().unwrap_or(&Retention::default()))?;
        let value = serde_json::to_value(&new).map_err(ApiError::internal)?;
        match state.settings.swap_setting(&p.tenant_id, retention::SETTING, stored.as_ref(), &value).await {
            Ok(()) => break (old, stored, new),
            Err(crate::store::StoreError::Conflict(_)) if attempt < 4 => attempt += 1,
            Err(crate::store::StoreError::Conflict(_)) => {
                return Err(ApiError::Conflict("the settings kept changing meanwhile; send the update again".into()));
            }
            Err(e) => return Err(e.into()),
        }
    };
    state.settings.register_tenant(&p.tenant_id).await?;
    let mut audit = vec![Record::system(
        &p.tenant_id,
        "RETENTION_CHANGE",
        p.actor(),
        Some(ResultCode::Ok),
        match &old {
            Some(old) => json!({"old": old, "new": new}),
            None => json!({"old": null, "old_unreadable": retention::shown(replaced.as_ref()), "new": new}),
        },
    )];
    let hold_before = match &old {
        Some(old) => Some(old.legal_hold),
        // As serde reads them: no `legal_hold` is false; one that is not a boolean is unknown.
        None => match replaced.as_ref().and_then(|v| v.get("legal_hold")) {
            None => Some(false),
            Some(hold) => hold.as_bool(),
        },
    };
    if hold_before != Some(new.legal_hold) {
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

/// What agents may do with the sign-in log (nothing until granted).
#[utoipa::path(get, path = "/v1/settings/access", tag = "settings",
    responses(
        (status = 200, body = Access),
        Denied,
    ))]
pub async fn get_access(State(state): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Access>> {
    Ok(Json(access::load(&*state.settings, &p.tenant_id).await?))
}

/// Grant or revoke agents the sign-in log (seed 003): `read` opens `GET /v1/sign-ins`, `export`
/// opens export tasks of the sign-in view (each agent sees only their own). Recorded as
/// `ACCESS_SETTINGS_CHANGE` with the old and new settings.
#[utoipa::path(put, path = "/v1/settings/access", tag = "settings",
    request_body(content = Access, content_type = "application/json"),
    responses(
        (status = 200, body = Access),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn put_access(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Access>> {
    let new: Access = parse_json(&body, "body")?;
    let old = access::load(&*state.settings, &p.tenant_id).await?;
    change_setting(&state, &p, access::SETTING, "ACCESS_SETTINGS_CHANGE", old, new).await
}

/// Stores a tenant setting and records the change (`action`, with the old and new values) in
/// the trail; the new value is the response.
async fn change_setting<T: serde::Serialize>(
    state: &AppState,
    p: &Principal,
    name: &str,
    action: &str,
    old: T,
    new: T,
) -> ApiResult<Json<T>> {
    state.settings.put_setting(&p.tenant_id, name, &serde_json::to_value(&new).map_err(ApiError::internal)?).await?;
    let rec = Record::system(&p.tenant_id, action, p.actor(), Some(ResultCode::Ok), json!({"old": old, "new": new}));
    state.records.append(&p.tenant_id, &[rec]).await?;
    Ok(Json(new))
}

/// What is kept of Keycloak events (`POST /v1/sources/keycloak/events`).
#[utoipa::path(get, path = "/v1/settings/keycloak", tag = "settings",
    responses(
        (status = 200, body = KeycloakSettings),
        Denied,
    ))]
pub async fn get_keycloak(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<KeycloakSettings>> {
    Ok(Json(keycloak::load(&*state.settings, &p.tenant_id).await?))
}

/// Whether an admin event's `representation` (the object created or updated, e.g. a whole user)
/// is kept. Recorded as `KEYCLOAK_SETTINGS_CHANGE` with the old and new settings.
#[utoipa::path(put, path = "/v1/settings/keycloak", tag = "settings",
    request_body(content = KeycloakSettings, content_type = "application/json"),
    responses(
        (status = 200, body = KeycloakSettings),
        Denied, BadRequest, TooLarge, UnsupportedType,
    ))]
pub async fn put_keycloak(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<KeycloakSettings>> {
    let new: KeycloakSettings = parse_json(&body, "body")?;
    let old = keycloak::load(&*state.settings, &p.tenant_id).await?;
    change_setting(&state, &p, keycloak::SETTING, "KEYCLOAK_SETTINGS_CHANGE", old, new).await
}
