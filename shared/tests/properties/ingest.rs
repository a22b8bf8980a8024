//! Batch splitting (JSON array and NDJSON): a body is a batch result with one entry per item, or
//! one problem for the whole body; a bad item never sinks its neighbours.

use auditrail_shared::ingest::{Framing, prepare};
use auditrail_shared::record::ValidationLimits;
use auditrail_shared::store::AppendOutcome;
use proptest::prelude::*;
use serde_json::Value;

use crate::common::{assert_named, assert_problem, config, nasty_text};
use crate::records::{json_value, mutated_record, now, valid_record};

fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => valid_record().prop_map(|v| v.to_string()),
        3 => mutated_record().prop_map(|v| v.to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => nasty_text(),
        1 => Just("{\"occurred_at\":".to_owned()),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/x-ndjson; charset=utf-8".to_owned()),
        Just(" Application/JSON ".to_owned()),
        nasty_text(),
    ])
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ndjson_items_each_get_a_result(items in prop::collection::vec(item(), 1..8), crlf in any::<bool>()) {
        let body = items.join(if crlf { "\r\n" } else { "\n" });
        match prepare(body.as_bytes(), Framing::NdJson, "acme", now(), &ValidationLimits::default()) {
            Ok(p) => {
                let n = p.records.len();
                let res = p.finish(&vec![AppendOutcome::Created; n]);
                let lines = body.lines().filter(|l| !l.trim().is_empty()).count();
                prop_assert_eq!(res.items.len(), lines);
                prop_assert_eq!(res.created, n);
                for i in res.items.iter().filter(|i| !i.errors.is_empty()) {
                    assert_named(&i.errors)?;
                }
            }
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn json_arrays_of_anything_are_split_or_refused(items in prop::collection::vec(item(), 0..8)) {
        let body = format!("[{}]", items.join(","));
        match prepare(body.as_bytes(), Framing::JsonArray, "acme", now(), &ValidationLimits::default()) {
            Ok(p) => {
                let n = p.records.len();
                let res = p.finish(&vec![AppendOutcome::Created; n]);
                let parsed: Vec<Value> = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(res.items.len(), parsed.len());
                for i in res.items.iter().filter(|i| !i.errors.is_empty()) {
                    assert_named(&i.errors)?;
                }
            }
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn any_bytes_with_any_content_type(body in prop::collection::vec(any::<u8>(), 0..300), ct in content_type()) {
        match Framing::detect(ct.as_deref(), &body) {
            Ok(f) => match prepare(&body, f, "acme", now(), &ValidationLimits::default()) {
                Ok(p) => {
                    let n = p.records.len();
                    let _ = p.finish(&vec![AppendOutcome::Created; n]);
                }
                Err(e) => assert_problem(&e)?,
            },
            Err(e) => assert_problem(&e)?,
        }
    }
}
