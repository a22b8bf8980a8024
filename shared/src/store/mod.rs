//! Storage ports: what the domain needs from a record store and a blob store.
//!
//! Adapters: `sqlite` (embedded, the default) and, behind features, DynamoDB and S3; one file
//! per port in each. Both pass the conformance suite in `testkit::conformance`. A port takes the
//! whole filter and plans its own reads, because the best plan differs per back end; positions
//! are opaque to callers.

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod sqlite;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::record::{Category, Record, ResultCode, fold};
use crate::task::{BadBody, Task, TaskKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The back end is throttling; the caller may retry later. Nothing was half-written.
    #[error("store throttled")]
    Throttled,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The item cannot be stored as given (e.g. over the back end's item size).
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("store failure: {0}")]
    Backend(#[source] anyhow::Error),
}

impl StoreError {
    pub fn backend(e: impl Into<anyhow::Error>) -> Self {
        Self::Backend(e.into())
    }

    /// Whether trying again later may succeed: throttling, timeouts and back-end failures
    /// (5xx, I/O). Invalid input, missing and corrupt data fail the same way every time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled | Self::Backend(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How a store failure reaches an HTTP client (the API layer's error lives below the store).
impl From<BadBody> for ApiError {
    fn from(e: BadBody) -> Self {
        StoreError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled => Self::Unavailable,
            StoreError::NotFound => Self::NotFound("no such item".into()),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Invalid(m) => Self::field("record", m),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<BadBody> for StoreError {
    fn from(e: BadBody) -> Self {
        Self::Corrupt(e.0)
    }
}

/// Cuts a listing read with `limit + 1` rows to `limit`, with the position of the next page.
pub fn task_page(mut tasks: Vec<Task>, limit: usize) -> (Vec<Task>, Option<Position>) {
    if tasks.len() <= limit {
        return (tasks, None);
    }
    tasks.truncate(limit);
    let next = tasks.last().map(|t| Position::String(t.id.clone()));
    (tasks, next)
}

/// What happened to one record of an append, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum AppendOutcome {
    Created,
    /// The id was already stored for this tenant: the stored copy is kept, this one dropped.
    Duplicate,
    /// Not stored (e.g. still throttled after every retry); the client may resend it.
    Failed {
        reason: String,
    },
}

/// Ordering of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A fully resolved filter: every field is an equality on an indexed attribute except `text`.
/// The time window is inclusive of `from` and exclusive of `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Matches the actor's username case-folded (`record::fold`); a record without a username (e.g. a
    /// system actor) matches on its user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Substring of the description, compared case-folded (`record::fold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub order: Order,
}

impl EventFilter {
    pub fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            from,
            to,
            actions: Vec::new(),
            categories: Vec::new(),
            user: None,
            employee_id: None,
            result: None,
            session_id: None,
            correlation_id: None,
            text: None,
            order: Order::NewestFirst,
        }
    }

    /// Whether the filter selects only sign-ins ([`Record::is_sign_in`]), so an index of the
    /// sign-ins' employee ids holds every record its `employee_id` can match.
    pub fn sign_ins_only(&self) -> bool {
        self.categories == [Category::SignIn]
            || (!self.actions.is_empty() && self.actions.iter().all(|a| crate::record::catalogue::is_sign_in(a)))
    }

    /// Whether a record satisfies the filter; the reference semantics every adapter must match.
    pub fn matches(&self, r: &Record) -> bool {
        r.occurred_at >= self.from
            && r.occurred_at < self.to
            && (self.actions.is_empty() || self.actions.contains(&r.action))
            && (self.categories.is_empty() || self.categories.contains(&r.category))
            && self.user.as_ref().is_none_or(|u| match &r.actor.username {
                Some(n) => fold(n) == fold(u),
                None => r.actor.user_id.as_deref() == Some(u.as_str()),
            })
            && self.employee_id.as_ref().is_none_or(|e| r.actor.employee_id.as_deref() == Some(e.as_str()))
            && self.result.is_none_or(|x| r.result == Some(x))
            && self.session_id.as_ref().is_none_or(|s| r.session_id.as_deref() == Some(s.as_str()))
            && self.correlation_id.as_ref().is_none_or(|s| r.correlation_id.as_deref() == Some(s.as_str()))
            && self.text.as_ref().is_none_or(|t| r.description_text().is_some_and(|d| fold(&d).contains(&fold(t))))
    }
}

/// Where the next page starts; adapter-specific, opaque to everyone else.
pub type Position = serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<Position>,
}

/// Items read from the back end vs. returned, for read-amplification reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// Records' items read (a GSI entry or a body).
    pub items_read: u64,
    pub items_returned: u64,
    /// Number of index queries issued for this page.
    pub queries: u64,
    /// DynamoDB's time index: posting items read, and their bytes (each lists many records).
    pub postings_read: u64,
    pub posting_bytes: u64,
}

