//! The DynamoDB key design (see docs/dynamodb.md): one table, every key tenant-prefixed.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | record | `T#{tenant}#R#{id}` | `R` |
//! | request pair | `T#{tenant}#Q#{correlation id}` | `Q` |
//! | setting | `T#{tenant}#SET` | setting name |
//! | tenant registry | `TENANTS` | tenant |
//!
//! A record's time and action index entries are in posting items written per append (`postings`,
//! layouts 3 and 4); its other index entries are GSI keys on the record item itself (sparse:
//! written only when the attribute exists), all sorted by `tsid` = zero-padded occurred-at
//! microseconds `#` id. Partition keys carry a record's *classes*, so a filter on the majority
//! values or a seed combination reads only the partitions that can match instead of filtering a
//! whole partition (read ÷ returned ≤ 2, README "Measured").
//!
//! Classes: `r` = `f` for a failure (FAIL, UNAUTHORIZED), `k` for the rest (OK, no result);
//! `s` = `s` for a sign-in (category or catalogue sign-in action), `o` for the rest.
//!
//! | index | partition key | written when |
//! |---|---|---|
//! | time (posting items, not a GSI) | `T#{t}#PD#{yyyymmdd}#{category}` | always |
//! | action (posting items, not a GSI) | `T#{t}#PA#{yyyymm}#{category}#{action}` | always |
//! | `g3` user | `T#{t}#U#{lower(username)}#{s}{r}` or `T#{t}#U#~{user id}#{s}{r}` | the actor has one |
//! | `g5` result | `T#{t}#X#{result}#{yyyymm}` | result is FAIL or UNAUTHORIZED |
//! | `g6` session | `T#{t}#S#{session}` | session id |
//! | `g7` correlation | `T#{t}#K#{correlation}` | correlation id |
//! | `g8` employee | `T#{t}#E#{employee id}#{r}` | a sign-in (category or catalogue sign-in action) with an employee id |
//! | `g9` slow requests | `T#{t}#DELAY` (sort `dk` = delay `#` correlation) | a request pair is complete |
//! | `g10` open requests | `T#{t}#OPEN` (sort `os` = start `#` correlation) | a start has no end yet |
//!
//! A category filter reads the time postings of its categories (they are per category). `g1`
//! (the time GSI of layouts 1 and 2), `g2` (action) and `g4` (category, layouts 1–3) are only read
//! or removed by `upgrade-keys`, which moves such records to postings.

use chrono::{DateTime, Datelike, Utc};

use crate::record::{Category, Record, ResultCode};
use crate::store::EventFilter;

/// The plan id of the time index (posting items, `postings`).
pub const TIME: &str = "pd";
/// The plan id of the action index (posting items, `postings`).
pub const ACTION: &str = "pa";

/// Whether a plan reads posting items (`time_index`) rather than a GSI (`merge`).
pub fn reads_postings(index: &str) -> bool {
    index == TIME || index == ACTION
}
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

/// The result class: `f` for a failure, `k` for the rest.
fn result_class(r: Option<ResultCode>) -> char {
    match r {
        Some(ResultCode::Fail | ResultCode::Unauthorized) => 'f',
        _ => 'k',
    }
}

/// The result classes a filter can match.
fn result_classes(f: &EventFilter) -> &'static [char] {
    match f.result {
        Some(ResultCode::Fail | ResultCode::Unauthorized) => &['f'],
        Some(ResultCode::Ok) => &['k'],
        None => &['f', 'k'],
    }
}

/// The sign-in classes a filter can match (see [`Record::is_sign_in`]).
fn sign_in_classes(f: &EventFilter) -> &'static [char] {
    let no_sign_in_action = !f.actions.is_empty() && !f.actions.iter().any(|a| crate::record::catalogue::is_sign_in(a));
    let no_sign_in_category = !f.categories.is_empty() && !f.categories.contains(&Category::SignIn);
    if f.sign_ins_only() {
        &['s']
    } else if no_sign_in_action && no_sign_in_category {
        &['o']
    } else {
        &['s', 'o']
    }
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
    let rc = result_class(r.result);
    let mut out = Vec::new();
    if let Some(u) = user_key(r) {
        let sc = if r.is_sign_in() { 's' } else { 'o' };
        out.push(("g3", format!("T#{t}#U#{u}#{sc}{rc}")));
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
    if let Some(e) = r.actor.employee_id.as_ref().filter(|_| r.is_sign_in()) {
        out.push(("g8", format!("T#{t}#E#{e}#{rc}")));
    }
    out
}

