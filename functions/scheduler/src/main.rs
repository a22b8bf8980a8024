//! The `scheduler` Lambda function: run hourly by EventBridge Scheduler, it purges every tenant
//! by its retention settings (re-reading the legal hold before each batch).

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::retention::purge_all;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.state().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let reports = purge_all(&*state.records, &*state.blobs, &*state.settings, chrono::Utc::now()).await?;
            let deleted: u64 = reports.iter().flat_map(|r| r.deleted.values()).sum();
            tracing::info!(tenants = reports.len(), deleted, "retention purge done");
            Ok::<_, lambda_runtime::Error>(json!({"tenants": reports.len(), "deleted": deleted}))
        }
    }))
    .await
}
