//! Which ids a tenant may have stored: per tenant, a Bloom filter of every id in SQLite and in
//! the tail, so that an append looks up in SQLite only the ids the filter cannot rule out (about
//! 1 in 100 new ids, and every real duplicate). Without it each new id was a lookup in the id
//! index, a random page of it for random UUIDs: 2–3 µs of CPU per id on two shared cores, a third
//! of one client's request path.
//!
//! A tenant's filter is built by the inbox's builder thread (one for all tenants, in turn) at the
//! tenant's first append in this process; until it is ready, that tenant's ids are looked up in
//! SQLite as before. Once it holds more ids than it was made for it is built again, twice as large,
//! and the outgrown one rules ids out meanwhile (it holds every id, only its false positives grow
//! as it fills): a growing tenant's appends do not fall back to a lookup per id at each doubling
//! (1,000 per batch; for random UUIDs a random page of the id index each). The filter lives under
//! the log's lock, which every append holds while it checks and adds its ids. Ids are never taken
//! out: a purged record's id stays a "maybe" (a lookup too many, never a duplicate missed). Only
//! this inbox's appends add ids: a record that another process writes into the same database (a
//! one-off command beside the server, for its own actions) has an id that process minted, which no
//! client sent; should a client send it later, the indexer keeps the stored record (`insert_rows`),
//! as for any duplicate, though the answer said created.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fastbloom::BloomFilter;

use super::super::Inner;
use super::Inbox;
use crate::record::Record;
use crate::store::{AppendOutcome, StoreError, StoreResult};

/// The share of absent ids the filter cannot rule out (each then one lookup in SQLite).
const FALSE_POSITIVES: f64 = 0.01;
/// The fewest ids a filter is made for (5 kB).
const FIRST_CAPACITY: usize = 1 << 12;
/// Past this many ids a tenant has no filter (it would take 80 MB): its ids are looked up.
const MOST_IDS: usize = 1 << 26;

enum Filter {
    /// Being built; the ids appended meanwhile, added once it is ready; and the filter it
    /// replaces, if it outgrew one, which holds them too and rules ids out until then.
    Building {
        added: Vec<String>,
        outgrown: Option<BloomFilter>,
    },
    Ready {
        bloom: BloomFilter,
        ids: usize,
        capacity: usize,
    },
    /// Too many ids; or, since the instant given, its build failed or found no thread (tried again
    /// `RETRY` later, not at every append): every id is looked up.
    Off(Option<Instant>),
    /// Holds more ids than it was made for: its successor's build begins at the next append.
    Outgrown(BloomFilter),
}

/// How long after a failed build a tenant's filter is built again (tests wait less).
const RETRY: Duration = if cfg!(test) { Duration::from_secs(5) } else { Duration::from_secs(60) };

/// The tenants' filters (in the inbox's `Log`, under its lock).
#[derive(Default)]
pub(super) struct Seen {
    filters: HashMap<String, Filter>,
    /// Ids looked up in SQLite, and builds begun (tests count them).
    #[cfg(test)]
    looked_up: usize,
    #[cfg(test)]
    builds: usize,
    /// Builds fail as a read of SQLite can, or panic (tests set it).
    #[cfg(test)]
    fail_builds: Option<Fail>,
    /// The next build waits for a message on this before it reads (tests set it).
    #[cfg(test)]
    gate: Option<std::sync::mpsc::Receiver<()>>,
    /// Builder threads started.
    #[cfg(test)]
    builder_threads: usize,
    /// The builder thread's queue.
    builder: Option<std::sync::mpsc::Sender<Job>>,
}

impl Inbox {
    /// Marks as duplicates the records at `unseen` (not in the tail, nor earlier in the batch)
    /// whose ids SQLite holds, looking up only those the tenant's filter cannot rule out.
    pub(super) fn check_stored(
        self: &Arc<Self>,
        inner: &Arc<Inner>,
        seen: &mut Seen,
        tenant: &str,
        rows: &[(Record, String)],
        mut unseen: Vec<usize>,
        out: &mut [AppendOutcome],
    ) -> StoreResult<()> {
        match seen.filters.get(tenant) {
            Some(Filter::Off(Some(failed))) if failed.elapsed() >= RETRY => self.build(inner, seen, tenant),
            Some(Filter::Outgrown(_)) | None => self.build(inner, seen, tenant),
            Some(Filter::Ready { .. } | Filter::Building { .. } | Filter::Off(_)) => {}
        }
        if let Some(Filter::Ready { bloom, .. } | Filter::Building { outgrown: Some(bloom), .. }) =
            seen.filters.get(tenant)
        {
            unseen.retain(|&i| bloom.contains(rows[i].0.id.as_str()));
        }
        if unseen.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        {
            seen.looked_up += unseen.len();
        }
        // In id order: the lookups walk the id index's pages once, whatever order the ids came in.
        unseen.sort_unstable_by(|a, b| rows[*a].0.id.cmp(&rows[*b].0.id));
        inner.with_reader(|conn| {
            // One read transaction for all: each statement alone would begin its own, and find
            // the pages the indexer changed meanwhile gone from its cache.
            let _snapshot = conn.unchecked_transaction().map_err(StoreError::backend)?;
            let mut stmt = conn
                .prepare_cached("SELECT 1 FROM records WHERE tenant = ?1 AND id = ?2")
                .map_err(StoreError::backend)?;
            for &i in &unseen {
                if stmt.exists([tenant, rows[i].0.id.as_str()]).map_err(StoreError::backend)? {
                    out[i] = AppendOutcome::Duplicate;
                }
            }
            Ok(())
        })
    }

