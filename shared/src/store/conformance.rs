//! The conformance suite every `RecordStore` adapter must pass: the same test code, run against
//! the embedded store and against DynamoDB (on the moto emulator). Each check builds its own
//! tenant, so the checks can run in parallel on one store.
//!
//! Use `conformance_tests!(path::to::factory)` in a test module; the factory is an async fn
//! returning `Arc<dyn FullStore>` (it may hand out one shared store).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::{AppendOutcome, EventFilter, Order, PageRequest, RecordStore};
use crate::record::{Actor, ActorKind, Category, Phase, Record, ResultCode};

/// A unique tenant per check, so checks do not see each other's records.
pub fn tenant(check: &str) -> String {
    format!("{check}-{}", ulid::Ulid::generate().to_string().to_lowercase())
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

/// A plain audit record at `t0 + minutes`.
pub fn rec(tenant: &str, id: &str, minutes: i64, action: &str, user: &str, result: ResultCode) -> Record {
    let mut r = Record::system(
        tenant,
        action,
        Actor { user_id: Some(format!("uid-{user}")), username: Some(user.to_owned()), ..Default::default() },
        Some(result),
        json!(format!("{action} by {user}")),
    );
    r.id = id.to_owned();
    r.occurred_at = t0() + Duration::minutes(minutes);
    r.category = crate::record::lookup(action).map(|d| d.category).unwrap_or(Category::Audit);
    r
}

fn window() -> EventFilter {
    EventFilter::window(t0() - Duration::days(1), t0() + Duration::days(30))
}

async fn all(store: &dyn RecordStore, tenant: &str, f: &EventFilter, limit: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.query(tenant, f, PageRequest { limit, after }).await.expect("query");
        assert!(page.records.len() <= limit, "page larger than its limit");
        out.extend(page.records);
        match page.next {
            Some(p) => after = Some(p),
            None => return out,
        }
    }
}

fn ids(rs: &[Record]) -> Vec<&str> {
    rs.iter().map(|r| r.id.as_str()).collect()
}

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
    assert_eq!(got[1], a, "the first copy is kept unchanged");
    assert_eq!(store.get(&t, "a").await.unwrap().as_ref(), Some(&a));
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

/// Everything a full back end provides (the conformance factory returns one).
pub trait FullStore: RecordStore + super::TaskStore + super::SubjectStore {}
impl<T: RecordStore + super::TaskStore + super::SubjectStore> FullStore for T {}

