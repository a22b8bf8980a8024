//! Differential tests: the same random records and filters on SQLite, on DynamoDB (moto) and
//! through the reference matcher (`EventFilter::matches`) give the same pages — the same ids in
//! the same order, page by page through the cursors. Records mix Czech, Russian and Japanese
//! text in every case, sit on day and month boundaries, and filters start and end exactly on
//! record times.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use super::conformance::rec;
use crate::record::{Category, Record, ResultCode};
use crate::store::{EventFilter, Order, PageRequest, RecordStore};

/// Ten minutes before midnight at the end of October: records cross a day and a month (the
/// DynamoDB adapter's partitions).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 31, 23, 50, 0).unwrap()
}

const ACTIONS: [&str; 5] = ["LOGIN", "SIGN_IN", "CLICK", "CONVERSATION_SEARCH", "CONTACT"];
const USERS: [&str; 7] = ["Jiří.Čermák", "JIŘÍ.ČERMÁK", "Иван", "иван", "田中太郎", "Bob", "bob"];
const WORDS: [&str; 10] = ["Faktura", "ČEZ", "čez", "Звонок", "ИВАНА", "電話", "Tanaka", "needle", "NEEDLE", "Straße"];
const RESULTS: [ResultCode; 3] = [ResultCode::Ok, ResultCode::Fail, ResultCode::Unauthorized];

#[derive(Debug, Clone)]
struct GenRecord {
    minute: i64,
    action: usize,
    as_sign_in: bool,
    user: Option<usize>,
    uid: usize,
    result: Option<usize>,
    session: Option<usize>,
    corr: Option<usize>,
    employee: Option<usize>,
    words: Vec<usize>,
    json_description: bool,
}

