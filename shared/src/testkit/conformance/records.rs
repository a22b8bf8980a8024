//! Records: idempotent appends, tenant isolation, paging, every filter against the reference
//! matcher (`EventFilter::matches`), the half-open window, case folding beyond ASCII.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::{all, ids, rec, t0, tenant, window};
use crate::record::{Actor, ActorKind, Category, Phase, Record, ResultCode};
use crate::store::{AppendOutcome, EventFilter, Order, RecordStore};

pub async fn replayed_ids_are_stored_once(store: Arc<dyn RecordStore>) {
    let t = tenant("replay");
    let a = rec(&t, "a", 1, "LOGIN", "jdoe", ResultCode::Ok);
    let mut a2 = a.clone();
    a2.occurred_at += Duration::hours(5);
    let b = rec(&t, "b", 2, "LOGIN", "jdoe", ResultCode::Ok);
    assert_eq!(store.append(&t, &[a.clone(), b.clone()]).await.unwrap(), vec![AppendOutcome::Created; 2]);
    assert_eq!(
        store.append(&t, &[a2, b.clone(), b.clone()]).await.unwrap(),
        vec![AppendOutcome::Duplicate; 3],
        "a replay (even with another time) is a duplicate"
    );
    let got = all(&*store, &t, &window(), 10).await;
    assert_eq!(ids(&got), vec!["b", "a"]);
    // Stored as given, plus what the store adds: its journal batch and salt key (integrity).
    let stamped = got[1].integrity.clone().expect("the store stamps every record");
    assert!(stamped.key.is_some() && !stamped.batch.is_empty(), "{stamped:?}");
    let plain = |r: &Record| Record { integrity: None, ..r.clone() };
    assert_eq!(plain(&got[1]), a, "the first copy is kept unchanged");
    let again = store.get(&t, "a").await.unwrap().expect("stored");
    assert_eq!((plain(&again), again.integrity), (a, Some(stamped)));
}

pub async fn tenants_never_see_each_other(store: Arc<dyn RecordStore>) {
    let (t1, t2) = (tenant("iso-a"), tenant("iso-b"));
    store.append(&t1, &[rec(&t1, "same-id", 1, "LOGIN", "jdoe", ResultCode::Ok)]).await.unwrap();
    assert_eq!(
        store.append(&t2, &[rec(&t2, "same-id", 1, "LOGIN", "jdoe", ResultCode::Ok)]).await.unwrap(),
        vec![AppendOutcome::Created],
        "ids are unique per tenant only"
    );
    assert!(store.get(&t2, "missing").await.unwrap().is_none());
    for t in [&t1, &t2] {
        let got = all(&*store, t, &window(), 10).await;
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].tenant_id, t);
    }
}

pub async fn newest_first_paging_is_complete_and_stable(store: Arc<dyn RecordStore>) {
    let t = tenant("paging");
    // Ties on time are broken by id, so paging over equal timestamps neither skips nor repeats.
    let recs: Vec<Record> =
        (0..57).map(|i| rec(&t, &format!("r{i:03}"), i / 3, "LOGIN", "jdoe", ResultCode::Ok)).collect();
    store.append(&t, &recs).await.unwrap();
    let got = all(&*store, &t, &window(), 10).await;
    let mut want: Vec<&Record> = recs.iter().collect();
    want.sort_by(|a, b| (b.occurred_at, &b.id).cmp(&(a.occurred_at, &a.id)));
    assert_eq!(ids(&got), want.iter().map(|r| r.id.as_str()).collect::<Vec<_>>());

    let mut asc = window();
    asc.order = Order::OldestFirst;
    let got = all(&*store, &t, &asc, 7).await;
    assert_eq!(ids(&got), want.iter().rev().map(|r| r.id.as_str()).collect::<Vec<_>>());
}

