//! Verification: re-derives every seal of a tenant from the store and names each discrepancy by
//! record and kind. Checks, in order: the seal chain (sequence, `prev`, the log of seals, every
//! signature against the given public key, an auditor's anchor), each seal against its digest
//! object (the copy the store cannot rewrite on AWS), each digest's leaves against its root, each
//! sealed record against its leaf (erased values through their commitments; a missing record
//! against the retention purges noted in the journal, sealed or still pending), and the store's
//! records against the seals (a record no seal covers and no pending journal entry lists was
//! slipped in).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::digest_key;
use super::sealer::{interval_leaves, records_by_id, seals_through};
use crate::merkle::{Frontier, Hash, b64, root, unb64};
use crate::record::Category;
use crate::record::integrity::derive;
use crate::seal::{Seal, SealDigest, purge_cutoffs, unhash, verify_signature};
use crate::store::{BlobStore, EventFilter, Order, PageRequest, RecordStore, SealStore, StoreError, StoreResult};

/// What kind of discrepancy a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// A sealed record's content no longer gives its leaf (any field: times, actor, text …).
    Modified,
    /// A sealed record is gone and no retention purge explains it.
    Deleted,
    /// A stored record that no seal covers and no pending journal entry lists.
    Inserted,
    /// A record journaled in a sealed interval but left out of its seal (stored too late).
    Unsealed,
    /// The record's integrity data is inconsistent (a value without salt, a lost erased value).
    BadIntegrityData,
    /// A seal that should exist is not in the seal store (gap, or cut off the end of the chain).
    SealMissing,
    /// The seal store and the digest copy disagree, or the chain does not link.
    SealReplaced,
    /// A signature that the public key does not verify.
    BadSignature,
    /// The log of seals does not give the root a seal states.
    LogMismatch,
    /// A seal without its digest object, or a digest whose leaves do not give the seal's root.
    DigestMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<u64>,
    pub detail: String,
}

/// A record whose values a DPO erasure replaced: it verifies through their commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedRecord {
    pub record: String,
    pub jobs: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub tenant: String,
    pub seals: u64,
    /// Sealed records checked against their leaves.
    pub records_checked: u64,
    /// Anonymised by a DPO erasure, verified through their commitments.
    pub erased: Vec<ErasedRecord>,
    /// Sealed records removed by a noted retention purge, by category.
    pub purged: BTreeMap<Category, u64>,
    /// Stored records not sealed yet (journaled after the last seal).
    pub pending: u64,
    /// The window of occurrence times scanned for records no seal covers.
    pub scanned: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The latest seal: its sequence number and statement hash, an anchor for the next run.
    pub last_seal: Option<(u64, String)>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, kind: Kind, record: Option<&str>, seal: Option<u64>, detail: impl Into<String>) {
        self.findings.push(Finding { kind, record: record.map(str::to_owned), seal, detail: detail.into() });
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only records that occurred in `[from, to)` are checked (the chain always is, whole).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// A seal the auditor trusts from earlier (sequence number, statement hash base64): the
    /// chain must still hold it.
    pub anchor: Option<(u64, String)>,
}

pub struct Verifier<'a> {
    pub seals: &'a dyn SealStore,
    pub records: &'a dyn RecordStore,
    pub blobs: &'a dyn BlobStore,
    /// DER SubjectPublicKeyInfo of the sealing key.
    pub public_key: &'a [u8],
}

