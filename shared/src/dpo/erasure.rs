//! Erasure jobs: the selected records — hits of a DPO search, each checked when the job is asked
//! for — are anonymised in place: every personal value replaced with `{Anonymized by DPO}`, their
//! subject-index entries removed, their attachments, recordings and error-report blobs deleted.
//! Export archives that contain a record the job really changed are deleted and named in the
//! result, and export tasks and schedules whose filter names the person get the identifiers
//! scrubbed from it. Records are kept (anonymised) rather than deleted, so counts, times and the
//! audit trail stay intact (the seed allows either). When the job ends the store wipes what it
//! removed (on the embedded store: a WAL checkpoint with truncation, `secure_delete` on), so no
//! file of the data directory still holds an erased value.
//!
//! The job is a task like an export: claimed under a lease, checkpointed every batch, idempotent.
//! Each batch is planned first — which of its records will change, and which finished exports
//! contain them — and the plan is checkpointed before anything is changed, so a worker killed in
//! the middle resumes with exact counts and without losing an archive to delete. The identifiers
//! to scrub from free text are taken from the selected records when the job is created and kept
//! sealed (AES-GCM) in the task until it ends — never in plaintext.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::subject::{ANONYMIZED, identifiers};
use crate::crypto::{Sealer, seal_context};
use crate::export::withdraw;
use crate::jobs::{self, Task, TaskKind, TaskStatus};
use crate::record::{Actor, ActorKind, Category, Record, ResultCode, Subject};
use crate::retention::upload_keys;
use crate::store::{BlobKey, BlobStore, RecordStore, StoreError, StoreResult, TaskStore};

/// Items per checkpoint.
const BATCH: usize = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErasureResult {
    /// Records whose personal values were really replaced.
    pub anonymized: u64,
    /// Selected records with nothing left to erase when the job reached them (e.g. anonymised
    /// by another erasure in the meantime).
    #[serde(default)]
    pub unchanged: u64,
    /// Selected records no longer stored when the job reached them (purged in the meantime).
    pub missing: u64,
    pub attachments_deleted: u64,
    pub error_reports_deleted: u64,
    /// Export tasks whose archive contained an erased record: the archive is deleted, the task
    /// EXPIRED with the reason.
    pub exports_deleted: Vec<String>,
    /// Export tasks and schedules whose filter named the person: the identifiers in the filter
    /// are replaced with `{Anonymized by DPO}`.
    #[serde(default)]
    pub filters_scrubbed: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ErasureBody {
    pub items: Vec<String>,
    /// Items before this index are done.
    pub next: usize,
    /// The batch `items[next..end]` as planned before any change; `None` between batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Finished exports found to contain a record this job changes; deleted when all items are.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exports: BTreeSet<String>,
    /// Sealed JSON list of identifiers; dropped when the job ends.
    pub sealed_identifiers: Option<String>,
    pub result: ErasureResult,
    pub requested_by: Actor,
    pub started_at: Option<chrono::DateTime<Utc>>,
    pub finished_at: Option<chrono::DateTime<Utc>>,
    pub error: Option<String>,
}

/// One planned batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    pub end: usize,
    /// The batch's records that differ from their anonymised form.
    pub changing: Vec<String>,
}

/// Personal-data categories: their free text is personal through and through.
fn personal(c: Category) -> bool {
    matches!(
        c,
        Category::Contact
            | Category::DirectoryEntry
            | Category::CampaignCustomer
            | Category::Consent
            | Category::ErrorReport
    )
}

/// Case folding for matching identifiers in free text, one char at a time so every folded
/// char maps back to the source char it came from.
fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase()
}

/// Every case-folded occurrence of each identifier replaced with `{Anonymized by DPO}` in one
/// forward pass per identifier, never searching inside a replacement (or a marker already
/// there): it always ends, even when the identifier is a part of the marker ("Ano", "DPO").
pub(crate) fn scrub_text(s: &str, ids: &[String]) -> String {
    let mut out = s.to_owned();
    for id in ids {
        let needle: Vec<char> = id.chars().flat_map(fold).collect();
        if needle.is_empty() {
            continue;
        }
        let parts: Vec<String> = out.split(ANONYMIZED).map(|seg| scrub_segment(seg, &needle)).collect();
        out = parts.join(ANONYMIZED);
    }
    out
}

