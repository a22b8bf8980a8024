//! Exports (seed 003's export task, done so it survives anything): a request becomes a task;
//! a worker streams the filter's records through the archive writer into a multipart upload,
//! checkpointing after every part; the archive is downloaded through an audited, short-lived
//! link and expires after the tenant's `export_archive_days`.

pub mod cells;
pub mod deflate;
mod entry;
pub mod ocsf;
pub mod password;
pub mod rows;
pub mod schedule;
pub mod withdraw;
pub mod worker;
pub mod writer;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::rows::ExportView;
use self::writer::WriterState;
use crate::crypto::{Sealer, seal_context};
use crate::error::{ApiError, FieldError};
use crate::jobs::{Task, TaskKind, TaskStatus};
use crate::query::{CursorKey, View, render_time};
use crate::record::Actor;
use crate::store::{BlobKey, EventFilter, Position, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Csv,
    Jsonl,
    /// OCSF 1.1.0 events, one per line (docs/ocsf.md).
    Ocsf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zip,
    Gzip,
    None,
}

/// `POST /v1/exports`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The list's query parameters as JSON (`from`, `to`, `action`: [..], `category`, `user`,
    /// `result`, `q`, …), plus `view`: `events` (default) or `sign-ins` (then `period`,
    /// `account`, `employee_id`, `operation`, `result`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: Map<String, Value>,
    #[serde(default)]
    pub format: Format,
    /// Default `zip`.
    pub compression: Option<Compression>,
    /// Archive password (implies `zip`): letters, digits and `_ @ %`, 1–12 characters.
    pub password: Option<String>,
    /// IANA zone the times are written in (default UTC).
    pub tz: Option<String>,
}

impl std::fmt::Debug for ExportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRequest")
            .field("filter", &self.filter)
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tz", &self.tz)
            .finish()
    }
}

/// What the worker needs, fixed when the task is created (the window is absolute, so a resumed
/// export exports the same records).
#[derive(Clone, Serialize, Deserialize)]
pub struct ExportSpec {
    pub view: ExportView,
    pub filter: EventFilter,
    /// The filter as the user gave it (for the task list and the audit record).
    pub echo: Map<String, Value>,
    pub format: Format,
    pub compression: Compression,
    pub tz: Option<String>,
    /// AES-GCM sealed (see `password`); removed once the archive is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<String>,
    /// Whether the archive is (to be) password-protected; stays after the password is dropped.
    #[serde(default)]
    pub encrypted: bool,
    /// Set when a schedule created the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    pub requested_by: Actor,
}

/// Where a running export is: everything to continue after the last uploaded part.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub upload_id: String,
    pub parts: Vec<(i32, String)>,
    /// Query position after the last record in the uploaded parts (`None`: from the start).
    pub cursor: Option<Position>,
    /// Records in the uploaded parts.
    pub records: u64,
    pub writer: WriterState,
    /// Every part is uploaded; only completing the upload is left.
    #[serde(default)]
    pub finishing: bool,
}

/// The export task's body.
#[derive(Clone, Serialize, Deserialize)]
pub struct ExportBody {
    pub spec: ExportSpec,
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub bytes: u64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    pub checkpoint: Option<Checkpoint>,
}

impl ExportSpec {
    pub fn file_name(&self) -> String {
        writer::ArchiveWriter::file_name(self.view, self.format, self.compression, None)
    }

    pub fn content_type(&self) -> &'static str {
        match (self.compression, self.format) {
            (Compression::Zip, _) => "application/zip",
            (Compression::Gzip, _) => "application/gzip",
            (Compression::None, Format::Csv) => "text/csv; charset=utf-8",
            (Compression::None, Format::Jsonl | Format::Ocsf) => "application/x-ndjson",
        }
    }

    pub fn tz(&self) -> Option<Tz> {
        self.tz.as_deref().and_then(|z| z.parse().ok())
    }
}

/// The archive's blob: `tenants/<tenant>/exports/<task id>.<ext>`.
pub fn archive_key(task: &Task, spec: &ExportSpec) -> Result<BlobKey, StoreError> {
    let name = spec.file_name();
    let ext = name.split_once('.').map(|(_, e)| e).unwrap_or("bin");
    BlobKey::export(&task.tenant_id, &task.id, ext)
}

/// A request checked and resolved against `now`, before anything is stored.
pub struct Resolved {
    pub view: ExportView,
    pub filter: EventFilter,
    pub echo: Map<String, Value>,
    pub format: Format,
    pub compression: Compression,
    pub tz: Option<String>,
    pub password: Option<String>,
}

