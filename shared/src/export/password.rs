//! The archive password: seed 003's rule, and sealing so it is never stored in plaintext.
//!
//! Rule (Huawei AICC's export task): only letters, digits and `_ @ %`, 1 to 12 characters.
//! Letters are ASCII: 7-Zip and the ZIP AES format derive the key from the password's bytes,
//! and non-ASCII letters encode differently across tools, so such an archive may not open.
//!
//! The password lives in the task only sealed with AES-256-GCM under the export key (from
//! configuration), bound to the tenant and task id, and is dropped once the archive is written.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::FieldError;

pub const MAX_LEN: usize = 12;

/// Every way the password breaks the rule, each with its own message (empty when it is fine).
pub fn check(field: &str, pw: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let len = pw.chars().count();
    if len == 0 {
        errs.push(FieldError::new(field, "must not be empty; leave it out for an archive without a password"));
    }
    if len > MAX_LEN {
        errs.push(FieldError::new(field, format!("is {len} characters long; at most {MAX_LEN} are allowed")));
    }
    let mut bad: Vec<char> =
        pw.chars().filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '%'))).collect();
    bad.sort_unstable();
    bad.dedup();
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .map(|c| match c {
                ' ' => "space".to_owned(),
                c if c.is_control() => format!("U+{:04X}", *c as u32),
                c => format!("`{c}`"),
            })
            .collect();
        errs.push(FieldError::new(
            field,
            format!(
                "{} not allowed; use only the letters A–Z and a–z, the digits 0–9 and _ @ %",
                if shown.len() == 1 { format!("{} is", shown[0]) } else { format!("{} are", shown.join(", ")) }
            ),
        ));
    }
    errs
}

/// Seals and opens passwords with the export key.
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
#[error("the sealed password cannot be opened (wrong export key, or tampered)")]
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

    fn reasons(pw: &str) -> Vec<String> {
        check("password", pw).into_iter().map(|e| e.reason).collect()
    }

    #[test]
    fn the_seed_rule_with_one_message_per_violation() {
        for ok in ["a", "Secret_1@%", "ABCDEFGHIJKL", "123456789012", "_@%"] {
            assert!(reasons(ok).is_empty(), "{ok}: {:?}", reasons(ok));
        }
        assert_eq!(reasons("ABCDEFGHIJKLM"), vec!["is 13 characters long; at most 12 are allowed"]);
        assert!(reasons("")[0].contains("must not be empty"));
        assert!(reasons("pass word")[0].starts_with("space is not allowed"), "{:?}", reasons("pass word"));
        assert!(reasons("pass#1")[0].starts_with("`#` is not allowed"));
        assert!(reasons("pässwörd")[0].starts_with("`ä`, `ö` are not allowed"), "{:?}", reasons("pässwörd"));
        assert!(reasons("密码")[0].contains("not allowed"));
        // Two violations at once: two messages.
        assert_eq!(reasons("this is far too long!").len(), 2);
    }

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
