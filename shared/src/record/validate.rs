//! Field-level validation of an incoming record and its conversion to the stored form.
//!
//! Limits (documented in the README): id ≤ 128 of `A-Z a-z 0-9 _ . : -`; short strings
//! (names, ids, codes) ≤ 256 bytes; description ≤ 16 KiB; data ≤ 64 KiB serialised; a whole
//! record ≤ 128 KiB; occurred_at RFC 3339 with an offset, not before 2000 and not more than
//! 24 h ahead of the server clock.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::catalogue::{self, Resolved};
use super::{Actor, ActorKind, Attachment, Category, Phase, Record, ResultCode, Subject};
use crate::error::FieldError;

/// The most e-mails, phones or attachments one record lists: each is an index entry (on
/// DynamoDB an item carrying a copy of the record), so a record's write cost stays bounded.
pub const MAX_LISTED: usize = 20;

/// The size limits, in one place.
#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    pub id_max: usize,
    pub short_max: usize,
    pub description_max: usize,
    pub data_max: usize,
    pub record_max: usize,
    pub future_skew: Duration,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            id_max: 128,
            short_max: 256,
            description_max: 16 * 1024,
            data_max: 64 * 1024,
            record_max: 128 * 1024,
            future_skew: Duration::hours(24),
        }
    }
}

/// What a client sends. `tenant_id` and `received_at` are not accepted: the server sets them.
/// A record as sent to `POST /v1/events`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingRecord {
    #[serde(default)]
    pub id: Option<String>,
    pub occurred_at: String,
    #[serde(default)]
    pub category: Option<Category>,
    pub action: String,
    #[serde(default, deserialize_with = "crate::error::optional_object")]
    pub actor: Option<Actor>,
    #[serde(default)]
    pub result: Option<ResultCode>,
    #[serde(default)]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub source_ip: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub failure_reason_code: Option<String>,
    #[serde(default)]
    pub description: Option<Value>,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default, deserialize_with = "crate::error::optional_object")]
    pub subject: Option<Subject>,
    #[serde(default, deserialize_with = "crate::error::objects")]
    pub attachments: Vec<Attachment>,
}

struct Checker<'a> {
    limits: &'a ValidationLimits,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn err(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn short(&mut self, field: &str, v: &Option<String>) {
        if let Some(s) = v {
            if s.trim().is_empty() {
                self.err(field, "must not be empty when present");
            } else if s.len() > self.limits.short_max {
                self.err(field, format!("at most {} bytes", self.limits.short_max));
            } else if s.chars().any(char::is_control) {
                self.err(field, "must not contain control characters");
            }
        }
    }

    fn ident(&mut self, field: &str, v: &str) {
        if v.is_empty() || v.len() > self.limits.id_max {
            self.err(field, format!("must be 1 to {} characters", self.limits.id_max));
        } else if !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')) {
            self.err(field, "may only use letters, digits, `_`, `.`, `:` and `-`");
        }
    }
}

/// Parses an RFC 3339 timestamp that carries an offset.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        use chrono::format::ParseErrorKind as K;
        let why = match e.kind() {
            K::TooShort => "it ends too early",
            K::TooLong => "characters follow the time",
            K::OutOfRange => "a part is out of range (month 01–12, day of the month, hour 00–23, …)",
            K::Invalid => "a character is not where one is expected",
            _ => "it is incomplete or impossible",
        };
        format!("not an RFC 3339 time with offset (e.g. 2026-11-24T09:30:00Z): {why}")
    })
}