impl std::ops::AddAssign for ReadStats {
    fn add_assign(&mut self, o: Self) {
        self.items_read += o.items_read;
        self.items_returned += o.items_returned;
        self.queries += o.queries;
        self.postings_read += o.postings_read;
        self.posting_bytes += o.posting_bytes;
    }
}

#[derive(Debug, Clone)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next: Option<Position>,
    pub stats: ReadStats,
    /// Which index served the page (for the planner report), e.g. `action`, `user`, `time`.
    pub plan: String,
    /// Set when the store stopped reading before the page was full (DynamoDB's read budget, see
    /// `dynamodb::READ_BUDGET`): every record of the window from its end back to this time (from
    /// its start up to it, oldest first) has been searched; `next` continues from there.
    pub searched_until: Option<DateTime<Utc>>,
}

/// What a purge does with the records it found before it deletes them.
#[async_trait]
pub trait BeforePurge: Send + Sync {
    async fn run(&self, records: &[Record]) -> StoreResult<()>;
}

/// Nothing before a purge.
pub struct NothingFirst;

#[async_trait]
impl BeforePurge for NothingFirst {
    async fn run(&self, _: &[Record]) -> StoreResult<()> {
        Ok(())
    }
}

/// Append-only record storage with idempotent writes and the access patterns of the spec.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Stores records of one tenant; a record whose id is already stored is a duplicate.
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>>;

    /// As [`RecordStore::append`], taking the records: a store that keeps them in memory after
    /// the answer (the embedded store's inbox) need not copy them. Ingest's batches come here.
    async fn append_owned(&self, tenant: &str, records: Vec<Record>) -> StoreResult<Vec<AppendOutcome>> {
        self.append(tenant, &records).await
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Record>>;

    /// Deletes up to `limit` records of `category` that occurred before `before`, oldest first,
    /// with their index entries and request pairs, and returns them. `first` is given the records
    /// before any of them is deleted (the retention deletes their attachments' blobs there): if it
    /// fails, nothing is deleted and a later call finds the same records, so nothing they point
    /// at is left behind by a call that stopped half-way.
    async fn purge_with(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
        first: &dyn BeforePurge,
    ) -> StoreResult<Vec<Record>>;

    /// [`RecordStore::purge_with`], nothing to do first.
    async fn purge(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Record>> {
        self.purge_with(tenant, category, before, limit, &NothingFirst).await
    }

    /// Overwrites a stored record (same id) with new content, re-deriving every index entry
    /// (DPO anonymisation). `NotFound` if it is not stored.
    async fn replace(&self, tenant: &str, record: &Record) -> StoreResult<()>;

    /// One page of records matching the filter, in the filter's order, ties broken by id.
    async fn query(&self, tenant: &str, filter: &EventFilter, page: PageRequest) -> StoreResult<RecordPage>;

    /// Housekeeping after bulk loads (planner statistics, checkpoints); a no-op where the
    /// back end needs none.
    async fn maintain(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Waits until every record appended so far is where every reader finds it (the embedded
    /// store's inbox indexed into SQLite); at once where appends are there when answered.
    async fn settle(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Makes what was removed or overwritten unreadable in every file of the store, before a
    /// DPO erasure or a retention purge reports that it is done (on SQLite: a WAL checkpoint that
    /// truncates the log; `secure_delete` already zeroes freed pages). A no-op where the back end
    /// keeps no such copies the product can reach (DynamoDB).
    async fn wipe_removed(&self) -> StoreResult<()> {
        Ok(())
    }

    /// A short name for logs and reports (`sqlite`, `dynamodb`).
    fn backend(&self) -> &'static str;
}

/// Start and end of one asynchronous action (seed 004), paired at write time by correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestPair {
    pub correlation_id: String,
    pub action: String,
    pub start_id: Option<String>,
    pub end_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Milliseconds from start to end, once both are stored.
    pub delay_ms: Option<i64>,
    pub result: Option<ResultCode>,
}

/// Which pairs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestQuery {
    /// Finished pairs whose delay is at least this many milliseconds, slowest first, started in
    /// `[from, to)`.
    SlowerThan { min_delay_ms: i64, from: DateTime<Utc>, to: DateTime<Utc> },
    /// Starts with no end that began before `started_before` (and not before `from`), newest first.
    Unfinished { started_before: DateTime<Utc>, from: DateTime<Utc> },
}

#[derive(Debug, Clone)]
pub struct RequestPage {
    pub pairs: Vec<RequestPair>,
    pub next: Option<Position>,
    pub stats: ReadStats,
}

/// Reads of the request pairs that `RecordStore::append` maintains for records with a `phase`.
#[async_trait]
pub trait RequestStore: Send + Sync + 'static {
    async fn pair(&self, tenant: &str, correlation_id: &str) -> StoreResult<Option<RequestPair>>;
    async fn pairs(&self, tenant: &str, q: &RequestQuery, page: PageRequest) -> StoreResult<RequestPage>;
}

/// Small per-tenant documents (settings) and the registry of tenants that have data.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    async fn get_setting(&self, tenant: &str, name: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_setting(&self, tenant: &str, name: &str, value: &serde_json::Value) -> StoreResult<()>;
    /// Stores `value` only if the setting is still `expected` (`None`: not stored yet), else
    /// `Conflict`: an update read-modified-written from what `get_setting` gave cannot undo a
    /// change made meanwhile (one admin lifting the legal hold while another sets days).
    async fn swap_setting(
        &self,
        tenant: &str,
        name: &str,
        expected: Option<&serde_json::Value>,
        value: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Notes that a tenant has data (idempotent), so background jobs can find it.
    async fn register_tenant(&self, tenant: &str) -> StoreResult<()>;
    async fn tenants(&self) -> StoreResult<Vec<String>>;
}

/// The DPO subject index (`dpo::subject` keys), written with each record and removed with it.
#[async_trait]
pub trait SubjectStore: Send + Sync + 'static {
    /// Records with the index entry `key` (with `prefix`: entries starting with `key`) that
    /// occurred in `[from, to)`, at most `limit + 1` so a caller can tell "more than `limit`":
    /// the window applies before the limit, so a subject with many records can be narrowed to a
    /// period. One record per matching entry: an entry carries (DynamoDB) or joins (SQLite) its
    /// record, so nothing else is read.
    async fn subject_lookup(
        &self,
        tenant: &str,
        key: &str,
        prefix: bool,
        window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        limit: usize,
    ) -> StoreResult<(Vec<Record>, ReadStats)>;
}

