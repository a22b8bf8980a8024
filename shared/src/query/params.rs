//! Parsing of list parameters (`GET /v1/events`, `/v1/sign-ins`, session timelines) into an
//! `EventFilter`, with one clear error per bad field. Unknown parameters are refused so a typo
//! never silently widens a compliance search.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::cursor::{CursorBody, CursorKey};
use super::paging::{Paging, Window, single};
use super::sign_in;
use crate::error::{ApiError, FieldError};
use crate::record::catalogue;
use crate::record::{Category, ResultCode};
use crate::store::{EventFilter, Order, Position};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// The widest window one query may span (the longest default retention).
pub const MAX_RANGE_DAYS: i64 = 400;
/// Eleveo's default: the last 10 days.
pub const DEFAULT_DAYS: i64 = 10;

/// Which listing the parameters are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The activity log.
    Events,
    /// The sign-in log (seed 003).
    SignIns,
    /// One co-browsing session's timeline, oldest first.
    Session(String),
    /// Client error reports (seed 000).
    ErrorReports,
}

impl View {
    fn allowed(&self) -> &'static [&'static str] {
        match self {
            Self::Events => &[
                "from",
                "to",
                "action",
                "category",
                "user",
                "result",
                "session_id",
                "correlation_id",
                "q",
                "limit",
                "cursor",
                "tz",
            ],
            Self::SignIns => {
                &["period", "from", "to", "account", "employee_id", "operation", "result", "limit", "cursor", "tz"]
            }
            Self::Session(_) => &["from", "to", "limit", "cursor", "tz"],
            Self::ErrorReports => &["from", "to", "agent", "team", "limit", "cursor", "tz"],
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Events => "events".into(),
            Self::SignIns => "sign-ins".into(),
            Self::Session(s) => format!("session:{s}"),
            Self::ErrorReports => "error-reports".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParsedQuery {
    pub filter: EventFilter,
    pub limit: usize,
    pub after: Option<Position>,
    pub tz: Option<Tz>,
    /// Binds cursors to this exact filter.
    pub hash: String,
    /// The parameters as given (cursor excluded), for the AUDIT_SEARCH record.
    pub echo: serde_json::Map<String, serde_json::Value>,
}

/// Seals the position after a page into a cursor bound to tenant, filter hash and window.
fn seal_next(
    key: &CursorKey,
    tenant: &str,
    hash: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    next: Option<Position>,
) -> Option<String> {
    next.map(|p| {
        key.seal(&CursorBody {
            v: 1,
            t: tenant.to_owned(),
            f: hash.to_owned(),
            from: from.timestamp_micros(),
            to: to.timestamp_micros(),
            p,
        })
    })
}

impl ParsedQuery {
    /// The cursor for the page after `next`.
    pub fn next_cursor(&self, key: &CursorKey, tenant: &str, next: Option<Position>) -> Option<String> {
        seal_next(key, tenant, &self.hash, self.filter.from, self.filter.to, next)
    }
}

fn parse_result(s: &str) -> Option<ResultCode> {
    ResultCode::parse(&s.to_ascii_uppercase()).or_else(|| sign_in::result_from_label(s))
}

/// A short hash of a view's filter parameters (order-insensitive), binding cursors to them.
fn filter_hash(view: &str, mut pairs: Vec<(String, String)>) -> String {
    pairs.sort();
    let mut h = Sha256::new();
    h.update(view.as_bytes());
    for (k, v) in &pairs {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.as_bytes());
    }
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &h.finalize()[..16])
}

/// The field an unknown parameter is reported under: its name, or `query` for a blank name.
fn unknown_name(k: &str) -> &str {
    if k.trim().is_empty() { "query" } else { k }
}

/// The one duration parser: `30s`, `10m`, `2h`, `1d`, `250ms` (humantime's forms, so also
/// `1h 30m` or `2weeks`). A duration too large for a chrono duration is refused, never a panic.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let d = humantime::parse_duration(s.trim()).ok()?;
    Duration::from_std(d).ok()
}

/// `GET /v1/requests` parameters.
#[derive(Debug, Clone)]
pub struct ParsedRequests {
    pub query: crate::store::RequestQuery,
    pub limit: usize,
    pub after: Option<Position>,
    pub tz: Option<Tz>,
    pub hash: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub echo: serde_json::Map<String, serde_json::Value>,
}