impl IncomingRecord {
    /// Validates every field and builds the stored form, or returns every problem found.
    pub fn into_record(
        self,
        tenant_id: &str,
        now: DateTime<Utc>,
        limits: &ValidationLimits,
    ) -> Result<Record, Vec<FieldError>> {
        let mut c = Checker { limits, errors: Vec::new() };

        let id = match self.id {
            Some(id) => {
                c.ident("id", &id);
                id
            }
            None => ulid::Ulid::generate().to_string(),
        };

        let occurred_at = match parse_time(&self.occurred_at) {
            Ok(t) => {
                if let Some(why) = out_of_range(t, now, limits.future_skew) {
                    c.err("occurred_at", why);
                }
                t
            }
            Err(e) => {
                c.err("occurred_at", e);
                now
            }
        };

        let category = match catalogue::resolve(&self.action) {
            Ok(Resolved::Known(def)) if def.server_only() => {
                c.err("action", catalogue::ActionProblem::ServerOnly(def.name).to_string());
                def.category
            }
            Ok(Resolved::Known(def)) => match self.category {
                Some(cat) if !def.allows(cat) => {
                    c.err(
                        "category",
                        format!("action {} is stored as `{}`, not `{}`", def.name, def.category.as_str(), cat.as_str()),
                    );
                    def.category
                }
                Some(cat) => cat,
                None => def.category,
            },
            Ok(Resolved::Custom) => self.category.unwrap_or(Category::Audit),
            Err(problem) => {
                c.err("action", problem.to_string());
                self.category.unwrap_or(Category::Audit)
            }
        };

        let actor = self.actor.unwrap_or_default();
        for (field, v) in [
            ("actor.user_id", &actor.user_id),
            ("actor.username", &actor.username),
            ("actor.employee_id", &actor.employee_id),
            ("actor.full_name", &actor.full_name),
            ("actor.role", &actor.role),
        ] {
            c.short(field, v);
        }
        for (field, v) in [
            ("correlation_id", &self.correlation_id),
            ("session_id", &self.session_id),
            ("failure_reason_code", &self.failure_reason_code),
        ] {
            c.short(field, v);
        }

        // Phase and result: a start has no result yet; an end (and a one-shot action) has one.
        match (self.phase, self.result) {
            (Some(Phase::Start), Some(_)) => {
                c.err("result", "a `start` phase has no result yet; send the result with the `end` phase")
            }
            (Some(Phase::End), None) => c.err("result", "an `end` phase needs a result (OK, FAIL or UNAUTHORIZED)"),
            (None, None) if category != Category::Cobrowse && category.is_event_like() => {
                c.err("result", "required (OK, FAIL or UNAUTHORIZED) unless `phase` is `start`")
            }
            _ => {}
        }
        if self.phase.is_some() && self.correlation_id.is_none() {
            c.err("correlation_id", "required with `phase`: it pairs the start with its end");
        }

        match category {
            Category::SignIn if actor.username.is_none() => {
                c.err("actor.username", "a sign-in record needs the sign-in account")
            }
            Category::Cobrowse => {
                if self.session_id.is_none() {
                    c.err("session_id", "a co-browsing event belongs to a session");
                }
                if !matches!(actor.kind, Some(ActorKind::Agent | ActorKind::Customer)) {
                    c.err("actor.kind", "a co-browsing event is done by `agent` or `customer`");
                }
            }
            _ => {}
        }
        if self.failure_reason_code.is_some() && self.result == Some(ResultCode::Ok) {
            c.err("failure_reason_code", "only a FAIL or UNAUTHORIZED result has a failure reason");
        }

        if let Some(ip) = &self.source_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            c.err("source_ip", "not an IPv4 or IPv6 address");
        }

        match &self.description {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.len() > limits.description_max => {
                c.err("description", format!("at most {} bytes", limits.description_max))
            }
            Some(Value::String(_)) => {}
            Some(v @ Value::Object(_)) => {
                if serialized_len(v) > limits.description_max {
                    c.err("description", format!("at most {} bytes serialised", limits.description_max))
                }
            }
            Some(_) => c.err("description", "must be a string or a JSON object"),
        }
        match &self.data {
            None | Some(Value::Null) => {}
            Some(v @ Value::Object(_)) => {
                if serialized_len(v) > limits.data_max {
                    c.err("data", format!("at most {} bytes serialised", limits.data_max))
                }
            }
            Some(_) => c.err("data", "must be a JSON object"),
        }

