//! Request pairs: the two sides of an asynchronous action joined at write time (in either
//! order), the delay once both are stored, the slow and unfinished listings with their paging,
//! tenants apart, and a pair gone with its records.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{FullStore, rec, t0, tenant};
use crate::record::{Phase, Record, ResultCode};
use crate::store::{PageRequest, RequestPair, RequestQuery};

/// One side of the pair `corr`, `ms` milliseconds after `t0`. The checks append the two sides of
/// a pair in separate calls: on the emulator, two updates that create the same item at once can
/// lose one (moto creates the item outside any lock), where DynamoDB serialises the writes to an
/// item.
fn side(tenant: &str, id: &str, corr: &str, phase: Phase, ms: i64) -> Record {
    let mut r = rec(tenant, id, 0, "CONVERSATION_SEARCH", "agent", ResultCode::Ok);
    r.occurred_at = t0() + Duration::milliseconds(ms);
    r.correlation_id = Some(corr.to_owned());
    r.phase = Some(phase);
    r
}

/// Every pair of a listing, paging through it `limit` at a time.
async fn listed(store: &dyn FullStore, tenant: &str, q: &RequestQuery, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.pairs(tenant, q, PageRequest { limit, after }).await.expect("pairs");
        assert!(page.pairs.len() <= limit, "page larger than its limit");
        assert_eq!(page.stats.items_returned, page.pairs.len() as u64);
        out.extend(page.pairs.into_iter().map(|p| p.correlation_id));
        match page.next {
            Some(p) => after = Some(p),
            None => return out,
        }
    }
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    Some(t0() + Duration::milliseconds(ms))
}

pub async fn request_pairs_are_joined_at_write_time(store: Arc<dyn FullStore>) {
    let t = tenant("pairs");
    // The two sides of a pair go in separate appends, as clients send them (see `side`).
    store.append(&t, &[side(&t, "s1", "slow", Phase::Start, 0)]).await.unwrap();
    store.append(&t, &[side(&t, "s2", "slow", Phase::End, 3000)]).await.unwrap();
    // The end may arrive first.
    store.append(&t, &[side(&t, "l2", "late", Phase::End, 62_000)]).await.unwrap();
    store.append(&t, &[side(&t, "l1", "late", Phase::Start, 60_000)]).await.unwrap();
    store.append(&t, &[side(&t, "o1", "open", Phase::Start, 120_000)]).await.unwrap();
    let slow = RequestPair {
        correlation_id: "slow".into(),
        action: "CONVERSATION_SEARCH".into(),
        start_id: Some("s1".into()),
        end_id: Some("s2".into()),
        started_at: at(0),
        ended_at: at(3000),
        delay_ms: Some(3000),
        result: Some(ResultCode::Ok),
    };
    assert_eq!(store.pair(&t, "slow").await.unwrap(), Some(slow));
    let late = store.pair(&t, "late").await.unwrap().unwrap();
    assert_eq!((late.start_id.as_deref(), late.end_id.as_deref(), late.delay_ms), (Some("l1"), Some("l2"), Some(2000)));
    let open = store.pair(&t, "open").await.unwrap().unwrap();
    assert_eq!((open.started_at, open.ended_at, open.delay_ms, open.result), (at(120_000), None, None, None));
    assert!(store.pair(&t, "missing").await.unwrap().is_none());
    assert!(store.pair(&tenant("other"), "slow").await.unwrap().is_none(), "tenants never see each other's pairs");
    // A replayed side is a duplicate record and changes nothing.
    store.append(&t, &[side(&t, "s2", "slow", Phase::End, 9000)]).await.unwrap();
    assert_eq!(store.pair(&t, "slow").await.unwrap().unwrap().delay_ms, Some(3000));

    // Gone with its records.
    let category = store.get(&t, "s1").await.unwrap().unwrap().category;
    let purged = store.purge(&t, category, t0() + Duration::days(1), 100).await.unwrap();
    assert_eq!(purged.len(), 5);
    for corr in ["slow", "late", "open"] {
        assert!(store.pair(&t, corr).await.unwrap().is_none(), "{corr} purged with its records");
    }
}

pub async fn slow_and_unfinished_pairs_are_listed_and_paged(store: Arc<dyn FullStore>) {
    let t = tenant("pair-lists");
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    // Delays 0.5 s to 5 s, one pair each, starting a minute apart; three starts without an end.
    for i in 0..10i64 {
        let start = i * 60_000;
        starts.push(side(&t, &format!("s{i}"), &format!("done-{i}"), Phase::Start, start));
        ends.push(side(&t, &format!("e{i}"), &format!("done-{i}"), Phase::End, start + 500 * (i + 1)));
    }
    for i in 0..3i64 {
        starts.push(side(&t, &format!("o{i}"), &format!("open-{i}"), Phase::Start, 1_000_000 + i * 60_000));
    }
    store.append(&t, &starts).await.unwrap();
    store.append(&t, &ends).await.unwrap();
    let (from, to) = (t0() - Duration::days(1), t0() + Duration::days(1));

    let slow = RequestQuery::SlowerThan { min_delay_ms: 2000, from, to };
    let want: Vec<String> = (3..10).rev().map(|i| format!("done-{i}")).collect();
    for limit in [1, 3, 100] {
        assert_eq!(listed(&*store, &t, &slow, limit).await, want, "slowest first, limit {limit}");
    }
    // The window is on the start, inclusive of `from`, exclusive of `to`.
    let window = RequestQuery::SlowerThan {
        min_delay_ms: 0,
        from: t0() + Duration::minutes(2),
        to: t0() + Duration::minutes(5),
    };
    assert_eq!(listed(&*store, &t, &window, 2).await, vec!["done-4", "done-3", "done-2"]);

    let open = RequestQuery::Unfinished { started_before: to, from };
    assert_eq!(listed(&*store, &t, &open, 2).await, vec!["open-2", "open-1", "open-0"], "newest first");
    let before = RequestQuery::Unfinished { started_before: t0() + Duration::milliseconds(1_060_000), from };
    assert_eq!(listed(&*store, &t, &before, 10).await, vec!["open-0"], "`started_before` is exclusive");
    assert!(listed(&*store, &tenant("other"), &open, 10).await.is_empty());
}
