//! Reading the time and action indexes (posting items, `postings`) for a page. The partitions of a
//! group (a day's categories, or a month's actions × categories) are read entry by entry, without
//! bodies — each partition's narrow items hour by hour and its wide items day by day, as two
//! readers; their entries are merged in the page's order, and only the next ones have their bodies
//! fetched (BatchGetItem). A page thus reads the bodies it returns and those it skips (entries of
//! failed writes, of records stored at another time or in another partition, records a residual
//! filter rejects), not a share of the page per partition.
//!
//! Position: as `merge`'s, `{"g": group, "s": {partition: last tsid}}` (both readers of a
//! partition resume after the last entry either checked), with `"u"` (how far it searched) when a
//! page stopped on its read budget.

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::keys::{Plan, RECORD_SK, index_name, record_pk};
use super::merge::{Read, next_position, position, tsid_time};
use super::postings::{Entry, batch_named_at, decode_entries, entry_bytes, hour, posting_pks, result_code, wide_day};
use super::{DynamoStore, Item, decode, get_s, s};
use crate::record::Record;
use crate::store::{EventFilter, Order, ReadStats, RecordPage, StoreResult};

/// Posting items of a partition's first Query page; each further page asks for twice as many, up
/// to `MAX_ITEMS_PER_QUERY` (a live append's item lists hundreds of records, a sparse tenant's a
/// few).
const FIRST_ITEMS_PER_QUERY: i32 = 4;
const MAX_ITEMS_PER_QUERY: i32 = 100;
/// Partitions queried at once.
const PARALLEL_READS: usize = 16;

/// A listing's read of one posting partition's narrow or wide items: the Query's position, the
/// bucket (hour or day) being gathered, and the entries known to be next in the page's order whose
/// bodies are not read yet.
struct Reader {
    /// The partition, by its place in the plan's group.
    part: usize,
    pk: String,
    /// Wide items (`W{yyyymmdd}#…`, gathered a day at a time) rather than narrow ones (an hour).
    wide: bool,
    /// The sort-key range of the Query, fixed at its first page.
    range: Option<(String, String)>,
    start: Option<Item>,
    /// Query pages read so far.
    pages: u32,
    done: bool,
    gathering: Option<(String, Vec<Entry>)>,
    next: VecDeque<Entry>,
}

impl Reader {
    /// A read of the narrow or wide items of the posting partition `pk`.
    fn new(part: usize, pk: &str, wide: bool) -> Self {
        Self {
            part,
            pk: pk.to_owned(),
            wide,
            range: None,
            start: None,
            pages: 0,
            done: false,
            gathering: None,
            next: VecDeque::new(),
        }
    }

    fn exhausted(&self) -> bool {
        self.done && self.gathering.is_none() && self.next.is_empty()
    }

    /// The next entry in the page's order, if known.
    fn head(&self) -> Option<&Entry> {
        self.next.front()
    }

    /// Moves the bucket gathered so far to `next`: in the page's order, inside the window, after
    /// `after`, of the filter's result, each entry once.
    fn close_bucket(&mut self, f: &EventFilter, after: Option<&str>) {
        let Some((_, mut entries)) = self.gathering.take() else { return };
        let newest = f.order == Order::NewestFirst;
        let (from, to) = (f.from.timestamp_micros(), f.to.timestamp_micros());
        let result = f.result.map(|r| result_code(Some(r)));
        entries.retain(|e| e.ts >= from && e.ts < to && result.is_none_or(|r| e.result == r));
        entries.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
        entries.dedup_by(|a, b| {
            let same = a.ts == b.ts && a.id == b.id;
            b.fresh |= same && a.fresh;
            same
        });
        if newest {
            entries.reverse();
        }
        let beyond =
            |e: &Entry| after.is_none_or(|a| if newest { e.tsid().as_str() < a } else { e.tsid().as_str() > a });
        self.next.extend(entries.into_iter().filter(beyond));
    }

