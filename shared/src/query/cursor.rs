//! Opaque page cursors: `base64url(json) "." base64url(HMAC-SHA256)`, bound to the tenant and to
//! a hash of the filter. The resolved time window travels inside, so "the last 10 days" does not
//! slide between pages. A cursor from another tenant or filter, or altered in any byte, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::store::Position;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorBody {
    /// Format version.
    pub v: u8,
    /// Tenant.
    pub t: String,
    /// Filter hash.
    pub f: String,
    /// Resolved window, microseconds since the epoch.
    pub from: i64,
    pub to: i64,
    /// Back-end position.
    pub p: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed or has been altered")]
    Tampered,
    #[error("the cursor belongs to a different query; start again without a cursor")]
    OtherFilter,
}

impl CursorKey {
    pub fn new(key: &[u8]) -> Self {
        Self(key.to_vec())
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(b"auditrail-cursor-v1\0");
        m.update(data);
        m
    }

    pub fn seal(&self, body: &CursorBody) -> String {
        let json = serde_json::to_vec(body).expect("cursor bodies serialise");
        let tag = self.mac(&json).finalize().into_bytes();
        format!("{}.{}", B64.encode(&json), B64.encode(tag))
    }

    /// Verifies the signature, then the tenant and filter binding. A foreign tenant's cursor is
    /// reported as tampered, so nothing about other tenants leaks.
    pub fn open(&self, cursor: &str, tenant: &str, filter_hash: &str) -> Result<CursorBody, CursorError> {
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Tampered)?;
        let json = B64.decode(payload).map_err(|_| CursorError::Tampered)?;
        let tag = B64.decode(tag).map_err(|_| CursorError::Tampered)?;
        self.mac(&json).verify_slice(&tag).map_err(|_| CursorError::Tampered)?;
        let body: CursorBody = serde_json::from_slice(&json).map_err(|_| CursorError::Tampered)?;
        if body.v != 1 || body.t != tenant {
            return Err(CursorError::Tampered);
        }
        if body.f != filter_hash {
            return Err(CursorError::OtherFilter);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> CursorBody {
        CursorBody { v: 1, t: "acme".into(), f: "h1".into(), from: 1, to: 2, p: json!({"ts": 5, "id": "x"}) }
    }

    #[test]
    fn round_trip() {
        let k = CursorKey::new(b"k");
        assert_eq!(k.open(&k.seal(&body()), "acme", "h1").unwrap(), body());
    }

    #[test]
    fn any_change_is_detected() {
        let k = CursorKey::new(b"k");
        let c = k.seal(&body());
        assert_eq!(k.open(&c, "globex", "h1"), Err(CursorError::Tampered));
        assert_eq!(k.open(&c, "acme", "h2"), Err(CursorError::OtherFilter));
        assert_eq!(CursorKey::new(b"other").open(&c, "acme", "h1"), Err(CursorError::Tampered));
        let mut bytes = c.into_bytes();
        bytes[3] ^= 1;
        assert_eq!(k.open(&String::from_utf8(bytes).unwrap(), "acme", "h1"), Err(CursorError::Tampered));
        assert_eq!(k.open("garbage", "acme", "h1"), Err(CursorError::Tampered));
    }
}