    /// Queues `tenant`'s filter for the inbox's builder thread (started at the first build, and
    /// again should it have stopped). One thread builds every tenant's in turn: a start with many
    /// tenants appending starts one reader, not one per tenant. It holds the store only while it
    /// reads: a store dropped meanwhile closes (and lets go of its inbox) at once.
    fn build(self: &Arc<Self>, inner: &Arc<Inner>, seen: &mut Seen, tenant: &str) {
        let outgrown = match seen.filters.remove(tenant) {
            Some(Filter::Outgrown(bloom)) => Some(bloom),
            _ => None,
        };
        seen.filters.insert(tenant.to_owned(), Filter::Building { added: Vec::new(), outgrown });
        let job = Job {
            tenant: tenant.to_owned(),
            #[cfg(test)]
            fail: seen.fail_builds,
            #[cfg(test)]
            gate: seen.gate.take(),
        };
        #[cfg(test)]
        {
            seen.builds += 1;
        }
        let job = match &seen.builder {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, jobs) = std::sync::mpsc::channel();
        let (inbox, inner) = (Arc::downgrade(self), Arc::downgrade(inner));
        match std::thread::Builder::new().name("auditrail-ids".into()).spawn(move || builder(&jobs, &inbox, &inner)) {
            Ok(_) => {
                #[cfg(test)]
                {
                    seen.builder_threads += 1;
                }
                queue.send(job).expect("the builder has just started");
                seen.builder = Some(queue);
            }
            Err(e) => {
                tracing::warn!(error = %e, "no thread to build a tenant's id filter: its appends look up every id for a minute");
                seen.filters.insert(tenant.to_owned(), Filter::Off(Some(Instant::now())));
            }
        }
    }
}

/// A filter to build.
struct Job {
    tenant: String,
    /// How the build fails (tests).
    #[cfg(test)]
    fail: Option<Fail>,
    /// What the build waits for before it reads (tests).
    #[cfg(test)]
    gate: Option<std::sync::mpsc::Receiver<()>>,
}

#[cfg(test)]
#[derive(Clone, Copy)]
pub(super) enum Fail {
    Error,
    Panic,
}

/// Should the builder thread panic, the filters it was to build (queued or begun) are off, to be
/// built again by a new thread `RETRY` later: none stays `Building`, collecting ids, for good.
struct Stranded<'a>(&'a Weak<Inbox>);

impl Drop for Stranded<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Some(inbox) = self.0.upgrade() else { return };
        let mut log = inbox.log.lock().unwrap_or_else(|p| p.into_inner());
        log.seen.builder = None;
        for filter in log.seen.filters.values_mut() {
            if matches!(filter, Filter::Building { .. }) {
                *filter = Filter::Off(Some(Instant::now()));
            }
        }
    }
}

/// The builder thread: each queued tenant's filter in turn, until the inbox is dropped.
fn builder(jobs: &std::sync::mpsc::Receiver<Job>, inbox: &Weak<Inbox>, inner: &Weak<Inner>) {
    let _stranded = Stranded(inbox);
    while let Ok(job) = jobs.recv() {
        #[cfg(test)]
        if let Some(gate) = &job.gate {
            let _ = gate.recv();
        }
        let built = read_ids(inbox, inner, &job.tenant);
        #[cfg(test)]
        let built = match job.fail {
            Some(Fail::Error) => Err(StoreError::Corrupt("a read failed, as the test asked".into())),
            Some(Fail::Panic) => panic!("a build panicked, as the test asked"),
            None => built,
        };
        let Some(inbox) = inbox.upgrade() else { return };
        let mut log = inbox.log.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Filter::Building { added, .. }) = log.seen.filters.remove(&job.tenant) else {
            unreachable!("only its builder takes a filter out of Building")
        };
        let filter = match built {
            Ok(Built::Filter { mut bloom, ids, capacity }) => {
                for id in &added {
                    bloom.insert(id.as_str());
                }
                Filter::Ready { bloom, ids: ids + added.len(), capacity }
            }
            Ok(Built::TooMany) => Filter::Off(None),
            Ok(Built::Gone) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the ids of a tenant could not be read: its appends look up every id for a minute");
                Filter::Off(Some(Instant::now()))
            }
        };
        log.seen.filters.insert(job.tenant, filter);
    }
}

enum Built {
    Filter {
        bloom: BloomFilter,
        ids: usize,
        capacity: usize,
    },
    /// Past `MOST_IDS`.
    TooMany,
    /// The store was dropped.
    Gone,
}