    /// Reads posting items until at least `want` entries after `after` (what the partition last
    /// returned or had checked) are known in the page's order, or the partition is read to its end.
    async fn fill(
        &mut self,
        store: &DynamoStore,
        f: &EventFilter,
        after: Option<&str>,
        want: usize,
        stats: &mut ReadStats,
    ) -> StoreResult<()> {
        let newest = f.order == Order::NewestFirst;
        let cursor = after.and_then(|a| a.split_once('#')).and_then(|(ts, _)| ts.parse::<i64>().ok());
        let (lo, hi) = self
            .range
            .get_or_insert_with(|| {
                let (mut lo, mut hi) = (f.from.timestamp_micros(), f.to.timestamp_micros() - 1);
                match cursor {
                    Some(c) if newest => hi = hi.min(c),
                    Some(c) => lo = lo.max(c),
                    None => {}
                }
                let bucket = if self.wide { wide_day } else { hour };
                (bucket(lo), format!("{}~", bucket(hi.max(lo))))
            })
            .clone();
        while self.next.len() < want && !self.done {
            let query = store
                .client
                .query()
                .table_name(&store.table)
                .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":p", s(self.pk.clone()))
                .expression_attribute_values(":lo", s(lo.clone()))
                .expression_attribute_values(":hi", s(hi.clone()))
                .scan_index_forward(!newest)
                .limit((FIRST_ITEMS_PER_QUERY << self.pages.min(5)).min(MAX_ITEMS_PER_QUERY));
            self.pages += 1;
            let mut bytes_read = 0;
            let fresh_after = (Utc::now() - store.append_grace).timestamp_millis().max(0) as u64;
            let keep = |i: &Item| {
                let bucket = get_s(i, "sk").and_then(|sk| sk.split('#').next()).unwrap_or_default().to_owned();
                let bytes = entry_bytes(i);
                bytes_read += bytes.len() as u64;
                let mut entries = decode_entries(bytes)?;
                if batch_named_at(i).is_some_and(|at| at >= fresh_after) {
                    entries.iter_mut().for_each(|e| e.fresh = true);
                }
                Ok(Some((bucket, entries)))
            };
            // The paging loop counts what DynamoDB evaluated as items read: here posting items.
            let mut read = ReadStats::default();
            let page = store.read_page(self.start.take(), &mut read, query, keep).await?;
            stats.queries += read.queries;
            stats.postings_read += read.items_read;
            stats.posting_bytes += bytes_read;
            for (bucket, entries) in page.items {
                match &mut self.gathering {
                    Some((b, gathered)) if *b == bucket => gathered.extend(entries),
                    _ => {
                        self.close_bucket(f, after);
                        self.gathering = Some((bucket, entries));
                    }
                }
            }
            self.start = page.next;
            self.done = self.start.is_none();
            if self.done {
                self.close_bucket(f, after);
            }
        }
        Ok(())
    }
}

