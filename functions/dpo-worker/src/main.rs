//! The `dpo-worker` Lambda function, started by the table's stream for every erasure job that
//! becomes QUEUED. Jobs checkpoint every few items, so a killed invocation is continued (after
//! its lease expires the scheduler re-queues it, which starts a new invocation).
//! Failed records are reported individually (ReportBatchItemFailures).

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::jobs::TaskKind;
use auditrail_shared::stream_worker;
use lambda_http::lambda_runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.app().await?;
    let worker = state.erasure_worker(&format!("lambda-{}", std::process::id()));
    stream_worker::run(TaskKind::Erasure, |tenant, id, _deadline| {
        let worker = worker.clone();
        async move { worker.run(&tenant, &id).await }
    })
    .await
}
