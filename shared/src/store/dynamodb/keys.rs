//! The DynamoDB key design (see docs/dynamodb.md): one table, every key tenant-prefixed.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | record | `T#{tenant}#R#{id}` | `R` |
//! | request pair | `T#{tenant}#Q#{correlation id}` | `Q` |
//! | setting | `T#{tenant}#SET` | setting name |
//! | tenant registry | `TENANTS` | tenant |
//!
//! A record's index entries are GSI keys on the record item itself (sparse: written only when the
//! attribute exists), all sorted by `tsid` = zero-padded occurred-at microseconds `#` id:
//!
//! | GSI (index `gsiN`, key attribute `gN`) | partition key | written when |
//! |---|---|---|
//! | `g1` time | `T#{t}#D#{yyyymmdd}#{shard}` (shard = hash(id) mod 4) | always |
//! | `g2` action | `T#{t}#A#{action}#{yyyymm}` | always |
//! | `g3` user | `T#{t}#U#{lower(username)}` or `T#{t}#U#~{user id}` | the actor has one |
//! | `g4` category | `T#{t}#C#{category}#{yyyymm}` | category is not `audit` |
//! | `g5` result | `T#{t}#X#{result}#{yyyymm}` | result is FAIL or UNAUTHORIZED |
//! | `g6` session | `T#{t}#S#{session}` | session id |
//! | `g7` correlation | `T#{t}#K#{correlation}` | correlation id |
//! | `g8` employee | `T#{t}#E#{employee id}` | a sign-in (category or catalogue sign-in action) with an employee id |
//! | `g9` slow requests | `T#{t}#DELAY` (sort `dk` = delay `#` correlation) | a request pair is complete |
//! | `g10` open requests | `T#{t}#OPEN` (sort `os` = start `#` correlation) | a start has no end yet |

use chrono::{DateTime, Datelike, Utc};
use sha2::{Digest, Sha256};

use crate::record::{Category, Record, ResultCode};
use crate::store::EventFilter;

pub const SHARDS: u32 = 4;
pub const RECORD_SK: &str = "R";
pub const PAIR_SK: &str = "Q";

pub fn record_pk(tenant: &str, id: &str) -> String {
    format!("T#{tenant}#R#{id}")
}

pub fn pair_pk(tenant: &str, corr: &str) -> String {
    format!("T#{tenant}#Q#{corr}")
}

pub fn settings_pk(tenant: &str) -> String {
    format!("T#{tenant}#SET")
}

pub const TENANTS_PK: &str = "TENANTS";

pub fn tsid(ts: i64, id: &str) -> String {
    format!("{ts:020}#{id}")
}

