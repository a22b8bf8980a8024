//! Unauthenticated metadata routes: health, the action catalogue and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::record::catalogue::{self, ActionDef, CATALOGUE_CUSTOM_PREFIX};

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    /// `sqlite` or `dynamodb`.
    store: &'static str,
    version: &'static str,
}

/// Liveness and which store this process uses.
#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()), responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok", store: state.records.backend(), version: env!("CARGO_PKG_VERSION") })
}

#[derive(Serialize, ToSchema)]
pub struct Catalogue {
    /// Actions outside the catalogue must start with this prefix.
    custom_prefix: &'static str,
    count: usize,
    actions: Vec<CatalogueEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogueEntry {
    #[serde(flatten)]
    def: &'static ActionDef,
    /// Written only by Auditrail itself (its own use, denials, DPO and export jobs); ingest
    /// rejects it with a reason on the `action` field.
    server_only: bool,
}

/// Every action of the seed products with its category, source, module and data fields.
#[utoipa::path(get, path = "/v1/catalogue", tag = "meta", security(()), responses((status = 200, body = Catalogue)))]
pub async fn catalogue() -> Json<Catalogue> {
    let actions: Vec<_> =
        catalogue::all().iter().map(|def| CatalogueEntry { def, server_only: def.server_only() }).collect();
    Json(Catalogue { custom_prefix: CATALOGUE_CUSTOM_PREFIX, count: actions.len(), actions })
}
