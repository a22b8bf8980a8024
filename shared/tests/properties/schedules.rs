//! Export schedules: cron expressions and `every` rates resolve or name their field; a stored
//! rate of any size gives a next run or none, never a panic.

use auditrail_shared::crypto::Sealer;
use auditrail_shared::error::parse_json;
use auditrail_shared::export::schedule::{ScheduleBody, ScheduleRequest, resolve};
use auditrail_shared::query::CursorKey;
use auditrail_shared::record::Actor;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{assert_problem, config, nasty_text, number_text};
use crate::records::{json_value, now};

fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        number_text(),
        (number_text(), number_text()).prop_map(|(a, b)| format!("{a}-{b}")),
        number_text().prop_map(|n| format!("*/{n}")),
        (0u32..70, 0u32..70, 0u32..70).prop_map(|(a, b, c)| format!("{a}-{b}/{c}")),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a},{b}")),
        prop::sample::select(vec![
            "MON", "mon-fri", "JAN", "L", "5L", "15W", "LW", "1#3", "7#9", "?", "SUN-SAT", "@daily", ""
        ])
        .prop_map(str::to_owned),
    ]
}

fn cron() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(cron_field(), 5).prop_map(|f| f.join(" ")),
        1 => prop::collection::vec(cron_field(), 0..8).prop_map(|f| f.join(" ")),
        1 => nasty_text(),
    ]
}

fn every() -> impl Strategy<Value = String> {
    (number_text(), prop::sample::select(vec!["m", "h", "d", "s", "", "w", " h", "H"]))
        .prop_map(|(n, u)| format!("{n}{u}"))
}

fn request() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("nightly".to_owned()), nasty_text()],
        proptest::option::of(cron()),
        proptest::option::of(prop_oneof![every(), nasty_text()]),
        prop_oneof![
            prop::sample::select(vec!["yesterday", "last_24h", "last_7d", "last_30d", "previous_month"])
                .prop_map(Value::from),
            json_value(),
        ],
        proptest::option::of(prop_oneof![
            prop::sample::select(vec![
                "UTC",
                "Europe/Prague",
                "America/Santiago",
                "Africa/Cairo",
                "Pacific/Kiritimati"
            ])
            .prop_map(str::to_owned),
            nasty_text(),
        ]),
    )
        .prop_map(|(name, cron, every, window, tz)| {
            let mut r = json!({"name": name, "window": window});
            if let Some(c) = cron {
                r["cron"] = c.into();
            }
            if let Some(e) = every {
                r["every"] = e.into();
            }
            if let Some(z) = tz {
                r["tz"] = z.into();
            }
            r
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn schedules_resolve_or_name_their_fields(body in request()) {
        let sealer = Sealer::new(&[7u8; 32]);
        match parse_json::<ScheduleRequest>(body.to_string().as_bytes(), "body") {
            Ok(req) => match resolve(req, "acme", &CursorKey::new(b"k"), &sealer, "s1", Actor::default(), now()) {
                Ok(b) => {
                    prop_assert!(b.next_run_at > now());
                    prop_assert!(b.cron.is_some() != b.every_minutes.is_some());
                }
                Err(e) => assert_problem(&e)?,
            },
            Err(e) => assert_problem(&e)?,
        }
    }

    #[test]
    fn every_n_units_is_that_many_minutes(n in 1i64..=400, unit in prop::sample::select(vec![("m", 1i64), ("h", 60), ("d", 1440)])) {
        let sealer = Sealer::new(&[7u8; 32]);
        let req: ScheduleRequest = serde_json::from_value(json!({"name": "n", "every": format!("{n}{}", unit.0), "window": "yesterday"})).unwrap();
        let minutes = n * unit.1;
        match resolve(req, "acme", &CursorKey::new(b"k"), &sealer, "s1", Actor::default(), now()) {
            Ok(b) => {
                prop_assert!((15..=366 * 1440).contains(&minutes));
                prop_assert_eq!(b.every_minutes, Some(minutes));
                prop_assert_eq!(b.next_run_at - now(), chrono::Duration::minutes(minutes));
            }
            Err(_) => prop_assert!(!(15..=366 * 1440).contains(&minutes)),
        }
    }

    /// A stored body is trusted less than a fresh request: any rate gives a next run or none.
    #[test]
    fn a_stored_rate_of_any_size_never_panics(m in any::<i64>(), at in -8_000_000_000_000i64..250_000_000_000) {
        let body: ScheduleBody = serde_json::from_value(json!({
            "name": "n", "cron": null, "every_minutes": m, "window": "yesterday", "filter": {}, "format": "csv",
            "compression": null, "tz": null, "sealed_password": null, "next_run_at": now(), "last_run_at": null,
            "last_export_id": null, "created_by": {},
        })).unwrap();
        let after = chrono::DateTime::from_timestamp(at, 0).unwrap();
        let _ = body.next_after(after);
    }
}

#[test]
fn huge_every_is_a_problem_not_an_overflow() {
    let sealer = Sealer::new(&[7u8; 32]);
    for every in ["9223372036854775807h", "9223372036854775807d", "153722867280912931h", "6405119470038039d"] {
        let req: ScheduleRequest =
            serde_json::from_value(json!({"name": "n", "every": every, "window": "yesterday"})).unwrap();
        match resolve(req, "acme", &CursorKey::new(b"k"), &sealer, "s1", Actor::default(), now()) {
            Err(auditrail_shared::error::ApiError::Invalid(errs)) => {
                assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), vec!["every"], "{every}")
            }
            Err(other) => panic!("{every}: {other:?}"),
            Ok(_) => panic!("{every} accepted"),
        }
    }
}