/// Ids read from SQLite per read transaction while a filter is built: one long read would hold
/// back the WAL's reset that an erasure's wipe waits for (`wipe_removed`). Tests read several.
const CHUNK: i64 = if cfg!(test) { 128 } else { 65_536 };

/// A filter of every id `tenant` has in the tail and in SQLite, made for twice as many.
fn read_ids(inbox: &Weak<Inbox>, inner: &Weak<Inner>, tenant: &str) -> StoreResult<Built> {
    // The tail's ids before SQLite's: a record leaves the tail only once it is committed, so one
    // the indexer moves meanwhile is in every read of SQLite after. Every append before the build
    // began is in one or the other; every one since is in `Building`'s list. So the chunks below,
    // each a snapshot of its own, miss none.
    let tail: Vec<String> = {
        let Some(inbox) = inbox.upgrade() else { return Ok(Built::Gone) };
        let tail = inbox.tail.read().unwrap_or_else(|p| p.into_inner());
        tail.get(tenant).map(|t| t.by_id.keys().cloned().collect()).unwrap_or_default()
    };
    // Counted first, to size the filter; then read into it.
    let mut ids = tail.len();
    match each_id(inner, tenant, |_| {
        ids += 1;
        ids <= MOST_IDS / 2
    })? {
        Scan::Gone => return Ok(Built::Gone),
        Scan::Stopped => return Ok(Built::TooMany),
        Scan::Done => {}
    }
    let capacity = (2 * ids).max(FIRST_CAPACITY);
    let mut bloom = BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(capacity);
    for id in &tail {
        bloom.insert(id.as_str());
    }
    match each_id(inner, tenant, |id| {
        bloom.insert(id);
        true
    })? {
        Scan::Gone => Ok(Built::Gone),
        _ => Ok(Built::Filter { bloom, ids, capacity }),
    }
}

/// How a walk over a tenant's ids ended.
enum Scan {
    Done,
    /// Its visitor asked to stop.
    Stopped,
    /// The store was dropped.
    Gone,
}

/// Calls `visit` with each id `tenant` has in SQLite, in id order, `CHUNK` ids per read
/// transaction, until it returns false.
fn each_id(inner: &Weak<Inner>, tenant: &str, mut visit: impl FnMut(&str) -> bool) -> StoreResult<Scan> {
    let mut after = String::new();
    loop {
        let Some(inner) = inner.upgrade() else { return Ok(Scan::Gone) };
        let (n, stopped) = inner.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM records WHERE tenant = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
                .map_err(StoreError::backend)?;
            let mut found = stmt.query(rusqlite::params![tenant, after, CHUNK]).map_err(StoreError::backend)?;
            let mut n = 0;
            while let Some(row) = found.next().map_err(StoreError::backend)? {
                let id = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(StoreError::backend)?;
                n += 1;
                if !visit(id) {
                    return Ok((n, true));
                }
                if n == CHUNK {
                    // The chunk's last id: the next chunk starts after it.
                    after.clear();
                    after.push_str(id);
                }
            }
            Ok((n, false))
        })?;
        if stopped {
            return Ok(Scan::Stopped);
        }
        if n < CHUNK {
            return Ok(Scan::Done);
        }
    }
}

impl Seen {
    /// Adds the ids of an append's new records; a filter that holds more than it was made for is
    /// outgrown, built again, larger, from the tenant's next append on.
    pub(super) fn add<'a>(&mut self, tenant: &str, new: impl Iterator<Item = &'a str>) {
        match self.filters.get_mut(tenant) {
            Some(Filter::Building { added, outgrown }) => {
                for id in new {
                    if let Some(bloom) = outgrown {
                        bloom.insert(id);
                    }
                    added.push(id.to_owned());
                }
            }
            Some(Filter::Ready { bloom, ids, capacity }) => {
                for id in new {
                    bloom.insert(id);
                    *ids += 1;
                }
                if *ids > *capacity
                    && let Some(Filter::Ready { bloom, .. }) = self.filters.remove(tenant)
                {
                    self.filters.insert(tenant.to_owned(), Filter::Outgrown(bloom));
                }
            }
            Some(Filter::Outgrown(bloom)) => {
                for id in new {
                    bloom.insert(id);
                }
            }
            Some(Filter::Off(_)) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! Duplicates found whatever holds the first record (SQLite before this process, the tail,
    //! SQLite since), with the filter ready, for ids appended while it is built, and after it
    //! outgrows itself or its build fails; and new ids mostly not looked up.

    use std::sync::Arc;

    use super::super::super::SqliteStore;
    use super::super::Inbox;
    use super::FIRST_CAPACITY;
    use crate::record::{Record, ResultCode};
    use crate::store::{AppendOutcome, RecordStore};
    use crate::testkit::conformance::rec;

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

    fn recs(tenant: &str, prefix: &str, n: usize) -> Vec<Record> {
        (0..n).map(|i| rec(tenant, &format!("{prefix}-{i:05}"), i as i64, "LOGIN", "ann", ResultCode::Ok)).collect()
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
            Some(super::Filter::Outgrown(_)) => "outgrown",
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
}
