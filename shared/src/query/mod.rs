//! Query planning shared by every back end: turning request parameters into an `EventFilter`,
//! sealing page positions into tamper-proof, tenant- and filter-bound cursors, and rendering
//! times in the viewer's zone.

pub mod cursor;
pub mod paging;
pub mod params;
pub mod sign_in;

pub use cursor::CursorKey;

/// The filter fields whose values a user types and which may name a person (a query's `q`, the
/// user filters, a team or employee id), wherever a filter is kept: the self-audit records of
/// searches and exports, export tasks and schedules. DPO search indexes them, erasure scrubs them.
pub const TERM_KEYS: [&str; 7] = ["q", "user", "account", "agent", "employee_id", "team", "text"];
pub use params::{DEFAULT_LIMIT, MAX_LIMIT, MAX_RANGE_DAYS, ParsedQuery, View};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::record::Record;

/// Formats a UTC instant in the viewer's zone (RFC 3339 with the zone's offset).
pub fn render_time(t: DateTime<Utc>, tz: Option<Tz>) -> String {
    match tz {
        Some(tz) => t.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// A record as the API returns it, with its times in the viewer's zone.
pub fn render_record(r: &Record, tz: Option<Tz>) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("occurred_at".into(), render_time(r.occurred_at, tz).into());
        map.insert("received_at".into(), render_time(r.received_at, tz).into());
    }
    v
}
