//! The `export-worker` Lambda function, started by the table's stream for every export task
//! that becomes QUEUED (the event source's filter). It runs the export until it finishes, or
//! until a minute before the invocation's deadline: then it checkpoints and hands the task back
//! to the queue, which writes a new stream record and so starts the next invocation.
//! Failed records are reported individually (ReportBatchItemFailures).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::jobs::{TaskKind, queued_in_stream_event};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.app().await?;
    let worker = state.export_worker(&format!("lambda-{}", std::process::id()));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let worker = worker.clone();
        async move {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            let deadline = Instant::now() + Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let mut failures = Vec::new();
            for (seq, tenant, id) in queued_in_stream_event(&event.payload, TaskKind::Export) {
                match worker.run(&tenant, &id, Some(deadline)).await {
                    Ok(outcome) => tracing::info!(%tenant, task = %id, ?outcome, "export run"),
                    Err(e) => {
                        tracing::error!(%tenant, task = %id, error = %e, "export run failed; the stream retries it");
                        failures.push(json!({"itemIdentifier": seq}));
                    }
                }
            }
            Ok::<_, lambda_runtime::Error>(json!({"batchItemFailures": failures}))
        }
    }))
    .await
}
