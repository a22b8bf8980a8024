//! The loop the stream-started workers (`export-worker`, `dpo-worker`) share: every record of a
//! DynamoDB stream batch that is a QUEUED task of the worker's kind is run once, and the records
//! whose run failed are reported back individually (ReportBatchItemFailures), so the stream
//! retries only those.

use std::fmt::{Debug, Display};
use std::future::Future;

use serde_json::{Value, json};

use crate::jobs::{TaskKind, queued_in_stream_event};

/// Runs the tasks of `kind` that a stream event asks for, one after another, with `run(tenant,
/// id)`; returns the partial-batch response naming the records whose run failed.
pub async fn handle_batch<F, Fut, O, E>(event: &Value, kind: TaskKind, run: F) -> Value
where
    F: Fn(String, String) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Debug,
    E: Display,
{
    let mut failures = Vec::new();
    for (seq, tenant, id) in queued_in_stream_event(event, kind) {
        match run(tenant.clone(), id.clone()).await {
            Ok(outcome) => tracing::info!(%tenant, task = %id, kind = kind.as_str(), ?outcome, "task run"),
            Err(e) => {
                tracing::error!(%tenant, task = %id, kind = kind.as_str(), error = %e,
                    "task run failed; the stream retries it");
                failures.push(json!({"itemIdentifier": seq}));
            }
        }
    }
    json!({"batchItemFailures": failures})
}

/// The Lambda main loop of a stream worker: each invocation's batch goes through `handle_batch`,
/// `run(tenant, id, deadline)` given the invocation's deadline.
#[cfg(feature = "lambda")]
pub async fn run<F, Fut, O, E>(kind: TaskKind, run: F) -> Result<(), lambda_http::lambda_runtime::Error>
where
    F: Fn(String, String, std::time::Instant) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    O: Debug,
    E: Display,
{
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

    let run = &run;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        Ok::<_, lambda_runtime::Error>(handle_batch(&event.payload, kind, |tenant, id| run(tenant, id, deadline)).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: &str, kind: &str, status: &str, id: &str) -> Value {
        json!({"dynamodb": {"SequenceNumber": seq, "NewImage": {
            "kind": {"S": kind}, "status": {"S": status}, "tenant": {"S": "acme"}, "sk": {"S": id},
        }}})
    }

    /// Only the failed runs are reported; other kinds and statuses are not run at all.
    #[tokio::test]
    async fn failed_runs_are_reported_by_sequence_number() {
        let export = TaskKind::Export.as_str();
        let event = json!({"Records": [
            record("1", export, "QUEUED", "ok"),
            record("2", export, "QUEUED", "bad"),
            record("3", TaskKind::Erasure.as_str(), "QUEUED", "other-kind"),
            record("4", export, "RUNNING", "not-queued"),
        ]});
        let ran = std::sync::Mutex::new(Vec::new());
        let out = handle_batch(&event, TaskKind::Export, |tenant, id| {
            ran.lock().unwrap().push(format!("{tenant}/{id}"));
            async move { if id == "bad" { Err("boom") } else { Ok(()) } }
        })
        .await;
        assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "2"}]}));
        assert_eq!(*ran.lock().unwrap(), vec!["acme/ok", "acme/bad"]);
    }
}
