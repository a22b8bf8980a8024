//! The `scheduler` Lambda function, run every few minutes by EventBridge Scheduler: scheduled
//! exports, re-queueing of jobs whose worker died, and (once an hour) the retention purge
//! (re-reading the legal hold before each batch) and export expiry; then it seals what every
//! tenant's journal holds since its last seal (tamper evidence).

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::housekeeping;
use chrono::Timelike;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.app().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let now = chrono::Utc::now();
            // The schedule fires every 5 minutes; the first run of each hour also purges.
            let purge = now.minute() < 5;
            let r = housekeeping::tick(&state, now, purge).await?;
            let deleted: u64 = r.purged.iter().flat_map(|p| p.deleted.values()).sum();
            let sealed = housekeeping::seal(&state, now).await?;
            let (seals, leaves) = sealed.iter().fold((0, 0), |(s, l), r| (s + r.seals, l + r.leaves));
            tracing::info!(
                deleted,
                expired = r.exports_expired,
                scheduled = r.scheduled_exports.len(),
                requeued = r.requeued,
                seals,
                sealed_records = leaves,
                "housekeeping done"
            );
            Ok::<_, lambda_runtime::Error>(json!({
                "deleted": deleted, "exports_expired": r.exports_expired,
                "scheduled_exports": r.scheduled_exports, "requeued": r.requeued,
                "seals": seals, "sealed_records": leaves,
            }))
        }
    }))
    .await
}
