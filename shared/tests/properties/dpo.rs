//! DPO search criteria (seed 002): any body is criteria or field errors, never a panic.

use auditrail_shared::dpo::search::{SearchRequest, criteria};
use auditrail_shared::error::parse_json;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{assert_problem, config, nasty_text, number_text, time_text};
use crate::records::json_value;

fn field_value(name: &'static str) -> BoxedStrategy<Value> {
    match name {
        "email" => {
            prop_oneof!["[a-zA-Z0-9.čŽ]{0,10}@[a-z.]{0,10}".prop_map(Value::from), nasty_text().prop_map(Value::from)]
                .boxed()
        }
        "phone" => prop_oneof!["[0-9 +()./-]{0,20}".prop_map(Value::from), nasty_text().prop_map(Value::from)].boxed(),
        "phone_digits" => prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..20).prop_map(Value::from),
            number_text().prop_map(Value::from),
        ]
        .boxed(),
        "from" | "to" => time_text().prop_map(Value::from).boxed(),
        _ => nasty_text().prop_map(Value::from).boxed(),
    }
}

fn request() -> impl Strategy<Value = Value> {
    let fields = ["email", "phone", "phone_digits", "first_name", "last_name", "from", "to"];
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .iter()
        .map(|f| {
            let f = *f;
            proptest::option::of(
                prop_oneof![4 => field_value(f), 1 => json_value()].prop_map(move |v| (f.to_owned(), v)),
            )
            .boxed()
        })
        .collect();
    (parts, proptest::option::of((nasty_text(), json_value()))).prop_map(|(parts, extra)| {
        let mut m: serde_json::Map<String, Value> = parts.into_iter().flatten().collect();
        if let Some((k, v)) = extra {
            m.insert(k, v);
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn searches_are_criteria_or_named_problems(body in request()) {
        match parse_json::<SearchRequest>(body.to_string().as_bytes(), "body") {
            Ok(req) => match criteria(&req) {
                Ok(c) => {
                    prop_assert!(!c.lookups.is_empty());
                    if let (Some(f), Some(t)) = (c.from, c.to) {
                        prop_assert!(f < t);
                    }
                    if let Some(n) = c.phone_digits {
                        prop_assert!(n >= 3);
                    }
                }
                Err(e) => assert_problem(&e)?,
            },
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn phone_tails_are_the_last_digits(digits in "[0-9]{3,20}", take in 3usize..20) {
        prop_assume!(take <= digits.len());
        let req: SearchRequest = serde_json::from_value(json!({"phone": digits, "phone_digits": take})).unwrap();
        let c = criteria(&req).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let tail: String = digits[digits.len() - take..].chars().rev().collect();
        prop_assert_eq!(&c.lookups[0].0, &format!("p:{tail}"));
    }
}