fn shard(id: &str) -> u32 {
    let h = Sha256::digest(id.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % SHARDS
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d").to_string()
}

fn month(t: DateTime<Utc>) -> String {
    t.format("%Y%m").to_string()
}

/// The user key: lower-cased username, or `~` + user id for actors without a username.
pub fn user_key(r: &Record) -> Option<String> {
    match (&r.actor.username, &r.actor.user_id) {
        (Some(n), _) => Some(crate::record::fold(n)),
        (None, Some(id)) => Some(format!("~{id}")),
        (None, None) => None,
    }
}

/// The GSI partition keys of a record, by attribute name.
pub fn index_keys(r: &Record) -> Vec<(&'static str, String)> {
    let t = &r.tenant_id;
    let at = r.occurred_at;
    let mut out = vec![
        ("g1", format!("T#{t}#D#{}#{}", day(at), shard(&r.id))),
        ("g2", format!("T#{t}#A#{}#{}", r.action, month(at))),
    ];
    if let Some(u) = user_key(r) {
        out.push(("g3", format!("T#{t}#U#{u}")));
    }
    if r.category != Category::Audit {
        out.push(("g4", format!("T#{t}#C#{}#{}", r.category.as_str(), month(at))));
    }
    if let Some(res @ (ResultCode::Fail | ResultCode::Unauthorized)) = r.result {
        out.push(("g5", format!("T#{t}#X#{}#{}", res.as_str(), month(at))));
    }
    if let Some(s) = &r.session_id {
        out.push(("g6", format!("T#{t}#S#{s}")));
    }
    if let Some(c) = &r.correlation_id {
        out.push(("g7", format!("T#{t}#K#{c}")));
    }
    // Seed 003 searches sign-ins by employee id; other records carry it too, but indexing them
    // all would cost every audit record a fifth write unit for a filter no view offers.
    if let Some(e) = r.actor.employee_id.as_ref().filter(|_| is_sign_in(r)) {
        out.push(("g8", format!("T#{t}#E#{e}")));
    }
    out
}

/// A sign-in: stored under `sign_in`, or a sign-in action of the catalogue stored under another
/// category (Eleveo `USER_LOGIN` defaults to `audit`).
fn is_sign_in(r: &Record) -> bool {
    r.category == Category::SignIn || crate::record::catalogue::is_sign_in(&r.action)
}

/// Whether the filter selects only sign-ins, so the employee index (`g8`) holds all it can match.
fn sign_ins_only(f: &EventFilter) -> bool {
    f.categories == [Category::SignIn]
        || (!f.actions.is_empty() && f.actions.iter().all(|a| crate::record::catalogue::is_sign_in(a)))
}

/// Calendar buckets (days or months) covering `[from, to)`, newest first or oldest first.
fn buckets(from: DateTime<Utc>, to: DateTime<Utc>, monthly: bool, newest_first: bool) -> Vec<String> {
    let mut out = Vec::new();
    let last = to - chrono::Duration::microseconds(1);
    let mut d = from.date_naive();
    let end = last.date_naive();
    while d <= end {
        let b = if monthly { d.format("%Y%m").to_string() } else { d.format("%Y%m%d").to_string() };
        if out.last() != Some(&b) {
            out.push(b);
        }
        d = if monthly {
            let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
            chrono::NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month")
        } else {
            d.succ_opt().expect("date in range")
        };
    }
    if newest_first {
        out.reverse();
    }
    out
}

/// One planned read: an index, and groups of partitions read in order; the partitions of one
/// group are merged (they interleave in time), groups follow each other.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub index: &'static str,
    pub groups: Vec<Vec<String>>,
    /// Filters the index does not apply, evaluated as a FilterExpression.
    pub residual: Residual,
}

/// What remains to check after the chosen index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Residual {
    pub actions: Vec<String>,
    pub categories: Vec<String>,
    pub user_keys: Vec<String>,
    pub result: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub employee_id: Option<String>,
    pub text: Option<String>,
}

impl Residual {
    pub fn is_empty(&self) -> bool {
        *self == Residual::default()
    }
}

/// Picks the most selective index for the filter and the partitions to read.
pub fn plan(tenant: &str, f: &EventFilter) -> Plan {
    let newest = f.order == crate::store::Order::NewestFirst;
    let t = tenant;
    let user_keys: Vec<String> = f.user.iter().flat_map(|u| [crate::record::fold(u), format!("~{u}")]).collect();
    let mut residual = Residual {
        actions: f.actions.clone(),
        categories: f.categories.iter().map(|c| c.as_str().to_owned()).collect(),
        user_keys: user_keys.clone(),
        result: f.result.map(|r| r.as_str().to_owned()),
        session_id: f.session_id.clone(),
        correlation_id: f.correlation_id.clone(),
        employee_id: f.employee_id.clone(),
        text: f.text.as_deref().map(crate::record::fold),
    };
    let single = |pk: String| vec![vec![pk]];
    let monthly = |prefix: &dyn Fn(&str) -> Vec<String>| -> Vec<Vec<String>> {
        buckets(f.from, f.to, true, newest).iter().map(|m| prefix(m)).collect()
    };
    let (index, groups) = if let Some(s) = residual.session_id.take() {
        ("g6", single(format!("T#{t}#S#{s}")))
    } else if let Some(c) = residual.correlation_id.take() {
        ("g7", single(format!("T#{t}#K#{c}")))
    } else if let Some(e) = f.employee_id.as_ref().filter(|_| sign_ins_only(f)) {
        // The entries are sign-ins of any category, so the category and action stay residual.
        residual.employee_id = None;
        ("g8", single(format!("T#{t}#E#{e}")))
    } else if !user_keys.is_empty() {
        residual.user_keys.clear();
        ("g3", vec![user_keys.iter().map(|u| format!("T#{t}#U#{u}")).collect()])
    } else if !f.actions.is_empty() {
        let actions = std::mem::take(&mut residual.actions);
        ("g2", monthly(&|m| actions.iter().map(|a| format!("T#{t}#A#{a}#{m}")).collect()))
    } else if !f.categories.is_empty() && !f.categories.contains(&Category::Audit) {
        let cats = std::mem::take(&mut residual.categories);
        ("g4", monthly(&|m| cats.iter().map(|c| format!("T#{t}#C#{c}#{m}")).collect()))
    } else if let Some(r @ ("FAIL" | "UNAUTHORIZED")) = residual.result.as_deref() {
        let r = r.to_owned();
        residual.result = None;
        ("g5", monthly(&|m| vec![format!("T#{t}#X#{r}#{m}")]))
    } else {
        let days = buckets(f.from, f.to, false, newest);
        ("g1", days.iter().map(|d| (0..SHARDS).map(|s| format!("T#{t}#D#{d}#{s}")).collect()).collect())
    };
    Plan { index, groups, residual }
}

