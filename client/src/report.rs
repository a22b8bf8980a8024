//! The desktop client's side of error reports (seed 000): the last log entries, kept for the
//! report it uploads with [`crate::Client::upload_error_report`].

use std::collections::VecDeque;

use serde_json::Value;

/// The last `capacity` log entries of a desktop client (seed 000), for its error report.
#[derive(Debug, Clone)]
pub struct ErrorReportBuffer {
    capacity: usize,
    entries: VecDeque<Value>,
    dropped: u64,
}

impl ErrorReportBuffer {
    /// `capacity` is clamped to 1..=1000, the most a report may carry.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1000);
        Self { capacity, entries: VecDeque::with_capacity(capacity), dropped: 0 }
    }

    pub fn push(&mut self, entry: Value) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many of the oldest entries rolled over.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A report with the buffered log, oldest first; add the other parts before uploading.
    pub fn report(&self, username: &str, reason: Option<&str>) -> Value {
        let mut r = serde_json::json!({
            "created_at": chrono::Utc::now().to_rfc3339(),
            "username": username,
            "log": self.entries.iter().cloned().collect::<Vec<_>>(),
        });
        if let Some(reason) = reason {
            r["reason"] = Value::String(reason.to_owned());
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_report_buffer_keeps_the_newest_entries() {
        let mut b = ErrorReportBuffer::new(3);
        for i in 0..5 {
            b.push(serde_json::json!({"n": i}));
        }
        assert_eq!((b.len(), b.dropped()), (3, 2));
        let r = b.report("jdoe", Some("call dropped"));
        assert_eq!(r["log"], serde_json::json!([{"n": 2}, {"n": 3}, {"n": 4}]));
        assert_eq!(ErrorReportBuffer::new(5000).capacity, 1000);
    }
}
