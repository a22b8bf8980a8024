//! Duplicates found whatever holds the first record (SQLite before this process, the tail,
//! SQLite since), with the filter ready, for ids appended while it is built, and after it
//! outgrows itself or its build fails; and new ids mostly not looked up.

use std::sync::Arc;

use super::super::super::SqliteStore;
use super::super::Inbox;
use super::FIRST_CAPACITY;
use crate::record::{Actor, Record, ResultCode};
use crate::store::{AppendOutcome, RecordStore};

fn inbox(store: &SqliteStore) -> &Arc<Inbox> {
    store.inner.inbox.get().expect("a serving store")
}

/// (filter ready, ids looked up so far) for `tenant`.
fn seen(store: &SqliteStore, tenant: &str) -> (bool, usize) {
    let log = inbox(store).log.lock().unwrap();
    (matches!(log.seen.filters.get(tenant), Some(super::Filter::Ready { .. })), log.seen.looked_up)
}

async fn ready(store: &SqliteStore, tenant: &str) {
    for _ in 0..500 {
        if seen(store, tenant).0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the filter of {tenant} was never built");
}

/// Waits until `tenant`'s filter build has failed.
async fn failed(store: &SqliteStore, tenant: &str) {
    for _ in 0..500 {
        if matches!(inbox(store).log.lock().unwrap().seen.filters.get(tenant), Some(super::Filter::Off(Some(_)))) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the filter build of {tenant} never failed");
}

/// `n` sign-ins of `tenant` with the ids `{prefix}-00000`, …: only the ids matter here.
fn recs(tenant: &str, prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = Record::system(tenant, "LOGIN", Actor::default(), Some(ResultCode::Ok), "ann".into());
            r.id = format!("{prefix}-{i:05}");
            r
        })
        .collect()
}

