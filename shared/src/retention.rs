//! Retention: how long each category is kept per tenant, the legal hold, and the purge.
//!
//! Mechanism (both back ends): records carry no expiry of their own; a scheduled purge (in
//! `auditrail serve`, or the scheduler function in AWS) deletes what is older than the tenant's
//! retention through the category index, and re-reads the legal hold before every batch. So a
//! hold set at any time stops every deletion from then on, including for records written long
//! before the hold — nothing needs rewriting when the hold changes. Every purge that deleted
//! something is recorded as `RETENTION_PURGE` with counts and cutoffs per category (which
//! sealed leaves it removed: those of the category older than the cutoff), never contents.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, FieldError};
use crate::record::{Actor, ActorKind, Category, Record, ResultCode};
use crate::seal::PurgeNote;
use crate::store::{BeforePurge, BlobKey, BlobStore, RecordStore, SealStore, SettingsStore, StoreResult, SubjectStore};

pub const SETTING: &str = "retention";
/// The shortest retention a tenant may set (the DynamoDB store relies on it: see
/// [`crate::store::MIN_RETENTION_DAYS`]).
pub const MIN_DAYS: u32 = crate::store::MIN_RETENTION_DAYS;
pub const MAX_DAYS: u32 = 3650;
const BATCH: usize = 500;

/// Default days per category: audit data for the longest usual audit period, the personal-data
/// groups for two years (consents five, as proof), error reports a month (they are not
/// pseudonymised), co-browsing three months.
pub fn default_days(c: Category) -> u32 {
    match c {
        Category::Audit | Category::SignIn => 400,
        Category::Cobrowse => 90,
        Category::Contact | Category::DirectoryEntry | Category::CampaignCustomer => 730,
        Category::Consent => 1825,
        Category::ErrorReport => 30,
    }
}

pub const DEFAULT_EXPORT_ARCHIVE_DAYS: u32 = 7;

fn default_export_archive_days() -> u32 {
    DEFAULT_EXPORT_ARCHIVE_DAYS
}

/// A tenant's retention settings as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retention {
    /// Days to keep, per category.
    pub days: BTreeMap<Category, u32>,
    /// While true, nothing of the tenant is deleted by retention.
    #[serde(default)]
    pub legal_hold: bool,
    /// Days an export archive stays downloadable.
    #[serde(default = "default_export_archive_days")]
    pub export_archive_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            days: Category::ALL.iter().map(|&c| (c, default_days(c))).collect(),
            legal_hold: false,
            export_archive_days: DEFAULT_EXPORT_ARCHIVE_DAYS,
        }
    }
}

/// The body of `PUT /v1/settings/retention`: what it names changes, what it leaves out keeps its
/// current value (an admin who only lifts the legal hold does not also cut a longer retention
/// back to the default); a category set to `null` goes back to its default.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionUpdate {
    /// Days per category to change (1–3650), or `null` for the category's default.
    #[serde(default, deserialize_with = "each_once")]
    #[schema(value_type = BTreeMap<String, Option<u32>>)]
    pub days: BTreeMap<String, Option<u32>>,
    /// Absent: unchanged.
    #[serde(default)]
    pub legal_hold: Option<bool>,
    /// Absent: unchanged.
    #[serde(default)]
    pub export_archive_days: Option<u32>,
}

