//! The sealer: reads a tenant's journal from where its last seal stopped, re-reads the records
//! of each entry (keeping only those stamped with that entry's batch, so a replayed record is
//! never counted twice), and seals the interval. The seal item is written first, conditionally
//! on its sequence number (the commit point: of two sealers, one wins and the other stops);
//! its digest object second. A sealer killed between the two leaves a seal without a digest,
//! which the next run writes before anything else — so every step can be re-run.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::digest_key;
use crate::merkle::{Hash, b64};
use crate::record::Record;
use crate::record::integrity::derive;
use crate::seal::{DigestLeaf, PurgeNote, Seal, SealDigest, SealSigner, make_seal};
use crate::store::{BlobStore, JournalEntry, SealStore, StoreError, StoreResult};

/// Leaves per seal at most (whole journal entries: a seal may exceed it by one entry's records).
pub const MAX_LEAVES: usize = 8192;
/// Journal entries read per call.
const JOURNAL_PAGE: usize = 256;

#[derive(Clone)]
pub struct Sealing {
    pub store: Arc<dyn SealStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub signer: Arc<dyn SealSigner>,
    pub max_leaves: usize,
}

/// What one run sealed for one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SealRun {
    pub tenant: String,
    pub seals: u64,
    pub leaves: u64,
    /// Digests written for seals a killed run had left without one.
    pub repaired: u64,
}

