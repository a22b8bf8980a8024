//! One record, its proof, and the tenant's seals (docs/integrity.md): what an auditor fetches to
//! verify a trail without trusting the server — the seals are signed, the proofs check against
//! the public key, which the auditor keeps from elsewhere.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::problems::{BadRequest, Conflict, Denied, NotFound, Unavailable};
use super::requests::parse_trace_query;
use super::{AppState, Operation};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, quoted};
use crate::integrity::digest_key;
use crate::integrity::proof::{NoProof, Proof, prove};
use crate::integrity::sealer::seals_through;
use crate::merkle::{b64, consistency_proof};
use crate::query::render_record;
use crate::record::{Record, ResultCode};
use crate::seal::{Seal, SealDigest, Statement, key_id, public_key_pem};

async fn audit(state: &AppState, p: &Principal, op: Operation, data: Value) -> ApiResult<()> {
    super::record_use(state, p, op.audit_action(), ResultCode::Ok, data).await
}

fn check_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::field("id", "must be 1 to 256 characters"));
    }
    Ok(())
}

/// The largest sequence number a tenant could reach (a seal a second for 30,000 years).
const MAX_SEQ: u64 = 1_000_000_000_000;

fn check_seq(field: &str, seq: u64) -> ApiResult<()> {
    if seq > MAX_SEQ {
        return Err(ApiError::field(field, format!("a seal's sequence number, at most {MAX_SEQ}")));
    }
    Ok(())
}

async fn load(state: &AppState, p: &Principal, id: &str) -> ApiResult<Record> {
    check_id(id)?;
    state.records.get(&p.tenant_id, id).await?.ok_or_else(|| ApiError::NotFound(format!("no record {}", quoted(id))))
}

/// One record, every field (times in `tz`, default UTC), with its integrity data. Another
/// tenant's id is simply not found.
#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "get_event", tag = "events",
    params(("id" = String, Path, description = "The record id"),
        ("tz" = Option<String>, Query, description = "IANA zone the times are shown in (default UTC)")),
    responses((status = 200, body = Record), Denied, BadRequest, NotFound, Unavailable))]
pub async fn get_event(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let tz = parse_trace_query(uri.query().unwrap_or(""))?;
    let r = load(&state, &p, &id).await?;
    audit(&state, &p, Operation::ViewRecord, json!({"record_id": id})).await?;
    Ok(Json(render_record(&r, tz)))
}

/// The record's inclusion proof up to its signed seal (RFC 9162 §2.1.3), ≤ 2 KB. 409 while the
/// record is not sealed yet.
#[utoipa::path(get, path = "/v1/events/{id}/proof", operation_id = "get_event_proof", tag = "integrity",
    params(("id" = String, Path, description = "The record id")),
    responses((status = 200, body = Proof), Denied, BadRequest, NotFound, Conflict, Unavailable))]
pub async fn proof(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Proof>> {
    let r = load(&state, &p, &id).await?;
    let proof = prove(&*state.seals, &*state.seal_blobs, &p.tenant_id, &r).await.map_err(|e| match e {
        NoProof::NotSealed => {
            ApiError::Conflict(format!("record `{id}` is not sealed yet; seals are made every few minutes"))
        }
        NoProof::Store(e) => e.into(),
    })?;
    audit(&state, &p, Operation::ViewIntegrity, json!({"record_id": id, "seal": proof.statement.body.seq})).await?;
    Ok(Json(proof))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SealParams {
    /// The first sequence number to list (default 0).
    #[serde(default)]
    pub from: u64,
    /// At most this many seals (1–500, default 100).
    pub limit: Option<u32>,
}

/// A page of seals with the key that signs them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SealPage {
    /// The signing key (PEM) and its id. Compare it with the key you keep: a verifier must not
    /// take the server's word for it.
    pub public_key: String,
    pub key_id: String,
    pub items: Vec<Seal>,
    /// `from` for the next page; absent on the last page.
    pub next: Option<u64>,
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> ApiResult<T> {
    serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("not a valid query string: {e}")))
}

