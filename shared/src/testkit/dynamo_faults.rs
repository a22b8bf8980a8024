//! The adapter under injected faults (`testkit::faults`) on the emulator: throttling and
//! unprocessed batches lose and duplicate nothing, retries stay within their budget.

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_dynamodb::Client;

use super::conformance::{rec, t0};
use super::{faults, moto};
use crate::record::{Category, Record, ResultCode};
use crate::store::dynamodb::{DynamoStore, MAX_ATTEMPTS, classify, retry_within, s};
use crate::store::{AppendOutcome, EventFilter, PageRequest, RecordStore, StoreError};

/// 2,000 records (80 batches of 25 writes) under ~30 % throttling, HTML 502 pages and unprocessed batches (SDK retries off, so every
/// fault reaches the adapter): none lost, none stored twice, replays all duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_unprocessed_items_lose_nothing_and_duplicate_nothing() {
    let (clean, _) = moto::fresh().await;
    let (http, counts) = faults::faulty_client(0.3);
    let faulty = faults::store_over(&clean.table, http).await;
    let tenant = "fault";
    const N: i64 = 2_000;
    let records: Vec<Record> = (0..N)
        .map(|i| {
            let mut r = rec(tenant, &format!("f{i:05}"), i / 10, "LOGIN", &format!("u{}", i % 50), ResultCode::Ok);
            r.tenant_id = tenant.into();
            r
        })
        .collect();
    let mut stored = 0;
    let started = std::time::Instant::now();
    let mut pending: Vec<Record> = records.clone();
    // A client resends what was reported failed, as the API tells it to.
    for _ in 0..5 {
        let mut again = Vec::new();
        for chunk in pending.chunks(1000) {
            for (r, o) in chunk.iter().zip(faulty.append(tenant, chunk).await.unwrap()) {
                match o {
                    AppendOutcome::Created => stored += 1,
                    AppendOutcome::Duplicate => panic!("{} reported duplicate on first store", r.id),
                    AppendOutcome::Failed { .. } => again.push(r.clone()),
                }
            }
        }
        pending = again;
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "{} records still failing", pending.len());
    assert_eq!(stored, N as usize);
    eprintln!("{N} records stored under faults in {:?}: {counts:?}", started.elapsed());
    let (throttled, html) = (counts.throttled.load(Ordering::Relaxed), counts.server_errors.load(Ordering::Relaxed));
    assert!(throttled + html > N as u64 / 5 && html > 0, "faults were injected: {counts:?}");

    // Read everything back through the clean client: every id exactly once.
    let mut f = EventFilter::window(t0() - chrono::Duration::days(1), t0() + chrono::Duration::days(30));
    f.order = crate::store::Order::OldestFirst;
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        // Large pages: the emulator answers a GSI query by walking the whole table.
        let page = clean.query(tenant, &f, PageRequest { limit: 10_000, after }).await.unwrap();
        ids.extend(page.records.into_iter().map(|r| r.id));
        match page.next {
            Some(p) => after = Some(p),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!((ids.len(), unique.len()), (N as usize, N as usize));

    eprintln!("read back in {:?}", started.elapsed());

    // Batch deletes under unprocessed-item faults still delete everything asked.
    let small = "fault-purge";
    let recs: Vec<Record> = records[..500].iter().map(|r| Record { tenant_id: small.into(), ..r.clone() }).collect();
    clean.append(small, &recs).await.unwrap();
    // A purge that runs out of its retry budget (an emulator slowed by a loaded machine) fails as
    // transient, and the retention job runs it again: what it deleted before stays deleted.
    let cut = t0() + chrono::Duration::days(30);
    let mut purged = 0;
    for round in 0.. {
        match faulty.purge(small, Category::SignIn, cut, 1000).await {
            Ok(p) => {
                purged += p.len();
                break;
            }
            Err(StoreError::Throttled) if round < 5 => continue,
            Err(e) => panic!("purge failed: {e}"),
        }
    }
    assert!((1..=500).contains(&purged), "{purged} reported purged");
    let left = clean.query(small, &f, PageRequest { limit: 1000, after: None }).await.unwrap();
    assert!(left.records.is_empty(), "{} records left after the purge", left.records.len());
    assert!(counts.unprocessed.load(Ordering::Relaxed) > 0, "{counts:?}");
    assert!(clean.get(small, "f00042").await.unwrap().is_none());
    assert!(clean.get(tenant, "f00042").await.unwrap().is_some(), "another tenant is untouched");
}

