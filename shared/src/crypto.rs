//! Secrets at rest: sealing (AES-256-GCM under the configured export key, bound to a context
//! such as tenant and task) for export passwords and erasure identifiers, and keyed, salted
//! fingerprints (HMAC-SHA256) for the DPO's search criteria in audit records. Used by export and
//! DPO alike; knows nothing of either.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The context a value is sealed to: its tenant and the task that holds it.
pub fn seal_context(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

/// Seals and opens secrets with the export key; fingerprints personal values.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    fingerprint_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the sealed value cannot be opened (wrong export key, or tampered)")]
pub struct Unsealable;

impl Sealer {
    /// `key` is the configured key material (≥ 32 bytes); it is hashed to the AES-256 key.
    pub fn new(key: &[u8]) -> Self {
        let k = Sha256::digest([b"auditrail export password v1\0".as_slice(), key].concat());
        let f = Sha256::digest([b"auditrail fingerprint v1\0".as_slice(), key].concat());
        Self { cipher: Aes256Gcm::new_from_slice(&k).expect("32-byte key"), fingerprint_key: f.into() }
    }

    /// A salted, keyed hash of a personal value for audit records (HMAC-SHA256 under a key
    /// derived from the configured key, salted with the tenant): the same person searched twice
    /// gives the same fingerprint, but the value cannot be read back or guessed offline.
    pub fn fingerprint(&self, tenant: &str, kind: &str, value: &str) -> String {
        use hmac::Mac;
        let mut m = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key).expect("any key length");
        m.update(tenant.as_bytes());
        m.update(&[0]);
        m.update(kind.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        m.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `context` binds the sealed value to its owner (tenant and task), so it cannot be moved.
    pub fn seal(&self, context: &str, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: secret.as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption does not fail");
        format!("v1.{}.{}", B64.encode(nonce), B64.encode(ct))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<String, Unsealable> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(n), Some(c), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Unsealable);
        };
        let nonce = B64.decode(n).map_err(|_| Unsealable)?;
        let ct = B64.decode(c).map_err(|_| Unsealable)?;
        let nonce: [u8; 12] = nonce.as_slice().try_into().map_err(|_| Unsealable)?;
        let pt = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &ct, aad: context.as_bytes() })
            .map_err(|_| Unsealable)?;
        String::from_utf8(pt).map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_passwords_open_only_in_their_context_and_with_their_key() {
        let s = Sealer::new(&[7u8; 32]);
        let sealed = s.seal("acme/01J", "Secret_1");
        assert!(!sealed.contains("Secret_1"));
        assert_eq!(s.open("acme/01J", &sealed).unwrap(), "Secret_1");
        assert!(s.open("other/01J", &sealed).is_err(), "bound to tenant and task");
        assert!(Sealer::new(&[8u8; 32]).open("acme/01J", &sealed).is_err(), "bound to the key");
        assert!(s.open("acme/01J", &sealed.replace("v1.", "v1.A")).is_err());
        assert_ne!(s.seal("acme/01J", "Secret_1"), sealed, "fresh nonce every time");
    }
}
