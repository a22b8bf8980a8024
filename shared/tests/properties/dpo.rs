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

proptest! {
    #![proptest_config(config(512))]

    /// Whatever a user types into a filter, reading identifiers out of it never panics, and an
    /// e-mail or a phone number typed whole is found by the DPO search for it.
    #[test]
    fn typed_identifiers_are_found_by_the_search_for_them(
        typed in prop_oneof![
            nasty_text(),
            "[a-zA-Z0-9.čŽ+]{1,12}@[a-z]{1,8}\\.[a-z]{2,3}",
            "\\+?[0-9 ()./-]{3,20}",
            "[A-Za-zÁ-ž]{1,8} [A-Za-zÁ-ž]{1,10}",
        ],
        key in prop_oneof![Just("q"), Just("user"), Just("account"), Just("team"), Just("from")],
    ) {
        use auditrail_shared::dpo::subject::{email_key, keys, phone_digits, typed_subject};
        let data = json!({ key: typed.clone(), "limit": 50 });
        let subject = typed_subject(&data);
        if key == "from" {
            prop_assert!(subject.is_none(), "a time bound is no identifier");
            return Ok(());
        }
        let mut r = auditrail_shared::record::Record::system("t", "AUDIT_SEARCH", Default::default(), None, data);
        r.subject = subject;
        let indexed = keys(&r);
        let req = |body: Value| criteria(&parse_json::<SearchRequest>(body.to_string().as_bytes(), "body").unwrap());
        if let Some(k) = email_key(typed.trim()).filter(|_| !typed.trim().contains(char::is_whitespace)) {
            prop_assert!(indexed.contains(&k), "{typed:?} → {indexed:?}");
            let c = req(json!({"email": typed.trim()})).unwrap();
            prop_assert!(c.lookups.iter().any(|(l, _)| indexed.contains(l)));
        }
        let t = typed.trim();
        if t.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c)) && phone_digits(t).len() >= 3 {
            let c = req(json!({"phone": t})).unwrap();
            let (prefix, _) = &c.lookups[0];
            prop_assert!(indexed.iter().any(|k| k.starts_with(prefix.as_str())), "{t:?} → {indexed:?}");
        }
    }
}
