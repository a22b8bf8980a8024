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
//! (1,000 per batch; for random UUIDs a random page of the id index each); should that build fail
//! (a read error, a panic), the outgrown one stays until the next try. The filter lives under
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
    /// Holds more ids than it was made for: its successor's build begins at the next append; or,
    /// since the instant given, that build failed or found no thread (tried again `RETRY` later).
    /// Meanwhile it takes every new id and rules ids out, a few more falsely as it fills.
    Outgrown(BloomFilter, Option<Instant>),
}

impl Filter {
    /// What a tenant has once the build of its filter failed: its outgrown filter, if it had one,
    /// else none; built again `RETRY` after now.
    fn failed(outgrown: Option<BloomFilter>) -> Self {
        let now = Some(Instant::now());
        outgrown.map_or(Filter::Off(now), |bloom| Filter::Outgrown(bloom, now))
    }
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
            Some(Filter::Off(Some(failed)) | Filter::Outgrown(_, Some(failed))) if failed.elapsed() >= RETRY => {
                self.build(inner, seen, tenant)
            }
            Some(Filter::Outgrown(_, None)) | None => self.build(inner, seen, tenant),
            Some(Filter::Ready { .. } | Filter::Building { .. } | Filter::Off(_) | Filter::Outgrown(..)) => {}
        }
        if let Some(
            Filter::Ready { bloom, .. } | Filter::Building { outgrown: Some(bloom), .. } | Filter::Outgrown(bloom, _),
        ) = seen.filters.get(tenant)
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
            Some(Filter::Outgrown(bloom, _)) => Some(bloom),
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
                tracing::warn!(error = %e, "no thread to build a tenant's id filter: its appends look up more ids for a minute");
                let outgrown = match seen.filters.remove(tenant) {
                    Some(Filter::Building { outgrown, .. }) => outgrown,
                    _ => None,
                };
                seen.filters.insert(tenant.to_owned(), Filter::failed(outgrown));
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

/// Should the builder thread panic, the filters it was to build (queued or begun) are failed
/// builds (`Filter::failed`), built again by a new thread `RETRY` later: none stays `Building`,
/// collecting ids, for good.
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
            if let Filter::Building { outgrown, .. } = filter {
                *filter = Filter::failed(outgrown.take());
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
        let Some(Filter::Building { added, outgrown }) = log.seen.filters.remove(&job.tenant) else {
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
                tracing::warn!(error = %e, "the ids of a tenant could not be read: its appends look up more ids for a minute");
                Filter::failed(outgrown)
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
                    self.filters.insert(tenant.to_owned(), Filter::Outgrown(bloom, None));
                }
            }
            Some(Filter::Outgrown(bloom, _)) => {
                for id in new {
                    bloom.insert(id);
                }
            }
            Some(Filter::Off(_)) | None => {}
        }
    }
}

#[cfg(test)]
#[path = "seen_tests.rs"]
mod tests;
