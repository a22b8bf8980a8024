//! Tamper evidence that survives DPO erasure and retention (docs/integrity.md): the jobs over
//! the formats of `merkle`, `record::integrity` (each record's commitments and leaf) and `seal`.
//!
//! - `sealer`: seals what the journal holds since the last seal (idempotent, resumable).
//! - `verify`: re-derives every seal from the store and names each discrepancy.
//! - `proof`: one record's inclusion proof up to its signed seal.
//!
//! Runs on the storage ports; no HTTP.

pub mod proof;
pub mod sealer;
pub mod verify;

/// The blob a seal's digest is kept in (beside the seal; on AWS in the Object Lock bucket).
pub fn digest_key(tenant: &str, seq: u64) -> Result<crate::store::BlobKey, crate::store::StoreError> {
    crate::store::BlobKey::new(tenant, "seals", &format!("{seq:012}.json"))
}