async fn outcomes(store: &SqliteStore, tenant: &str, records: &[Record]) -> (usize, usize) {
    let out = store.append(tenant, records).await.unwrap();
    let dup = out.iter().filter(|o| **o == AppendOutcome::Duplicate).count();
    (out.len() - dup, dup)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_found_wherever_the_first_one_is_and_new_ids_are_rarely_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let before = recs("t", "before", 300);
    {
        let one_off = SqliteStore::open(&db).unwrap();
        assert_eq!(outcomes(&one_off, "t", &before).await, (300, 0));
    }
    let store = SqliteStore::open(&db).unwrap();
    store.start_inbox().unwrap();
    inbox(&store).hold(true);
    // The tenant's first append starts its filter; its records are in the tail meanwhile.
    let tail = recs("t", "tail", 200);
    assert_eq!(outcomes(&store, "t", &tail).await, (200, 0));
    ready(&store, "t").await;
    let fresh = recs("t", "fresh", 1000);
    let (_, looked) = seen(&store, "t");
    assert_eq!(outcomes(&store, "t", &fresh).await, (1000, 0));
    let extra = seen(&store, "t").1 - looked;
    assert!(extra < 60, "{extra} of 1000 new ids looked up in SQLite: the filter rules out ~99 %");
    for (what, rs) in [("stored before", &before), ("in the tail", &tail), ("just appended", &fresh)] {
        assert_eq!(outcomes(&store, "t", rs).await, (0, rs.len()), "{what}");
    }
    // Another tenant has a filter of its own: the same ids are new there.
    assert_eq!(outcomes(&store, "u", &recs("u", "before", 300)).await, (300, 0));
    inbox(&store).hold(false);
    store.settled().await.unwrap();
    for rs in [&before, &tail, &fresh] {
        assert_eq!(outcomes(&store, "t", rs).await, (0, rs.len()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_outgrows_itself_is_built_again_and_misses_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.start_inbox().unwrap();
    let first = recs("t", "a", 10);
    store.append("t", &first).await.unwrap();
    ready(&store, "t").await;
    // Past its capacity with the last chunk (4,206 ids for 4,096): it is outgrown, and the
    // next append begins its successor's build, held here until the gate opens.
    let (open, gate) = std::sync::mpsc::channel();
    inbox(&store).log.lock().unwrap().seen.gate = Some(gate);
    let many = recs("t", "b", FIRST_CAPACITY + 100);
    for chunk in many.chunks(1000) {
        assert_eq!(outcomes(&store, "t", chunk).await.1, 0);
    }
    assert!(!seen(&store, "t").0, "a full filter is outgrown");
    // Meanwhile the outgrown filter still rules new ids out (a few more false positives than
    // at its size; without it all 1,000 were looked up), and misses no duplicate.
    let (_, looked) = seen(&store, "t");
    let next = recs("t", "c", 1000);
    assert_eq!(outcomes(&store, "t", &next).await, (1000, 0));
    let during = seen(&store, "t").1 - looked;
    assert!(during < 60, "{during} of 1000 new ids looked up while the filter is built again");
    for rs in [&first[..], &many[..1000], &many[FIRST_CAPACITY..], &next[..]] {
        assert_eq!(outcomes(&store, "t", rs).await, (0, rs.len()), "duplicates while it is built");
    }
    assert!(!seen(&store, "t").0, "its successor waits for the gate");
    open.send(()).unwrap();
    ready(&store, "t").await;
    // All in SQLite: no duplicate is caught by the tail before the filter.
    store.settled().await.unwrap();
    let (_, looked) = seen(&store, "t");
    for rs in [&first, &many, &next] {
        for chunk in rs.chunks(1000) {
            assert_eq!(outcomes(&store, "t", chunk).await, (0, chunk.len()));
        }
    }
    assert_eq!(outcomes(&store, "t", &recs("t", "d", 1000)).await, (1000, 0));
    let looked = seen(&store, "t").1 - looked;
    let dups = first.len() + many.len() + next.len();
    assert!(looked >= dups && looked < dups + 60, "{looked} lookups for {dups} duplicates and 1000 new ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_looks_up_every_id_and_is_tried_again_a_while_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.start_inbox().unwrap();
    let builds = || inbox(&store).log.lock().unwrap().seen.builds;
    inbox(&store).log.lock().unwrap().seen.fail_builds = Some(super::Fail::Error);
    let first = recs("t", "a", 100);
    assert_eq!(outcomes(&store, "t", &first).await, (100, 0));
    failed(&store, "t").await;
    store.settled().await.unwrap();
    // Without a filter every id is looked up: new ones are new, stored ones duplicates; and
    // the build is not tried again at each append.
    let (_, looked) = seen(&store, "t");
    let second = recs("t", "b", 100);
    assert_eq!(outcomes(&store, "t", &second).await, (100, 0));
    assert_eq!(outcomes(&store, "t", &first).await, (0, 100));
    assert_eq!(seen(&store, "t").1 - looked, 200, "every id looked up");
    assert_eq!(builds(), 1, "a failed build is not tried at every append");
    // A while later the next append builds it again, and it works.
    inbox(&store).log.lock().unwrap().seen.fail_builds = None;
    tokio::time::sleep(super::RETRY).await;
    store.settled().await.unwrap();
    assert_eq!(outcomes(&store, "t", &second).await, (0, 100));
    assert_eq!(builds(), 2);
    ready(&store, "t").await;
    let (_, looked) = seen(&store, "t");
    assert_eq!(outcomes(&store, "t", &recs("t", "c", 1000)).await, (1000, 0));
    assert_eq!(outcomes(&store, "t", &first).await, (0, 100));
    let looked = seen(&store, "t").1 - looked;
    assert!((100..160).contains(&looked), "{looked} lookups for 100 duplicates and 1000 new ids");
}

/// A full filter whose successor's build fails (`fail`) stays: it rules new ids out until the
/// build is tried again, `RETRY` later, and misses no duplicate meanwhile.
async fn an_outgrown_filter_outlives_a_failed_build(fail: super::Fail) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.start_inbox().unwrap();
    let builds = || inbox(&store).log.lock().unwrap().seen.builds;
    let first = recs("t", "a", 10);
    store.append("t", &first).await.unwrap();
    ready(&store, "t").await;
    inbox(&store).log.lock().unwrap().seen.fail_builds = Some(fail);
    // The last chunk fills it (4,206 ids for 4,096); the append after it begins the build.
    let many = recs("t", "b", FIRST_CAPACITY + 100);
    for chunk in many.chunks(1000) {
        assert_eq!(outcomes(&store, "t", chunk).await.1, 0);
    }
    let begins = recs("t", "c", 10);
    assert_eq!(outcomes(&store, "t", &begins).await, (10, 0));
    let failed_outgrown =
        || matches!(inbox(&store).log.lock().unwrap().seen.filters.get("t"), Some(super::Filter::Outgrown(_, Some(_))));
    let started = std::time::Instant::now();
    while !failed_outgrown() {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the build never failed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    inbox(&store).log.lock().unwrap().seen.fail_builds = None;
    assert_eq!(builds(), 2);
    // Without it every one of the 1,000 new ids was looked up (the filter was off for a minute).
    let (_, looked) = seen(&store, "t");
    let next = recs("t", "d", 1000);
    assert_eq!(outcomes(&store, "t", &next).await, (1000, 0));
    let during = seen(&store, "t").1 - looked;
    assert!(during < 60, "{during} of 1000 new ids looked up after the build failed");
    // All in SQLite: the filter, not the tail, decides which ids are looked up.
    store.settled().await.unwrap();
    for rs in [&first[..], &many[..1000], &many[FIRST_CAPACITY..], &begins[..], &next[..]] {
        assert_eq!(outcomes(&store, "t", rs).await, (0, rs.len()), "duplicates after the build failed");
    }
    assert_eq!(builds(), 2, "a failed build is not tried at every append");
    tokio::time::sleep(super::RETRY).await;
    assert_eq!(outcomes(&store, "t", &recs("t", "e", 10)).await, (10, 0));
    ready(&store, "t").await;
    assert_eq!(builds(), 3, "tried again a while later, and built");
    for rs in [&many[..1000], &next[..]] {
        assert_eq!(outcomes(&store, "t", rs).await, (0, rs.len()), "duplicates once built");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgrown_filter_outlives_a_build_that_fails_to_read() {
    an_outgrown_filter_outlives_a_failed_build(super::Fail::Error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgrown_filter_outlives_a_builder_that_panics() {
    an_outgrown_filter_outlives_a_failed_build(super::Fail::Panic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thread_builds_the_filters_of_many_tenants_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.start_inbox().unwrap();
    let tenants: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    for t in &tenants {
        assert_eq!(outcomes(&store, t, &recs(t, "a", 20)).await, (20, 0));
    }
    for t in &tenants {
        ready(&store, t).await;
        assert_eq!(outcomes(&store, t, &recs(t, "a", 20)).await, (0, 20), "{t}");
    }
    let log = inbox(&store).log.lock().unwrap();
    assert_eq!((log.seen.builds, log.seen.builder_threads), (40, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builder_that_panics_strands_no_tenant_and_a_new_one_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    store.start_inbox().unwrap();
    let filter = |t: &str| match inbox(&store).log.lock().unwrap().seen.filters.get(t) {
        Some(super::Filter::Building { .. }) => "building",
        Some(super::Filter::Outgrown(..)) => "outgrown",
        Some(super::Filter::Ready { .. }) => "ready",
        Some(super::Filter::Off(Some(_))) => "off for a while",
        Some(super::Filter::Off(None)) => "off",
        None => "none",
    };
    inbox(&store).log.lock().unwrap().seen.fail_builds = Some(super::Fail::Panic);
    let (first, second) = (recs("p1", "a", 20), recs("p2", "a", 20));
    assert_eq!(outcomes(&store, "p1", &first).await, (20, 0));
    inbox(&store).log.lock().unwrap().seen.fail_builds = None;
    // Queued behind the panic (off for a while), or sent after it (a new thread builds it).
    assert_eq!(outcomes(&store, "p2", &second).await, (20, 0));
    let started = std::time::Instant::now();
    while filter("p1") != "off for a while" || filter("p2") == "building" {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{} / {}", filter("p1"), filter("p2"));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(outcomes(&store, "p1", &first).await, (0, 20), "duplicates are looked up meanwhile");
    tokio::time::sleep(super::RETRY).await;
    for t in ["p1", "p2"] {
        assert_eq!(outcomes(&store, t, &recs(t, "b", 20)).await, (20, 0));
        ready(&store, t).await;
        assert_eq!(outcomes(&store, t, &recs(t, "a", 20)).await, (0, 20));
    }
    assert_eq!(inbox(&store).log.lock().unwrap().seen.builder_threads, 2);
}