/// A map whose keys may each appear once (serde keeps the last of a repeated key, which would
/// set a retention the admin did not read back).
fn each_once<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<u32>>, D::Error> {
    struct Once;
    impl<'de> serde::de::Visitor<'de> for Once {
        type Value = BTreeMap<String, Option<u32>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of days per category")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Option<u32>>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("`{k}` is given twice")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Once)
}

impl RetentionUpdate {
    /// Whether this update names every category, the legal hold and the archive days: it can
    /// replace stored settings that cannot be read, as nothing of them is kept.
    pub fn is_complete(&self) -> bool {
        let named: std::collections::BTreeSet<_> = self.days.keys().filter_map(|k| Category::parse(k)).collect();
        self.legal_hold.is_some()
            && self.export_archive_days.is_some()
            && Category::ALL.iter().all(|c| named.contains(c))
    }

    /// The settings after this update of `current`.
    pub fn resolve(self, current: &Retention) -> Result<Retention, ApiError> {
        let mut out = current.clone();
        if let Some(hold) = self.legal_hold {
            out.legal_hold = hold;
        }
        let mut errs = Vec::new();
        for (name, days) in self.days {
            match (Category::parse(&name), days) {
                (None, _) => errs.push(FieldError::new(
                    format!("days.{name}"),
                    format!(
                        "not a category; one of {}",
                        Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
                (Some(c), None) => {
                    out.days.insert(c, default_days(c));
                }
                (Some(_), Some(d)) if !(MIN_DAYS..=MAX_DAYS).contains(&d) => {
                    errs.push(FieldError::new(format!("days.{name}"), format!("from {MIN_DAYS} to {MAX_DAYS} days")))
                }
                (Some(c), Some(d)) => {
                    out.days.insert(c, d);
                }
            }
        }
        if let Some(d) = self.export_archive_days {
            if (1..=90).contains(&d) {
                out.export_archive_days = d;
            } else {
                errs.push(FieldError::new("export_archive_days", "from 1 to 90 days"));
            }
        }
        if errs.is_empty() { Ok(out) } else { Err(ApiError::Invalid(errs)) }
    }
}

/// The tenant's retention settings. Stored settings that cannot be read are an error, not the
/// defaults: a purge with default days could delete what a longer retention or a legal hold
/// keeps, and a partial update would store the defaults over them.
pub async fn load(settings: &dyn SettingsStore, tenant: &str) -> StoreResult<Retention> {
    load_stored(settings, tenant).await?.1.map_err(|reason| {
        crate::store::StoreError::Backend(anyhow::anyhow!("stored retention settings unreadable: {reason}"))
    })
}

/// [`load`], with the stored value it read (`None` while the defaults apply), for an update
/// that must not overwrite a change made since (`SettingsStore::swap_setting`). Settings that
/// cannot be read come back as the reason, beside the value, so that complete settings can
/// replace them.
pub async fn load_stored(
    settings: &dyn SettingsStore,
    tenant: &str,
) -> StoreResult<(Option<serde_json::Value>, Result<Retention, String>)> {
    let Some(v) = settings.get_setting(tenant, SETTING).await? else { return Ok((None, Ok(Retention::default()))) };
    let read = serde_json::from_value::<Retention>(v.clone()).map(|mut r| {
        // Settings stored before a category existed keep its default.
        for &c in Category::ALL {
            r.days.entry(c).or_insert_with(|| default_days(c));
        }
        r
    });
    Ok((Some(v), read.map_err(|e| e.to_string().chars().take(200).collect())))
}

/// Stored settings that cannot be read, for the audit record of the change that replaces them:
/// as stored, or their JSON text cut to 4,096 bytes (at a character's end) when longer.
pub fn shown(stored: Option<&serde_json::Value>) -> serde_json::Value {
    const MAX: usize = 4096;
    let Some(v) = stored else { return serde_json::Value::Null };
    let text = v.to_string();
    if text.len() <= MAX {
        return v.clone();
    }
    let end = (0..=MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    serde_json::Value::String(format!("{}…", &text[..end]))
}

/// The archive days of stored settings, also when the rest of them cannot be read (a valid
/// `export_archive_days` is still what the admin set); else the default.
pub fn archive_days(stored: Option<&serde_json::Value>, read: &Result<Retention, String>) -> u32 {
    match read {
        Ok(r) => r.export_archive_days,
        Err(_) => stored
            .and_then(|v| v.get("export_archive_days"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| (1..=90).contains(d))
            .unwrap_or(DEFAULT_EXPORT_ARCHIVE_DAYS),
    }
}

/// What one purge of one tenant did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PurgeReport {
    pub tenant: String,
    pub held: bool,
    pub deleted: BTreeMap<Category, u64>,
    pub blobs_deleted: u64,
}

/// The blob an attachment reference points at.
pub fn attachment_key(tenant: &str, a: &crate::record::Attachment) -> Option<BlobKey> {
    if a.is_error_report() { BlobKey::error_report(tenant, &a.blob) } else { BlobKey::attachment(tenant, &a.blob) }.ok()
}

/// The blobs of a record's own uploads: its attachments, never an error report it names (an
/// error report's own file is `error-reports/{its id}`). What the purge and the DPO's erasure
/// delete with a record.
pub fn upload_keys<'a>(tenant: &'a str, r: &'a Record) -> impl Iterator<Item = BlobKey> + 'a {
    r.attachments.iter().filter(|a| !a.is_error_report()).filter_map(move |a| attachment_key(tenant, a))
}

/// Deletes the blobs of the records a purge is about to delete, before it deletes them: a blob
/// that cannot be deleted stops the purge with its records still stored, so the next run finds
/// them again (deleting a blob that is already gone is no error), and no purge leaves a blob
/// behind that no record points at any more. An upload that a record outside the batch also
/// names (one recording attached to a request and its response) is kept for that record.
struct DeleteAttachments<'a> {
    blobs: &'a dyn BlobStore,
    subjects: &'a dyn SubjectStore,
    tenant: &'a str,
    deleted: AtomicU64,
}

impl DeleteAttachments<'_> {
    /// Whether a record other than the `naming` ones of the batch names the upload `blob`.
    async fn named_elsewhere(&self, blob: &str, naming: &std::collections::BTreeSet<&str>) -> StoreResult<bool> {
        let key = crate::record::subject::upload_key(blob);
        let (found, _) = self.subjects.subject_lookup(self.tenant, &key, false, (None, None), naming.len()).await?;
        // More than the batch's records that name it: one is surely elsewhere.
        Ok(found.len() > naming.len() || found.iter().any(|r| !naming.contains(r.id.as_str())))
    }
}

#[async_trait::async_trait]
impl BeforePurge for DeleteAttachments<'_> {
    async fn run(&self, records: &[Record]) -> StoreResult<()> {
        // Each upload once, with the records of the batch that name it (a record may name it
        // twice, several records once each).
        let mut uploads: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for r in records {
            for a in r.attachments.iter().filter(|a| !a.is_error_report()) {
                uploads.entry(a.blob.as_str()).or_default().insert(r.id.as_str());
            }
        }
        let mut keys = Vec::new();
        for (blob, naming) in &uploads {
            if let Ok(key) = BlobKey::attachment(self.tenant, blob)
                && !self.named_elsewhere(blob, naming).await?
            {
                keys.push(key);
            }
        }
        // An error report's own file (as the DPO's erasure).
        keys.extend(
            records
                .iter()
                .filter(|r| r.category == Category::ErrorReport)
                .filter_map(|r| BlobKey::error_report(self.tenant, &r.id).ok()),
        );
        for key in keys {
            self.blobs.delete(&key).await?;
            self.deleted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The stores a purge works on, borrowed (`App::purge_stores`; a test may put a failing blob
/// store in).
#[derive(Clone, Copy)]
pub struct PurgeStores<'a> {
    pub records: &'a dyn RecordStore,
    pub subjects: &'a dyn SubjectStore,
    pub blobs: &'a dyn BlobStore,
    pub settings: &'a dyn SettingsStore,
    pub seals: &'a dyn SealStore,
}

/// Purges one tenant: every category older than its retention, in batches, re-checking the
/// legal hold before each batch.
pub async fn purge_tenant(stores: PurgeStores<'_>, tenant: &str, now: DateTime<Utc>) -> StoreResult<PurgeReport> {
    let PurgeStores { records, subjects, blobs, settings, seals } = stores;
    let mut report = PurgeReport { tenant: tenant.to_owned(), ..Default::default() };
    // The cutoffs go into the journal before anything is deleted, so a sealed record that is
    // gone verifies as purged by retention, never as an unexplained deletion (docs/integrity.md).
    let retention = load(settings, tenant).await?;
    if retention.legal_hold {
        report.held = true;
        return Ok(report);
    }
    let notes: Vec<PurgeNote> = Category::ALL
        .iter()
        .filter_map(|&category| {
            let before =
                Duration::try_days(i64::from(retention.days[&category])).and_then(|d| now.checked_sub_signed(d))?;
            Some(PurgeNote { category, before })
        })
        .collect();
    let note_batch = ulid::Ulid::generate().to_string();
    seals.note_purges(tenant, &note_batch, &notes).await?;
    // A category whose purge fails (a blob that cannot be deleted keeps its batch stored) stops
    // there; the others go on, what was deleted is recorded, and then the run reports the error.
    let mut failed = None;
    for &category in Category::ALL {
        loop {
            let retention = load(settings, tenant).await?;
            if retention.legal_hold {
                report.held = true;
                break;
            }
            // Checked: a stored period too long for a date purges nothing rather than panicking.
            // Never past the cutoff noted in the journal (a retention lengthened meanwhile purges
            // less; one shortened waits for the next run).
            let Some(before) = Duration::try_days(i64::from(retention.days[&category]))
                .and_then(|d| now.checked_sub_signed(d))
                .map(|b| notes.iter().find(|n| n.category == category).map_or(b, |n| b.min(n.before)))
            else {
                break;
            };
            let attachments = DeleteAttachments { blobs, subjects, tenant, deleted: AtomicU64::new(0) };
            let gone = records.purge_with(tenant, category, before, BATCH, &attachments).await;
            report.blobs_deleted += attachments.deleted.load(Ordering::Relaxed);
            let gone = match gone {
                Ok(gone) => gone,
                Err(e) => {
                    tracing::error!(tenant, category = category.as_str(), error = %e, "retention purge of a category failed");
                    failed.get_or_insert(e);
                    break;
                }
            };
            if !gone.is_empty() {
                *report.deleted.entry(category).or_default() += gone.len() as u64;
            }
            if gone.len() < BATCH {
                break;
            }
        }
        if report.held {
            break;
        }
    }
    if !report.deleted.is_empty() {
        let rec = Record::system(
            tenant,
            "RETENTION_PURGE",
            Actor { kind: Some(ActorKind::System), username: Some("retention".into()), ..Default::default() },
            Some(ResultCode::Ok),
            // Which sealed leaves it removed, in closed form: every record of a category that
            // occurred before its cutoff (the same cutoffs the journal note `note_batch` holds,
            // which the next seal signs).
            json!({
                "deleted": report.deleted,
                "blobs_deleted": report.blobs_deleted,
                "cutoffs": notes.iter().filter(|n| report.deleted.contains_key(&n.category)).collect::<Vec<_>>(),
                "journal_batch": note_batch,
            }),
        );
        records.append(tenant, &[rec]).await?;
        // Purged means gone from every file of the store, not only from its tables.
        records.wipe_removed().await?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Purges every registered tenant; one tenant's failure does not stop the others.
pub async fn purge_all(stores: PurgeStores<'_>, now: DateTime<Utc>) -> StoreResult<Vec<PurgeReport>> {
    let mut out = Vec::new();
    for tenant in stores.settings.tenants().await? {
        match purge_tenant(stores, &tenant, now).await {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(tenant = %tenant, error = %e, "retention purge failed"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_settings_are_shown_bounded_and_their_archive_days_read_alone() {
        let small = json!({"days": "all", "legal_hold": true});
        assert_eq!(shown(Some(&small)), small);
        assert_eq!(shown(None), serde_json::Value::Null);
        // 3-byte characters across the cut: at most 4,096 bytes, never half a character.
        let big = json!({"days": "€".repeat(3000)});
        let cut = shown(Some(&big));
        let text = cut.as_str().unwrap();
        assert!(text.ends_with('…') && text.len() <= 4096 + '…'.len_utf8(), "{}", text.len());
        assert!(text.len() > 4000, "cut near the bound, not far below it");
        let unread = Err("unreadable".to_owned());
        for (stored, days) in [
            (json!({"export_archive_days": 2}), 2),
            (json!({"export_archive_days": 0}), DEFAULT_EXPORT_ARCHIVE_DAYS),
            (json!({"export_archive_days": 91}), DEFAULT_EXPORT_ARCHIVE_DAYS),
            (json!({"export_archive_days": "2"}), DEFAULT_EXPORT_ARCHIVE_DAYS),
            (json!({"export_archive_days": 4294967298u64}), DEFAULT_EXPORT_ARCHIVE_DAYS),
            (json!([]), DEFAULT_EXPORT_ARCHIVE_DAYS),
        ] {
            assert_eq!(archive_days(Some(&stored), &unread), days, "{stored}");
        }
        let read = Ok(Retention { export_archive_days: 30, ..Retention::default() });
        assert_eq!(archive_days(Some(&json!({"export_archive_days": 2})), &read), 30, "readable settings win");
    }

    #[test]
    fn updates_change_what_they_name_and_keep_the_rest() {
        let u: RetentionUpdate = serde_json::from_value(json!({"days": {"audit": 30}, "legal_hold": true})).unwrap();
        let r = u.resolve(&Retention::default()).unwrap();
        assert_eq!(r.days[&Category::Audit], 30);
        assert_eq!(r.days[&Category::ErrorReport], 30);
        assert_eq!(r.days[&Category::SignIn], 400);
        assert!(r.legal_hold);
        // Lifting the hold alone keeps every retention as it was; `null` is the default again.
        let lift: RetentionUpdate = serde_json::from_value(json!({"legal_hold": false})).unwrap();
        let lifted = lift.resolve(&r).unwrap();
        assert_eq!(lifted.days, r.days);
        assert!(!lifted.legal_hold);
        let reset: RetentionUpdate = serde_json::from_value(json!({"days": {"audit": null}})).unwrap();
        let reset = reset.resolve(&r).unwrap();
        assert_eq!(reset.days[&Category::Audit], 400);
        assert!(reset.legal_hold, "left out: kept");
        let bad: RetentionUpdate = serde_json::from_value(
            json!({"days": {"calls": 3, "audit": 0}, "legal_hold": false, "export_archive_days": 0}),
        )
        .unwrap();
        match bad.resolve(&r) {
            Err(ApiError::Invalid(e)) => {
                let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, vec!["days.audit", "days.calls", "export_archive_days"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_category_given_twice_is_refused() {
        let e = crate::error::parse_json::<RetentionUpdate>(br#"{"days": {"audit": 30, "audit": 3000}}"#, "body");
        match e {
            Err(ApiError::Invalid(errs)) => {
                assert_eq!(errs[0].field, "days");
                assert!(errs[0].reason.contains("`audit` is given twice"), "{errs:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
