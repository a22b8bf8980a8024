//! The `dpo-worker` Lambda function, started by the table's stream for every erasure job that
//! becomes QUEUED. Jobs checkpoint every few items, so a killed invocation is continued (after
//! its lease expires the scheduler re-queues it, which starts a new invocation).

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::jobs::{TaskKind, queued_in_stream_event};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.app().await?;
    let worker = state.erasure_worker(&format!("lambda-{}", std::process::id()));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let worker = worker.clone();
        async move {
            let mut failures = Vec::new();
            for (seq, tenant, id) in queued_in_stream_event(&event.payload, TaskKind::Erasure) {
                match worker.run(&tenant, &id).await {
                    Ok(status) => tracing::info!(%tenant, erasure = %id, ?status, "erasure run"),
                    Err(e) => {
                        tracing::error!(%tenant, erasure = %id, error = %e, "erasure failed; the stream retries it");
                        failures.push(json!({"itemIdentifier": seq}));
                    }
                }
            }
            Ok::<_, lambda_runtime::Error>(json!({"batchItemFailures": failures}))
        }
    }))
    .await
}