impl ParsedRequests {
    pub fn next_cursor(&self, key: &CursorKey, tenant: &str, next: Option<Position>) -> Option<String> {
        seal_next(key, tenant, &self.hash, self.from, self.to, next)
    }
}

/// Parses `min_delay_ms=N` or `unfinished_for=DURATION`, with an optional window (`from`/`to`,
/// default the last 10 days), `limit`, `cursor` and `tz`.
pub fn parse_requests(
    raw: &str,
    tenant: &str,
    key: &CursorKey,
    now: DateTime<Utc>,
) -> Result<ParsedRequests, ApiError> {
    use crate::store::RequestQuery;
    let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::field("query", format!("not a valid query string: {e}")))?;
    const ALLOWED: [&str; 7] = ["min_delay_ms", "unfinished_for", "from", "to", "limit", "cursor", "tz"];
    let mut errs = Vec::new();
    let mut paging = Paging::default();
    let (mut min_delay, mut unfinished) = (None, None);
    let mut hashed = Vec::new();
    let mut echo = serde_json::Map::new();
    for (k, v) in pairs {
        if !Paging::is_page_control(&k) {
            hashed.push((k.clone(), v.clone()));
            echo.insert(k.clone(), v.clone().into());
        }
        // No `period` here: a list of requests takes only from/to.
        if k != "period" && paging.take(&k, &v, &mut errs) {
            continue;
        }
        match k.as_str() {
            "min_delay_ms" => match v.parse::<i64>() {
                Ok(n) if n >= 0 => min_delay = Some(n),
                _ => errs.push(FieldError::new("min_delay_ms", "a whole number of milliseconds, 0 or more")),
            },
            "unfinished_for" => match parse_duration(&v) {
                Some(d) if d > Duration::zero() && d <= Duration::days(MAX_RANGE_DAYS) => unfinished = Some(d),
                _ => errs.push(FieldError::new(
                    "unfinished_for",
                    format!("a duration such as 30s, 10m, 2h or 1d, more than 0 and at most {MAX_RANGE_DAYS}d"),
                )),
            },
            other => errs.push(FieldError::new(
                unknown_name(other),
                format!("unknown parameter; this list accepts {}", ALLOWED.join(", ")),
            )),
        }
    }
    let window = paging.window(now, DEFAULT_DAYS, &mut errs);
    let hash = filter_hash("requests", hashed);
    let (Window { from: from_t, to: to_t }, after) = paging.resume(key, tenant, &hash, window, &mut errs);
    let query = match (min_delay, unfinished) {
        (Some(min_delay_ms), None) => Some(RequestQuery::SlowerThan { min_delay_ms, from: from_t, to: to_t }),
        (None, Some(d)) => Some(RequestQuery::Unfinished { started_before: (now - d).min(to_t), from: from_t }),
        (Some(_), Some(_)) => {
            errs.push(FieldError::new("unfinished_for", "give either min_delay_ms or unfinished_for, not both"));
            None
        }
        (None, None) if errs.is_empty() => {
            errs.push(FieldError::new(
                "min_delay_ms",
                "give min_delay_ms (slow requests) or unfinished_for (never finished)",
            ));
            None
        }
        (None, None) => None,
    };
    match query {
        Some(query) if errs.is_empty() => {
            Ok(ParsedRequests { query, limit: paging.limit, after, tz: paging.tz, hash, from: from_t, to: to_t, echo })
        }
        _ => Err(ApiError::Invalid(errs)),
    }
}

