//! What the functions log, captured in their Lambda JSON form for the test that runs on this
//! thread (a `#[tokio::test]` runs on one): the lines operators' alarms and metric filters read.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// The JSON log lines written while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's events (every level) until the guard is dropped.
    pub fn capture() -> (Self, DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let layer = auditrail_shared::config::json_log_layer(move || Line(sink.0.clone()));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        (logs, guard)
    }

    /// Every line logged, parsed.
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect()
    }

    /// The lines logged at `level` (`ERROR`, `WARN`, …).
    pub fn at(&self, level: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["level"] == level).collect()
    }
}

struct Line(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
