//! Seals: a signed statement over one interval of a tenant's journal — the Merkle root of the
//! interval's leaves, chained to the previous seal's statement and placed in a log of all the
//! tenant's seals (itself an RFC 9162 tree, so any two seals have a consistency proof) — and
//! the key that signs them (ECDSA P-256 with SHA-256, DER signatures; the same algorithm an AWS
//! KMS `ECC_NIST_P256` key offers).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::{Frontier, Hash, b64, canonical, leaf_hash, unb64};
use crate::record::Category;

/// A retention purge noted in the journal before it deleted anything: records of `category`
/// that occurred before `before` may be gone, and verification says so instead of "deleted".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PurgeNote {
    pub category: Category,
    pub before: DateTime<Utc>,
}

/// What a seal's place in the tenant's log of seals covers (the log's leaf data is its JCS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealBody {
    pub v: u64,
    pub tenant: String,
    /// 0 for the tenant's first seal, then one more each time.
    pub seq: u64,
    /// The journal interval sealed: after `from_pos` (exclusive; null for the first seal) up to
    /// and including `to_pos`. Positions are opaque, sortable strings.
    pub from_pos: Option<String>,
    pub to_pos: String,
    /// Number of leaves (records) and their RFC 9162 tree hash, base64.
    pub size: u64,
    pub root: String,
    /// Retention purges noted in the interval.
    pub purges: Vec<PurgeNote>,
    pub sealed_at: DateTime<Utc>,
}

/// What is signed: the body, the previous statement's hash and the log of seals up to this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Statement {
    #[serde(flatten)]
    pub body: SealBody,
    /// Base64 SHA-256 of the previous seal's statement (JCS); null for the first.
    pub prev: Option<String>,
    /// The log of this tenant's seals, 0..=seq: its size (seq + 1) and RFC 9162 root, base64.
    pub log_size: u64,
    pub log_root: String,
    /// The signing key's id: hex of the first 8 bytes of SHA-256 of its SubjectPublicKeyInfo.
    pub key_id: String,
}

impl Statement {
    /// SHA-256 of the statement's JCS: what the next seal's `prev` holds.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.bytes()).into()
    }

    /// The signed bytes: the statement's JCS.
    pub fn bytes(&self) -> Vec<u8> {
        canonical(&serde_json::to_value(self).expect("a statement serialises"))
    }
}

impl SealBody {
    /// The seal's leaf in the log of seals.
    pub fn log_leaf(&self) -> Hash {
        leaf_hash(&canonical(&serde_json::to_value(self).expect("a seal body serialises")))
    }
}

/// A signed seal as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seal {
    pub statement: Statement,
    /// Base64 of the DER ECDSA signature over the statement's JCS.
    pub signature: String,
    /// The log's right edge after this seal (base64), so the next seal extends it without
    /// reading every earlier seal. Not signed: derived, and re-derived by verification.
    pub frontier: Vec<String>,
}

impl Seal {
    pub fn seq(&self) -> u64 {
        self.statement.body.seq
    }

    pub fn frontier(&self) -> Option<Frontier> {
        let hashes: Option<Vec<Hash>> = self.frontier.iter().map(|h| unhash(h)).collect();
        Frontier::from_parts(self.statement.log_size, &hashes?)
    }
}

/// One sealed leaf in a seal's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DigestLeaf {
    pub id: String,
    /// Base64 leaf hash.
    pub leaf: String,
    /// When the record occurred (µs since the epoch) and its category: what a retention purge
    /// note is matched against when the record is gone.
    pub occurred_at: i64,
    pub category: Category,
}

/// A seal with every leaf it covers, in tree order: the object kept beside the seal (on AWS in
/// the Object Lock bucket) and what an independent verifier checks records against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealDigest {
    pub statement: Statement,
    pub signature: String,
    pub leaves: Vec<DigestLeaf>,
}

/// A base64 hash back to bytes.
pub fn unhash(s: &str) -> Option<Hash> {
    unb64(s).ok().and_then(|v| v.try_into().ok())
}

/// Signs seal statements: a key in the data directory (`LocalSigner`) or in AWS KMS
/// (`KmsSigner`, behind the `aws` feature).
#[async_trait::async_trait]
pub trait SealSigner: Send + Sync + 'static {
    /// The public key as DER SubjectPublicKeyInfo (KMS: fetched once, on first use).
    async fn public_key_der(&self) -> anyhow::Result<Vec<u8>>;
    /// A DER ECDSA P-256 / SHA-256 signature over `message`.
    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>>;
}

/// The public key as PEM (what an auditor keeps).
pub fn public_key_pem(der: &[u8]) -> anyhow::Result<String> {
    VerifyingKey::from_public_key_der(der)
        .map_err(|e| anyhow::anyhow!("not a P-256 public key: {e}"))?
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A PEM public key (what an auditor keeps) as DER SubjectPublicKeyInfo.
pub fn public_key_der_from_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    let key = VerifyingKey::from_public_key_pem(pem).map_err(|e| anyhow::anyhow!("not a P-256 public key: {e}"))?;
    Ok(key.to_public_key_der().map_err(|e| anyhow::anyhow!("{e}"))?.into_vec())
}