pub async fn every_filter_matches_the_reference(store: Arc<dyn RecordStore>) {
    let t = tenant("filters");
    let actions = ["LOGIN", "LOGIN_ERROR", "CONVERSATION_SEARCH", "AUDIT_SEARCH", "CLICK"];
    let users = ["alice", "Bob", "carol"];
    let mut recs = Vec::new();
    for i in 0..120i64 {
        let action = actions[(i % 5) as usize];
        let user = users[(i % 3) as usize];
        let result = [ResultCode::Ok, ResultCode::Fail, ResultCode::Unauthorized][(i % 7 % 3) as usize];
        let mut r = rec(&t, &format!("f{i}"), i * 7, action, user, result);
        if action == "CLICK" {
            r.session_id = Some(format!("sess-{}", i % 2));
            r.actor.kind = Some(ActorKind::Customer);
            r.result = None;
        }
        if action == "CONVERSATION_SEARCH" {
            r.correlation_id = Some(format!("corr-{}", i % 4));
            r.phase = Some(if i % 2 == 0 { Phase::Start } else { Phase::End });
        }
        r.actor.employee_id = Some(format!("E{}", i % 4));
        r.description = Some(json!({"text": format!("item {i} {}", if i % 10 == 0 { "Needle" } else { "hay" })}));
        recs.push(r);
    }
    // An importer record without any user.
    let mut imp = rec(&t, "importer-1", 5, "DELETE_IMPORTED_USERS", "x", ResultCode::Ok);
    imp.actor = Actor { kind: Some(ActorKind::Importer), user_id: Some("uid-imp".into()), ..Default::default() };
    recs.push(imp);
    store.append(&t, &recs).await.unwrap();

    let base = window();
    let mut filters: Vec<EventFilter> = vec![base.clone()];
    let with = |f: &dyn Fn(&mut EventFilter)| {
        let mut x = base.clone();
        f(&mut x);
        x
    };
    filters.push(with(&|f| f.actions = vec!["LOGIN".into()]));
    filters.push(with(&|f| f.actions = vec!["LOGIN".into(), "CLICK".into()]));
    filters.push(with(&|f| f.categories = vec![Category::SignIn]));
    filters.push(with(&|f| f.user = Some("bob".into())));
    filters.push(with(&|f| f.user = Some("uid-alice".into())));
    filters.push(with(&|f| f.user = Some("uid-imp".into())));
    filters.push(with(&|f| f.result = Some(ResultCode::Fail)));
    filters.push(with(&|f| f.session_id = Some("sess-1".into())));
    filters.push(with(&|f| f.correlation_id = Some("corr-2".into())));
    filters.push(with(&|f| f.employee_id = Some("E3".into())));
    filters.push(with(&|f| f.text = Some("needle".into())));
    filters.push(with(&|f| {
        f.user = Some("carol".into());
        f.result = Some(ResultCode::Ok);
    }));
    filters.push(with(&|f| {
        f.actions = vec!["LOGIN_ERROR".into()];
        f.result = Some(ResultCode::Unauthorized);
    }));
    filters.push(with(&|f| {
        f.categories = vec![Category::Audit];
        f.user = Some("alice".into());
    }));
    filters.push(with(&|f| {
        f.from = t0() + Duration::minutes(100);
        f.to = t0() + Duration::minutes(300);
    }));
    for f in filters {
        let mut want: Vec<&Record> = recs.iter().filter(|r| f.matches(r)).collect();
        want.sort_by(|a, b| (b.occurred_at, &b.id).cmp(&(a.occurred_at, &a.id)));
        let got = all(&*store, &t, &f, 9).await;
        assert_eq!(ids(&got), want.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), "filter {f:?}");
    }
}

pub async fn time_window_is_half_open(store: Arc<dyn RecordStore>) {
    let t = tenant("window");
    store
        .append(
            &t,
            &[rec(&t, "at-from", 0, "LOGIN", "a", ResultCode::Ok), rec(&t, "at-to", 10, "LOGIN", "a", ResultCode::Ok)],
        )
        .await
        .unwrap();
    let f = EventFilter::window(t0(), t0() + Duration::minutes(10));
    assert_eq!(ids(&all(&*store, &t, &f, 5).await), vec!["at-from"]);
}

/// Case folds alike on every back end and in the matcher (`record::fold`): user and text
/// filters find Czech, Russian and Japanese names (as in the demo) in any case.
pub async fn non_ascii_text_folds_alike(store: Arc<dyn RecordStore>) {
    let t = tenant("fold");
    let people = [
        ("cz", "Jiří.Čermák", "Faktura pro ČEZ, a.s. – Příliš žluťoučký kůň"),
        ("ru", "ИВАН.ПЕТРОВ", "Звонок от ИВАНА Петрова"),
        ("jp", "田中太郎", "山田さんへの電話 TANAKA"),
        ("ascii", "Bob", "plain CEZ text"),
    ];
    let recs: Vec<Record> = people
        .iter()
        .enumerate()
        .map(|(i, (id, user, text))| {
            let mut r = rec(&t, id, i as i64, "LOGIN", user, ResultCode::Ok);
            r.description = Some(json!(text));
            r
        })
        .collect();
    store.append(&t, &recs).await.unwrap();
    /// What is checked, the user and text filters, the ids found.
    type Case = (&'static str, Option<&'static str>, Option<&'static str>, &'static [&'static str]);
    let cases: [Case; 10] = [
        ("user, lower-case Czech", Some("jiří.čermák"), None, &["cz"]),
        ("user, upper-case Czech", Some("JIŘÍ.ČERMÁK"), None, &["cz"]),
        ("user, lower-case Cyrillic", Some("иван.петров"), None, &["ru"]),
        ("user, Japanese", Some("田中太郎"), None, &["jp"]),
        ("text, Czech upper in the record", None, Some("čez"), &["cz"]),
        ("text, Czech lower in the record", None, Some("ŽLUŤOUČKÝ"), &["cz"]),
        ("text, Cyrillic", None, Some("ивана петрова"), &["ru"]),
        ("text, Japanese", None, Some("電話"), &["jp"]),
        ("text, ASCII in a Japanese record", None, Some("tanaka"), &["jp"]),
        ("text, ASCII only", None, Some("cez"), &["ascii"]),
    ];
    for (what, user, text, want) in cases {
        let mut f = window();
        f.user = user.map(str::to_owned);
        f.text = text.map(str::to_owned);
        let mut got: Vec<String> = all(&*store, &t, &f, 3).await.into_iter().map(|r| r.id).collect();
        got.sort();
        assert_eq!(got, want.to_vec(), "{} on {}: {f:?}", what, store.backend());
        let mut reference: Vec<&str> = recs.iter().filter(|r| f.matches(r)).map(|r| r.id.as_str()).collect();
        reference.sort();
        assert_eq!(reference, want.to_vec(), "{what} in the matcher");
    }
}