/// A blob's address. Always under its tenant's prefix, so no key can reach another tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey {
    tenant: String,
    area: String,
    path: String,
}

impl BlobKey {
    /// `area` is e.g. `attachments`, `error-reports`, `exports`; `name` an id made by the server.
    pub fn new(tenant: &str, area: &str, name: &str) -> Result<Self, StoreError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 200
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        // A name may be a record id (error reports): every id the record rules allow (`:` too).
        let name_ok = ok(&name.replace(':', "_"));
        if !ok(tenant) || !ok(area) || !name_ok {
            return Err(StoreError::Invalid(
                "blob key parts may only use letters, digits, `_`, `.`, `:` and `-`".into(),
            ));
        }
        Ok(Self { tenant: tenant.to_owned(), area: area.to_owned(), path: format!("tenants/{tenant}/{area}/{name}") })
    }

    /// An upload (`POST /v1/attachments`, which records name as attachments) by its blob id.
    pub fn attachment(tenant: &str, blob: &str) -> Result<Self, StoreError> {
        Self::new(tenant, "attachments", blob)
    }

    /// An error report's own file, by the id of its record.
    pub fn error_report(tenant: &str, record_id: &str) -> Result<Self, StoreError> {
        Self::new(tenant, "error-reports", record_id)
    }

    /// An export's archive, by its task id and extension.
    pub fn export(tenant: &str, task_id: &str, ext: &str) -> Result<Self, StoreError> {
        Self::new(tenant, "exports", &format!("{task_id}.{ext}"))
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn area(&self) -> &str {
        &self.area
    }

    /// The object key / relative file path.
    pub fn as_str(&self) -> &str {
        &self.path
    }
}

/// A blob being read as a stream (large downloads are never held in memory).
pub type BlobReader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> StoreResult<()>;
    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Bytes>>;
    /// The blob as a stream with its size.
    async fn open(&self, key: &BlobKey) -> StoreResult<Option<(BlobReader, u64)>>;
    /// Deleting a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> StoreResult<()>;

    /// Starts a multipart upload; returns its id. Parts are at least `MIN_PART_BYTES` except
    /// the last; the blob appears only when the upload completes.
    async fn start_upload(&self, key: &BlobKey, content_type: &str) -> StoreResult<String>;
    /// Uploads part `number` (1-based; uploading a number again replaces it) and returns its tag.
    async fn upload_part(&self, key: &BlobKey, upload_id: &str, number: i32, bytes: Bytes) -> StoreResult<String>;
    async fn complete_upload(&self, key: &BlobKey, upload_id: &str, parts: &[(i32, String)]) -> StoreResult<()>;
    /// Discards an upload and its parts (idempotent).
    async fn abort_upload(&self, key: &BlobKey, upload_id: &str) -> StoreResult<()>;
    /// Uploads still open under the tenant's area, as (key, upload id).
    async fn open_uploads(&self, tenant: &str, area: &str) -> StoreResult<Vec<(String, String)>>;
    /// A short-lived URL the client can fetch the blob from, where the back end has one (S3);
    /// `None` means the bytes are served by the API itself.
    async fn download_url(&self, key: &BlobKey, ttl: std::time::Duration) -> StoreResult<Option<String>>;
    /// A short-lived URL the client can PUT a large blob to, where the back end has one (S3).
    async fn upload_url(&self, key: &BlobKey, ttl: std::time::Duration) -> StoreResult<Option<String>>;
}