/// The filter object as a query string for the list's parser (so an export accepts exactly
/// what the list accepts, with the same messages).
fn filter_query(filter: &Map<String, Value>, errs: &mut Vec<FieldError>) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in filter {
        if crate::query::paging::Paging::is_page_control(k) {
            let why = match k.as_str() {
                "tz" => "give `tz` beside `filter`, not inside it",
                _ => "not a filter; an export contains every matching record",
            };
            errs.push(FieldError::new(format!("filter.{k}"), why));
            continue;
        }
        let mut push = |v: &Value| match v {
            Value::String(s) => pairs.push((k.clone(), s.clone())),
            Value::Number(n) => pairs.push((k.clone(), n.to_string())),
            Value::Bool(b) => pairs.push((k.clone(), b.to_string())),
            Value::Null => {}
            _ => errs.push(FieldError::new(format!("filter.{k}"), "must be a string, a number or a list of strings")),
        };
        match v {
            Value::Array(items) => items.iter().for_each(&mut push),
            other => push(other),
        }
    }
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// Checks an export request: the filter as the list would, the password rule, the
/// format/compression combination and the zone. Every problem is reported at once.
pub fn resolve(req: ExportRequest, tenant: &str, key: &CursorKey, now: DateTime<Utc>) -> Result<Resolved, ApiError> {
    let mut errs = Vec::new();
    let mut filter_map = req.filter;
    let view = match filter_map.remove("view") {
        None => ExportView::Events,
        Some(Value::String(v)) if v.parse::<ExportView>().is_ok() => v.parse().unwrap_or(ExportView::Events),
        Some(_) => {
            errs.push(FieldError::new("filter.view", "must be `events` or `sign-ins`"));
            ExportView::Events
        }
    };
    let raw = filter_query(&filter_map, &mut errs);
    let list_view = match view {
        ExportView::Events => View::Events,
        ExportView::SignIns => View::SignIns,
    };
    let parsed = match crate::query::params::parse(&raw, list_view, tenant, key, now) {
        Ok(p) => Some(p),
        Err(ApiError::Invalid(list_errs)) => {
            errs.extend(list_errs.into_iter().map(|e| FieldError::new(format!("filter.{}", e.field), e.reason)));
            None
        }
        Err(other) => return Err(other),
    };
    let tz = match req.tz {
        Some(z) if z.parse::<Tz>().is_err() => {
            errs.push(FieldError::new("tz", "not an IANA time zone name (e.g. Europe/Prague)"));
            None
        }
        other => other,
    };
    if let Some(pw) = &req.password {
        errs.extend(password::check("password", pw));
    }
    let compression = match (req.compression, req.password.is_some()) {
        (None, _) => Compression::Zip,
        (Some(Compression::Zip), _) => Compression::Zip,
        (Some(c), true) => {
            errs.push(FieldError::new(
                "compression",
                "a password needs `zip` (gzip and plain files cannot carry one); leave compression out or set `zip`",
            ));
            c
        }
        (Some(c), false) => c,
    };
    match parsed {
        Some(p) if errs.is_empty() => Ok(Resolved {
            view,
            filter: p.filter,
            echo: p.echo,
            format: req.format,
            compression,
            tz,
            password: req.password,
        }),
        _ => Err(ApiError::Invalid(errs)),
    }
}

/// An export as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportInfo {
    pub id: String,
    pub status: TaskStatus,
    pub view: ExportView,
    /// The filter as given, and the absolute window it was resolved to.
    #[schema(value_type = Object)]
    pub filter: Map<String, Value>,
    pub from: String,
    pub to: String,
    pub format: Format,
    pub compression: Compression,
    /// Whether the archive is password-protected (AES-256).
    pub encrypted: bool,
    pub tz: Option<String>,
    /// Records written (so far, while running).
    pub records: u64,
    /// Archive bytes (so far, while running).
    pub bytes: u64,
    pub file_name: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub expires_at: Option<String>,
    pub error: Option<String>,
    /// Runs that ended in an error so far (FAILED after 5, or at once for a permanent error).
    pub attempts: u32,
    pub schedule_id: Option<String>,
    pub requested_by: Option<String>,
}

impl ExportInfo {
    pub fn of(task: &Task) -> Result<Self, StoreError> {
        debug_assert_eq!(task.kind, TaskKind::Export);
        let b: ExportBody = task.body()?;
        let tz = b.spec.tz();
        let t = |d: DateTime<Utc>| render_time(d, tz);
        let running = b.checkpoint.as_ref();
        Ok(Self {
            id: task.id.clone(),
            status: task.status,
            view: b.spec.view,
            filter: b.spec.echo.clone(),
            from: t(b.spec.filter.from),
            to: t(b.spec.filter.to),
            format: b.spec.format,
            compression: b.spec.compression,
            encrypted: b.spec.encrypted,
            tz: b.spec.tz.clone(),
            records: running.map_or(b.records, |c| c.records),
            bytes: running.map_or(b.bytes, |c| c.writer.offset),
            file_name: b.spec.file_name(),
            created_at: t(task.created_at),
            started_at: b.started_at.map(t),
            finished_at: b.finished_at.map(t),
            expires_at: b.expires_at.map(t),
            error: b.error.clone().or_else(|| task.failure.clone()),
            attempts: task.attempts.max(b.attempts),
            schedule_id: b.spec.schedule_id.clone(),
            requested_by: b.spec.requested_by.username.clone().or(b.spec.requested_by.user_id.clone()),
        })
    }
}

/// Stores a resolved request as a queued export task (the password sealed to the task).
pub async fn create(
    tasks: &dyn crate::store::TaskStore,
    sealer: &Sealer,
    tenant: &str,
    requested_by: Actor,
    r: Resolved,
    schedule_id: Option<String>,
) -> Result<Task, StoreError> {
    let mut task = Task::new(tenant, TaskKind::Export, TaskStatus::Queued, &Value::Null);
    let sealed_password = r.password.as_deref().map(|pw| sealer.seal(&seal_context(tenant, &task.id), pw));
    let body = ExportBody {
        spec: ExportSpec {
            view: r.view,
            filter: r.filter,
            echo: r.echo,
            format: r.format,
            compression: r.compression,
            tz: r.tz,
            encrypted: sealed_password.is_some(),
            sealed_password,
            schedule_id,
            requested_by,
        },
        records: 0,
        bytes: 0,
        started_at: None,
        finished_at: None,
        expires_at: None,
        error: None,
        attempts: 0,
        checkpoint: None,
    };
    task.set_body(&body);
    tasks.create_task(&mut task).await?;
    Ok(task)
}
