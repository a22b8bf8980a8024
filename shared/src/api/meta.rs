//! Unauthenticated metadata routes: health and the action catalogue.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::record::catalogue::{self, CATALOGUE_CUSTOM_PREFIX};

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "store": state.records.backend(), "version": env!("CARGO_PKG_VERSION")}))
}

pub async fn catalogue() -> Json<Value> {
    let actions = catalogue::all();
    Json(json!({
        "custom_prefix": CATALOGUE_CUSTOM_PREFIX,
        "count": actions.len(),
        "actions": actions,
    }))
}
