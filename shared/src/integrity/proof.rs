//! One record's proof: its leaf, the RFC 9162 inclusion path up to its seal's root, and the
//! signed seal — everything a verifier needs besides the record and the public key (≤ 2 KB).

use serde::{Deserialize, Serialize};

use super::digest_key;
use crate::merkle::{Hash, b64, inclusion_proof, unb64, verify_inclusion};
use crate::record::Record;
use crate::record::integrity::derive;
use crate::seal::{SealDigest, Statement, unhash, verify_signature};
use crate::store::{BlobStore, SealStore, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proof {
    pub record: String,
    /// The sealed leaf hash (base64) and the record's leaf derived from it now: equal unless the
    /// record was changed after sealing.
    pub leaf: String,
    pub leaf_now: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the seal's root (base64), RFC 9162 §2.1.3.
    pub path: Vec<String>,
    pub statement: Statement,
    pub signature: String,
    /// DPO erasure jobs that anonymised values of this record (verified through commitments).
    pub erased_by: Vec<String>,
}

/// Why no proof can be given.
#[derive(Debug, thiserror::Error)]
pub enum NoProof {
    #[error("the record is not sealed yet")]
    NotSealed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The proof of a stored record.
pub async fn prove(seals: &dyn SealStore, blobs: &dyn BlobStore, tenant: &str, r: &Record) -> Result<Proof, NoProof> {
    let Some(batch) = r.integrity.as_ref().map(|i| i.batch.clone()) else { return Err(NoProof::NotSealed) };
    let seal = seals.seal_of_batch(tenant, &batch).await?.ok_or(NoProof::NotSealed)?;
    let bytes = blobs
        .get(&digest_key(tenant, seal.seq())?)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("seal {} has no digest", seal.seq())))?;
    let digest: SealDigest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("digest: {e}")))?;
    let index = digest.leaves.iter().position(|l| l.id == r.id).ok_or(NoProof::NotSealed)?;
    let leaves: Vec<Hash> = digest
        .leaves
        .iter()
        .map(|l| unhash(&l.leaf).ok_or_else(|| StoreError::Corrupt("a digest leaf is not a hash".into())))
        .collect::<Result<_, _>>()?;
    let now = derive(r);
    Ok(Proof {
        record: r.id.clone(),
        leaf: digest.leaves[index].leaf.clone(),
        leaf_now: b64(&now.leaf),
        leaf_index: index as u64,
        tree_size: leaves.len() as u64,
        path: inclusion_proof(&leaves, index).iter().map(|h| b64(h)).collect(),
        statement: seal.statement,
        signature: seal.signature,
        erased_by: now.erased_by.into_iter().collect(),
    })
}

/// Checks a proof against a record and the public key (what `tools/verify_trail.py proof` does).
pub fn check(p: &Proof, r: &Record, public_key: &[u8]) -> Result<(), &'static str> {
    let leaf = derive(r).leaf;
    if b64(&leaf) != p.leaf {
        return Err("the record does not give the sealed leaf");
    }
    let path: Option<Vec<Hash>> = p.path.iter().map(|h| unhash(h)).collect();
    let root = unhash(&p.statement.body.root).ok_or("the seal's root is not a hash")?;
    if p.tree_size != p.statement.body.size
        || !verify_inclusion(&leaf, p.leaf_index, p.tree_size, &path.ok_or("a path hash is not a hash")?, &root)
    {
        return Err("the inclusion path does not lead to the seal's root");
    }
    let sig = unb64(&p.signature).map_err(|_| "the signature is not base64")?;
    if !verify_signature(public_key, &p.statement.bytes(), &sig) {
        return Err("the seal's signature does not verify");
    }
    Ok(())
}
