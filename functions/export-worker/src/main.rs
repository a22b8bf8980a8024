//! The `export-worker` Lambda function, started by the table's stream for every export task
//! that becomes QUEUED (the event source's filter). It runs the export until it finishes, or
//! until a minute before the invocation's deadline: then it checkpoints and hands the task back
//! to the queue, which writes a new stream record and so starts the next invocation.
//! Failed records are reported individually (ReportBatchItemFailures).

use auditrail_shared::config::{Config, init_tracing};
use auditrail_shared::jobs::TaskKind;
use auditrail_shared::stream_worker;
use lambda_http::lambda_runtime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing(true);
    let state = Config::from_env()?.app().await?;
    let worker = state.export_worker(&format!("lambda-{}", std::process::id()));
    stream_worker::run(TaskKind::Export, |tenant, id, deadline| {
        let worker = worker.clone();
        async move { worker.run(&tenant, &id, Some(deadline)).await }
    })
    .await
}