/// The shortest retention, in days, a tenant may set for a category (`retention::MIN_DAYS`): a
/// purge's cut is at least this long before it began, so no record newer than that is purged,
/// which the DynamoDB store's purge horizons rely on (`dynamodb::settings`).
pub const MIN_RETENTION_DAYS: u32 = 1;

/// S3's smallest part (except the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// One append's entry in a tenant's journal: the batch its records were stamped with and their
/// ids in input order (duplicates and writes that failed included: the sealer keeps only the
/// records that carry this batch), or a retention purge noted before it deleted anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Where the entry sits in the tenant's journal: an opaque string that sorts in journal
    /// order (SQLite: commit order; DynamoDB: the batch id, a ULID).
    pub pos: String,
    pub batch: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purges: Vec<crate::seal::PurgeNote>,
}

/// The journal and the seals of tamper evidence (`integrity`). `RecordStore::append` writes a
/// journal entry with every batch it stores (before or with the records, never after).
#[async_trait]
pub trait SealStore: Send + Sync + 'static {
    /// Journal entries after `after` (exclusive) up to `to` (inclusive), in journal order.
    async fn journal(
        &self,
        tenant: &str,
        after: Option<&str>,
        to: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<JournalEntry>>;
    /// Notes retention purges in the journal (before the purge deletes anything).
    async fn note_purges(&self, tenant: &str, batch: &str, notes: &[crate::seal::PurgeNote]) -> StoreResult<()>;
    /// The stored records among `ids` (missing ones left out), in any order.
    async fn records_by_id(&self, tenant: &str, ids: &[String]) -> StoreResult<Vec<Record>>;
    /// Stores the tenant's next seal; `Conflict` if a seal with its `seq` exists.
    async fn put_seal(&self, seal: &crate::seal::Seal) -> StoreResult<()>;
    /// Seals with `seq ≥ from`, in order.
    async fn seals(&self, tenant: &str, from: u64, limit: usize) -> StoreResult<Vec<crate::seal::Seal>>;
    async fn last_seal(&self, tenant: &str) -> StoreResult<Option<crate::seal::Seal>>;
    /// The seal whose interval holds the journal entry of `batch`, if it is sealed.
    async fn seal_of_batch(&self, tenant: &str, batch: &str) -> StoreResult<Option<crate::seal::Seal>>;
    /// How long after a batch id's time its journal entry may still appear (DynamoDB: appends
    /// in flight); the sealer seals nothing younger. Zero where the journal is written in commit
    /// order (SQLite).
    fn settle_time(&self) -> std::time::Duration;
}

/// Task records of asynchronous jobs and schedules (see `jobs`).
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task as version 1; `Conflict` if its id exists.
    async fn create_task(&self, task: &mut Task) -> StoreResult<()>;
    async fn get_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<Option<Task>>;
    /// A tenant's tasks of one kind, newest first.
    async fn list_tasks(
        &self,
        tenant: &str,
        kind: TaskKind,
        page: PageRequest,
    ) -> StoreResult<(Vec<Task>, Option<Position>)>;
    /// Writes the task as the next version if the stored one is still `task.version`
    /// (`Conflict` otherwise), and bumps `task.version` and `updated_at`.
    async fn save_task(&self, task: &mut Task) -> StoreResult<()>;
    async fn delete_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<()>;
    /// Queued and running tasks of a kind across tenants, oldest first (workers, sweeper).
    async fn active_tasks(&self, kind: TaskKind, limit: usize) -> StoreResult<Vec<Task>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_cannot_escape_their_tenant() {
        assert_eq!(BlobKey::new("t1", "attachments", "a.wav").unwrap().as_str(), "tenants/t1/attachments/a.wav");
        for bad in ["..", "a/b", "", "x y"] {
            assert!(BlobKey::new("t1", "attachments", bad).is_err(), "{bad}");
            assert!(BlobKey::new(bad, "attachments", "a").is_err(), "{bad}");
        }
    }
}
