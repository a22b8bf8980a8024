//! Client error reports (seed 000): what the agent desktop saw and did, for troubleshooting.
//!
//! A report is stored as a blob plus an index record (category `error_report`). Reports are not
//! pseudonymised, so the identifiers in them (the username, dialed numbers, caller ids) go into
//! the record's `subject`, where DPO search finds them and erasure removes the blob.
//!
//! Limits: at most `MAX_REPORT_BYTES` uncompressed (a gzip body is decoded only up to that, so a
//! gzip bomb stops at the limit) and at most `MAX_LOG_ENTRIES` log entries — the client's rolling
//! buffer; a longer log is refused, never truncated silently. `ReportBuffer` is that rolling
//! buffer for Rust clients.

use std::collections::VecDeque;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError, parse_json};
use crate::record::validate::parse_time;
use crate::record::{Actor, ActorKind, Attachment, Category, Record, ResultCode, Subject};

pub const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;
/// The seed's default rolling-buffer size.
pub const MAX_LOG_ENTRIES: usize = 1000;
/// What a report may hold once parsed: a full log with traces is some tens of thousands of
/// values; 10 MiB of tiny values would be millions (hundreds of MB as `Value`s).
pub const REPORT_BOUNDS: crate::json_bounds::Bounds = crate::json_bounds::Bounds { max_values: 200_000, max_depth: 64 };

/// The agent's Finesse identity, teams and queues (never a password).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
}

/// Caller identification data queried from the CRM for one number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallerId {
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whatever else the lookup returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// An error report as the client uploads it. Unknown top-level parts are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorReport {
    /// When the client saved the report (RFC 3339).
    pub created_at: String,
    /// The CRM (Dynamics) username of the agent.
    pub username: String,
    /// What went wrong, in the agent's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Client configuration: click-to-dial and lookup rules, agent id and extension, Finesse URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::error::optional_object")]
    pub agent: Option<AgentInfo>,
    /// Finesse servers: deployment type (UCCE/UCCX), state (IN_SERVICE/…), time-zone offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dialed_numbers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::error::objects")]
    pub caller_ids: Vec<CallerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_variables: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_variables: Option<Value>,
    /// Event traces to and from each connected system (Finesse, Dynamics, Calabrio …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<Value>,
    /// UI actions and screen state per browser window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Value>,
    /// The rolling log: one entry per action, oldest first, at most 1000.
    pub log: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Decodes a body (optionally gzip) up to the size limit.
pub fn decode_body(body: &[u8], content_encoding: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("an error report may be at most {MAX_REPORT_BYTES} bytes uncompressed"));
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > MAX_REPORT_BYTES {
                return Err(too_large());
            }
            Ok(body.to_vec())
        }
        Some("gzip") => {
            let mut out = Vec::new();
            // Read one byte past the limit: enough to know it is too large, never more.
            flate2::read::MultiGzDecoder::new(body)
                .take(MAX_REPORT_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::MalformedBody(format!("the gzip body cannot be decoded: {e}")))?;
            if out.len() > MAX_REPORT_BYTES {
                return Err(too_large());
            }
            Ok(out)
        }
        Some(other) => {
            Err(ApiError::UnsupportedMediaType(format!("Content-Encoding `{other}` is not accepted; use gzip or none")))
        }
    }
}

