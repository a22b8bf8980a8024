//! The task model: one document per tenant and kind (an export, an export schedule, a DPO
//! erasure), with its status, lease, attempts and a kind-specific JSON body. A leaf: it knows
//! no store, no job code and no HTTP, so the storage ports, the adapters and the jobs can all
//! use it. The lifecycle (claim, checkpoint, retry or fail) is in [`crate::jobs`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A task body that does not fit its kind's type (corrupt stored data).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadBody(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Export,
    ExportSchedule,
    Erasure,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::ExportSchedule => "export-schedule",
            Self::Erasure => "erasure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Export, Self::ExportSchedule, Self::Erasure].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Expired,
    /// A schedule that fires.
    Active,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Active => "ACTIVE",
        }
    }

    /// Whether a worker still has to run the task (it is in the active-task index).
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// A task record. `body` holds the kind's specification, checkpoint and result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub tenant_id: String,
    pub kind: TaskKind,
    pub status: TaskStatus,
    /// Bumped by every save; a save names the version it read.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Runs that ended in an error (see [`retry_or_fail`]).
    #[serde(default)]
    pub attempts: u32,
    /// Why the task is FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub body: serde_json::Value,
}

impl Task {
    pub fn new(tenant: &str, kind: TaskKind, status: TaskStatus, body: &impl Serialize) -> Self {
        let now = Utc::now();
        Self {
            id: ulid::Ulid::generate().to_string(),
            tenant_id: tenant.to_owned(),
            kind,
            status,
            version: 0,
            created_at: now,
            updated_at: now,
            lease: None,
            attempts: 0,
            failure: None,
            body: serde_json::to_value(body).expect("task bodies serialize"),
        }
    }

    /// The body as the kind's type; a body that does not fit is corrupt stored data.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, BadBody> {
        serde_json::from_value(self.body.clone()).map_err(|e| BadBody(format!("task {} body: {e}", self.id)))
    }

    pub fn set_body(&mut self, body: &impl Serialize) {
        self.body = serde_json::to_value(body).expect("task bodies serialize");
    }

    /// The task as its next save writes it: version bumped, `updated_at` now.
    pub fn next_version(&self) -> Self {
        Self { version: self.version + 1, updated_at: Utc::now(), ..self.clone() }
    }

    /// Whether `now` is past the lease (or there is none).
    pub fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        self.lease.as_ref().is_none_or(|l| l.until <= now)
    }

    /// Whether a worker may claim the task now.
    pub fn claimable(&self, now: DateTime<Utc>) -> bool {
        self.status == TaskStatus::Queued || (self.status == TaskStatus::Running && self.lease_expired(now))
    }
}

/// Whether `id` can be a task id (a ULID), checked before any store is asked.
pub fn valid_id(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}
