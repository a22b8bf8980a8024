//! Reading a plan: partitions of one group are k-way merged (they interleave in time), groups
//! are read one after the other. Each partition is queried lazily, a little more than its share
//! of the page at a time, so the items read beyond the page stay few. The time index is no GSI:
//! its plans are read by `time_index`.
//!
//! Position: `{"g": group, "s": {partition key: last returned tsid}}` — the next page resumes
//! every partition of that group right after what it last returned.

use std::collections::{HashMap, VecDeque};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::DateTime;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::keys::{Plan, RECORD_SK, Residual, index_name, plan, reads_postings, record_pk, time_plan};
use super::{DynamoStore, Item, decode, get_s};
use crate::record::Record;
use crate::store::{EventFilter, Order, PageRequest, ReadStats, RecordPage, StoreError, StoreResult};

/// Items one page may have DynamoDB evaluate when part of the filter is a FilterExpression (free
/// text, or a filter the chosen index does not serve): past it the page ends, possibly short or
/// empty, with a cursor to continue and `searched_until`, instead of reading a rare match's whole
/// window in one request.
pub const READ_BUDGET: u64 = 5_000;

/// Partitions queried at once in a round.
const PARALLEL_READS: usize = 16;

struct Stream {
    pk: String,
    /// Exclusive start for the next query.
    start: Option<Item>,
    buf: VecDeque<(String, Record)>,
    exhausted: bool,
    last_returned: Option<String>,
    /// Pages in a row that kept nothing: the next one asks for twice as many items.
    dry: u32,
}

impl Stream {
    fn needs_read(&self) -> bool {
        self.buf.is_empty() && !self.exhausted
    }

    /// How far this partition has been read: its last evaluated key, else what it last returned.
    fn frontier(&self) -> Option<String> {
        self.start.as_ref().and_then(|k| get_s(k, "tsid").map(str::to_owned)).or_else(|| self.last_returned.clone())
    }
}

/// The FilterExpression for what the index does not apply.
fn filter_expression(r: &Residual, names: &mut HashMap<String, String>, values: &mut Item) -> Option<String> {
    let mut parts = Vec::new();
    let mut any_of = |attr: &str, vals: &[String], tag: &str| {
        if vals.is_empty() {
            return;
        }
        names.insert(format!("#{tag}"), attr.to_owned());
        let ors: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                values.insert(format!(":{tag}{i}"), AttributeValue::S(v.clone()));
                format!("#{tag} = :{tag}{i}")
            })
            .collect();
        parts.push(format!("({})", ors.join(" OR ")));
    };
    any_of("action", &r.actions, "fa");
    any_of("category", &r.categories, "fc");
    any_of("uk", &r.user_keys, "fu");
    any_of("result", r.result.as_slice(), "fr");
    any_of("sid", r.session_id.as_slice(), "fs");
    any_of("corr", r.correlation_id.as_slice(), "fk");
    any_of("emp", r.employee_id.as_slice(), "fe");
    if let Some(t) = &r.text {
        names.insert("#ft".into(), "dl".into());
        values.insert(":ft".into(), AttributeValue::S(t.clone()));
        parts.push("contains(#ft, :ft)".into());
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

fn start_key(tenant: &str, index: &str, pk: &str, tsid: &str) -> Item {
    let id = tsid.split_once('#').map(|(_, id)| id).unwrap_or_default();
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(record_pk(tenant, id))),
        ("sk".to_string(), AttributeValue::S(RECORD_SK.into())),
        (index.to_string(), AttributeValue::S(pk.to_owned())),
        ("tsid".to_string(), AttributeValue::S(tsid.to_owned())),
    ])
}

async fn fetch(
    store: &DynamoStore,
    plan: &Plan,
    f: &EventFilter,
    st: &mut Stream,
    want: usize,
    stats: &mut ReadStats,
) -> StoreResult<()> {
    let mut names = HashMap::from([("#p".to_string(), plan.index.to_string())]);
    let mut values: Item = HashMap::from([
        (":p".to_string(), AttributeValue::S(st.pk.clone())),
        (":lo".to_string(), AttributeValue::S(format!("{:020}", f.from.timestamp_micros()))),
        (":hi".to_string(), AttributeValue::S(format!("{:020}", f.to.timestamp_micros()))),
    ]);
    let filter = filter_expression(&plan.residual, &mut names, &mut values);
    let query = store
        .client
        .query()
        .table_name(&store.table)
        .index_name(super::keys::gsi(plan.index))
        .key_condition_expression("#p = :p AND tsid BETWEEN :lo AND :hi")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .set_filter_expression(filter)
        .scan_index_forward(f.order == Order::OldestFirst)
        .limit(want.clamp(1, 1000) as i32);
    let keep = |item: &Item| Ok(Some((get_s(item, "tsid").unwrap_or_default().to_owned(), decode(item)?)));
    let read = store.read_page(st.start.take(), stats, query, keep).await?;
    st.dry = if read.items.is_empty() { st.dry + 1 } else { 0 };
    st.buf.extend(read.items);
    st.exhausted = read.next.is_none();
    st.start = read.next;
    Ok(())
}