fn gen_record() -> impl Strategy<Value = GenRecord> {
    (
        (0i64..30, 0..ACTIONS.len(), any::<bool>(), proptest::option::of(0..USERS.len()), 0usize..3),
        (
            proptest::option::of(0..RESULTS.len()),
            proptest::option::weighted(0.4, 0usize..3),
            proptest::option::weighted(0.4, 0usize..3),
            proptest::option::weighted(0.5, 0usize..3),
            proptest::collection::vec(0..WORDS.len(), 1..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((minute, action, as_sign_in, user, uid), (result, session, corr, employee, words, json_description))| {
                GenRecord {
                    minute,
                    action,
                    as_sign_in,
                    user,
                    uid,
                    result,
                    session,
                    corr,
                    employee,
                    words,
                    json_description,
                }
            },
        )
}

fn build(tenant: &str, i: usize, g: &GenRecord) -> Record {
    let action = ACTIONS[g.action];
    let mut r = rec(tenant, &format!("r{i:02}"), 0, action, "x", ResultCode::Ok);
    r.occurred_at = t0() + Duration::minutes(g.minute);
    if action == "LOGIN" && g.as_sign_in {
        r.category = Category::SignIn;
    }
    r.actor.user_id = Some(format!("uid-{}", g.uid));
    r.actor.username = g.user.map(|u| USERS[u].to_owned());
    r.result = g.result.map(|x| RESULTS[x]);
    r.session_id = g.session.map(|s| format!("sess-{s}"));
    r.correlation_id = g.corr.map(|c| format!("corr-{c}"));
    r.actor.employee_id = g.employee.map(|e| format!("E{e}"));
    let text = g.words.iter().map(|w| WORDS[*w]).collect::<Vec<_>>().join(" ");
    r.description = Some(if g.json_description { json!({"note": text}) } else { json!(text) });
    r
}

/// How a typed value is cased: as stored, lower, upper.
fn cased(s: &str, how: u8) -> String {
    match how {
        0 => s.to_owned(),
        1 => s.to_lowercase(),
        _ => s.to_uppercase(),
    }
}

#[derive(Debug, Clone)]
struct GenFilter {
    from: i64,
    span: i64,
    actions: Vec<usize>,
    categories: Vec<usize>,
    user: Option<(usize, u8, bool)>,
    result: Option<usize>,
    session: Option<usize>,
    corr: Option<usize>,
    employee: Option<usize>,
    text: Option<(usize, u8)>,
    oldest_first: bool,
    limit: usize,
}

fn gen_filter() -> impl Strategy<Value = GenFilter> {
    use proptest::option::weighted as some;
    (
        (-1i64..30, 1i64..40, proptest::collection::vec(0..ACTIONS.len(), 0..3)),
        (
            proptest::collection::vec(0..Category::ALL.len(), 0..2),
            some(0.4, (0..USERS.len(), 0u8..3, proptest::bool::weighted(0.2))),
            some(0.25, 0..RESULTS.len()),
            some(0.15, 0usize..3),
            some(0.15, 0usize..3),
            some(0.15, 0usize..3),
        ),
        (some(0.5, (0..WORDS.len(), 0u8..3)), any::<bool>(), 1usize..8),
    )
        .prop_map(
            |(
                (from, span, actions),
                (categories, user, result, session, corr, employee),
                (text, oldest_first, limit),
            )| {
                GenFilter {
                    from,
                    span,
                    actions,
                    categories,
                    user,
                    result,
                    session,
                    corr,
                    employee,
                    text,
                    oldest_first,
                    limit,
                }
            },
        )
}

fn filter(g: &GenFilter) -> EventFilter {
    let mut f = EventFilter::window(t0() + Duration::minutes(g.from), t0() + Duration::minutes(g.from + g.span));
    f.actions = g.actions.iter().map(|a| ACTIONS[*a].to_owned()).collect();
    f.actions.dedup();
    f.categories = g.categories.iter().map(|c| Category::ALL[*c]).collect();
    f.user = g.user.map(|(u, how, by_id)| if by_id { format!("uid-{}", u % 3) } else { cased(USERS[u], how) });
    f.result = g.result.map(|x| RESULTS[x]);
    f.session_id = g.session.map(|s| format!("sess-{s}"));
    f.correlation_id = g.corr.map(|c| format!("corr-{c}"));
    f.employee_id = g.employee.map(|e| format!("E{e}"));
    f.text = g.text.map(|(w, how)| cased(WORDS[w], how));
    f.order = if g.oldest_first { Order::OldestFirst } else { Order::NewestFirst };
    f
}

/// Every page's ids, following the cursors to the end.
async fn pages(store: &dyn RecordStore, tenant: &str, f: &EventFilter, limit: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = store.query(tenant, f, PageRequest { limit, after }).await.expect("query");
        out.push(page.records.into_iter().map(|r| r.id).collect());
        match page.next {
            Some(p) => after = Some(p),
            None => return out,
        }
    }
    panic!("more than 100 pages for at most 30 records");
}

/// The reference: every record the matcher keeps, in the filter's order, ties broken by id.
fn reference(recs: &[Record], f: &EventFilter) -> Vec<String> {
    let mut want: Vec<&Record> = recs.iter().filter(|r| f.matches(r)).collect();
    want.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
    if f.order == Order::NewestFirst {
        want.reverse();
    }
    want.into_iter().map(|r| r.id.clone()).collect()
}

#[test]
fn sqlite_dynamodb_and_the_matcher_give_the_same_pages() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn RecordStore> =
        Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
    let fresh = rt.block_on(crate::testkit::moto::fresh()).0;
    // The same table with a read budget of 7 items per page: a filter DynamoDB evaluates ends
    // pages short (even empty) with a cursor; followed to the end, they hold the same records.
    let budgeted: Arc<dyn RecordStore> = Arc::new(fresh.clone().with_read_budget(7));
    let dynamo: Arc<dyn RecordStore> = Arc::new(fresh);
    // The same file with a free-text budget of one row: `q` is then served by the bounded scan of
    // the equality index and its growth, not by the trigram index's candidates.
    let scanning: Arc<dyn RecordStore> =
        Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap().with_text_budget(1));

    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    let case = (proptest::collection::vec(gen_record(), 0..30), proptest::collection::vec(gen_filter(), 4..10));
    let result = runner.run(&case, |(gens, filters)| {
        rt.block_on(async {
            let tenant = crate::testkit::conformance::tenant("diff");
            let recs: Vec<Record> = gens.iter().enumerate().map(|(i, g)| build(&tenant, i, g)).collect();
            sqlite.append(&tenant, &recs).await.expect("sqlite append");
            dynamo.append(&tenant, &recs).await.expect("dynamodb append");
            for g in &filters {
                let f = filter(g);
                let want = reference(&recs, &f);
                let lite = pages(&*sqlite, &tenant, &f, g.limit).await;
                let dyn_ = pages(&*dynamo, &tenant, &f, g.limit).await;
                let scanned = pages(&*scanning, &tenant, &f, g.limit).await;
                prop_assert_eq!(&lite.concat(), &want, "sqlite vs the matcher, {:?}", f);
                prop_assert_eq!(&scanned, &lite, "the text index and the bounded scan agree, {:?}", f);
                let short = pages(&*budgeted, &tenant, &f, g.limit).await;
                prop_assert_eq!(&short.concat(), &want, "dynamodb on a read budget vs the matcher, {:?}", f);
                prop_assert!(short.iter().all(|p| p.len() <= g.limit));
                prop_assert_eq!(&dyn_.concat(), &want, "dynamodb vs the matcher, {:?}", f);
                prop_assert_eq!(&lite, &dyn_, "the same pages on both back ends, {:?}", f);
                let want_pages: Vec<Vec<String>> = want.chunks(g.limit).map(<[String]>::to_vec).collect();
                let lite_full: Vec<Vec<String>> = lite.into_iter().filter(|p| !p.is_empty()).collect();
                prop_assert_eq!(lite_full, want_pages, "full pages of the limit, {:?}", f);
            }
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