/// Parses and checks a report.
pub fn parse(bytes: &[u8]) -> Result<ErrorReport, ApiError> {
    crate::json_bounds::check(bytes, "report", REPORT_BOUNDS)?;
    let report: ErrorReport = parse_json(bytes, "report")?;
    let mut errs = Vec::new();
    match parse_time(&report.created_at) {
        Err(e) => errs.push(FieldError::new("created_at", e)),
        // The same bounds as a record's `occurred_at`: the report becomes a record at that time.
        Ok(t) => {
            let skew = crate::record::ValidationLimits::default().future_skew;
            if let Some(why) = crate::record::validate::out_of_range(t, Utc::now(), skew) {
                errs.push(FieldError::new("created_at", why));
            }
        }
    }
    if report.username.trim().is_empty() || report.username.len() > 256 {
        errs.push(FieldError::new("username", "must be 1 to 256 characters"));
    }
    if report.log.len() > MAX_LOG_ENTRIES {
        errs.push(FieldError::new(
            "log",
            format!(
                "at most {MAX_LOG_ENTRIES} entries (the client's rolling buffer); this report has {} — drop the oldest",
                report.log.len()
            ),
        ));
    }
    if errs.is_empty() { Ok(report) } else { Err(ApiError::Invalid(errs)) }
}

/// What a secret's value becomes in a stored report; the key stays.
pub const REDACTED: &str = "{redacted}";

/// Parts of key names (lower-cased, letters and digits only) that mark a secret.
const SECRET_KEY_PARTS: [&str; 11] = [
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "authorization",
];

fn is_secret_key(key: &str) -> bool {
    let k: String = key.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    SECRET_KEY_PARTS.iter().any(|part| k.contains(part))
}

/// Replaces the value of every secret-looking key (`finesse_password`, `token`, `api_key`,
/// `Authorization`, …, at any depth, in objects and arrays) with `REDACTED`, and returns the
/// bytes to store and the JSON paths redacted (e.g. `configuration.finesse_password`,
/// `traces.finesse[0].headers.authorization`). Bytes without a secret are returned unchanged.
pub fn redact(bytes: Vec<u8>) -> Result<(Vec<u8>, Vec<String>), ApiError> {
    let mut doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedBody(format!("malformed JSON: {e}")))?;
    let mut paths = Vec::new();
    redact_value(&mut doc, &mut String::new(), &mut paths);
    if paths.is_empty() {
        return Ok((bytes, paths));
    }
    Ok((serde_json::to_vec(&doc).map_err(ApiError::internal)?, paths))
}

