//! Export requests and archive passwords (seed 003's rule): a request resolves or names its bad
//! fields; the password rule accepts exactly letters, digits and `_ @ %`, 1 to 12 characters.

use auditrail_shared::error::parse_json;
use auditrail_shared::export::password::{MAX_LEN, check};
use auditrail_shared::export::{ExportRequest, resolve};
use auditrail_shared::query::CursorKey;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::common::{assert_named, assert_problem, config, mutate, nasty_text, number_text, time_text};
use crate::records::{json_value, now};

fn password() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_@%]{1,12}",
        "[A-Za-z0-9_@%]{1,12}".prop_flat_map(mutate),
        "[A-Za-z0-9_@%]{13,40}",
        nasty_text(),
    ]
}

fn filter_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        time_text().prop_map(Value::String),
        number_text().prop_map(Value::String),
        prop::sample::select(vec!["LOGIN", "sign-ins", "events", "1d", "7d", "Sign In", "audit"]).prop_map(Value::from),
        json_value(),
    ]
}

fn filter() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "view", "from", "to", "period", "action", "category", "user", "account", "operation", "result", "q",
            "limit", "cursor", "tz", "employee_id",
        ]).prop_map(str::to_owned),
        1 => nasty_text(),
    ];
    prop::collection::btree_map(key, filter_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

fn request() -> impl Strategy<Value = Value> {
    (
        filter(),
        proptest::option::of(prop_oneof![Just(json!("csv")), Just(json!("jsonl")), json_value()]),
        proptest::option::of(prop_oneof![Just(json!("zip")), Just(json!("gzip")), Just(json!("none")), json_value()]),
        proptest::option::of(password().prop_map(Value::String)),
        proptest::option::of(prop_oneof![Just(json!("Europe/Prague")), nasty_text().prop_map(Value::String)]),
    )
        .prop_map(|(filter, format, compression, password, tz)| {
            let mut r = json!({"filter": filter});
            for (k, v) in [("format", format), ("compression", compression), ("password", password), ("tz", tz)] {
                if let Some(v) = v {
                    r[k] = v;
                }
            }
            r
        })
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn the_password_rule_is_exactly_the_seeds(pw in password()) {
        let errs = check("password", &pw);
        let n = pw.chars().count();
        let ok = (1..=MAX_LEN).contains(&n) && pw.chars().all(|c| c.is_ascii_alphanumeric() || "_@%".contains(c));
        prop_assert_eq!(errs.is_empty(), ok, "{:?}: {:?}", pw, errs);
        prop_assert!(errs.iter().all(|e| e.field == "password" && !e.reason.is_empty()));
    }

    #[test]
    fn export_requests_resolve_or_name_their_fields(body in request()) {
        let bytes = body.to_string();
        match parse_json::<ExportRequest>(bytes.as_bytes(), "body") {
            Ok(req) => match resolve(req, "acme", &CursorKey::new(b"k"), now()) {
                Ok(r) => prop_assert!(r.filter.from <= r.filter.to),
                Err(e) => assert_problem(&e)?,
            },
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn any_bytes_as_an_export_request(b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = parse_json::<ExportRequest>(&b, "body") {
            assert_problem(&e)?;
        }
    }
}

#[test]
fn an_export_filter_naming_a_huge_duration_is_a_problem() {
    let req: ExportRequest =
        serde_json::from_value(json!({"filter": {"view": "sign-ins", "period": "999999999999d"}})).unwrap();
    match resolve(req, "acme", &CursorKey::new(b"k"), now()) {
        Err(auditrail_shared::error::ApiError::Invalid(errs)) => {
            assert_named(&errs).unwrap();
            assert_eq!(errs[0].field, "filter.period");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
}