/// A page's records as read: group, partition, `tsid`, record.
pub(super) type Read = (usize, String, String, Record);

/// Each partition's last `tsid` in a cursor.
pub(super) type Resume = HashMap<String, Option<String>>;

/// A cursor's group, each partition's last `tsid` and, if its page stopped on its budget, how far
/// that page had searched.
pub(super) fn position(after: Option<&Value>) -> StoreResult<(usize, Resume, Option<String>)> {
    let Some(p) = after else { return Ok((0, HashMap::new(), None)) };
    let g = p.get("g").and_then(Value::as_u64).ok_or_else(|| StoreError::Invalid("not a DynamoDB position".into()))?;
    let s = p
        .get("s")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned))).collect())
        .unwrap_or_default();
    let u = p.get("u").and_then(Value::as_str).map(str::to_owned);
    Ok((g as usize, s, u))
}

/// The cursor after a full page `out`: the group of its last record, and each partition of that
/// group after what it last returned (or where the cursor had it).
pub(super) fn next_position(plan: &Plan, out: &[Read], first_group: usize, resume: &Resume) -> Value {
    let g = out.last().map(|(g, ..)| *g).unwrap_or(0);
    let mut s = serde_json::Map::new();
    for pk in &plan.groups[g] {
        let last = out.iter().rev().find(|(og, opk, ..)| *og == g && opk == pk).map(|(_, _, t, _)| t.clone());
        let carried = if g == first_group { resume.get(pk).cloned().flatten() } else { None };
        s.insert(pk.clone(), last.or(carried).map(Value::String).unwrap_or(Value::Null));
    }
    json!({"g": g, "s": s})
}

/// The time of a `tsid`.
pub(super) fn tsid_time(tsid: &str) -> Option<DateTime<chrono::Utc>> {
    tsid.split_once('#').and_then(|(ts, _)| ts.parse::<i64>().ok()).and_then(DateTime::from_timestamp_micros)
}

