//! What a DPO erasure asks of exports, offered as calls so the erasure never reaches into an
//! export's internals: which finished archives hold a record, withdrawing those archives, and
//! scrubbing a person's identifiers from the filters of export tasks and schedules.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ExportBody, archive_key};
use crate::jobs::{TaskKind, TaskStatus};
use crate::query::TERM_KEYS;
use crate::record::Record;
use crate::store::{BlobStore, EventFilter, StoreError, StoreResult, TaskStore};

/// A finished export whose archive is stored.
pub struct Written {
    pub id: String,
    filter: EventFilter,
    finished: DateTime<Utc>,
}

impl Written {
    /// Whether the archive holds the record as it is now: the export's filter selects it, and it
    /// was stored before the export finished.
    pub fn holds(&self, r: &Record) -> bool {
        r.received_at <= self.finished && self.filter.matches(r)
    }
}

/// The tenant's finished exports whose archive is still stored.
pub async fn written(tasks: &dyn TaskStore, tenant: &str) -> StoreResult<Vec<Written>> {
    let mut out = Vec::new();
    let mut pages = crate::jobs::pages(tasks, tenant, TaskKind::Export);
    while let Some(page) = pages.next().await? {
        for t in page.into_iter().filter(|t| t.status == TaskStatus::Succeeded) {
            let body: ExportBody = t.body()?;
            out.push(Written {
                finished: body.finished_at.unwrap_or(t.updated_at),
                filter: body.spec.filter,
                id: t.id,
            });
        }
    }
    Ok(out)
}

/// Deletes the archives of `exports` (finished ones; a deleted task is skipped) and marks them
/// EXPIRED with `reason`. Idempotent: an export already withdrawn with the same reason is named
/// again. Returns the ids withdrawn.
pub async fn withdraw(
    tasks: &dyn TaskStore,
    blobs: &dyn BlobStore,
    tenant: &str,
    exports: &BTreeSet<String>,
    reason: &str,
) -> StoreResult<Vec<String>> {
    let mut withdrawn = Vec::new();
    for export in exports {
        let Some(mut t) = tasks.get_task(tenant, TaskKind::Export, export).await? else {
            continue; // deleted by its owner meanwhile, archive and all
        };
        let mut body: ExportBody = t.body()?;
        match t.status {
            TaskStatus::Succeeded => {}
            TaskStatus::Expired if body.error.as_deref() == Some(reason) => {
                withdrawn.push(t.id.clone());
                continue;
            }
            _ => continue,
        }
        blobs.delete(&archive_key(&t, &body.spec)?).await?;
        body.error = Some(reason.to_owned());
        t.status = TaskStatus::Expired;
        t.set_body(&body);
        tasks.save_task(&mut t).await?;
        withdrawn.push(t.id.clone());
    }
    Ok(withdrawn)
}

/// Applies `scrub` to the string values under the typed filter fields; whether any changed.
fn scrub_terms(v: &mut Value, scrub: &(dyn Fn(&str) -> String + Sync), under_term: bool) -> bool {
    match v {
        Value::String(s) if under_term => {
            let out = scrub(s);
            let changed = out != *s;
            *s = out;
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| scrub_terms(x, scrub, under_term) | c),
        Value::Object(m) => m
            .iter_mut()
            .fold(false, |c, (k, x)| scrub_terms(x, scrub, under_term || TERM_KEYS.contains(&k.as_str())) | c),
        _ => false,
    }
}

fn scrub_filter(f: &mut EventFilter, scrub: &(dyn Fn(&str) -> String + Sync)) -> bool {
    let mut changed = false;
    for v in [&mut f.user, &mut f.employee_id, &mut f.text].into_iter().flatten() {
        let out = scrub(v);
        changed |= out != *v;
        *v = out;
    }
    changed
}

/// Applies `scrub` to the typed values in the filters of every export task and schedule of the
/// tenant (as given and as resolved); returns the ids of those it changed.
pub async fn scrub_filters(
    tasks: &dyn TaskStore,
    tenant: &str,
    scrub: &(dyn Fn(&str) -> String + Sync),
) -> StoreResult<Vec<String>> {
    let mut scrubbed = Vec::new();
    for kind in [TaskKind::Export, TaskKind::ExportSchedule] {
        let mut pages = crate::jobs::pages(tasks, tenant, kind);
        while let Some(page) = pages.next().await? {
            for mut t in page {
                let changed = if kind == TaskKind::Export {
                    let mut b: ExportBody = t.body()?;
                    let mut echo = Value::Object(std::mem::take(&mut b.spec.echo));
                    let c = scrub_terms(&mut echo, scrub, true) | scrub_filter(&mut b.spec.filter, scrub);
                    if let Value::Object(m) = echo {
                        b.spec.echo = m;
                    }
                    t.set_body(&b);
                    c
                } else {
                    t.body.get_mut("filter").is_some_and(|f| scrub_terms(f, scrub, true))
                };
                if !changed {
                    continue;
                }
                match tasks.save_task(&mut t).await {
                    // Changed meanwhile (a running export's checkpoint): the next attempt scrubs it.
                    Err(StoreError::Conflict(_)) => {
                        return Err(StoreError::Backend(anyhow::anyhow!(
                            "task {} changed while its filter was scrubbed",
                            t.id
                        )));
                    }
                    r => r?,
                }
                scrubbed.push(t.id);
            }
        }
    }
    Ok(scrubbed)
}
