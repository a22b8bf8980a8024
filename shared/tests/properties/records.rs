//! Record validation: any JSON object answers a record or field errors; a valid record sent
//! again as JSON validates to the same record.

use auditrail_shared::error::{FieldError, parse_json};
use auditrail_shared::record::{IncomingRecord, Record, ValidationLimits};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::common::{assert_named, config, nasty_text, number_text, time_text};

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_795_000_000_000_000).unwrap()
}

/// Any JSON value, nested a little.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(nasty_text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A record that validates (one of several shapes).
pub fn valid_record() -> impl Strategy<Value = Value> {
    let t = (1_000_000_000i64..1_795_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap().to_rfc3339());
    let text = "[a-zA-Z0-9čřŽ ._@-]{1,30}".prop_filter("not blank", |s| !s.trim().is_empty());
    (
        t,
        proptest::option::of("[A-Za-z0-9_.:-]{1,128}"),
        text.clone(),
        proptest::option::of(text.clone()),
        prop::sample::select(vec!["OK", "FAIL", "UNAUTHORIZED"]),
        proptest::option::of(text),
        proptest::option::of(prop::sample::select(vec!["10.0.0.1", "::1", "2001:db8::7"])),
        0usize..4,
    )
        .prop_map(|(t, id, username, full_name, result, desc, ip, shape)| {
            let mut r = match shape {
                0 => json!({"occurred_at": t, "action": "USER_LOGIN", "result": result,
                            "actor": {"username": username, "full_name": full_name}}),
                1 => json!({"occurred_at": t, "action": "SIGN_IN", "category": "sign_in", "result": result,
                            "actor": {"username": username}}),
                2 => json!({"occurred_at": t, "action": "CLICK", "session_id": username,
                            "actor": {"kind": "agent", "user_id": full_name}}),
                _ => json!({"occurred_at": t, "action": "custom:crm.note", "result": "OK",
                            "subject": {"emails": [format!("{}@example.org", local_part(&username))], "phones": ["+420 777 123 456"],
                                        "first_name": username, "last_name": full_name.unwrap_or("X".into())}}),
            };
            if let Some(id) = id {
                r["id"] = id.into();
            }
            if let Some(d) = desc {
                r["description"] = d.into();
            }
            if let (Some(ip), 0 | 1) = (ip, shape) {
                r["source_ip"] = ip.into();
            }
            r
        })
}

const FIELDS: &[&str] = &[
    "id",
    "occurred_at",
    "category",
    "action",
    "actor",
    "result",
    "phase",
    "correlation_id",
    "source_ip",
    "session_id",
    "failure_reason_code",
    "description",
    "data",
    "subject",
    "attachments",
    "tenant_id",
    "received_at",
    "actor.username",
    "actor.kind",
    "subject.emails",
    "subject.phones",
];

/// A valid record with one field set to something else (a near-valid input).
pub fn mutated_record() -> impl Strategy<Value = Value> {
    let replacement = prop_oneof![
        json_value(),
        time_text().prop_map(Value::String),
        number_text().prop_map(Value::String),
        Just(json!(["\u{0}", "", "1"])),
        Just(json!({"kind": "robot"})),
    ];
    (valid_record(), prop::sample::select(FIELDS.to_vec()), replacement, any::<bool>()).prop_map(
        |(mut r, field, v, remove)| {
            let obj = r.as_object_mut().unwrap();
            let (parent, leaf) = match field.split_once('.') {
                Some((p, l)) => {
                    let e = obj.entry(p).or_insert_with(|| Value::Object(Map::new()));
                    if !e.is_object() {
                        *e = Value::Object(Map::new());
                    }
                    (e.as_object_mut().unwrap(), l)
                }
                None => (obj, field),
            };
            if remove {
                parent.remove(leaf);
            } else {
                parent.insert(leaf.to_owned(), v);
            }
            r
        },
    )
}

/// What ingest does with one item: deserialise, then validate.
pub fn validate(bytes: &[u8]) -> Result<Record, Vec<FieldError>> {
    let inc: IncomingRecord = parse_json(bytes, "record").map_err(|e| match e {
        auditrail_shared::error::ApiError::Invalid(errs) => errs,
        other => vec![FieldError::new("record", other.to_string())],
    })?;
    inc.into_record("acme", now(), &ValidationLimits::default())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_json_is_a_record_or_named_errors(v in prop_oneof![json_value(), mutated_record()]) {
        if let Err(errs) = validate(v.to_string().as_bytes()) {
            assert_named(&errs)?;
        }
    }

    #[test]
    fn any_bytes_are_a_record_or_named_errors(b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(errs) = validate(&b) {
            assert_named(&errs)?;
        }
    }

    #[test]
    fn valid_records_are_accepted(v in valid_record()) {
        let r = validate(v.to_string().as_bytes());
        prop_assert!(r.is_ok(), "{v}: {r:?}");
    }

    /// A stored record, sent again as a client would (without the server's fields), gives the
    /// same record.
    #[test]
    fn valid_record_to_json_to_record(v in valid_record()) {
        let first = validate(v.to_string().as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let mut again = serde_json::to_value(&first).unwrap();
        let obj = again.as_object_mut().unwrap();
        obj.remove("tenant_id");
        obj.remove("received_at");
        let second = validate(again.to_string().as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(first, second);
    }
}

/// Found by `any_json_is_a_record_or_named_errors`: a blank key gave an error with no field.
#[test]
fn a_blank_key_is_reported_under_the_object_it_is_in() {
    for body in [r#"{"":null}"#, r#"{"    ":1}"#] {
        let errs = validate(body.as_bytes()).unwrap_err();
        assert_eq!(errs[0].field, "record", "{body}");
        assert!(errs[0].reason.starts_with("unknown field"), "{errs:?}");
    }
    let nested = validate(br#"{"occurred_at":"2026-11-20T10:00:00Z","action":"LOGIN","result":"OK","actor":{"":1}}"#)
        .unwrap_err();
    assert_eq!(nested[0].field, "actor", "{nested:?}");
}

/// A valid e-mail local part made from any text: no `@`, no surrounding space, never empty.
fn local_part(s: &str) -> String {
    let l = s.replace('@', "");
    let l = l.trim();
    if l.is_empty() { "x".to_owned() } else { l.to_owned() }
}