/// Parses a raw query string for `view`, opening the cursor if one is given.
pub fn parse(
    raw: &str,
    view: View,
    tenant: &str,
    key: &CursorKey,
    now: DateTime<Utc>,
) -> Result<ParsedQuery, ApiError> {
    // Cursors carry microseconds; keep the window at that precision so pages agree.
    let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::field("query", format!("not a valid query string: {e}")))?;
    let mut errs: Vec<FieldError> = Vec::new();
    let allowed = view.allowed();
    let mut filter = EventFilter::window(now, now);
    let mut paging = Paging::default();
    let mut hashed: Vec<(String, String)> = Vec::new();
    let mut echo = serde_json::Map::new();
    let mut text_fields: [(&str, Option<String>); 7] = [
        ("user", None),
        ("account", None),
        ("agent", None),
        ("employee_id", None),
        ("session_id", None),
        ("correlation_id", None),
        ("team", None),
    ];

    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            errs.push(FieldError::new(
                unknown_name(&k),
                format!("unknown parameter; this list accepts {}", allowed.join(", ")),
            ));
            continue;
        }
        if !Paging::is_page_control(&k) {
            hashed.push((k.clone(), v.clone()));
            match echo.get_mut(&k) {
                Some(serde_json::Value::Array(a)) => a.push(v.clone().into()),
                Some(prev) => *prev = serde_json::Value::Array(vec![prev.clone(), v.clone().into()]),
                None => {
                    echo.insert(k.clone(), v.clone().into());
                }
            }
        }
        if paging.take(&k, &v, &mut errs) {
            continue;
        }
        match k.as_str() {
            "action" => {
                for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    match catalogue::resolve(a) {
                        Ok(_) => filter.actions.push(a.to_owned()),
                        Err(p) => errs.push(FieldError::new("action", format!("`{a}`: {p}"))),
                    }
                }
            }
            "operation" => match sign_in::operation_actions(&v) {
                Some(actions) => filter.actions.extend(actions.iter().map(|a| (*a).to_owned())),
                None => errs.push(FieldError::new(
                    "operation",
                    "one of Sign In, Sign Out, Forcible Sign In, Forcible Sign Out",
                )),
            },
            "category" => {
                for c in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    match Category::parse(c) {
                        Some(c) => filter.categories.push(c),
                        None => errs.push(FieldError::new(
                            "category",
                            format!(
                                "`{c}` is not one of {}",
                                Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        )),
                    }
                }
            }
            "result" => match parse_result(&v) {
                Some(r) => filter.result = Some(r),
                None => errs.push(FieldError::new(
                    "result",
                    match view {
                        View::SignIns => "one of Successful, Failed",
                        _ => "one of OK, FAIL, UNAUTHORIZED",
                    },
                )),
            },
            "q" => {
                if v.chars().count() > 256 {
                    errs.push(FieldError::new("q", "at most 256 characters"));
                } else if !v.trim().is_empty() {
                    filter.text = Some(v);
                }
            }
            other => {
                if let Some((name, slot)) = text_fields.iter_mut().find(|(n, _)| *n == other) {
                    if v.trim().is_empty() || v.len() > 256 {
                        errs.push(FieldError::new(*name, "must be 1 to 256 characters"));
                    } else {
                        single(&mut errs, name, slot, v);
                    }
                }
            }
        }
    }
    let [(_, user), (_, account), (_, agent), (_, employee_id), (_, session_id), (_, correlation_id), (_, team)] =
        text_fields;
    filter.user = user.or(account).or(agent);
    // A team is matched in the report's description (a narrowing pre-filter); the route then
    // keeps only exact team matches.
    if team.is_some() {
        filter.text = team;
    }
    filter.employee_id = employee_id;
    filter.session_id = session_id;
    filter.correlation_id = correlation_id;
    filter.actions.sort();
    filter.actions.dedup();
    filter.categories.sort();
    filter.categories.dedup();

    match &view {
        View::Events => {}
        // By action, never by the category a client happened to store a sign-in under
        // (Eleveo `USER_LOGIN` and Chatvisor `LOGGED_IN` default to `audit`).
        View::SignIns if filter.actions.is_empty() => {
            filter.actions = catalogue::sign_in_actions().iter().map(|a| (*a).to_owned()).collect();
            filter.actions.sort();
        }
        View::SignIns => {}
        View::Session(s) => {
            filter.session_id = Some(s.clone());
            filter.order = Order::OldestFirst;
            // The SESSION_VIEW record names the session viewed.
            echo.insert("session_id".into(), s.clone().into());
        }
        // Only stored reports: an index record of an upload, never a record of a refused one.
        View::ErrorReports => {
            filter.categories = vec![Category::ErrorReport];
            filter.actions = vec!["ERROR_REPORT".into()];
            filter.result = Some(ResultCode::Ok);
        }
    }

    // The window: explicit bounds, a period, or the view's default.
    let default_days = if matches!(view, View::Session(_)) { MAX_RANGE_DAYS } else { DEFAULT_DAYS };
    let window = paging.window(now, default_days, &mut errs);
    let hash = filter_hash(&view.name(), hashed);
    let (window, after) = paging.resume(key, tenant, &hash, window, &mut errs);
    filter.from = window.from;
    filter.to = window.to;

    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    Ok(ParsedQuery { filter, limit: paging.limit, after, tz: paging.tz, hash, echo })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"k")
    }

    fn fields(raw: &str, view: View) -> Vec<String> {
        match parse(raw, view, "acme", &key(), Utc::now()) {
            Err(ApiError::Invalid(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn defaults_to_the_last_ten_days_newest_first() {
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let q = parse("", View::Events, "acme", &key(), now).unwrap();
        assert_eq!(q.filter.to, now);
        assert_eq!(q.filter.from, now - Duration::days(10));
        assert_eq!(q.filter.order, Order::NewestFirst);
        assert_eq!(q.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn repeated_and_comma_separated_actions() {
        let q =
            parse("action=LOGIN&action=LOGOUT,LOGIN&result=FAIL&user=jdoe", View::Events, "acme", &key(), Utc::now())
                .unwrap();
        assert_eq!(q.filter.actions, vec!["LOGIN", "LOGOUT"]);
        assert_eq!(q.filter.result, Some(ResultCode::Fail));
        assert_eq!(q.filter.user.as_deref(), Some("jdoe"));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(fields("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", View::Events), vec!["to"]);
        assert_eq!(fields("tz=Mars/Olympus", View::Events), vec!["tz"]);
        assert_eq!(fields("action=LOGN", View::Events), vec!["action"]);
        assert_eq!(fields("color=red", View::Events), vec!["color"]);
        assert_eq!(fields("limit=0", View::Events), vec!["limit"]);
        assert_eq!(fields("period=2d", View::SignIns), vec!["period"]);
        assert_eq!(fields("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", View::Events), vec!["from"]);
        assert_eq!(fields("cursor=abc", View::Events), vec!["cursor"]);
        assert_eq!(fields("period=1d", View::Events), vec!["period"]);
    }

    /// One paging type: the same page parameters give the same problems on every list.
    #[test]
    fn every_list_reads_paging_alike() {
        for raw in [
            "limit=0",
            "limit=1001",
            "tz=Mars/Olympus",
            "cursor=abc",
            "from=x",
            "to=2026-13-01",
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from=2026-01-01T00:00:00Z&from=2026-01-02T00:00:00Z",
        ] {
            let requests = match parse_requests(&format!("min_delay_ms=1&{raw}"), "acme", &key(), Utc::now()) {
                Err(ApiError::Invalid(e)) => e.into_iter().map(|e| e.field).collect::<Vec<_>>(),
                other => panic!("{raw}: expected errors, got {other:?}"),
            };
            assert_eq!(fields(raw, View::Events), requests, "{raw}");
            assert!(!requests.is_empty(), "{raw}");
        }
    }

    #[test]
    fn sign_in_view_maps_operations_and_results() {
        let q = parse(
            "period=3d&operation=Forcible%20Sign%20In&result=Failed&account=a1",
            View::SignIns,
            "acme",
            &key(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(q.filter.actions, vec!["FORCIBLE_SIGN_IN"]);
        assert!(q.filter.categories.is_empty(), "selected by action, not category");
        assert_eq!(q.filter.result, Some(ResultCode::Fail));
        assert_eq!(q.filter.user.as_deref(), Some("a1"));
        assert_eq!(q.filter.to - q.filter.from, Duration::days(3));
    }

    #[test]
    fn sign_in_view_defaults_to_every_catalogue_sign_in_action() {
        let q = parse("period=7d", View::SignIns, "acme", &key(), Utc::now()).unwrap();
        let mut all: Vec<&str> = catalogue::sign_in_actions().to_vec();
        all.sort();
        assert_eq!(q.filter.actions, all);
        assert!(q.filter.categories.is_empty());
    }

    #[test]
    fn cursor_keeps_the_first_pages_window_and_is_bound_to_the_filter() {
        let t0 = Utc::now() - Duration::hours(1);
        let first = parse("action=LOGIN", View::Events, "acme", &key(), t0).unwrap();
        let c = first.next_cursor(&key(), "acme", Some(serde_json::json!({"ts": 1, "id": "a"}))).unwrap();
        let second = parse(&format!("action=LOGIN&cursor={c}"), View::Events, "acme", &key(), Utc::now()).unwrap();
        assert_eq!(second.filter.to, first.filter.to);
        assert_eq!(fields(&format!("action=LOGOUT&cursor={c}"), View::Events), vec!["cursor"]);
        assert!(parse(&format!("action=LOGIN&cursor={c}"), View::Events, "globex", &key(), Utc::now()).is_err());
    }
}