/// The GSI serving a key attribute: attribute `gN` is the partition key of index `gsiN`.
pub fn gsi(attr: &str) -> String {
    format!("gsi{}", attr.trim_start_matches('g'))
}

pub fn index_name(index: &str) -> &'static str {
    match index {
        "g1" => "time",
        "g2" => "action",
        "g3" => "user",
        "g4" => "category",
        "g5" => "result",
        "g6" => "session",
        "g7" => "correlation",
        "g8" => "employee",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn buckets_cover_the_window_in_order() {
        let from = Utc.with_ymd_and_hms(2026, 10, 30, 12, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        assert_eq!(buckets(from, to, false, true), vec!["20261101", "20261031", "20261030"]);
        assert_eq!(buckets(from, to, true, false), vec!["202610", "202611"]);
    }

    #[test]
    fn every_sign_in_action_is_in_the_employee_index_whatever_its_category() {
        let mut r = Record::system("t", "USER_LOGIN", Default::default(), Some(ResultCode::Ok), serde_json::json!({}));
        r.actor.employee_id = Some("7".into());
        assert_eq!(r.category, Category::Audit);
        assert!(index_keys(&r).contains(&("g8", "T#t#E#7".to_string())));
        r.action = "CREATE_EVALUATION".into();
        assert!(index_keys(&r).iter().all(|(k, _)| *k != "g8"), "other records' employee ids are not indexed");

        let mut f = EventFilter::window(Utc::now() - chrono::Duration::days(3), Utc::now());
        f.actions = vec!["LOGIN".into(), "USER_LOGIN".into()];
        f.employee_id = Some("7".into());
        let p = plan("t", &f);
        assert_eq!((p.index, p.residual.actions.len()), ("g8", 2), "the actions stay a filter");
        f.actions.push("CREATE_EVALUATION".into());
        assert_ne!(plan("t", &f).index, "g8", "not only sign-ins: the employee index would miss some");
    }

    #[test]
    fn the_most_selective_index_wins() {
        let mut f = EventFilter::window(Utc::now() - chrono::Duration::days(3), Utc::now());
        f.actions = vec!["LOGIN".into()];
        f.user = Some("Jdoe".into());
        f.result = Some(ResultCode::Fail);
        let p = plan("t", &f);
        assert_eq!(p.index, "g3");
        assert_eq!(p.groups, vec![vec!["T#t#U#jdoe".to_string(), "T#t#U#~Jdoe".to_string()]]);
        assert_eq!(p.residual.actions, vec!["LOGIN"]);
        assert_eq!(p.residual.result.as_deref(), Some("FAIL"));
        let p = plan("t", &EventFilter::window(Utc::now() - chrono::Duration::days(3), Utc::now()));
        assert_eq!(p.index, "g1");
        assert_eq!(p.groups[0].len(), SHARDS as usize);
    }
}
