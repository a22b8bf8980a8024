//! List parameters (`/v1/events`, `/v1/sign-ins`, sessions, error reports, `/v1/requests`) and
//! durations: never a panic, a filter or field errors, and filter → query string → filter.

use auditrail_shared::error::ApiError;
use auditrail_shared::query::params::{self, View, parse_duration, parse_requests};
use auditrail_shared::query::{CursorKey, MAX_RANGE_DAYS};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use crate::common::{assert_problem, config, nasty_text, number_text, time_text};

fn key() -> CursorKey {
    CursorKey::new(b"property key")
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_795_000_000_000_000).unwrap()
}

const KEYS: &[&str] = &[
    "from",
    "to",
    "period",
    "action",
    "category",
    "user",
    "account",
    "agent",
    "team",
    "employee_id",
    "operation",
    "result",
    "session_id",
    "correlation_id",
    "q",
    "limit",
    "cursor",
    "tz",
    "min_delay_ms",
    "unfinished_for",
];

fn duration_text() -> impl Strategy<Value = String> {
    (number_text(), prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "", "D", " d", "d "]))
        .prop_map(|(n, u)| format!("{n}{u}"))
}

/// A value that is plausible for some parameter, or garbage.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        time_text(),
        duration_text(),
        number_text(),
        nasty_text(),
        prop::sample::select(vec![
            "LOGIN",
            "LOGOUT,LOGIN",
            "audit",
            "sign_in,cobrowse",
            "OK",
            "Failed",
            "Sign In",
            "Europe/Prague",
            "America/Santiago",
            "Mars/Olympus",
            "1d",
            "3d",
            "7d",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A query string: known and unknown keys, plausible and garbage values, encoded or raw.
fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![4 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned), 1 => nasty_text()];
    let pairs = prop::collection::vec((key, value()), 0..6);
    prop_oneof![
        4 => pairs.prop_map(|p| serde_urlencoded::to_string(p).unwrap_or_default()),
        1 => any::<String>(),
        1 => "[a-z_=&%0-9A-F+]{0,60}",
    ]
}