/// The months (`yyyymm`) of `[from, to]`, oldest first.
pub(super) fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    buckets(from, to + chrono::Duration::microseconds(1), true, false)
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
    let user_keys = user_keys(f);
    let mut residual = residual(f);
    let single = |pk: String| vec![vec![pk]];
    let monthly = |prefix: &dyn Fn(&str) -> Vec<String>| -> Vec<Vec<String>> {
        buckets(f.from, f.to, true, newest).iter().map(|m| prefix(m)).collect()
    };
    let rcs = result_classes(f);
    // Every partition of `keys` × the result classes the filter can match.
    let by_result = |keys: &[String], tail: &str| -> Vec<String> {
        keys.iter().flat_map(|k| rcs.iter().map(move |rc| format!("{k}#{rc}{tail}"))).collect()
    };
    let (index, groups) = if let Some(s) = residual.session_id.take() {
        ("g6", single(format!("T#{t}#S#{s}")))
    } else if let Some(c) = residual.correlation_id.take() {
        ("g7", single(format!("T#{t}#K#{c}")))
    } else if let Some(e) = f.employee_id.as_ref().filter(|_| f.sign_ins_only()) {
        // The entries are sign-ins of any category, so the category and action stay residual.
        residual.employee_id = None;
        ("g8", vec![by_result(&[format!("T#{t}#E#{e}")], "")])
    } else if !user_keys.is_empty() {
        residual.user_keys.clear();
        let keys: Vec<String> = user_keys
            .iter()
            .flat_map(|u| sign_in_classes(f).iter().map(move |sc| format!("T#{t}#U#{u}#{sc}")))
            .collect();
        // `{s}` and `{r}` are one suffix: `…#{s}{r}`.
        let parts = keys.iter().flat_map(|k| rcs.iter().map(move |rc| format!("{k}{rc}"))).collect();
        ("g3", vec![parts])
    } else if !f.actions.is_empty() {
        return action_plan(tenant, f);
    } else if let Some(r @ ("FAIL" | "UNAUTHORIZED")) = residual.result.as_deref() {
        let r = r.to_owned();
        residual.result = None;
        ("g5", monthly(&|m| vec![format!("T#{t}#X#{r}#{m}")]))
    } else {
        return time_plan(tenant, f);
    };
    Plan { index, groups, residual }
}

/// The candidate user keys of a user filter: the folded username, or `~` + the user id.
fn user_keys(f: &EventFilter) -> Vec<String> {
    f.user.iter().flat_map(|u| [crate::record::fold(u), format!("~{u}")]).collect()
}

/// The whole filter, as a FilterExpression would apply it.
fn residual(f: &EventFilter) -> Residual {
    Residual {
        actions: f.actions.clone(),
        categories: f.categories.iter().map(|c| c.as_str().to_owned()).collect(),
        user_keys: user_keys(f),
        result: f.result.map(|r| r.as_str().to_owned()),
        session_id: f.session_id.clone(),
        correlation_id: f.correlation_id.clone(),
        employee_id: f.employee_id.clone(),
        text: f.text.as_deref().map(crate::record::fold),
    }
}

/// The time index alone: per day, the posting partitions of the categories the filter can match;
/// the result is checked on the entries, everything else on the bodies (also the retention
/// purge's read path, which must not depend on any other index).
pub fn time_plan(tenant: &str, f: &EventFilter) -> Plan {
    let days = buckets(f.from, f.to, false, f.order == crate::store::Order::NewestFirst);
    let cats = if f.categories.is_empty() { Category::ALL } else { f.categories.as_slice() };
    let groups =
        days.iter().map(|d| cats.iter().map(|c| format!("T#{tenant}#PD#{d}#{}", c.as_str())).collect()).collect();
    let mut residual = residual(f);
    residual.categories.clear();
    residual.result = None;
    Plan { index: TIME, groups, residual }
}