/// One throttled call on the production client: a bounded number of HTTP attempts (the
/// adapter's, none from the SDK beneath it), given up within the budget as `Throttled`.
#[tokio::test]
async fn a_throttled_call_makes_bounded_attempts_within_the_budget() {
    let (clean, _) = moto::fresh().await;
    for (budget, most) in [(Duration::from_secs(10), u64::from(MAX_ATTEMPTS)), (Duration::from_millis(100), 4)] {
        let (http, counts) = faults::faulty_client(1.0);
        let store = faults::store_over(&clean.table, http).await;
        let started = std::time::Instant::now();
        let out = retry_within(budget, || async {
            store
                .client
                .get_item()
                .table_name(&store.table)
                .key("pk", s("x"))
                .key("sk", s("y"))
                .send()
                .await
                .map_err(|e| classify(e, &store.table))
        })
        .await;
        assert!(matches!(out, Err(StoreError::Throttled)), "{out:?}");
        let attempts = counts.throttled.load(Ordering::Relaxed) + counts.server_errors.load(Ordering::Relaxed);
        assert!((1..=most).contains(&attempts), "{attempts} HTTP attempts within {budget:?}");
        // The budget bounds the waiting: no pause is begun that would end past it. The calls
        // themselves take what they take (on a loaded 2-core runner, the SDK's own work on one
        // canned answer has taken 100 ms), so the bound is the budget plus that slack.
        let slack = Duration::from_secs(1);
        assert!(started.elapsed() <= budget + slack, "{:?} spent, budget {budget:?}", started.elapsed());
    }
    // The store's own entry points obey it too.
    let (http, counts) = faults::faulty_client(1.0);
    let store = faults::store_over(&clean.table, http).await;
    assert!(matches!(store.get("t", "r").await, Err(StoreError::Throttled)));
    let attempts = counts.throttled.load(Ordering::Relaxed) + counts.server_errors.load(Ordering::Relaxed);
    assert!((1..=u64::from(MAX_ATTEMPTS)).contains(&attempts), "{counts:?}");
}

/// Records just written, read back where eventually consistent reads do not see them yet: every
/// listing (both orders, several page sizes, with filters) still returns each of them, once.
#[tokio::test]
async fn a_listing_right_after_a_write_finds_every_record_on_a_lagging_replica() {
    let (clean, _) = moto::fresh().await;
    let (http, counts) = faults::lagging_client();
    let lagging = faults::store_over(&clean.table, http).await;
    let tenant = "lagging";
    let records: Vec<Record> = (0..40)
        .map(|i| {
            let action = if i % 3 == 0 { "LOGIN" } else { "ACCESS_MEDIA" };
            rec(tenant, &format!("l{i:02}"), i * 7, action, &format!("u{}", i % 4), ResultCode::Ok)
        })
        .collect();
    lagging.append(tenant, &records).await.unwrap();
    let window = EventFilter::window(t0() - chrono::Duration::days(1), t0() + chrono::Duration::days(1));
    for order in [crate::store::Order::NewestFirst, crate::store::Order::OldestFirst] {
        for (f, want) in [
            (EventFilter { order, ..window.clone() }, 40),
            (EventFilter { order, categories: vec![Category::SignIn], ..window.clone() }, 14),
            (EventFilter { order, actions: vec!["ACCESS_MEDIA".into()], ..window.clone() }, 26),
        ] {
            for limit in [1, 7, 100] {
                let ids: Vec<String> =
                    super::conformance::all(&lagging, tenant, &f, limit).await.into_iter().map(|r| r.id).collect();
                let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
                assert_eq!((ids.len(), unique.len()), (want, want), "{f:?} by {limit}");
            }
        }
    }
    assert!(counts.unprocessed.load(Ordering::Relaxed) > 0, "the replica lagged: {counts:?}");
}