        if let Some(s) = &self.subject {
            for (field, n) in [("subject.emails", s.emails.len()), ("subject.phones", s.phones.len())] {
                if n > MAX_LISTED {
                    c.err(field, format!("at most {MAX_LISTED} per record"));
                }
            }
            for (i, e) in s.emails.iter().enumerate() {
                let t = e.trim();
                if !(3..=254).contains(&t.len()) || t.split('@').count() != 2 || t.starts_with('@') || t.ends_with('@')
                {
                    c.err(format!("subject.emails[{i}]"), "not an e-mail address");
                }
            }
            for (i, p) in s.phones.iter().enumerate() {
                let digits = p.chars().filter(char::is_ascii_digit).count();
                if digits < 3 || p.len() > 64 {
                    c.err(format!("subject.phones[{i}]"), "a phone number needs at least 3 digits");
                } else if p.chars().any(|ch| !(ch.is_ascii_digit() || " +-().\u{a0}/".contains(ch))) {
                    c.err(format!("subject.phones[{i}]"), "only digits and the separators + - ( ) . / and spaces");
                }
            }
            c.short("subject.first_name", &s.first_name);
            c.short("subject.last_name", &s.last_name);
        }
        if self.attachments.len() > MAX_LISTED {
            c.err("attachments", format!("at most {MAX_LISTED} per record"));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            c.ident(&format!("attachments[{i}].blob"), &a.blob);
            if a.name.is_empty() || a.name.len() > limits.short_max {
                c.err(format!("attachments[{i}].name"), format!("must be 1 to {} bytes", limits.short_max));
            }
            // The kind names the blob's area: a record may not point into the error reports'.
            if a.is_error_report() {
                c.err(
                    format!("attachments[{i}].kind"),
                    "`error_report` is Auditrail's own, for uploaded error reports",
                );
            }
        }

        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        let record = Record {
            tenant_id: tenant_id.to_owned(),
            id,
            occurred_at,
            received_at: now,
            category,
            action: self.action,
            actor,
            result: self.result,
            phase: self.phase,
            correlation_id: self.correlation_id,
            source_ip: self.source_ip,
            session_id: self.session_id,
            failure_reason_code: self.failure_reason_code,
            description: self.description.filter(|v| !v.is_null()),
            data: self.data.filter(|v| !v.is_null()),
            subject: self.subject,
            attachments: self.attachments,
            integrity: None,
        };
        Ok(record)
    }
}

impl Category {
    /// Categories whose records are events with an outcome (personal-data records are not).
    pub fn is_event_like(self) -> bool {
        matches!(self, Self::Audit | Self::SignIn | Self::Cobrowse)
    }
}

/// The length of `v` serialised as it is stored (compact JSON), counted without building it: a
/// batch's descriptions were each serialised into a string only to be measured, 16 % of parsing
/// and validating a batch.
fn serialized_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // A `Value`'s keys are strings: serialising it into a writer that cannot fail cannot fail.
    serde_json::to_writer(&mut n, v).expect("a JSON value serialises");
    n.0
}

