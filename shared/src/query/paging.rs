//! The parameters every list shares, parsed once: `limit`, `cursor`, `tz` and the window
//! (`from`/`to`, or `period` where a list takes it). The activity log, the sign-in log,
//! session timelines, error reports, `/v1/requests` and export filters (through the list's
//! parser) all read them here, with the same messages; the task lists (`/v1/exports`,
//! `/v1/export-schedules`) read `limit` and `cursor` here too.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::cursor::CursorKey;
use super::params::{DEFAULT_DAYS, DEFAULT_LIMIT, MAX_LIMIT, MAX_RANGE_DAYS};
use crate::error::FieldError;
use crate::record::validate::parse_time;
use crate::store::Position;

/// Page size, cursor, zone and window as given, before the window is resolved.
#[derive(Debug, Clone)]
pub struct Paging {
    pub limit: usize,
    pub cursor: Option<String>,
    pub tz: Option<Tz>,
    max_limit: usize,
    from: Option<String>,
    to: Option<String>,
    period: Option<String>,
}

impl Default for Paging {
    fn default() -> Self {
        Self { limit: DEFAULT_LIMIT, cursor: None, tz: None, max_limit: MAX_LIMIT, from: None, to: None, period: None }
    }
}

/// A resolved page: the window searched and where to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Puts a parameter that may be given once into its slot; a second one is a problem.
pub(super) fn single(errs: &mut Vec<FieldError>, k: &str, slot: &mut Option<String>, v: String) {
    if slot.is_some() {
        errs.push(FieldError::new(k, "given more than once"));
    }
    *slot = Some(v);
}

impl Paging {
    /// For a list whose pages hold at most `max` items (task lists: 100).
    pub fn with_max_limit(max: usize) -> Self {
        Self { max_limit: max, ..Self::default() }
    }

    /// Whether a parameter steers the page rather than selects records: such parameters are
    /// neither bound into the cursor nor echoed in the search's audit record.
    pub fn is_page_control(k: &str) -> bool {
        matches!(k, "cursor" | "limit" | "tz")
    }

    /// Takes `k=v` if `k` is one of the shared parameters (its problems go to `errs`); false
    /// when it is not, for the list to handle.
    pub fn take(&mut self, k: &str, v: &str, errs: &mut Vec<FieldError>) -> bool {
        match k {
            "from" => single(errs, "from", &mut self.from, v.to_owned()),
            "to" => single(errs, "to", &mut self.to, v.to_owned()),
            "period" => single(errs, "period", &mut self.period, v.to_owned()),
            "cursor" => single(errs, "cursor", &mut self.cursor, v.to_owned()),
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=self.max_limit).contains(&n) => self.limit = n,
                _ => {
                    errs.push(FieldError::new("limit", format!("must be a whole number from 1 to {}", self.max_limit)))
                }
            },
            "tz" => match v.parse::<Tz>() {
                Ok(z) => self.tz = Some(z),
                Err(_) => errs.push(FieldError::new("tz", "not an IANA time zone name (e.g. Europe/Prague)")),
            },
            _ => return false,
        }
        true
    }

    /// The window: `from`/`to` (each defaulting from the other: `to` now, `from` `to` minus
    /// the default), or `period` (`1d`, `3d`, `7d`) before now, or the last `default_days`. An
    /// explicit window must end after it starts and span at most `MAX_RANGE_DAYS`.
    pub fn window(&self, now: DateTime<Utc>, default_days: i64, errs: &mut Vec<FieldError>) -> Window {
        let parse_bound = |errs: &mut Vec<FieldError>, k: &str, v: &Option<String>| {
            v.as_ref().and_then(|s| parse_time(s).map_err(|e| errs.push(FieldError::new(k, e))).ok())
        };
        let from_t = parse_bound(errs, "from", &self.from);
        let to_t = parse_bound(errs, "to", &self.to);
        let explicit = self.from.is_some() || self.to.is_some();
        let days = match self.period.as_deref() {
            Some(_) if explicit => {
                errs.push(FieldError::new("period", "use either period or from/to, not both"));
                DEFAULT_DAYS
            }
            Some("1d") => 1,
            Some("3d") => 3,
            Some("7d") => 7,
            Some(_) => {
                errs.push(FieldError::new("period", "one of 1d, 3d, 7d (or give from/to for a custom range)"));
                DEFAULT_DAYS
            }
            None => default_days,
        };
        let to = to_t.unwrap_or(now);
        let from = from_t.unwrap_or(to - Duration::days(days));
        if explicit {
            if from >= to {
                errs.push(FieldError::new("to", "must be after from"));
            } else if to - from > Duration::days(MAX_RANGE_DAYS) {
                errs.push(FieldError::new("from", format!("the range may span at most {MAX_RANGE_DAYS} days")));
            }
        }
        Window { from, to }
    }

    /// Opens the cursor, if one was given, for this tenant and filter: the first page's window
    /// (so a default window does not slide between pages) and the position to continue after.
    pub fn resume(
        &self,
        key: &CursorKey,
        tenant: &str,
        hash: &str,
        window: Window,
        errs: &mut Vec<FieldError>,
    ) -> (Window, Option<Position>) {
        let Some(c) = &self.cursor else { return (window, None) };
        match key.open(c, tenant, hash) {
            Ok(body) => (
                Window {
                    from: DateTime::from_timestamp_micros(body.from).unwrap_or(window.from),
                    to: DateTime::from_timestamp_micros(body.to).unwrap_or(window.to),
                },
                Some(body.p),
            ),
            Err(e) => {
                errs.push(FieldError::new("cursor", e.to_string()));
                (window, None)
            }
        }
    }
}