#[tokio::test]
async fn an_oversized_item_is_refused_before_any_write() {
    let (store, _) = moto::fresh().await;
    let mut r = rec("big", "huge", 1, "LOGIN", "u", ResultCode::Ok);
    r.data = Some(serde_json::json!({"blob": "x".repeat(420 * 1024)}));
    let ok = rec("big", "small", 1, "LOGIN", "u", ResultCode::Ok);
    let out = store.append("big", &[r.clone(), ok.clone()]).await.unwrap();
    assert!(matches!(&out[0], AppendOutcome::Failed { reason } if reason.contains("400 KB")), "{out:?}");
    assert_eq!(out[1], AppendOutcome::Created);
    assert!(store.get("big", "huge").await.unwrap().is_none());
    // Only the record stored is listed in the time postings (one item for the two records' hour).
    let pk = crate::store::dynamodb::time_posting_pk("big", r.occurred_at, r.category);
    let listed = store
        .client
        .query()
        .table_name(&store.table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", s(pk))
        .send()
        .await
        .unwrap();
    let entries: Vec<u8> = listed.items().iter().flat_map(|i| i["e"].as_b().unwrap().as_ref().to_vec()).collect();
    let text = String::from_utf8_lossy(&entries);
    assert!(text.contains("small") && !text.contains("huge"), "{text}");
}

#[tokio::test]
async fn a_missing_table_names_the_variable() {
    let cfg = moto::sdk_config(&moto::endpoint()).await;
    let store = DynamoStore::new(Client::new(&cfg), "no-such-table");
    let e = store.check().await.unwrap_err().to_string();
    assert!(e.contains("AUDITRAIL_TABLE") && e.contains("no-such-table"), "{e}");
}

/// A record's put applied, then its answer lost (a 502 on the way back) and retried: the retry
/// finds the record it wrote itself, so it is reported created, and its request pair is noted; a
/// record sent again by a client is still a duplicate.
#[tokio::test]
async fn a_put_whose_answer_was_lost_is_created_not_a_duplicate() {
    use crate::record::Phase;
    use crate::store::RequestStore;
    let (clean, _) = moto::fresh().await;
    // The records' own puts (the journal lists their ids too, but has no body).
    let (http, counts) = faults::applied_then_lost("PutItem", "\"body\":", 2);
    let store = faults::store_over(&clean.table, http).await;
    let tenant = "lost";
    let records: Vec<Record> = (0..3)
        .map(|i| {
            let mut r = rec(tenant, &format!("lost-{i}"), i, "ACCESS_MEDIA", "ann", ResultCode::Ok);
            r.correlation_id = Some(format!("req-{i}"));
            r.phase = Some(Phase::Start);
            r.result = None;
            r
        })
        .collect();
    assert_eq!(store.append(tenant, &records).await.unwrap(), vec![AppendOutcome::Created; 3]);
    assert_eq!(counts.server_errors.load(Ordering::Relaxed), 2, "two answers were lost: {counts:?}");
    for r in &records {
        let pair = clean.pair(tenant, r.correlation_id.as_deref().unwrap()).await.unwrap();
        assert_eq!(pair.and_then(|p| p.start_id).as_deref(), Some(r.id.as_str()), "the pair of {}", r.id);
    }
    assert_eq!(clean.append(tenant, &records[..2]).await.unwrap(), vec![AppendOutcome::Duplicate; 2]);
}

/// A record stored whose request-pair update kept being throttled is Failed (that record alone
/// to be sent again); sent again it is a duplicate, and its pair is noted then, from the stored
/// record; a whole pair sends no update at all. A pair that notes another start keeps it.
#[tokio::test]
async fn a_pair_a_failed_append_left_unnoted_is_noted_when_the_record_comes_again() {
    use crate::record::Phase;
    use crate::store::{RequestQuery, RequestStore};
    let (clean, _) = moto::fresh().await;
    // Only the pair's updates of a start carry `start_id` (as do the transactions of a repair).
    let (http, counts) = faults::matching_client("UpdateItem|TransactWriteItems", "start_id", None);
    let throttled = faults::store_over(&clean.table, http).await;
    let tenant = "unnoted";
    let start = |id: &str, minutes: i64| {
        let mut r = rec(tenant, id, minutes, "ACCESS_MEDIA", "ann", ResultCode::Ok);
        r.correlation_id = Some("req-1".into());
        r.phase = Some(Phase::Start);
        r.result = None;
        r
    };
    let start_of = || async { clean.pair(tenant, "req-1").await.unwrap().and_then(|p| p.start_id) };
    let first = start("s-1", 0);
    let other = rec(tenant, "plain", 0, "LOGIN", "ann", ResultCode::Ok);
    let failed = |o: &AppendOutcome| matches!(o, AppendOutcome::Failed { reason } if reason.contains("request pair"));
    let out = throttled.append(tenant, &[first.clone(), other.clone()]).await.unwrap();
    assert!(failed(&out[0]) && out[1] == AppendOutcome::Created, "{out:?}");
    assert!(counts.throttled.load(Ordering::Relaxed) >= u64::from(MAX_ATTEMPTS) - 1, "{counts:?}");
    assert!(clean.get(tenant, "s-1").await.unwrap().is_some(), "the record was stored");
    assert_eq!(start_of().await, None, "its pair was not");
    // Sent again while the pair's updates are still throttled: Failed again, not a bare duplicate.
    let again = throttled.append(tenant, std::slice::from_ref(&first)).await.unwrap();
    assert!(failed(&again[0]), "{again:?}");
    assert_eq!(clean.append(tenant, std::slice::from_ref(&first)).await.unwrap(), vec![AppendOutcome::Duplicate]);
    assert_eq!(start_of().await.as_deref(), Some("s-1"), "noted from the stored record");
    let page = PageRequest { limit: 10, after: None };
    let open = RequestQuery::Unfinished { started_before: t0() + chrono::Duration::days(1), from: t0() };
    let listed = clean.pairs(tenant, &open, page.clone()).await.unwrap();
    assert_eq!(
        listed.pairs.iter().map(|p| p.correlation_id.as_str()).collect::<Vec<_>>(),
        ["req-1"],
        "an open request"
    );
    // The pair is whole now: a duplicate sends no update (through the throttling store too).
    let whole = throttled.append(tenant, std::slice::from_ref(&first)).await.unwrap();
    assert_eq!(whole, vec![AppendOutcome::Duplicate]);
    // A later start of the same request takes its place; the older one sent again does not.
    assert_eq!(clean.append(tenant, &[start("s-2", 1)]).await.unwrap(), vec![AppendOutcome::Created]);
    assert_eq!(start_of().await.as_deref(), Some("s-2"));
    assert_eq!(clean.append(tenant, &[first]).await.unwrap(), vec![AppendOutcome::Duplicate]);
    assert_eq!(start_of().await.as_deref(), Some("s-2"), "a duplicate takes no other record's place");
}

/// Record `id`, the start of request `corr`, at `t0`.
fn start_of(tenant: &str, id: &str, corr: &str) -> crate::record::Record {
    let mut r = rec(tenant, id, 0, "ACCESS_MEDIA", "ann", ResultCode::Ok);
    r.correlation_id = Some(corr.into());
    r.phase = Some(crate::record::Phase::Start);
    r.result = None;
    r
}

/// Deletes record `id`'s item as the retention purge does (its pair, if any, is left).
async fn purge_record_item(store: &crate::store::dynamodb::DynamoStore, tenant: &str, id: &str) {
    use crate::store::dynamodb::{keys, s};
    let key = |k: &str, v: String| (k.to_owned(), s(v));
    let item = [key("pk", keys::record_pk(tenant, id)), key("sk", keys::RECORD_SK.to_owned())];
    store.client.delete_item().table_name(&store.table).set_key(Some(item.into())).send().await.unwrap();
}

/// A record sent again while the retention purge removes it (between the duplicate's put and
/// its pair's repair) leaves no pair behind: the repair is conditional on the record being
/// stored, so no open request points at a record that is gone. Nor does a backfilled record
/// purged between its first put and its pair's update.
#[tokio::test]
async fn a_pair_repair_racing_the_purge_of_its_record_leaves_no_pair() {
    use crate::store::{RequestQuery, RequestStore};
    let (clean, _) = moto::fresh().await;
    let (http, _) = faults::matching_client("UpdateItem|TransactWriteItems", "start_id", None);
    let throttled = faults::store_over(&clean.table, http).await;
    // The repair's first call reads the pair: held back long enough for the purge to run.
    let (http, held) = faults::matching_client("GetItem", "#Q#req-9", Some(std::time::Duration::from_millis(1500)));
    let slow = faults::store_over(&clean.table, http).await;
    let tenant = "racing";
    let start = start_of(tenant, "s-9", "req-9");
    let out = throttled.append(tenant, std::slice::from_ref(&start)).await.unwrap();
    assert!(matches!(&out[0], AppendOutcome::Failed { reason } if reason.contains("request pair")), "{out:?}");
    let resend = tokio::spawn(async move { slow.append(tenant, &[start]).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // What the purge does to a record (its pair had not been noted, so there is none to drop).
    purge_record_item(&clean, tenant, "s-9").await;
    assert_eq!(resend.await.unwrap().unwrap(), vec![AppendOutcome::Duplicate]);
    assert!(held.held.load(Ordering::Relaxed) >= 1, "the pair's read was held back: {held:?}");
    assert!(clean.get(tenant, "s-9").await.unwrap().is_none());
    assert_eq!(clean.pair(tenant, "req-9").await.unwrap(), None, "no pair of a purged record");
    let open = RequestQuery::Unfinished { started_before: t0() + chrono::Duration::days(1), from: t0() };
    let listed = clean.pairs(tenant, &open, PageRequest { limit: 10, after: None }).await.unwrap();
    assert!(listed.pairs.is_empty(), "no open request: {:?}", listed.pairs);

    // A backfilled start, written for the first time, purged before its pair's update: the pair
    // that update creates is dropped again.
    let (http, held) = faults::matching_client("UpdateItem", "#Q#req-8", Some(std::time::Duration::from_millis(1500)));
    let slow = faults::store_over(&clean.table, http).await;
    let start = start_of(tenant, "s-8", "req-8");
    let append = tokio::spawn(async move { slow.append(tenant, &[start]).await });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(held.held.load(Ordering::Relaxed) >= 1, "the pair's update is being held back: {held:?}");
    purge_record_item(&clean, tenant, "s-8").await;
    assert_eq!(append.await.unwrap().unwrap(), vec![AppendOutcome::Created]);
    assert_eq!(clean.pair(tenant, "req-8").await.unwrap(), None, "no pair of a record purged before it");
    let listed = clean.pairs(tenant, &open, PageRequest { limit: 10, after: None }).await.unwrap();
    assert!(listed.pairs.is_empty(), "no open request: {:?}", listed.pairs);
}

/// Both sides of a request in one batch are written one after the other, so their pair item's
/// updates never race (the emulator, without per-item atomicity, lost one side's update in a
/// CI run): while the start's pair update is held back, the end is not stored yet; then both
/// sides and the delay are.
#[tokio::test]
async fn both_sides_of_a_request_in_one_batch_update_their_pair_one_after_the_other() {
    use crate::record::Phase;
    use crate::store::RequestStore;
    let (clean, _) = moto::fresh().await;
    let (http, held) = faults::matching_client("UpdateItem", "start_id", Some(std::time::Duration::from_millis(1500)));
    let slow = faults::store_over(&clean.table, http).await;
    let tenant = "both-sides";
    let side = |id: &str, corr: &str, phase: Phase, minutes: i64| {
        let mut r = rec(tenant, id, minutes, "ACCESS_MEDIA", "ann", ResultCode::Ok);
        r.correlation_id = Some(corr.into());
        r.phase = Some(phase);
        if phase == Phase::Start {
            r.result = None;
        }
        r
    };
    let batch = vec![
        side("s", "req-1", Phase::Start, 0),
        side("e", "req-1", Phase::End, 2),
        side("other", "req-2", Phase::Start, 1),
    ];
    let append = tokio::spawn(async move { slow.append(tenant, &batch).await });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(held.held.load(Ordering::Relaxed) >= 1, "{held:?}");
    assert!(clean.get(tenant, "s").await.unwrap().is_some(), "the start is stored");
    assert!(clean.get(tenant, "e").await.unwrap().is_none(), "the end waits for the start's pair update");
    assert!(clean.get(tenant, "other").await.unwrap().is_some(), "another request's side does not");
    assert!(append.await.unwrap().unwrap().iter().all(|o| *o == AppendOutcome::Created));
    let pair = clean.pair(tenant, "req-1").await.unwrap().unwrap();
    assert_eq!(
        (pair.start_id.as_deref(), pair.end_id.as_deref(), pair.delay_ms),
        (Some("s"), Some("e"), Some(120_000))
    );
}