/// Why a client's event time cannot be right: before 2000, or more than `skew` ahead of `now`.
pub fn out_of_range(t: DateTime<Utc>, now: DateTime<Utc>, skew: Duration) -> Option<&'static str> {
    if now.checked_add_signed(skew).is_some_and(|latest| t > latest) {
        Some("is more than 24 hours in the future; check the client clock")
    } else if t.timestamp() < 946_684_800 {
        Some("is before 2000-01-01")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<Record, Vec<FieldError>> {
        let inc: IncomingRecord =
            serde_json::from_value(v).map_err(|e| vec![FieldError::new("body", e.to_string())])?;
        inc.into_record("t1", Utc::now(), &ValidationLimits::default())
    }

    fn fields(v: Value) -> Vec<String> {
        check(v).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_json_description_and_data_are_measured_as_stored() {
        // Escapes, non-ASCII text and nesting count as serialised: exactly at the limit is
        // accepted, a byte over is refused, for the description and for data alike.
        let limits = ValidationLimits::default();
        for (field, max) in [("description", limits.description_max), ("data", limits.data_max)] {
            let doc = |n: usize| json!({"q\"uote": "a\nb\u{1}ž", "deep": {"list": [1, 2.5, null, true]}, "pad": "x".repeat(n)});
            let base = doc(0).to_string().len();
            assert_eq!(serialized_len(&doc(0)), base);
            let record = |n: usize| json!({"id":"e-1","occurred_at":"2026-11-20T10:00:00Z","action":"USER_LOGIN", "result":"OK", field: doc(n)});
            let ok = check(record(max - base));
            assert!(ok.is_ok(), "{field} of exactly {max} bytes: {:?}", ok.err());
            assert_eq!(fields(record(max - base + 1)), vec![field.to_owned()], "{field} of {} bytes", max + 1);
        }
    }

    #[test]
    fn a_complete_audit_record_is_accepted_and_defaults_its_category() {
        let r = check(json!({"id":"e-1","occurred_at":"2026-11-20T10:00:00+01:00","action":"USER_LOGIN",
            "actor":{"username":"jdoe","full_name":"Jane Doe"},"result":"OK"}))
        .unwrap();
        assert_eq!(r.category, Category::Audit);
        assert_eq!(r.occurred_at.to_rfc3339(), "2026-11-20T09:00:00+00:00");
        assert_eq!(r.tenant_id, "t1");
    }

    #[test]
    fn phases_need_a_correlation_id_and_the_right_result() {
        assert_eq!(
            fields(
                json!({"occurred_at":"2026-11-20T10:00:00Z","action":"CONVERSATION_SEARCH","phase":"start","result":"OK"})
            ),
            vec!["result", "correlation_id"]
        );
        assert_eq!(
            fields(
                json!({"occurred_at":"2026-11-20T10:00:00Z","action":"CONVERSATION_SEARCH","phase":"end","correlation_id":"c"})
            ),
            vec!["result"]
        );
        assert!(check(json!({"occurred_at":"2026-11-20T10:00:00Z","action":"CONVERSATION_SEARCH","phase":"start","correlation_id":"c"})).is_ok());
    }

    #[test]
    fn sign_ins_and_cobrowse_need_their_keys() {
        assert_eq!(
            fields(json!({"occurred_at":"2026-11-20T10:00:00Z","action":"SIGN_IN","result":"OK"})),
            vec!["actor.username"]
        );
        assert_eq!(
            fields(json!({"occurred_at":"2026-11-20T10:00:00Z","action":"CLICK"})),
            vec!["session_id", "actor.kind"]
        );
        assert_eq!(
            fields(
                json!({"occurred_at":"2026-11-20T10:00:00Z","action":"CLICK","category":"audit","session_id":"s","actor":{"kind":"agent"}})
            ),
            vec!["category"]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let errs = fields(json!({"id":"has space","occurred_at":"yesterday","action":"LOGN","result":"OK",
            "source_ip":"300.1.1.1","description":42,"subject":{"phones":["12"],"emails":["nope"]}}));
        assert_eq!(
            errs,
            vec!["id", "occurred_at", "action", "source_ip", "description", "subject.emails[0]", "subject.phones[0]"]
        );
    }

    #[test]
    fn tenant_in_the_body_is_refused() {
        let e = serde_json::from_value::<IncomingRecord>(
            json!({"tenant_id":"other","occurred_at":"2026-11-20T10:00:00Z","action":"LOGIN","result":"OK"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("tenant_id"), "{e}");
    }

    #[test]
    fn far_future_is_refused() {
        let t = (Utc::now() + Duration::days(3)).to_rfc3339();
        assert_eq!(
            fields(json!({"occurred_at":t,"action":"LOGIN","actor":{"username":"a"},"result":"OK"})),
            vec!["occurred_at"]
        );
    }
}