impl Verifier<'_> {
    async fn digest(&self, tenant: &str, seq: u64) -> StoreResult<Option<SealDigest>> {
        match self.blobs.get(&digest_key(tenant, seq)?).await? {
            None => Ok(None),
            Some(b) => {
                serde_json::from_slice(&b).map(Some).map_err(|e| StoreError::Corrupt(format!("digest {seq}: {e}")))
            }
        }
    }

    fn signed(&self, d: &SealDigest) -> bool {
        unb64(&d.signature).is_ok_and(|sig| verify_signature(self.public_key, &d.statement.bytes(), &sig))
    }

    pub async fn verify(&self, tenant: &str, opts: &Options) -> StoreResult<Report> {
        let mut rep = Report { tenant: tenant.to_owned(), ..Default::default() };
        let seals = seals_through(self.seals, tenant, None).await?;
        rep.seals = seals.len() as u64;

        // 1. The chain: sequence, links, the log of seals, signatures.
        let mut log = Frontier::default();
        let mut prev: Option<&Seal> = None;
        for s in &seals {
            let st = &s.statement;
            let expected = prev.map_or(0, |p| p.seq() + 1);
            if s.seq() != expected {
                for missing in expected..s.seq() {
                    rep.find(Kind::SealMissing, None, Some(missing), "a gap in the chain of seals");
                }
                // Carry on as if the missing seals' log leaves were unknown: the log cannot match.
            }
            if st.body.tenant != tenant {
                rep.find(Kind::SealReplaced, None, Some(s.seq()), format!("sealed for tenant {}", st.body.tenant));
            }
            let link = prev.map(|p| b64(&p.statement.hash()));
            if prev.is_some() && s.seq() == expected && st.prev != link {
                rep.find(Kind::SealReplaced, None, Some(s.seq()), "does not link to the previous seal's statement");
            }
            if prev.is_some_and(|p| st.body.from_pos.as_deref() != Some(p.statement.body.to_pos.as_str())) {
                rep.find(
                    Kind::SealReplaced,
                    None,
                    Some(s.seq()),
                    "its interval does not start where the previous one ended",
                );
            }
            log.push(st.body.log_leaf());
            if st.log_size != log.size() || st.log_root != b64(&log.root()) {
                rep.find(Kind::LogMismatch, None, Some(s.seq()), "the log of seals does not give the stated root");
            }
            if !unb64(&s.signature).is_ok_and(|sig| verify_signature(self.public_key, &st.bytes(), &sig)) {
                rep.find(
                    Kind::BadSignature,
                    None,
                    Some(s.seq()),
                    format!("not signed by the key {}", crate::seal::key_id(self.public_key)),
                );
            }
            prev = Some(s);
        }
        if let Some((seq, hash)) = &opts.anchor {
            match seals.iter().find(|s| s.seq() == *seq) {
                None => rep.find(Kind::SealMissing, None, Some(*seq), "the anchored seal is no longer in the chain"),
                Some(s) if b64(&s.statement.hash()) != *hash => {
                    rep.find(Kind::SealReplaced, None, Some(*seq), "differs from the anchored seal")
                }
                Some(_) => {}
            }
        }
        rep.last_seal = seals.last().map(|s| (s.seq(), b64(&s.statement.hash())));

        // 2. Digests beyond the last stored seal: seals cut off the end of the chain.
        let mut next = seals.last().map_or(0, |s| s.seq() + 1);
        while let Some(d) = self.digest(tenant, next).await? {
            let detail =
                if self.signed(&d) { "its signed digest exists; the seal was removed" } else { "a digest exists" };
            rep.find(Kind::SealMissing, None, Some(next), detail);
            next += 1;
        }

        // 3. Each seal against its digest, the digest's leaves against the root, the records.
        // A purge notes its cutoffs in the journal before it deletes anything; until the next
        // seal signs them, they wait in the pending entries — read those too, so a purge is
        // explained the moment it has run, not only once it is sealed.
        let after = seals.last().map(|s| s.statement.body.to_pos.clone());
        let pending_entries = self.seals.journal(tenant, after.as_deref(), None, usize::MAX).await?;
        let cutoffs = purge_cutoffs(
            seals
                .iter()
                .flat_map(|s| s.statement.body.purges.iter())
                .chain(pending_entries.iter().flat_map(|e| &e.purges)),
        );
        let in_window = |at: i64| {
            opts.from.is_none_or(|f| at >= f.timestamp_micros()) && opts.to.is_none_or(|t| at < t.timestamp_micros())
        };
        let mut sealed_ids: HashSet<String> = HashSet::new();
        let mut oldest: Option<i64> = None;
        for s in &seals {
            let seq = Some(s.seq());
            let Some(d) = self.digest(tenant, s.seq()).await? else {
                // Without its digest the records cannot be named one by one; re-derive the
                // interval from the journal and compare the root, and count its records as sealed.
                let (leaves, matches) = interval_leaves(self.seals, s).await?;
                let detail = if matches {
                    "the seal's digest object is missing (its records still give its root)"
                } else {
                    "the seal's digest object is missing, and its records no longer give its root"
                };
                rep.find(Kind::DigestMismatch, None, seq, detail);
                sealed_ids.extend(leaves.into_iter().map(|l| l.0.id));
                continue;
            };
            if d.statement != s.statement || d.signature != s.signature {
                rep.find(Kind::SealReplaced, None, seq, "the seal store and the digest object disagree");
            }
            let hashes: Option<Vec<Hash>> = d.leaves.iter().map(|l| unhash(&l.leaf)).collect();
            if hashes.is_none_or(|h| h.len() as u64 != d.statement.body.size || b64(&root(&h)) != d.statement.body.root)
            {
                rep.find(Kind::DigestMismatch, None, seq, "the digest's leaves do not give the sealed root");
            }
            sealed_ids.extend(d.leaves.iter().map(|l| l.id.clone()));
            oldest = d.leaves.iter().map(|l| l.occurred_at).chain(oldest).min();
            let wanted: Vec<String> =
                d.leaves.iter().filter(|l| in_window(l.occurred_at)).map(|l| l.id.clone()).collect();
            let stored = records_by_id(self.seals, tenant, &wanted).await?;
            for l in d.leaves.iter().filter(|l| in_window(l.occurred_at)) {
                rep.records_checked += 1;
                match stored.get(&l.id) {
                    None if cutoffs.get(&l.category).is_some_and(|c| c.timestamp_micros() > l.occurred_at) => {
                        *rep.purged.entry(l.category).or_default() += 1;
                    }
                    None => rep.find(Kind::Deleted, Some(&l.id), seq, "sealed, gone, and no retention purge covers it"),
                    Some(r) => {
                        let got = derive(r);
                        for p in &got.problems {
                            rep.find(Kind::BadIntegrityData, Some(&l.id), seq, p.clone());
                        }
                        if b64(&got.leaf) != l.leaf {
                            rep.find(Kind::Modified, Some(&l.id), seq, "its content no longer gives its sealed leaf");
                        } else if !got.erased_by.is_empty() {
                            rep.erased
                                .push(ErasedRecord { record: l.id.clone(), jobs: got.erased_by.into_iter().collect() });
                        }
                    }
                }
            }
            // Records journaled in this interval but not sealed in it.
            let b = &s.statement.body;
            let entries = self.seals.journal(tenant, b.from_pos.as_deref(), Some(&b.to_pos), usize::MAX).await?;
            let sealed_here: HashSet<&str> = d.leaves.iter().map(|l| l.id.as_str()).collect();
            let extra: Vec<(String, String)> = entries
                .iter()
                .flat_map(|e| {
                    e.ids.iter().filter(|i| !sealed_here.contains(i.as_str())).map(|i| (i.clone(), e.batch.clone()))
                })
                .collect();
            let ids: Vec<String> = extra.iter().map(|e| e.0.clone()).collect();
            let got = records_by_id(self.seals, tenant, &ids).await?;
            for (id, batch) in &extra {
                if got.get(id).is_some_and(|r| r.integrity.as_ref().is_some_and(|i| &i.batch == batch)) {
                    rep.find(Kind::Unsealed, Some(id), seq, "journaled in this seal's interval but not in the seal");
                }
            }
        }

        // 4. Every stored record in the window is sealed, or pending in the journal.
        let pending: HashSet<(&str, &str)> =
            pending_entries.iter().flat_map(|e| e.ids.iter().map(|i| (i.as_str(), e.batch.as_str()))).collect();
        // Without `from`, the scan starts a day before the oldest sealed record (a DynamoDB time
        // query reads per day, and the store cannot list a tenant's records otherwise): a record
        // slipped in with an older time is found with `from`. The report says what was scanned.
        let window_from = opts.from.unwrap_or_else(|| {
            oldest.and_then(DateTime::<Utc>::from_timestamp_micros).unwrap_or_else(Utc::now) - chrono::Duration::days(1)
        });
        let window_to = opts.to.unwrap_or_else(|| Utc::now() + chrono::Duration::days(1));
        rep.scanned = Some((window_from, window_to));
        let mut filter = EventFilter::window(window_from, window_to);
        filter.order = Order::OldestFirst;
        let mut page = PageRequest { limit: 1000, after: None };
        loop {
            let got = self.records.query(tenant, &filter, page.clone()).await?;
            for r in &got.records {
                if sealed_ids.contains(&r.id) {
                    continue;
                }
                let batch = r.integrity.as_ref().map(|i| i.batch.as_str()).unwrap_or("");
                if pending.contains(&(r.id.as_str(), batch)) {
                    rep.pending += 1;
                } else if !sealed_ids.contains(&r.id) {
                    rep.find(
                        Kind::Inserted,
                        Some(&r.id),
                        None,
                        "stored, but no seal covers it and the journal does not list it",
                    );
                }
            }
            match got.next {
                Some(n) => page.after = Some(n),
                None => break,
            }
        }
        Ok(rep)
    }
}

/// The kinds found, for a one-line summary.
pub fn kinds(rep: &Report) -> BTreeSet<Kind> {
    rep.findings.iter().map(|f| f.kind).collect()
}