/// Task saves are fenced by version, listings are newest first and paged, the active index
/// holds exactly the pending tasks, and tenants never see each other's tasks.
pub async fn task_saves_are_fenced_and_listed(store: Arc<dyn FullStore>) {
    use crate::jobs::{Task, TaskKind, TaskStatus};
    let t = tenant("tasks");
    let mut made = Vec::new();
    for i in 0..3 {
        let mut task = Task::new(&t, TaskKind::Export, TaskStatus::Queued, &json!({"n": i}));
        store.create_task(&mut task).await.unwrap();
        assert_eq!(task.version, 1);
        made.push(task);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut dup = made[0].clone();
    assert!(matches!(store.create_task(&mut dup).await, Err(super::StoreError::Conflict(_))), "ids are unique");
    let mut a = store.get_task(&t, TaskKind::Export, &made[0].id).await.unwrap().unwrap();
    let mut b = a.clone();
    a.status = TaskStatus::Running;
    store.save_task(&mut a).await.unwrap();
    assert_eq!(a.version, 2);
    b.status = TaskStatus::Failed;
    assert!(matches!(store.save_task(&mut b).await, Err(super::StoreError::Conflict(_))), "a stale copy cannot win");
    assert_eq!(store.get_task(&t, TaskKind::Export, &a.id).await.unwrap().unwrap().status, TaskStatus::Running);

    let (p1, next) = store.list_tasks(&t, TaskKind::Export, PageRequest { limit: 2, after: None }).await.unwrap();
    let (p2, end) = store.list_tasks(&t, TaskKind::Export, PageRequest { limit: 2, after: next }).await.unwrap();
    let listed: Vec<String> = p1.iter().chain(&p2).map(|t| t.id.clone()).collect();
    let mut want: Vec<String> = made.iter().map(|t| t.id.clone()).collect();
    want.reverse();
    assert_eq!(listed, want, "newest first, every task once");
    assert!(end.is_none());

    a.status = TaskStatus::Succeeded;
    store.save_task(&mut a).await.unwrap();
    let active: Vec<String> = store
        .active_tasks(TaskKind::Export, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.tenant_id == t)
        .map(|x| x.id)
        .collect();
    assert_eq!(active, vec![made[1].id.clone(), made[2].id.clone()], "pending only, oldest first");
    assert!(store.get_task(&tenant("other"), TaskKind::Export, &a.id).await.unwrap().is_none());
    assert!(store.get_task(&t, TaskKind::Erasure, &a.id).await.unwrap().is_none(), "kinds are separate");
    store.delete_task(&t, TaskKind::Export, &a.id).await.unwrap();
    assert!(store.get_task(&t, TaskKind::Export, &a.id).await.unwrap().is_none());
}

/// The subject index is written with a record, follows a replacement and goes with a purge.
pub async fn subject_index_follows_its_records(store: Arc<dyn FullStore>) {
    use crate::dpo::subject::{ANONYMIZED, email_key, name_key, phone_key};
    use crate::record::Subject;
    let t = tenant("subjects");
    let mut contact = rec(&t, "c1", 0, "CONTACT", "agent", ResultCode::Ok);
    contact.category = Category::Contact;
    contact.subject = Some(Subject {
        emails: vec!["Jan@Example.com".into()],
        phones: vec!["+420 777 123 456".into()],
        first_name: Some("Jan".into()),
        last_name: Some("Novák".into()),
    });
    let mut entry = rec(&t, "d1", 1, "DIRECTORY_ENTRY", "agent", ResultCode::Ok);
    entry.category = Category::DirectoryEntry;
    entry.subject =
        Some(Subject { first_name: Some("jan".into()), last_name: Some("NOVÁK".into()), ..Default::default() });
    store.append(&t, &[contact.clone(), entry]).await.unwrap();
    let look = |key: String, prefix: bool| {
        let (store, t) = (store.clone(), t.clone());
        async move {
            let (found, stats) = store.subject_lookup(&t, &key, prefix, (None, None), 1000).await.unwrap();
            assert_eq!(stats.items_read, found.len() as u64, "one item read per hit");
            let mut ids: Vec<String> = found.into_iter().map(|r| r.id).collect();
            ids.sort();
            ids
        }
    };
    let email = email_key("jan@example.com").unwrap();
    assert_eq!(look(email.clone(), false).await, vec!["c1"]);
    assert_eq!(look("p:654321".into(), true).await, vec!["c1"], "the last six digits");
    assert_eq!(look(phone_key("777123456").unwrap(), true).await, vec!["c1"]);
    assert!(look(phone_key("777123456").unwrap(), false).await.is_empty(), "exact keys are exact");
    assert_eq!(look(name_key("Jan", "Novák").unwrap(), false).await, vec!["d1"], "contacts are not found by name");
    // The window applies in the lookup, before the limit: a limit of 0 still finds the one record
    // in the window (and tells "more" only when more are in it).
    let m = Duration::minutes(1);
    let (inside, _) = store.subject_lookup(&t, "p:654", true, (Some(t0()), Some(t0() + m)), 0).await.unwrap();
    assert_eq!(inside.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["c1"]);
    let (later, _) = store.subject_lookup(&t, &email, false, (Some(t0() + m), None), 1000).await.unwrap();
    assert!(later.is_empty(), "c1 occurred before the window");
    let (before, _) = store.subject_lookup(&t, &email, false, (None, Some(t0())), 1000).await.unwrap();
    assert!(before.is_empty(), "`to` is exclusive");
    assert!(store.subject_lookup(&tenant("other"), &email, false, (None, None), 10).await.unwrap().0.is_empty());

    let mut anon = contact.clone();
    anon.subject =
        Some(Subject { emails: vec![ANONYMIZED.into()], phones: vec![ANONYMIZED.into()], ..Default::default() });
    store.replace(&t, &anon).await.unwrap();
    assert!(look(email.clone(), false).await.is_empty());
    assert!(look("p:654321".into(), true).await.is_empty());
    assert_eq!(store.get(&t, "c1").await.unwrap().unwrap().subject, anon.subject);
    let mut ghost = anon.clone();
    ghost.id = "nope".into();
    assert!(matches!(store.replace(&t, &ghost).await, Err(super::StoreError::NotFound)));

    let gone = store.purge(&t, Category::DirectoryEntry, t0() + Duration::days(1), 100).await.unwrap();
    assert_eq!(ids(&gone), vec!["d1"]);
    assert!(look(name_key("Jan", "Novák").unwrap(), false).await.is_empty(), "purged with its record");
}

/// Expands to one `#[tokio::test]` per check, each calling `$factory().await` for its store.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@each $factory,
            replayed_ids_are_stored_once,
            tenants_never_see_each_other,
            newest_first_paging_is_complete_and_stable,
            every_filter_matches_the_reference,
            time_window_is_half_open,
            non_ascii_text_folds_alike,
            task_saves_are_fenced_and_listed,
            subject_index_follows_its_records);
    };
    (@each $factory:path, $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::store::conformance::$check($factory().await).await;
            }
        )*
    };
}