/// The key id of a DER SubjectPublicKeyInfo.
pub fn key_id(der: &[u8]) -> String {
    Sha256::digest(der)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` (DER) is a valid signature of `message` by the key `public_der`.
pub fn verify_signature(public_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (VerifyingKey::from_public_key_der(public_der), DerSignature::from_bytes(signature))
    else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

/// A P-256 key derived from the configured seal secret (`AUDITRAIL_SEAL_KEY`, or `seal.key` in
/// the data directory): the same secret gives the same key, so every process of a deployment
/// signs with one key.
pub struct LocalSigner {
    key: SigningKey,
    public_der: Vec<u8>,
    key_id: String,
}

impl LocalSigner {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut counter = 0u32;
        let key = loop {
            let d = Sha256::new()
                .chain_update(b"auditrail seal key v1\0")
                .chain_update(counter.to_be_bytes())
                .chain_update(secret)
                .finalize();
            // A hash is a valid scalar with overwhelming probability; the counter covers the rest.
            if let Ok(k) = SigningKey::from_slice(&d) {
                break k;
            }
            counter += 1;
        };
        let public_der = key.verifying_key().to_public_key_der().expect("a P-256 key encodes").into_vec();
        let key_id = key_id(&public_der);
        Self { key, public_der, key_id }
    }
}

impl LocalSigner {
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }
}

#[async_trait::async_trait]
impl SealSigner for LocalSigner {
    async fn public_key_der(&self) -> anyhow::Result<Vec<u8>> {
        Ok(self.public_der.clone())
    }

    async fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let sig: DerSignature = self.key.sign(message);
        Ok(sig.as_bytes().to_vec())
    }
}

/// Makes the next seal of a tenant: `prev` is the tenant's latest seal, `leaves` the interval's
/// leaf hashes in order.
pub async fn make_seal(
    signer: &dyn SealSigner,
    prev: Option<&Seal>,
    tenant: &str,
    to_pos: String,
    leaves: &[Hash],
    purges: Vec<PurgeNote>,
    sealed_at: DateTime<Utc>,
) -> anyhow::Result<Seal> {
    let body = SealBody {
        v: 1,
        tenant: tenant.to_owned(),
        seq: prev.map_or(0, |p| p.seq() + 1),
        from_pos: prev.map(|p| p.statement.body.to_pos.clone()),
        to_pos,
        size: leaves.len() as u64,
        root: b64(&crate::merkle::root(leaves)),
        purges,
        sealed_at,
    };
    let mut log = match prev {
        None => Frontier::default(),
        Some(p) => p.frontier().ok_or_else(|| anyhow::anyhow!("seal {} has a malformed frontier", p.seq()))?,
    };
    log.push(body.log_leaf());
    let statement = Statement {
        prev: prev.map(|p| b64(&p.statement.hash())),
        log_size: log.size(),
        log_root: b64(&log.root()),
        key_id: key_id(&signer.public_key_der().await?),
        body,
    };
    let signature = b64(&signer.sign(&statement.bytes()).await?);
    Ok(Seal { statement, signature, frontier: log.hashes().iter().map(|h| b64(h)).collect() })
}

/// Purge notes by category: the latest cutoff of each (a later purge covers an earlier one).
pub fn purge_cutoffs<'a>(notes: impl IntoIterator<Item = &'a PurgeNote>) -> BTreeMap<Category, DateTime<Utc>> {
    let mut out = BTreeMap::new();
    for n in notes {
        let e = out.entry(n.category).or_insert(n.before);
        *e = (*e).max(n.before);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seals_chain_sign_and_grow_one_log() {
        let signer = LocalSigner::from_secret(b"a seal secret of thirty-two bytes!");
        assert_eq!(LocalSigner::from_secret(b"a seal secret of thirty-two bytes!").key_id(), signer.key_id());
        let at = Utc::now();
        let s0 = make_seal(&signer, None, "acme", "p1".into(), &[leaf_hash(b"a")], vec![], at).await.unwrap();
        let s1 = make_seal(&signer, Some(&s0), "acme", "p2".into(), &[], vec![], at).await.unwrap();
        assert_eq!((s0.seq(), s1.seq()), (0, 1));
        assert_eq!(s1.statement.prev, Some(b64(&s0.statement.hash())));
        assert_eq!(s1.statement.body.from_pos.as_deref(), Some("p1"));
        let logs = [s0.statement.body.log_leaf(), s1.statement.body.log_leaf()];
        assert_eq!(s1.statement.log_root, b64(&crate::merkle::root(&logs)));
        for s in [&s0, &s1] {
            let sig = unb64(&s.signature).unwrap();
            assert!(verify_signature(signer.public_der(), &s.statement.bytes(), &sig));
            let mut forged = s.statement.clone();
            forged.body.size += 1;
            assert!(!verify_signature(signer.public_der(), &forged.bytes(), &sig));
        }
        let other = LocalSigner::from_secret(b"another secret, thirty-two bytes!!");
        assert!(!verify_signature(other.public_der(), &s0.statement.bytes(), &unb64(&s0.signature).unwrap()));
        let pem = public_key_pem(signer.public_der()).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(public_key_der_from_pem(&pem).unwrap(), signer.public_der());
        assert!(public_key_der_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
    }
}