/// One forward pass over `seg`: the folded text is searched left to right; a match replaces the
/// whole source chars it covers, and the search goes on after them.
fn scrub_segment(seg: &str, needle: &[char]) -> String {
    // The folded chars, each with the byte range of the source char it came from.
    let mut folded: Vec<(char, usize, usize)> = Vec::with_capacity(seg.len());
    for (at, c) in seg.char_indices() {
        folded.extend(fold(c).map(|f| (f, at, at + c.len_utf8())));
    }
    let mut out = String::with_capacity(seg.len());
    let (mut copied, mut i) = (0, 0);
    while i + needle.len() <= folded.len() {
        if folded[i..i + needle.len()].iter().map(|f| f.0).eq(needle.iter().copied()) {
            let (start, end) = (folded[i].1, folded[i + needle.len() - 1].2);
            out.push_str(&seg[copied..start.max(copied)]);
            out.push_str(ANONYMIZED);
            copied = end;
            // Past every folded char of the covered source chars.
            i += needle.len();
            while i < folded.len() && folded[i].1 < end {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&seg[copied..]);
    out
}

/// Replaces string leaves: all of them (`all`), or the identifiers inside them.
fn scrub_value(v: &mut Value, ids: &[String], all: bool) {
    match v {
        Value::String(s) => {
            *s = if all { ANONYMIZED.to_owned() } else { scrub_text(s, ids) };
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub_value(x, ids, all)),
        Value::Object(m) => m.values_mut().for_each(|x| scrub_value(x, ids, all)),
        _ => {}
    }
}

/// The record with every personal value replaced by `{Anonymized by DPO}`.
pub fn anonymize(r: &Record, ids: &[String]) -> Record {
    let mut r = r.clone();
    let all = personal(r.category);
    if let Some(s) = &r.subject {
        r.subject = Some(Subject {
            emails: s.emails.iter().map(|_| ANONYMIZED.to_owned()).collect(),
            phones: s.phones.iter().map(|_| ANONYMIZED.to_owned()).collect(),
            first_name: s.first_name.as_ref().map(|_| ANONYMIZED.to_owned()),
            last_name: s.last_name.as_ref().map(|_| ANONYMIZED.to_owned()),
        });
    }
    for field in [&mut r.description, &mut r.data].into_iter().flatten() {
        scrub_value(field, ids, all);
    }
    for a in &mut r.attachments {
        a.name = ANONYMIZED.to_owned();
    }
    for f in [&mut r.actor.username, &mut r.actor.full_name, &mut r.actor.user_id, &mut r.failure_reason_code]
        .into_iter()
        .flatten()
    {
        let scrubbed = scrub_text(f, ids);
        if scrubbed != *f {
            *f = scrubbed;
        }
    }
    r
}

/// Why a selected id cannot be erased, or the record's identifiers.
fn eligible(r: Option<&Record>) -> Result<Vec<String>, &'static str> {
    let r = r.ok_or("no such record")?;
    if !super::subject::keys(r).is_empty() {
        return Ok(r.subject.as_ref().map(identifiers).unwrap_or_default());
    }
    let s = r.subject.as_ref();
    let anonymised = s.is_some_and(|s| {
        s.emails.iter().chain(&s.phones).chain(&s.first_name).chain(&s.last_name).any(|v| v == ANONYMIZED)
    });
    Err(if anonymised {
        "already anonymised by a DPO erasure"
    } else {
        "not a hit of any DPO search: the record names no e-mail, phone or first and last name, so it holds no \
         personal data to erase"
    })
}

/// Checks the selection — every item must be a hit of a DPO search, or the request is refused
/// with the reason per item — and builds the job (identifiers sealed to it).
pub async fn prepare(
    records: &dyn RecordStore,
    sealer: &Sealer,
    tenant: &str,
    items: Vec<String>,
    by: Actor,
) -> Result<Task, crate::error::ApiError> {
    use crate::error::{ApiError, FieldError};
    if items.is_empty() || items.len() > super::search::MAX_HITS {
        return Err(ApiError::field("items", format!("give 1 to {} record ids", super::search::MAX_HITS)));
    }
    let mut errs = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut unique = items.clone();
    unique.sort();
    unique.dedup();
    for (i, id) in items.iter().enumerate() {
        let found = records.get(tenant, id).await?;
        match eligible(found.as_ref()) {
            Ok(found) => ids.extend(found),
            Err(reason) => errs.push(FieldError::new(format!("items[{i}]"), reason)),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    ids.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    ids.dedup();
    let mut task = Task::new(tenant, TaskKind::Erasure, TaskStatus::Queued, &Value::Null);
    let sealed = sealer.seal(&seal_context(tenant, &task.id), &serde_json::to_string(&ids).expect("json"));
    task.set_body(&ErasureBody {
        items: unique,
        next: 0,
        batch: None,
        exports: BTreeSet::new(),
        sealed_identifiers: Some(sealed),
        result: ErasureResult::default(),
        requested_by: by,
        started_at: None,
        finished_at: None,
        error: None,
    });
    Ok(task)
}

#[derive(Clone)]
pub struct ErasureWorker {
    pub records: Arc<dyn RecordStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub sealer: Sealer,
    pub lease: Duration,
    pub owner: String,
}

impl ErasureWorker {
    /// Runs (or continues) one erasure job to its end; `None` when it was not claimable.
    #[tracing::instrument(skip(self), fields(worker = %self.owner))]
    pub async fn run(&self, tenant: &str, id: &str) -> StoreResult<Option<TaskStatus>> {
        let Some(mut task) = jobs::claim(&*self.tasks, tenant, TaskKind::Erasure, id, &self.owner, self.lease).await?
        else {
            return Ok(None);
        };
        let mut body: ErasureBody = task.body()?;
        if let Some(reason) = jobs::given_up(&task) {
            return self.end(&mut task, body, Some(reason)).await;
        }
        body.started_at.get_or_insert_with(Utc::now);
        let ids: Vec<String> =
            match body.sealed_identifiers.as_deref().map(|s| {
                self.sealer.open(&seal_context(tenant, id), s).ok().and_then(|j| serde_json::from_str(&j).ok())
            }) {
                Some(Some(ids)) => ids,
                Some(None) => {
                    return self.end(&mut task, body, Some("the sealed identifiers cannot be opened".into())).await;
                }
                None => Vec::new(),
            };
        match self.work(tenant, id, &mut task, &mut body, &ids).await {
            Ok(()) => self.end(&mut task, body, None).await,
            Err(StoreError::Conflict(_)) => Ok(None),
            // The shared lifecycle: re-queued if transient and under the limit, else FAILED.
            Err(e) => match jobs::retry_or_fail(&*self.tasks, &mut task, &e).await {
                Ok(TaskStatus::Failed) => {
                    let reason = task.failure.clone();
                    self.end(&mut task, body, reason).await
                }
                Ok(status) => Ok(Some(status)),
                Err(StoreError::Conflict(_)) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    async fn work(
        &self,
        tenant: &str,
        id: &str,
        task: &mut Task,
        body: &mut ErasureBody,
        ids: &[String],
    ) -> StoreResult<()> {
        let written = withdraw::written(&*self.tasks, tenant).await?;
        while body.next < body.items.len() {
            let batch = match body.batch.clone() {
                Some(b) => b,
                None => {
                    let b = self.plan(tenant, body, ids, &written).await?;
                    body.batch = Some(b.clone());
                    task.set_body(&*body);
                    jobs::checkpoint(&*self.tasks, task, self.lease).await?;
                    b
                }
            };
            for item in &batch.changing {
                self.erase_one(tenant, id, item, ids, &mut body.result).await?;
            }
            body.next = batch.end;
            body.batch = None;
            task.set_body(&*body);
            jobs::checkpoint(&*self.tasks, task, self.lease).await?;
        }
        let reason = format!("deleted by DPO erasure {id}: it contained erased records");
        body.result.exports_deleted =
            withdraw::withdraw(&*self.tasks, &*self.blobs, tenant, &body.exports, &reason).await?;
        body.result.filters_scrubbed =
            withdraw::scrub_filters(&*self.tasks, tenant, &|s: &str| scrub_text(s, ids)).await?;
        task.set_body(&*body);
        jobs::checkpoint(&*self.tasks, task, self.lease).await?;
        // Nothing removed may outlive the job in a file of the store (WAL, free pages).
        self.records.wipe_removed().await
    }

    /// Plans the next batch: which records will change, and which written archives hold them.
    /// Counts what will not change (already anonymised, gone) in `body.result`.
    async fn plan(
        &self,
        tenant: &str,
        body: &mut ErasureBody,
        ids: &[String],
        written: &[withdraw::Written],
    ) -> StoreResult<Batch> {
        let end = (body.next + BATCH).min(body.items.len());
        let mut changing = Vec::new();
        for item in &body.items[body.next..end] {
            let Some(r) = self.records.get(tenant, item).await? else {
                body.result.missing += 1;
                continue;
            };
            // Blobs are deleted before the record is replaced, so an anonymised record has none.
            if anonymize(&r, ids) == r {
                body.result.unchanged += 1;
                continue;
            }
            // The record as it was written: an archive holds it if the export's filter selected
            // it and it was stored before the export finished.
            for w in written.iter().filter(|w| w.holds(&r)) {
                body.exports.insert(w.id.clone());
            }
            changing.push(item.clone());
        }
        Ok(Batch { end, changing })
    }

    async fn end(
        &self,
        task: &mut Task,
        mut body: ErasureBody,
        error: Option<String>,
    ) -> StoreResult<Option<TaskStatus>> {
        body.sealed_identifiers = None;
        body.finished_at = Some(Utc::now());
        let status = if error.is_some() { TaskStatus::Failed } else { TaskStatus::Succeeded };
        body.error = error;
        task.status = status;
        task.lease = None;
        task.set_body(&body);
        match self.tasks.save_task(task).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let rec = Record::system(
            &task.tenant_id,
            "DPO_ERASURE_COMPLETED",
            Actor { kind: Some(ActorKind::System), username: Some("dpo-worker".into()), ..Default::default() },
            Some(if status == TaskStatus::Succeeded { ResultCode::Ok } else { ResultCode::Fail }),
            json!({"erasure_id": task.id, "items": body.items.len(), "result": body.result, "error": body.error}),
        );
        self.records.append(&task.tenant_id, &[rec]).await?;
        Ok(Some(status))
    }

    async fn erase_one(
        &self,
        tenant: &str,
        job: &str,
        id: &str,
        ids: &[String],
        result: &mut ErasureResult,
    ) -> StoreResult<()> {
        let Some(r) = self.records.get(tenant, id).await? else {
            result.missing += 1;
            return Ok(());
        };
        for key in upload_keys(tenant, &r) {
            self.blobs.delete(&key).await?;
            result.attachments_deleted += 1;
        }
        if r.category == Category::ErrorReport {
            self.blobs.delete(&BlobKey::error_report(tenant, &r.id)?).await?;
            result.error_reports_deleted += 1;
        }
        let mut anon = anonymize(&r, ids);
        // The replaced values keep their commitments (and the record its sealed leaf); their
        // salts and the record's key are destroyed with them.
        crate::record::integrity::erase(&r, &mut anon, job);
        self.records.replace(tenant, &anon).await?;
        result.anonymized += 1;
        Ok(())
    }

    /// Runs every claimable erasure once.
    pub async fn run_pending(&self) -> StoreResult<usize> {
        let mut ran = 0;
        for t in self.tasks.active_tasks(TaskKind::Erasure, 100).await? {
            if t.claimable(Utc::now()) {
                self.run(&t.tenant_id, &t.id).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn folded(s: &str) -> String {
        s.chars().flat_map(fold).collect()
    }

    #[test]
    fn identifiers_inside_the_marker_are_scrubbed_once_and_the_pass_ends() {
        for name in ["Ano", "Dpo", "Zed", "Nym", "{Anonymized by DPO}", "by", "}"] {
            let text = format!("Hello {name}, {} and {}", name.to_uppercase(), name.to_lowercase());
            let out = scrub_text(&text, &[name.to_owned()]);
            assert_eq!(out, format!("Hello {ANONYMIZED}, {ANONYMIZED} and {ANONYMIZED}"), "{name}");
            assert_eq!(scrub_text(&out, &[name.to_owned()]), out, "idempotent");
        }
        // Non-ASCII folding whose lengths change (İ folds to two chars).
        assert_eq!(
            scrub_text("paní ČEZKOVÁ a İstanbul", &["čezková".into(), "i̇stanbul".into()]),
            format!("paní {ANONYMIZED} a {ANONYMIZED}")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn scrubbing_any_identifier_ends_and_leaves_no_occurrence(
            text in "(\\PC|Ano|DPO|\\{Anonymized by DPO\\}|İ|ß|Σ){0,40}",
            ids in proptest::collection::vec("(\\PC|Ano|nym|İ|ẞ|Σ){1,6}", 1..4),
        ) {
            let out = scrub_text(&text, &ids);
            for id in &ids {
                let needle = folded(id);
                for seg in out.split(ANONYMIZED) {
                    prop_assert!(!folded(seg).contains(&needle), "{id:?} left in {seg:?} of {out:?}");
                }
            }
            prop_assert_eq!(scrub_text(&out, &ids), out.clone());
        }
    }

    #[test]
    fn personal_records_lose_every_personal_value_and_audit_records_only_the_identifiers() {
        let mut r = Record::system(
            "t",
            "CONTACT",
            Actor::default(),
            Some(ResultCode::Ok),
            json!({"body": "Hi, call +420 777 123 456", "n": 3}),
        );
        r.category = Category::Contact;
        r.subject = Some(Subject {
            emails: vec!["Jan@X.cz".into()],
            phones: vec!["+420 777 123 456".into()],
            first_name: None,
            last_name: None,
        });
        let ids = identifiers(r.subject.as_ref().unwrap());
        let a = anonymize(&r, &ids);
        assert_eq!(a.description, Some(json!({"body": ANONYMIZED, "n": 3})));
        assert_eq!(a.subject.as_ref().unwrap().phones, vec![ANONYMIZED]);

        let mut audit = Record::system(
            "t",
            "CREATE_EVALUATION",
            Actor::default(),
            Some(ResultCode::Ok),
            json!({"note": "customer jan@x.cz called from 420777123456, agent Bob"}),
        );
        audit.category = Category::Audit;
        let a = anonymize(&audit, &ids);
        assert_eq!(
            a.description,
            Some(json!({"note": format!("customer {ANONYMIZED} called from {ANONYMIZED}, agent Bob")}))
        );
    }
}