/// Runs a posting plan (time or action) for one page; with a `budget`, the page stops once that many items have been
/// read (see `merge::READ_BUDGET`).
pub(super) async fn run(
    store: &DynamoStore,
    tenant: &str,
    f: &EventFilter,
    plan: &Plan,
    limit: usize,
    after: Option<&Value>,
    budget: Option<u64>,
) -> StoreResult<RecordPage> {
    let newest = f.order == Order::NewestFirst;
    let need = limit + 1;
    let (first_group, resume, carried) = position(after)?;
    let mut stats = ReadStats::default();
    let mut out: Vec<Read> = Vec::with_capacity(need);
    // Stopped on the budget: the group, and each partition's last entry checked.
    let mut stopped: Option<(usize, Vec<Option<String>>)> = None;
    // The last entry checked: every entry before it in the page's order has been checked.
    let mut frontier = None;
    'groups: for (gi, group) in plan.groups.iter().enumerate().skip(first_group) {
        // Each partition's last entry checked, shared by its two readers (an entry listed in both
        // is then checked once, on this page and the next).
        let mut lasts: Vec<Option<String>> =
            group.iter().map(|pk| if gi == first_group { resume.get(pk).cloned().flatten() } else { None }).collect();
        let mut parts: Vec<Reader> = group
            .iter()
            .enumerate()
            .flat_map(|(i, pk)| [Reader::new(i, pk, false), Reader::new(i, pk, true)])
            .collect();
        // The last entry picked, and the partitions it was picked from.
        let mut previous: Option<((i64, String), Vec<usize>)> = None;
        loop {
            let left = budget.map(|b| b.saturating_sub(stats.items_read + stats.postings_read) as usize);
            if left == Some(0) {
                stopped = Some((gi, lasts));
                break 'groups;
            }
            // Every reader without a known next entry reads on, at once.
            let want = (need - out.len()).div_ceil(parts.len()) + 1;
            // (A loop, not `filter().map()`: the future must be Send, and closures over `&mut`
            // items are not general enough for that.)
            let mut fills = Vec::new();
            for r in parts.iter_mut() {
                if r.head().is_none() && !r.exhausted() {
                    let last = lasts[r.part].clone();
                    fills.push(async move {
                        let mut read = ReadStats::default();
                        r.fill(store, f, last.as_deref(), want, &mut read).await.map(|()| read)
                    });
                }
            }
            let reads: Vec<ReadStats> =
                futures_util::stream::iter(fills).buffer_unordered(PARALLEL_READS).try_collect().await?;
            for read in reads {
                stats += read;
            }
            // The next entries in the page's order, while every reader that may hold a nearer one
            // has its next entry known.
            // What the reads left of the budget, at least one body: a page always moves on.
            let left = budget.map(|b| b.saturating_sub(stats.items_read + stats.postings_read) as usize);
            let cap = (need - out.len()).min(left.unwrap_or(usize::MAX)).max(1);
            let mut picked: Vec<(usize, Entry)> = Vec::new();
            while picked.len() < cap && parts.iter().all(|r| r.head().is_some() || r.exhausted()) {
                let best = parts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.head().map(|e| (i, (e.ts, e.id.as_str()))))
                    .reduce(|a, b| if (b.1 > a.1) == newest { b } else { a })
                    .map(|(i, _)| i);
                let Some(i) = best else { break };
                let mut e = parts[i].next.pop_front().expect("a head");
                let part = parts[i].part;
                // The same entry at the head of the partition's other reader (narrow and wide items
                // may both list it) is taken with it, and its freshness kept: the fresh copy may be
                // the one whose record a consistent read must find.
                for (j, other) in parts.iter_mut().enumerate() {
                    if j != i && other.part == part && other.head().is_some_and(|h| h.ts == e.ts && h.id == e.id) {
                        let twin = other.next.pop_front().expect("a head");
                        e.fresh |= twin.fresh;
                    }
                }
                // The same entry from the partition's other reader: once. (Another partition's is
                // checked again: the body is in one of them.)
                match &mut previous {
                    Some(((ts, id), seen)) if *ts == e.ts && *id == e.id => {
                        if seen.contains(&part) {
                            continue;
                        }
                        seen.push(part);
                    }
                    _ => previous = Some(((e.ts, e.id.clone()), vec![part])),
                }
                picked.push((part, e));
            }
            if picked.is_empty() {
                if parts.iter().all(Reader::exhausted) {
                    continue 'groups;
                }
                continue;
            }
            let ids: BTreeSet<&str> = picked.iter().map(|(_, e)| e.id.as_str()).collect();
            stats.items_read += ids.len() as u64;
            let keys = ids.iter().map(|id| DynamoStore::key(record_pk(tenant, id), RECORD_SK)).collect();
            let mut bodies: HashMap<String, Record> = HashMap::new();
            for item in store.batch_get(keys, false).await? {
                let r = decode(&item)?;
                bodies.insert(r.id.clone(), r);
            }
            // An entry without a body is of a record being written (listed first), or gone (purged,
            // a failed write). Those of recent batches are read again strongly consistent: an
            // eventually consistent read may miss a record stored a moment ago, and a listing that
            // reaches the present would step past it for good.
            let fresh: BTreeSet<&str> = picked.iter().filter(|(_, e)| e.fresh).map(|(_, e)| e.id.as_str()).collect();
            let missing: Vec<Item> = fresh
                .iter()
                .filter(|id| !bodies.contains_key(**id))
                .map(|id| DynamoStore::key(record_pk(tenant, id), RECORD_SK))
                .collect();
            if !missing.is_empty() {
                for item in store.batch_get(missing, true).await? {
                    let r = decode(&item)?;
                    bodies.insert(r.id.clone(), r);
                }
            }
            for (p, e) in picked {
                let t = e.tsid();
                lasts[p] = Some(t.clone());
                frontier = Some(t.clone());
                // The body is the entry's if its time is the entry's and it is listed in this
                // partition (a replay of the id at the same time in another category or under
                // another action listed it in another partition).
                let body = bodies.get(&e.id).filter(|r| {
                    r.occurred_at.timestamp_micros() == e.ts
                        && posting_pks(tenant, r).contains(&group[p])
                        && f.matches(r)
                });
                if let Some(r) = body {
                    out.push((gi, group[p].clone(), t, r.clone()));
                    if out.len() == need {
                        break 'groups;
                    }
                }
            }
        }
    }
    let plan_name = index_name(plan.index).to_owned();
    if let Some((g, lasts)) = stopped {
        let s: serde_json::Map<String, Value> = plan.groups[g]
            .iter()
            .cloned()
            .zip(lasts.into_iter().map(|at| at.map(Value::String).unwrap_or(Value::Null)))
            .collect();
        let frontier = frontier.or(carried);
        let mut position = json!({"g": g, "s": s});
        if let Some(u) = &frontier {
            position["u"] = Value::String(u.clone());
        }
        let searched_until = frontier.as_deref().and_then(tsid_time).or(Some(if newest { f.to } else { f.from }));
        let records: Vec<Record> = out.into_iter().map(|(.., r)| r).collect();
        stats.items_returned = records.len() as u64;
        return Ok(RecordPage { records, next: Some(position), stats, plan: plan_name, searched_until });
    }
    let more = out.len() > limit;
    out.truncate(limit);
    let next = more.then(|| next_position(plan, &out, first_group, &resume));
    let records: Vec<Record> = out.into_iter().map(|(.., r)| r).collect();
    stats.items_returned = records.len() as u64;
    Ok(RecordPage { records, next, stats, plan: plan_name, searched_until: None })
}
