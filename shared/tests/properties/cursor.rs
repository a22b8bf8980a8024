//! Cursors: sealed bodies open again unchanged; random bytes, any altered byte, another tenant,
//! another filter or another key are refused, never a panic.

use auditrail_shared::query::CursorKey;
use auditrail_shared::query::cursor::{CursorBody, CursorError};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{config, nasty_text};

fn position() -> impl Strategy<Value = Value> {
    prop_oneof![
        (any::<i64>(), nasty_text()).prop_map(|(ts, id)| json!({"ts": ts, "id": id})),
        nasty_text().prop_map(Value::String),
        Just(Value::Null),
        (nasty_text(), any::<u64>()).prop_map(|(pk, sk)| json!({"pk": pk, "sk": sk})),
    ]
}

fn body() -> impl Strategy<Value = CursorBody> {
    ("[a-zA-Z0-9_.-]{1,64}", nasty_text(), any::<i64>(), any::<i64>(), position())
        .prop_map(|(t, f, from, to, p)| CursorBody { v: 1, t, f, from, to, p })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn sealed_cursors_open_unchanged(b in body(), k in prop::collection::vec(any::<u8>(), 0..64)) {
        let key = CursorKey::new(&k);
        let c = key.seal(&b);
        prop_assert_eq!(key.open(&c, &b.t, &b.f), Ok(b));
    }

    #[test]
    fn random_text_is_never_a_cursor(s in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}", nasty_text()]) {
        prop_assert_eq!(CursorKey::new(b"k").open(&s, "acme", "h"), Err(CursorError::Tampered));
    }

    #[test]
    fn any_altered_byte_is_detected(b in body(), at in any::<prop::sample::Index>(), with in any::<u8>()) {
        let key = CursorKey::new(b"k");
        let c = key.seal(&b);
        let mut bytes = c.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != with);
        bytes[i] = with;
        let altered = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert_eq!(key.open(&altered, &b.t, &b.f), Err(CursorError::Tampered));
    }

    #[test]
    fn truncated_or_extended_cursors_are_refused(b in body(), cut in any::<prop::sample::Index>(), tail in "[A-Za-z0-9_.-]{1,8}") {
        let key = CursorKey::new(b"k");
        let c = key.seal(&b);
        let short = &c[..cut.index(c.len())];
        prop_assert_eq!(key.open(short, &b.t, &b.f), Err(CursorError::Tampered));
        prop_assert_eq!(key.open(&format!("{c}{tail}"), &b.t, &b.f), Err(CursorError::Tampered));
    }

    #[test]
    fn other_tenant_filter_or_key_is_refused(b in body(), other in "[a-z]{1,10}") {
        let key = CursorKey::new(b"k");
        let c = key.seal(&b);
        prop_assume!(other != b.t && other != b.f);
        prop_assert_eq!(key.open(&c, &other, &b.f), Err(CursorError::Tampered));
        prop_assert_eq!(key.open(&c, &b.t, &other), Err(CursorError::OtherFilter));
        prop_assert_eq!(CursorKey::new(b"other").open(&c, &b.t, &b.f), Err(CursorError::Tampered));
    }
}