/// The action index: per month, the posting partitions of the filter's actions in the categories
/// it can match; the result is checked on the entries, everything else on the bodies.
pub fn action_plan(tenant: &str, f: &EventFilter) -> Plan {
    let cats = if f.categories.is_empty() { Category::ALL } else { f.categories.as_slice() };
    let groups = buckets(f.from, f.to, true, f.order == crate::store::Order::NewestFirst)
        .iter()
        .map(|m| {
            f.actions
                .iter()
                .flat_map(|a| cats.iter().map(move |c| super::postings::action_partition(tenant, m, *c, a)))
                .collect()
        })
        .collect();
    let mut residual = residual(f);
    residual.actions.clear();
    residual.categories.clear();
    residual.result = None;
    Plan { index: ACTION, groups, residual }
}

/// The GSI serving a key attribute: attribute `gN` is the partition key of index `gsiN`.
pub fn gsi(attr: &str) -> String {
    format!("gsi{}", attr.trim_start_matches('g'))
}

pub fn index_name(index: &str) -> &'static str {
    match index {
        TIME => "time",
        ACTION => "action",
        "g3" => "user",
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
        assert!(index_keys(&r).contains(&("g8", "T#t#E#7#k".to_string())));
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
        assert_eq!(p.groups, vec![vec!["T#t#U#jdoe#sf".to_string(), "T#t#U#~Jdoe#sf".to_string()]]);
        assert_eq!(p.residual.actions, vec!["LOGIN"]);
        assert_eq!(p.residual.result.as_deref(), Some("FAIL"));
        let p = plan("t", &EventFilter::window(Utc::now() - chrono::Duration::days(3), Utc::now()));
        assert_eq!(p.index, TIME);
        assert_eq!(p.groups[0].len(), Category::ALL.len(), "a day's posting partition of every category");
    }

    /// Records of every class, and the filters the views offer alone and combined: whatever the
    /// planner picks, every record the filter matches sits in one of the partitions it reads — the
    /// classes in the keys only ever narrow a read, never hide a match.
    #[test]
    fn every_matching_record_is_in_a_partition_the_plan_reads() {
        let now = Utc::now();
        let results = [None, Some(ResultCode::Ok), Some(ResultCode::Fail), Some(ResultCode::Unauthorized)];
        let categories = [Category::Audit, Category::SignIn, Category::Cobrowse];
        let actions = ["USER_LOGIN", "LOGIN", "ACCESS_MEDIA"];
        let mut records = Vec::new();
        for (i, (((res, cat), action), user)) in results
            .iter()
            .flat_map(|r| categories.iter().map(move |c| (r, c)))
            .flat_map(|rc| actions.iter().map(move |a| (rc, a)))
            .flat_map(|rca| [Some("Ann"), None].into_iter().map(move |u| (rca, u)))
            .enumerate()
        {
            let mut r = Record::system("t", action, Default::default(), *res, serde_json::json!({}));
            r.id = format!("r{i:03}");
            r.category = *cat;
            r.actor.username = user.map(str::to_owned);
            r.actor.user_id = Some("ann".into());
            r.actor.employee_id = Some("7".into());
            r.occurred_at = now - chrono::Duration::hours(i as i64);
            records.push(r);
        }
        let base = EventFilter::window(now - chrono::Duration::days(30), now + chrono::Duration::seconds(1));
        let mut filters = vec![base.clone()];
        for res in results.iter().flatten() {
            filters.push(EventFilter { result: Some(*res), ..base.clone() });
        }
        let singles = filters.clone();
        for f in singles {
            for c in categories {
                filters.push(EventFilter { categories: vec![c], ..f.clone() });
            }
            filters.push(EventFilter { categories: vec![Category::Audit, Category::Cobrowse], ..f.clone() });
            for a in actions {
                filters.push(EventFilter { actions: vec![a.into()], ..f.clone() });
                filters.push(EventFilter {
                    actions: vec![a.into()],
                    categories: vec![Category::Cobrowse],
                    ..f.clone()
                });
            }
            for u in ["ann", "ANN"] {
                filters.push(EventFilter { user: Some(u.into()), ..f.clone() });
                filters.push(EventFilter { user: Some(u.into()), categories: vec![Category::SignIn], ..f.clone() });
                filters.push(EventFilter { user: Some(u.into()), actions: vec!["ACCESS_MEDIA".into()], ..f.clone() });
            }
            filters.push(EventFilter {
                employee_id: Some("7".into()),
                categories: vec![Category::SignIn],
                ..f.clone()
            });
        }
        let mut checked = 0;
        for f in &filters {
            // The planner's choice, and the time index alone (the purge's path).
            for p in [plan("t", f), time_plan("t", f)] {
                let read: Vec<&String> = p.groups.iter().flatten().collect();
                for r in records.iter().filter(|r| f.matches(r)) {
                    let postings = super::super::postings::posting_pks("t", r);
                    let key = if p.index == TIME {
                        Some(postings[0].clone())
                    } else if p.index == ACTION {
                        Some(postings[1].clone())
                    } else {
                        index_keys(r).into_iter().find(|(k, _)| *k == p.index).map(|(_, v)| v)
                    };
                    let key = key.unwrap_or_else(|| panic!("{} has no {} entry for {f:?}", r.id, p.index));
                    assert!(read.contains(&&key), "{} ({key}) is not read by {f:?}: {read:?}", r.id);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1600, "the grid matched {checked} record × filter pairs");
    }

    /// The seed combinations read only the partitions of their classes.
    #[test]
    fn combinations_read_only_their_classes() {
        let now = Utc::now();
        let f = |g: &dyn Fn(&mut EventFilter)| {
            let mut f = EventFilter::window(now - chrono::Duration::days(1), now);
            g(&mut f);
            plan("t", &f)
        };
        let p = f(&|f| {
            f.categories = vec![Category::Audit];
            f.result = Some(ResultCode::Ok);
        });
        assert_eq!(p.index, TIME);
        let day = now.format("%Y%m%d");
        assert_eq!(p.groups[0], vec![format!("T#t#PD#{day}#audit")], "one posting partition a day");
        assert!(p.residual.is_empty(), "the category is the partition's and the result the entries': {:?}", p.residual);
        let p = f(&|f| {
            f.actions = vec!["LOGIN".into()];
            f.result = Some(ResultCode::Fail);
        });
        assert_eq!(p.index, ACTION);
        let month = now.format("%Y%m");
        assert!(
            p.groups.iter().flatten().all(|k| k.starts_with(&format!("T#t#PA#{month}#")) && k.ends_with("#LOGIN")),
            "{:?}",
            p.groups
        );
        assert!(p.residual.is_empty(), "the action is the partition's and the result the entries': {:?}", p.residual);
        let p = f(&|f| {
            f.actions = vec!["LOGIN".into()];
            f.categories = vec![Category::SignIn];
        });
        assert_eq!(p.groups.iter().flatten().collect::<Vec<_>>(), vec![&format!("T#t#PA#{month}#sign_in#LOGIN")]);
        let p = f(&|f| f.categories = vec![Category::SignIn]);
        assert_eq!(p.groups[0], vec![format!("T#t#PD#{day}#sign_in")], "a category reads its time postings");
        let p = f(&|f| {
            f.user = Some("ann".into());
            f.categories = vec![Category::SignIn];
        });
        assert_eq!(p.groups, vec![vec!["T#t#U#ann#sf", "T#t#U#ann#sk", "T#t#U#~ann#sf", "T#t#U#~ann#sk"]]);
        let p = f(&|f| {
            f.employee_id = Some("7".into());
            f.categories = vec![Category::SignIn];
            f.result = Some(ResultCode::Unauthorized);
        });
        assert_eq!(p.groups, vec![vec!["T#t#E#7#f"]]);
    }
}
