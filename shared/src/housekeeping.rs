//! The periodic work: retention purges, export expiry, scheduled exports, and re-queueing jobs
//! whose worker died. Run by the `scheduler` function (EventBridge Scheduler) in AWS and by a
//! loop in `auditrail serve`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::export::{schedule, worker};
use crate::jobs::{self, TaskKind};
use crate::retention::{self, PurgeReport};
use crate::store::StoreResult;

#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    pub purged: Vec<PurgeReport>,
    pub exports_expired: u64,
    pub scheduled_exports: Vec<String>,
    pub requeued: usize,
    /// The Keycloak pull of this round, when one is configured and it succeeded.
    #[cfg(feature = "keycloak-pull")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keycloak: Option<crate::keycloak_pull::PullReport>,
}

/// One round. `purge` includes the retention purge (hourly is enough; the rest runs every
/// minute locally, every few minutes in AWS). One tenant's failure does not stop the others.
pub async fn tick(state: &App, now: DateTime<Utc>, purge: bool) -> StoreResult<TickReport> {
    let mut report = TickReport::default();
    if purge {
        report.purged = retention::purge_all(state.purge_stores(), now).await?;
        for tenant in state.settings.tenants().await? {
            match worker::expire(&*state.tasks, &*state.blobs, &*state.records, &tenant, now).await {
                Ok(n) => report.exports_expired += n,
                Err(e) => tracing::error!(tenant = %tenant, error = %e, "export expiry failed"),
            }
        }
    }
    report.scheduled_exports =
        schedule::run_due(&*state.tasks, &*state.records, &*state.settings, &state.sealer, &state.cursor_key, now)
            .await?;
    for kind in [TaskKind::Export, TaskKind::Erasure] {
        report.requeued += jobs::requeue_expired(&*state.tasks, kind, now).await?;
    }
    if !report.scheduled_exports.is_empty() || report.requeued > 0 {
        state.jobs_queued.notify_waiters();
    }
    #[cfg(feature = "keycloak-pull")]
    if let Some(puller) = &state.keycloak {
        // Keycloak being away never stops the rest of housekeeping; the next round resumes.
        match puller.run(&*state.records, &*state.settings, &state.limits, now).await {
            Ok(r) => report.keycloak = Some(r),
            Err(e) => tracing::error!(tenant = %puller.source().tenant, error = %e, "keycloak pull failed"),
        }
    }
    Ok(report)
}

/// Seals what every tenant's journal holds since its last seal (the scheduler function every
/// few minutes, `auditrail serve` every `--seal-every`, `auditrail seal` at once). One tenant's
/// failure does not stop the others; each run is idempotent.
pub async fn seal(state: &App, now: DateTime<Utc>) -> StoreResult<Vec<crate::integrity::sealer::SealRun>> {
    let sealing = state.sealing();
    let mut out = Vec::new();
    for tenant in state.settings.tenants().await? {
        match sealing.seal_tenant(&tenant, now).await {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(tenant = %tenant, error = %e, "sealing failed"),
        }
    }
    Ok(out)
}