fn redact_value(v: &mut Value, path: &mut String, out: &mut Vec<String>) {
    let len = path.len();
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                let secret = is_secret_key(k)
                    && match &*child {
                        Value::Null | Value::Bool(_) => false,
                        Value::String(s) => !s.is_empty() && s != REDACTED,
                        _ => true,
                    };
                if secret {
                    *child = Value::String(REDACTED.into());
                    out.push(path.clone());
                } else {
                    redact_value(child, path, out);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                path.push_str(&format!("[{i}]"));
                redact_value(child, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

impl ErrorReport {
    pub fn teams(&self) -> &[String] {
        self.agent.as_ref().map(|a| a.teams.as_slice()).unwrap_or_default()
    }

    /// The index record for a stored report; `blob` is the report's blob id.
    pub fn index_record(&self, tenant: &str, id: &str, uploader: &Actor, size: usize, now: DateTime<Utc>) -> Record {
        let mut phones: Vec<String> = self.dialed_numbers.clone();
        phones.extend(self.caller_ids.iter().map(|c| c.number.clone()));
        phones.retain(|p| p.chars().filter(char::is_ascii_digit).count() >= 3);
        phones.sort();
        phones.dedup();
        let mut emails: Vec<String> = self.caller_ids.iter().filter_map(|c| c.email.clone()).collect();
        emails.sort();
        emails.dedup();
        let mut r = Record::system(
            tenant,
            "ERROR_REPORT",
            Actor {
                user_id: uploader.user_id.clone(),
                username: Some(self.username.clone()),
                employee_id: self.agent.as_ref().and_then(|a| a.id.clone()),
                kind: Some(ActorKind::Agent),
                ..Default::default()
            },
            Some(ResultCode::Ok),
            json!({"reason": self.reason, "teams": self.teams()}),
        );
        r.id = id.to_owned();
        r.category = Category::ErrorReport;
        r.occurred_at = parse_time(&self.created_at).unwrap_or(now);
        r.received_at = now;
        r.data = Some(json!({
            "size": size,
            "entries": self.log.len(),
            "teams": self.teams(),
            "queues": self.agent.as_ref().map(|a| a.queues.clone()).unwrap_or_default(),
            "windows": self.windows.len(),
        }));
        r.subject = Some(Subject { emails, phones, first_name: None, last_name: None });
        r.attachments = vec![Attachment {
            blob: id.to_owned(),
            name: format!("error-report-{id}.json"),
            size: Some(size as u64),
            content_type: Some("application/json".into()),
            kind: Some("error_report".into()),
        }];
        r
    }
}

/// The client's rolling buffer: keeps the last `capacity` log entries, dropping the oldest.
#[derive(Debug, Clone)]
pub struct ReportBuffer {
    capacity: usize,
    entries: VecDeque<Value>,
    dropped: u64,
}

impl Default for ReportBuffer {
    fn default() -> Self {
        Self::new(MAX_LOG_ENTRIES)
    }
}

impl ReportBuffer {
    /// `capacity` is clamped to 1..=1000 so every report it builds is accepted.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_LOG_ENTRIES);
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

    /// How many of the oldest entries were rolled over.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A report with the buffered log; fill in the other parts before uploading.
    pub fn report(&self, username: &str, now: DateTime<Utc>) -> ErrorReport {
        ErrorReport {
            created_at: now.to_rfc3339(),
            username: username.to_owned(),
            reason: None,
            configuration: None,
            agent: None,
            server_state: None,
            dialed_numbers: Vec::new(),
            caller_ids: Vec::new(),
            call_variables: None,
            ecc_variables: None,
            traces: None,
            windows: Vec::new(),
            log: self.entries.iter().cloned().collect(),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn the_buffer_rolls_over_and_builds_an_accepted_report() {
        let mut b = ReportBuffer::default();
        for i in 0..1500 {
            b.push(json!({"n": i}));
        }
        assert_eq!((b.len(), b.dropped()), (1000, 500));
        let r = b.report("jdoe", Utc::now());
        assert_eq!(r.log[0]["n"], 500, "the oldest entries were dropped");
        let bytes = serde_json::to_vec(&r).unwrap();
        assert_eq!(parse(&bytes).unwrap().log.len(), 1000);
    }

    #[test]
    fn a_report_time_out_of_range_is_named() {
        let later = (Utc::now() + chrono::Duration::days(3)).to_rfc3339();
        for (at, why) in [("1999-12-31T23:59:59Z", "before 2000"), (later.as_str(), "in the future")] {
            let body = json!({"created_at": at, "username": "jdoe", "log": []});
            match parse(body.to_string().as_bytes()) {
                Err(ApiError::Invalid(e)) => {
                    assert_eq!(e[0].field, "created_at");
                    assert!(e[0].reason.contains(why), "{}", e[0].reason);
                }
                other => panic!("{at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_longer_log_is_refused_not_truncated() {
        let log: Vec<Value> = (0..1001).map(|i| json!({"n": i})).collect();
        let body = json!({"created_at": "2026-11-24T10:00:00Z", "username": "jdoe", "log": log});
        match parse(body.to_string().as_bytes()) {
            Err(ApiError::Invalid(e)) => assert_eq!(e[0].field, "log"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_report_of_millions_of_tiny_values_is_refused_before_parsing() {
        let mut body = br#"{"created_at":"2026-11-24T10:00:00Z","username":"a","log":[],"x":["#.to_vec();
        body.extend(std::iter::repeat_n(b"0,".as_slice(), 5 * 1024 * 1024 - 100).flatten());
        body.extend(b"0]}");
        let gz = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&body).unwrap();
            enc.finish().unwrap()
        };
        assert!(gz.len() < 64 * 1024, "{} bytes", gz.len());
        let decoded = decode_body(&gz, Some("gzip")).unwrap();
        match parse(&decoded) {
            Err(ApiError::Invalid(e)) => {
                assert_eq!(e[0].field, "report");
                assert!(e[0].reason.contains("more than 200000 JSON values"), "{}", e[0].reason);
            }
            other => panic!("{other:?}"),
        }
        let deep =
            format!(r#"{{"created_at":"2026-11-24T10:00:00Z","username":"a","log":[],"x":{}}}"#, "[".repeat(100_000));
        match parse(deep.as_bytes()) {
            Err(ApiError::Invalid(e)) => assert!(e[0].reason.contains("nested more than 64"), "{}", e[0].reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 200 * 1024, "64 MiB of zeros compress to {} bytes", bomb.len());
        assert!(matches!(decode_body(&bomb, Some("gzip")), Err(ApiError::PayloadTooLarge(_))));
        assert!(matches!(decode_body(b"not gzip", Some("gzip")), Err(ApiError::MalformedBody(_))));
        assert!(matches!(decode_body(b"{}", Some("br")), Err(ApiError::UnsupportedMediaType(_))));
    }

    #[test]
    fn secrets_are_redacted_at_any_depth_and_in_any_case() {
        let body = json!({"created_at": "2026-11-24T10:00:00Z", "username": "jdoe", "log": [
                {"request": {"headers": {"Authorization": "Basic amRvZTpodW50ZXIy"}}}],
            "configuration": {"finesse_password": "hunter2", "FinesseURI": "https://f:8445", "API-Key": "k-1",
                "nested": {"Secret": 42, "credentials": {"user": "a", "pass": "b"}, "tokens": ["t1", "t2"]},
                "pwd": "", "passwd": null, "token_required": true, "servers": [{"pwd": "p0"}, {"host": "h"}]}});
        let (bytes, mut paths) = redact(body.to_string().into_bytes()).unwrap();
        paths.sort();
        assert_eq!(
            paths,
            [
                "configuration.API-Key",
                "configuration.finesse_password",
                "configuration.nested.Secret",
                "configuration.nested.credentials",
                "configuration.nested.tokens",
                "configuration.servers[0].pwd",
                "log[0].request.headers.Authorization",
            ]
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        for secret in ["hunter2", "k-1", "42", "t1", "p0", "amRvZTpodW50ZXIy", "\"pass\""] {
            assert!(!text.contains(secret), "{secret} is still in {text}");
        }
        let stored: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(stored["configuration"]["finesse_password"], REDACTED);
        assert_eq!(stored["configuration"]["FinesseURI"], "https://f:8445");
        assert_eq!(stored["configuration"]["token_required"], true);
        assert_eq!(stored["configuration"]["servers"][1]["host"], "h");
        assert_eq!(parse(&bytes).unwrap().username, "jdoe", "a redacted report is still a report");

        let clean = br#"{"created_at":"2026-11-24T10:00:00Z","username":"jdoe","log":[]}"#.to_vec();
        assert_eq!(redact(clean.clone()).unwrap(), (clean, vec![]), "untouched bytes when there is no secret");
    }

    #[test]
    fn identifiers_go_into_the_subject() {
        let body = json!({"created_at": "2026-11-24T10:00:00Z", "username": "jdoe", "log": [],
            "dialed_numbers": ["+420 777 123 456", "12"], "caller_ids": [{"number": "(777) 123-456", "email": "c@example.com"}],
            "agent": {"id": "1001", "teams": ["Billing"]}});
        let r = parse(body.to_string().as_bytes()).unwrap();
        let rec = r.index_record("acme", "er-1", &Actor::default(), 10, Utc::now());
        let s = rec.subject.unwrap();
        assert_eq!(s.phones, vec!["(777) 123-456", "+420 777 123 456"]);
        assert_eq!(s.emails, vec!["c@example.com"]);
        assert_eq!(rec.category, Category::ErrorReport);
        assert_eq!(rec.actor.employee_id.as_deref(), Some("1001"));
    }
}