/// Runs `plan` for one page; with a `budget`, a page whose plan leaves a filter to DynamoDB stops
/// once that many items have been evaluated (see [`READ_BUDGET`]).
async fn run_plan(
    store: &DynamoStore,
    tenant: &str,
    f: &EventFilter,
    plan: Plan,
    limit: usize,
    after: Option<&Value>,
    budget: Option<u64>,
) -> StoreResult<RecordPage> {
    let budget = budget.filter(|_| !plan.residual.is_empty());
    if reads_postings(plan.index) {
        return super::time_index::run(store, tenant, f, &plan, limit, after, budget).await;
    }
    let newest = f.order == Order::NewestFirst;
    let need = limit + 1;
    let (first_group, resume, carried_frontier) = position(after)?;
    let mut stopped: Option<(usize, Vec<Stream>)> = None;
    let mut stats = ReadStats::default();
    let mut out: Vec<Read> = Vec::with_capacity(need);
    'groups: for (gi, group) in plan.groups.iter().enumerate().skip(first_group) {
        let mut streams: Vec<Stream> = group
            .iter()
            .map(|pk| {
                let last = if gi == first_group { resume.get(pk).cloned().flatten() } else { None };
                Stream {
                    pk: pk.clone(),
                    start: last.as_deref().map(|t| start_key(tenant, plan.index, pk, t)),
                    buf: VecDeque::new(),
                    exhausted: false,
                    last_returned: last,
                    dry: 0,
                }
            })
            .collect();
        loop {
            // A round: every partition without a head reads one page (twice as many items as the
            // last one if that kept nothing), sharing what is left of the budget; the merge goes
            // on only once every partition has a head or has ended.
            let needy = streams.iter().filter(|s| s.needs_read()).count();
            if needy > 0 {
                // Nothing read yet, every partition reads at least one item: a page always moves on.
                let left = budget.map(|b| {
                    (b.saturating_sub(stats.items_read) as usize / needy).max(usize::from(stats.items_read == 0))
                });
                if left == Some(0) {
                    stopped = Some((gi, streams));
                    break 'groups;
                }
                let remaining = need - out.len();
                let share = remaining.div_ceil(streams.len()) + 1;
                // The partitions are independent: a round costs one round trip, not one per
                // partition (a user filter reads up to eight).
                let plan = &plan;
                let mut reads = Vec::with_capacity(needy);
                for st in streams.iter_mut() {
                    if st.needs_read() {
                        let want = share.saturating_mul(1 << st.dry.min(10)).min(left.unwrap_or(usize::MAX));
                        reads.push(async move {
                            let mut read = ReadStats::default();
                            fetch(store, plan, f, st, want, &mut read).await.map(|()| read)
                        });
                    }
                }
                let rounds: Vec<ReadStats> =
                    futures_util::stream::iter(reads).buffer_unordered(PARALLEL_READS).try_collect().await?;
                for read in rounds {
                    stats += read;
                }
                if streams.iter().any(Stream::needs_read) {
                    continue;
                }
            }
            let best = streams
                .iter()
                .enumerate()
                .filter_map(|(i, st)| st.buf.front().map(|(t, _)| (i, t)))
                .reduce(|a, b| if (b.1 > a.1) == newest { b } else { a })
                .map(|(i, _)| i);
            let Some(i) = best else { continue 'groups };
            let (tsid, rec) = streams[i].buf.pop_front().expect("a head");
            streams[i].last_returned = Some(tsid.clone());
            out.push((gi, streams[i].pk.clone(), tsid, rec));
            if out.len() == need {
                break 'groups;
            }
        }
    }
    let more = out.len() > limit;
    out.truncate(limit);
    if let Some((g, streams)) = stopped {
        // Stopped on the budget in group `g`: each partition resumes where it was read to (a
        // partition that had a head resumes after what it returned, re-reading its head), and
        // the window is searched as far as the least advanced partition that has not ended.
        let mut s = serde_json::Map::new();
        for st in &streams {
            let at = if st.needs_read() { st.frontier() } else { st.last_returned.clone() };
            s.insert(st.pk.clone(), at.map(Value::String).unwrap_or(Value::Null));
        }
        let unended: Vec<Option<String>> = streams.iter().filter(|st| !st.exhausted).map(Stream::frontier).collect();
        let least = if unended.iter().any(Option::is_none) {
            None
        } else {
            let known = unended.into_iter().flatten();
            if newest { known.max() } else { known.min() }
        };
        // Without a frontier for every partition, what is surely searched is up to the last
        // record returned, or what the previous page had searched.
        let last_out = out.last().map(|(.., t, _)| t.clone());
        let frontier = least.or(last_out).or(carried_frontier);
        let searched_until = frontier.as_deref().and_then(tsid_time);
        let mut position = json!({"g": g, "s": s});
        if let Some(u) = frontier {
            position["u"] = Value::String(u);
        }
        let records: Vec<Record> = out.into_iter().map(|(.., r)| r).collect();
        stats.items_returned = records.len() as u64;
        let searched_until = searched_until.or(Some(if newest { f.to } else { f.from }));
        return Ok(RecordPage {
            records,
            next: Some(position),
            stats,
            plan: index_name(plan.index).to_owned(),
            searched_until,
        });
    }
    let next = more.then(|| next_position(&plan, &out, first_group, &resume));
    let records: Vec<Record> = out.into_iter().map(|(.., r)| r).collect();
    stats.items_returned = records.len() as u64;
    Ok(RecordPage { records, next, stats, plan: index_name(plan.index).to_owned(), searched_until: None })
}

pub(super) async fn run(
    store: &DynamoStore,
    tenant: &str,
    f: &EventFilter,
    page: PageRequest,
) -> StoreResult<RecordPage> {
    // A window reaching back past the tenant's oldest record (the registry's `oldest`: noted
    // before any record is listed, and only ever lowered) is read from that record on, so a year's
    // window of a tenant with a month of records reads a month of day partitions, not a year's.
    // Newest first only: its groups count from the window's end, so a cursor's group is the same
    // group whatever `oldest` is when the next page is read. One consistent read, for windows
    // longer than a few days (a shorter one has few partitions to spare) whose plan reads groups
    // of time (the time and action indexes, failures by month; the index follows from the filter
    // alone, so the clamped window's plan has the same): a user, session, correlation or employee
    // id is one range of one partition whatever the window, and a clamp would save nothing.
    let whole = plan(tenant, f);
    let long = f.order == Order::NewestFirst && f.to - f.from > chrono::Duration::days(3) && whole.groups.len() > 1;
    let oldest = if long { store.oldest(tenant).await? } else { None };
    let (limit, after, budget) = (page.limit.max(1), page.after.as_ref(), Some(store.read_budget));
    match oldest {
        Some(oldest) if oldest > f.from => {
            let clamped = EventFilter { from: oldest.min(f.to), ..f.clone() };
            run_plan(store, tenant, &clamped, plan(tenant, &clamped), limit, after, budget).await
        }
        _ => run_plan(store, tenant, f, whole, limit, after, budget).await,
    }
}

/// The oldest `limit` records of the filter through the time index (the purge's read path).
pub(super) async fn run_on_time_index(
    store: &DynamoStore,
    tenant: &str,
    f: &EventFilter,
    limit: usize,
) -> StoreResult<Vec<Record>> {
    let p = time_plan(tenant, f);
    // No budget: retention must reach the oldest records of a rare category, however far in.
    Ok(run_plan(store, tenant, f, p, limit, None, None).await?.records)
}
