//! Tamper evidence that survives DPO erasure and retention (docs/integrity.md).
//!
//! - `commit`: each record's key and the salted commitments of its personal values; its leaf.
//! - `merkle`: RFC 9162 tree hash, inclusion and consistency proofs.
//! - `seal`: signed statements over journal intervals, chained and logged; the signing key.
//! - `sealer`: seals what the journal holds since the last seal (idempotent, resumable).
//! - `verify`: re-derives every seal from the store and names each discrepancy.
//! - `proof`: one record's inclusion proof up to its signed seal.
//!
//! Knows the record model and the storage ports; no job, no HTTP.

pub mod commit;
pub mod merkle;
pub mod proof;
pub mod seal;
pub mod sealer;
pub mod verify;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

pub use commit::{Integrity, derive, erase, stamp};
pub use seal::{LocalSigner, PurgeNote, Seal, SealDigest, SealSigner};

/// Standard base64 with padding: every hash, key, salt and signature in the formats.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn unb64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(s)
}

/// RFC 8785 (JCS) canonical JSON of a value.
pub fn canonical(v: &serde_json::Value) -> Vec<u8> {
    serde_jcs::to_vec(v).expect("a JSON value canonicalises")
}

/// The blob a seal's digest is kept in (beside the seal; on AWS in the Object Lock bucket).
pub fn digest_key(tenant: &str, seq: u64) -> Result<crate::store::BlobKey, crate::store::StoreError> {
    crate::store::BlobKey::new(tenant, "seals", &format!("{seq:012}.json"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn canonical_json_is_rfc_8785() {
        // Keys sorted by UTF-16 code units, no whitespace, ECMAScript numbers (RFC 8785 §3.2.3).
        let v = json!({"b": [1e21, 0.5, -0.0, 100], "a": "€\u{1}", "\u{e9}": true, "Z": null});
        assert_eq!(
            String::from_utf8(super::canonical(&v)).unwrap(),
            "{\"Z\":null,\"a\":\"€\\u0001\",\"b\":[1e+21,0.5,0,100],\"é\":true}"
        );
    }
}
