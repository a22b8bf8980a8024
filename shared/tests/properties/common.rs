//! Strategies shared by the property tests, and the one assertion they all make.

use auditrail_shared::error::{ApiError, FieldError};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Modest case counts; failures are shrunk and printed, not written beside the sources.
pub fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Numbers as text at and around every boundary a parser may meet.
pub fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0i64..2000).prop_map(|n| n.to_string()),
        Just("99999999999999999999999999".to_owned()),
        Just("-0".to_owned()),
        Just("+5".to_owned()),
        Just("1e3".to_owned()),
        Just("0x10".to_owned()),
        Just("١٢".to_owned()),
        Just(" 7 ".to_owned()),
    ]
}

/// Text that has broken parsers before: empty, blank, control characters, non-ASCII, long.
pub fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("\t\r\n".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{202e}evil".to_owned()),
        Just("čez ČEZ Москва 東京 😀".to_owned()),
        Just("İı ß ﬃ".to_owned()),
        Just("=1+2".to_owned()),
        Just("a".repeat(5000)),
        number_text(),
        "\\PC{0,40}",
        any::<String>(),
        ".{0,12}".prop_map(|s| format!("  {s}  ")),
    ]
}

/// `s` with one character changed, removed or added somewhere (a near-valid mutation).
pub fn mutate(s: String) -> impl Strategy<Value = String> {
    let len = s.chars().count();
    (0..=len, any::<char>(), 0..3u8).prop_map(move |(at, c, how)| {
        let mut chars: Vec<char> = s.chars().collect();
        match how {
            0 if at < chars.len() => chars[at] = c,
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.insert(at, c),
        }
        chars.into_iter().collect()
    })
}

/// RFC 3339 times: valid ones across the whole range the format allows, and mutated ones.
pub fn time_text() -> impl Strategy<Value = String> {
    let valid = (0i64..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, -14i32..=14)
        .prop_map(|(y, mo, d, h, mi, off)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00{off:+03}:00"));
    prop_oneof![
        3 => valid.clone(),
        1 => valid.prop_flat_map(mutate),
        1 => Just("9999-12-31T23:59:59.999999999-23:59".to_owned()),
        1 => Just("0000-01-01T00:00:00+23:59".to_owned()),
        1 => nasty_text(),
    ]
}

/// Every problem names a field and a reason.
pub fn assert_named(errs: &[FieldError]) -> Result<(), TestCaseError> {
    prop_assert!(!errs.is_empty(), "a refusal without a field error");
    for e in errs {
        prop_assert!(!e.field.trim().is_empty(), "no field in {e:?}");
        prop_assert!(!e.reason.trim().is_empty(), "no reason in {e:?}");
    }
    Ok(())
}

/// A refusal is a problem a client can act on: field errors, or a message for the whole body.
pub fn assert_problem(e: &ApiError) -> Result<(), TestCaseError> {
    match e {
        ApiError::Invalid(errs) => assert_named(errs),
        ApiError::MalformedBody(m) | ApiError::PayloadTooLarge(m) | ApiError::UnsupportedMediaType(m) => {
            prop_assert!(!m.trim().is_empty());
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("a parser answered {other:?}, not a client problem"))),
    }
}