/// The stored records among `ids`, by id (the store batches its own reads).
pub async fn records_by_id(
    store: &dyn SealStore,
    tenant: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, Record>> {
    Ok(store.records_by_id(tenant, ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect())
}

/// The leaves of journal entries: the records stamped with each entry's batch, in entry order.
pub async fn leaves_of(
    store: &dyn SealStore,
    tenant: &str,
    entries: &[JournalEntry],
) -> StoreResult<Vec<(DigestLeaf, Hash)>> {
    let ids: Vec<String> = entries.iter().flat_map(|e| e.ids.iter().cloned()).collect();
    let found = records_by_id(store, tenant, &ids).await?;
    let mut out = Vec::with_capacity(ids.len());
    for e in entries {
        for id in &e.ids {
            let Some(r) = found.get(id) else { continue };
            if r.integrity.as_ref().is_none_or(|i| i.batch != e.batch) {
                continue; // a duplicate of a record stored by another batch
            }
            let d = derive(r);
            out.push((
                DigestLeaf {
                    id: id.clone(),
                    leaf: b64(&d.leaf),
                    occurred_at: r.occurred_at.timestamp_micros(),
                    category: r.category,
                },
                d.leaf,
            ));
        }
    }
    Ok(out)
}

/// A seal's interval re-derived from the journal: its leaves, and whether they still give the
/// sealed root (what repair and verification do when the digest is missing).
pub async fn interval_leaves(store: &dyn SealStore, seal: &Seal) -> StoreResult<(Vec<(DigestLeaf, Hash)>, bool)> {
    let b = &seal.statement.body;
    let entries = store.journal(&b.tenant, b.from_pos.as_deref(), Some(&b.to_pos), usize::MAX).await?;
    let leaves = leaves_of(store, &b.tenant, &entries).await?;
    let hashes: Vec<Hash> = leaves.iter().map(|l| l.1).collect();
    let matches = b64(&crate::merkle::root(&hashes)) == b.root;
    Ok((leaves, matches))
}

/// Every seal of a tenant in order, up to `until` (inclusive) when given.
pub async fn seals_through(store: &dyn SealStore, tenant: &str, until: Option<u64>) -> StoreResult<Vec<Seal>> {
    let mut out: Vec<Seal> = Vec::new();
    loop {
        let from = out.last().map_or(0, |s| s.seq() + 1);
        if until.is_some_and(|u| from > u) {
            break;
        }
        let page = store.seals(tenant, from, 500).await?;
        let done = page.len() < 500;
        out.extend(page);
        if done {
            break;
        }
    }
    if let Some(u) = until {
        out.retain(|s| s.seq() <= u);
    }
    Ok(out)
}

fn backend(e: anyhow::Error) -> StoreError {
    StoreError::Backend(e)
}

impl Sealing {
    pub fn new(store: Arc<dyn SealStore>, blobs: Arc<dyn BlobStore>, signer: Arc<dyn SealSigner>) -> Self {
        Self { store, blobs, signer, max_leaves: MAX_LEAVES }
    }

    /// Writes the digest of `seal` if it is missing (a run killed after the seal, before it).
    async fn repair(&self, seal: &Seal) -> StoreResult<bool> {
        let key = digest_key(&seal.statement.body.tenant, seal.seq())?;
        if self.blobs.get(&key).await?.is_some() {
            return Ok(false);
        }
        let (leaves, matches) = interval_leaves(&*self.store, seal).await?;
        if !matches {
            return Err(StoreError::Corrupt(format!(
                "seal {} has no digest and its records no longer give its root; run `auditrail verify`",
                seal.seq()
            )));
        }
        self.put_digest(seal, leaves.into_iter().map(|l| l.0).collect()).await?;
        Ok(true)
    }

    async fn put_digest(&self, seal: &Seal, leaves: Vec<DigestLeaf>) -> StoreResult<()> {
        let digest = SealDigest { statement: seal.statement.clone(), signature: seal.signature.clone(), leaves };
        let bytes = serde_json::to_vec(&digest).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.blobs.put(&digest_key(&seal.statement.body.tenant, seal.seq())?, bytes.into(), "application/json").await
    }

    /// Seals everything of `tenant` that has settled by `now`.
    pub async fn seal_tenant(&self, tenant: &str, now: DateTime<Utc>) -> StoreResult<SealRun> {
        let mut run = SealRun { tenant: tenant.to_owned(), ..Default::default() };
        let mut last = self.store.last_seal(tenant).await?;
        if let Some(s) = &last
            && self.repair(s).await?
        {
            run.repaired += 1;
        }
        let settle = chrono::Duration::from_std(self.store.settle_time()).unwrap_or_default();
        let settled_before = now - settle;
        let mut pending: Vec<JournalEntry> = Vec::new();
        let mut exhausted = false;
        loop {
            // Take whole entries, in order, until the seal is full or nothing settled is left.
            let after = pending
                .last()
                .map(|e| e.pos.clone())
                .or_else(|| last.as_ref().map(|s| s.statement.body.to_pos.clone()));
            let mut count: usize = pending.iter().map(|e| e.ids.len()).sum();
            if !exhausted && count < self.max_leaves {
                let page = self.store.journal(tenant, after.as_deref(), None, JOURNAL_PAGE).await?;
                let short = page.len() < JOURNAL_PAGE;
                let mut stopped = false;
                for e in page {
                    let settled = ulid::Ulid::from_string(&e.batch)
                        .map(|u| DateTime::<Utc>::from(u.datetime()) < settled_before)
                        .unwrap_or(true);
                    if !settled {
                        // Entries behind it may still be written: nothing more to take now.
                        exhausted = true;
                        stopped = true;
                        break;
                    }
                    if count >= self.max_leaves {
                        stopped = true;
                        break;
                    }
                    count += e.ids.len();
                    pending.push(e);
                }
                exhausted = exhausted || (short && !stopped);
                if !exhausted && count < self.max_leaves {
                    continue;
                }
            }
            if pending.is_empty() {
                return Ok(run);
            }
            let leaves = leaves_of(&*self.store, tenant, &pending).await?;
            let hashes: Vec<Hash> = leaves.iter().map(|l| l.1).collect();
            let purges: Vec<PurgeNote> = pending.iter().flat_map(|e| e.purges.iter().cloned()).collect();
            let to_pos = pending.last().expect("not empty").pos.clone();
            let seal =
                make_seal(&*self.signer, last.as_ref(), tenant, to_pos, &hashes, purges, now).await.map_err(backend)?;
            match self.store.put_seal(&seal).await {
                Ok(()) => {}
                // Another sealer got there first: its seal stands; this run stops.
                Err(StoreError::Conflict(_)) => return Ok(run),
                Err(e) => return Err(e),
            }
            self.put_digest(&seal, leaves.into_iter().map(|l| l.0).collect()).await?;
            run.seals += 1;
            run.leaves += hashes.len() as u64;
            tracing::info!(tenant, seq = seal.seq(), leaves = hashes.len(), "sealed");
            last = Some(seal);
            pending.clear();
            if exhausted {
                return Ok(run);
            }
        }
    }
}
