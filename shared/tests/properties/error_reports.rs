//! Error reports (seed 000), as JSON or gzip: decoded and parsed, or one problem; gzip never
//! decodes past the size limit.

use std::io::Write;

use auditrail_shared::error::ApiError;
use auditrail_shared::error_report::{MAX_REPORT_BYTES, decode_body, parse};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{assert_problem, config, nasty_text, time_text};
use crate::records::json_value;

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn report() -> impl Strategy<Value = Value> {
    (
        prop_oneof![time_text().prop_map(Value::String), json_value()],
        prop_oneof![nasty_text().prop_map(Value::String), json_value()],
        prop::collection::vec(json_value(), 0..4),
        proptest::option::of(json_value()),
        proptest::option::of(prop::collection::vec(nasty_text(), 0..3)),
        proptest::option::of(json_value()),
        any::<bool>(),
    )
        .prop_map(|(created_at, username, log, configuration, dialed, agent, drop_one)| {
            let mut r = json!({"created_at": created_at, "username": username, "log": log});
            if let Some(c) = configuration {
                r["configuration"] = c;
            }
            if let Some(d) = dialed {
                r["dialed_numbers"] = d.into();
            }
            if let Some(a) = agent {
                r["agent"] = a;
            }
            if drop_one {
                r.as_object_mut().unwrap().remove("username");
            }
            r
        })
}

fn encoding() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("gzip".to_owned()),
        Just(" GZIP ".to_owned()),
        Just("identity".to_owned()),
        Just("br".to_owned()),
        nasty_text(),
    ])
}

fn check(body: &[u8], enc: Option<&str>) -> Result<(), TestCaseError> {
    match decode_body(body, enc) {
        Ok(bytes) => {
            prop_assert!(bytes.len() <= MAX_REPORT_BYTES);
            if let Err(e) = parse(&bytes) {
                assert_problem(&e)?;
            }
        }
        Err(e) => assert_problem(&e)?,
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn reports_parse_or_name_their_fields(r in report(), gz in any::<bool>()) {
        let raw = r.to_string();
        if gz {
            check(&gzip(raw.as_bytes()), Some("gzip"))?;
        } else {
            check(raw.as_bytes(), None)?;
        }
    }

    #[test]
    fn any_bytes_with_any_encoding(b in prop::collection::vec(any::<u8>(), 0..300), enc in encoding()) {
        check(&b, enc.as_deref())?;
    }

    #[test]
    fn truncated_or_corrupted_gzip_is_a_problem(r in report(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let gz = gzip(r.to_string().as_bytes());
        check(&gz[..cut.index(gz.len())], Some("gzip"))?;
        let mut bad = gz.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 0x5a;
        check(&bad, Some("gzip"))?;
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    let bomb = gzip(&vec![b' '; MAX_REPORT_BYTES + 10]);
    assert!(matches!(decode_body(&bomb, Some("gzip")), Err(ApiError::PayloadTooLarge(_))));
}