/// The tenant's seals in order, with the public key.
#[utoipa::path(get, path = "/v1/integrity/seals", operation_id = "list_seals", tag = "integrity",
    params(SealParams),
    responses((status = 200, body = SealPage), Denied, BadRequest, Unavailable))]
pub async fn list_seals(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<SealPage>> {
    let q: SealParams = query(&uri)?;
    check_seq("from", q.from)?;
    let limit = match q.limit {
        None => 100,
        Some(l @ 1..=500) => l as usize,
        Some(_) => return Err(ApiError::field("limit", "from 1 to 500")),
    };
    let mut items = state.seals.seals(&p.tenant_id, q.from, limit + 1).await?;
    let next = (items.len() > limit).then(|| q.from + limit as u64);
    items.truncate(limit);
    audit(&state, &p, Operation::ViewIntegrity, json!({"seals_from": q.from, "count": items.len()})).await?;
    let der = state.signer.public_key_der().await.map_err(ApiError::Internal)?;
    Ok(Json(SealPage {
        public_key: public_key_pem(&der).map_err(ApiError::Internal)?,
        key_id: key_id(&der),
        items,
        next,
    }))
}

/// One seal's digest: its statement, signature and every leaf it covers (id, leaf hash,
/// occurrence time, category), in tree order — what an independent verifier checks an export
/// against.
#[utoipa::path(get, path = "/v1/integrity/seals/{seq}", operation_id = "get_seal_digest", tag = "integrity",
    params(("seq" = u64, Path, description = "The seal's sequence number")),
    responses((status = 200, body = SealDigest), Denied, BadRequest, NotFound, Unavailable))]
pub async fn seal_digest(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(seq): Path<String>,
) -> ApiResult<Json<SealDigest>> {
    let seq: u64 = seq.parse().map_err(|_| ApiError::field("seq", "a seal's sequence number (0, 1, 2 …)"))?;
    check_seq("seq", seq)?;
    let bytes = state
        .seal_blobs
        .get(&digest_key(&p.tenant_id, seq)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no seal {seq}")))?;
    let digest: SealDigest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("seal {seq}'s digest is not readable: {e}")))?;
    audit(&state, &p, Operation::ViewIntegrity, json!({"seal": seq})).await?;
    Ok(Json(digest))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The earlier seal's sequence number.
    pub from: u64,
    /// The later seal's sequence number (≥ `from`).
    pub to: u64,
}

/// Two seals and the RFC 9162 consistency proof between the logs of seals they state (sizes
/// `from + 1` and `to + 1`): the later log extends the earlier one, nothing rewritten.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consistency {
    pub from: Statement,
    pub to: Statement,
    /// Base64 hashes, RFC 9162 §2.1.4.
    pub proof: Vec<String>,
}

/// The consistency proof between any two seals.
#[utoipa::path(get, path = "/v1/integrity/consistency", operation_id = "get_seal_consistency", tag = "integrity",
    params(ConsistencyParams),
    responses((status = 200, body = Consistency), Denied, BadRequest, NotFound, Unavailable))]
pub async fn consistency(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: Uri,
) -> ApiResult<Json<Consistency>> {
    let q: ConsistencyParams = query(&uri)?;
    check_seq("from", q.from)?;
    check_seq("to", q.to)?;
    if q.from > q.to {
        return Err(ApiError::field("from", "must not be after `to`"));
    }
    let seals = seals_through(&*state.seals, &p.tenant_id, Some(q.to)).await?;
    if seals.len() as u64 != q.to + 1 || seals.iter().enumerate().any(|(i, s)| s.seq() != i as u64) {
        return Err(ApiError::NotFound(format!("no unbroken chain of seals 0 to {}", q.to)));
    }
    let leaves: Vec<_> = seals.iter().map(|s| s.statement.body.log_leaf()).collect();
    let proof = consistency_proof(&leaves, q.from as usize + 1).iter().map(|h| b64(h)).collect();
    audit(&state, &p, Operation::ViewIntegrity, json!({"consistency": [q.from, q.to]})).await?;
    Ok(Json(Consistency {
        from: seals[q.from as usize].statement.clone(),
        to: seals[q.to as usize].statement.clone(),
        proof,
    }))
}