fn view() -> impl Strategy<Value = View> {
    prop_oneof![Just(View::Events), Just(View::SignIns), Just(View::ErrorReports), nasty_text().prop_map(View::Session),]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn durations_parse_or_refuse_and_never_panic(s in prop_oneof![duration_text(), nasty_text()]) {
        if let Some(d) = parse_duration(&s) {
            prop_assert!(d >= Duration::zero());
        }
    }

    #[test]
    fn every_duration_in_range_means_what_it_says(n in 0i64..=1_000_000, unit in 0usize..5) {
        let (suffix, expected) = [
            ("ms", Duration::milliseconds(n)),
            ("s", Duration::seconds(n)),
            ("m", Duration::minutes(n)),
            ("h", Duration::hours(n)),
            ("d", Duration::days(n)),
        ][unit];
        prop_assert_eq!(parse_duration(&format!("{n}{suffix}")), Some(expected));
    }

    #[test]
    fn list_queries_give_a_filter_or_named_problems(raw in query_string(), view in view()) {
        match params::parse(&raw, view, "acme", &key(), now()) {
            Ok(q) => {
                prop_assert!(q.filter.from <= q.filter.to);
                prop_assert!((1..=params::MAX_LIMIT).contains(&q.limit));
            }
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn request_queries_give_a_query_or_named_problems(raw in query_string()) {
        match parse_requests(&raw, "acme", &key(), now()) {
            Ok(q) => prop_assert!(q.from < q.to && q.to - q.from <= Duration::days(MAX_RANGE_DAYS)),
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn unfinished_for_out_of_range_names_the_field(n in prop_oneof![any::<i64>(), 401i64..i64::MAX], unit in prop::sample::select(vec!["s", "m", "h", "d"])) {
        let raw = format!("unfinished_for={n}{unit}");
        let secs = parse_duration(&format!("{n}{unit}")).map(|d| d.num_seconds());
        match parse_requests(&raw, "acme", &key(), now()) {
            Ok(_) => prop_assert!(secs.is_some_and(|s| s > 0 && s <= MAX_RANGE_DAYS * 86_400)),
            Err(ApiError::Invalid(errs)) => {
                prop_assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["unfinished_for"]);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    /// The parameters echoed for a query, sent again, give the same filter and cursor binding.
    #[test]
    fn filter_to_query_string_to_filter(
        actions in prop::collection::vec(prop::sample::select(vec!["LOGIN", "LOGOUT", "SIGN_IN", "USER_LOGIN", "custom:x.y"]), 0..3),
        categories in prop::collection::vec(prop::sample::select(vec!["audit", "sign_in", "cobrowse", "error_report"]), 0..3),
        user in proptest::option::of("[a-zA-Z0-9čŘ .@_-]{1,20}"),
        result in proptest::option::of(prop::sample::select(vec!["OK", "FAIL", "UNAUTHORIZED", "failed"])),
        q in proptest::option::of("[a-z Ž?&=%+#]{1,20}"),
        days in 1i64..=MAX_RANGE_DAYS,
        window in proptest::bool::ANY,
    ) {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !actions.is_empty() {
            pairs.push(("action", actions.join(",")));
        }
        pairs.extend(categories.iter().map(|c| ("category", (*c).to_owned())));
        if let Some(u) = user.filter(|u| !u.trim().is_empty()) { pairs.push(("user", u)); }
        if let Some(r) = result { pairs.push(("result", r.to_owned())); }
        if let Some(q) = q { pairs.push(("q", q)); }
        if window {
            pairs.push(("from", (now() - Duration::days(days)).to_rfc3339()));
            pairs.push(("to", now().to_rfc3339()));
        }
        let raw = serde_urlencoded::to_string(&pairs).unwrap();
        let first = params::parse(&raw, View::Events, "acme", &key(), now()).map_err(|e| TestCaseError::fail(format!("{raw}: {e:?}")))?;
        let mut again: Vec<(String, String)> = Vec::new();
        for (k, v) in &first.echo {
            match v {
                serde_json::Value::Array(items) => {
                    again.extend(items.iter().map(|i| (k.clone(), i.as_str().unwrap_or_default().to_owned())))
                }
                v => again.push((k.clone(), v.as_str().unwrap_or_default().to_owned())),
            }
        }
        let raw2 = serde_urlencoded::to_string(&again).unwrap();
        let second = params::parse(&raw2, View::Events, "acme", &key(), now()).map_err(|e| TestCaseError::fail(format!("{raw2}: {e:?}")))?;
        prop_assert_eq!(&first.filter, &second.filter);
        prop_assert_eq!(&first.hash, &second.hash);
        // A cursor of the first page opens for the same filter given again.
        let c = first.next_cursor(&key(), "acme", Some(serde_json::json!({"ts": 1, "id": "x"}))).unwrap();
        let third = params::parse(&format!("{raw2}&cursor={c}"), View::Events, "acme", &key(), now() + Duration::hours(1))
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(third.filter, first.filter);
    }
}

#[test]
fn huge_durations_are_refused_not_panics() {
    for s in
        ["999999999999d", "9223372036854775807h", "9223372036854775807m", "9223372036854775807s", "106751991167301d"]
    {
        assert_eq!(parse_duration(s), None, "{s}");
    }
    // humantime counts in nanoseconds: this many milliseconds is past what it holds, refused.
    assert_eq!(parse_duration("9223372036854775807ms"), None);
    // The edge of a chrono duration (i64::MAX milliseconds, 106,751,991,167 days and a bit).
    assert_eq!(parse_duration("106751991167d"), Some(Duration::days(106_751_991_167)));
    assert_eq!(parse_duration("106751991168d"), None);
}

/// Found by `list_queries_give_a_filter_or_named_problems`: `?=x` gave an error with no field.
#[test]
fn a_blank_parameter_name_is_reported_as_query() {
    for raw in ["=0000-01-01T00%3A00%3A00%2B00%3A00", "=", "+=1"] {
        match params::parse(raw, View::Events, "acme", &key(), now()) {
            Err(ApiError::Invalid(errs)) => assert_eq!(errs[0].field, "query", "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
        match parse_requests(raw, "acme", &key(), now()) {
            Err(ApiError::Invalid(errs)) => assert_eq!(errs[0].field, "query", "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
}
