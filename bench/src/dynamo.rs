//! DynamoDB figures on the moto emulator: write units per stored record (by the key design, and
//! as moto reports them) and read amplification (items read ÷ returned) of the first page of
//! every single seed filter and the two-filter combinations, with the index the planner chose.
//! Latency on an emulator means nothing, so none is printed. Last, what these figures cost on AWS
//! (`cost::print_costs`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use auditrail_shared::record::Phase;
use auditrail_shared::record::{Category, Record, ResultCode};
use auditrail_shared::store::dynamodb::keys::{self, index_keys};
use auditrail_shared::store::dynamodb::{self, stored_bytes, write_units};
use auditrail_shared::store::{EventFilter, PageRequest, RecordStore};
use auditrail_shared::testkit::moto;
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};

use crate::cost::{Measured, print_costs};
use crate::record;

/// Hash buckets per tenant of a high-cardinality posting index (user, session, correlation,
/// employee) in the proposed design (docs/cost.md).
const POSTING_BUCKETS: u64 = 64;

/// Per-record sums for the cost figures: the built design, and the shapes the proposed ones
/// (docs/cost.md) would have for the same records.
#[derive(Default)]
struct Sizes {
    stored: u64,
    item: u64,
    /// The item alone in write units (what a record costs without any index entry).
    item_units: u64,
    entries: u64,
    json: u64,
    /// Request-pair writes and units by the key design (`pairs.rs`), each item ≤ 1 KB: a side's
    /// update (1 unit, 2 when it removes the open-requests entry), then, with a start, an update
    /// adding the slow- or open-requests entry (item + entry, 2).
    pair_writes: u64,
    pair_units: u64,
    /// Per tenant and correlation id: start seen, end seen, the item's bytes.
    pairs: HashMap<(String, String), (bool, bool, u64)>,
    /// KEYS_ONLY entries: table key, index key, `tsid`, 100 B each.
    keys_only: u64,
    /// Posting items (one per index key, or hash bucket of it, and batch): units and bytes.
    posting_units: u64,
    posting_stored: u64,
}

/// DynamoDB's size of a string attribute.
fn attr(name: &str, value: &str) -> u64 {
    (name.len() + value.len()) as u64
}

impl Sizes {
    /// Adds one record as stored: its DynamoDB bytes, one copy's size, its index entries.
    fn add(&mut self, r: &Record) -> anyhow::Result<()> {
        let stored = stored_bytes(r)?;
        let copies = 1 + index_keys(r).len() as u64;
        let item = stored / copies - 100;
        self.stored += stored;
        self.item += item;
        self.item_units += item.div_ceil(1024);
        self.entries += copies - 1;
        let pk = keys::record_pk(&r.tenant_id, &r.id);
        let tsid = keys::tsid(r.occurred_at.timestamp_micros(), &r.id);
        for (g, v) in index_keys(r) {
            self.keys_only += attr("pk", &pk) + attr("sk", keys::RECORD_SK) + attr(g, &v) + attr("tsid", &tsid) + 100;
        }
        if let (Some(phase), Some(corr)) = (r.phase, &r.correlation_id) {
            // pk, sk, action, start/end ids and times, result, delay; the `g9` key and sort.
            let t = &r.tenant_id;
            let bytes = attr("pk", &keys::pair_pk(t, corr))
                + attr("sk", keys::PAIR_SK)
                + attr("action", &r.action)
                + 2 * attr("start_id", &r.id)
                + 3 * 16
                + attr("result", "FAIL")
                + attr("g9", &format!("T#{t}#DELAY"))
                + attr("dk", &format!("{:015}#{corr}", 0));
            let (start, end, _) = self.pairs.get(&(t.clone(), corr.clone())).copied().unwrap_or_default();
            // The side's update (removing an open entry costs its delete), then the index update:
            // the slow-requests entry once both sides are known, else the open one after a start.
            self.pair_writes += 1;
            self.pair_units += 1 + u64::from(phase == Phase::End && start && !end);
            let (start, end) = (start || phase == Phase::Start, end || phase == Phase::End);
            if start {
                self.pair_writes += 1;
                self.pair_units += 2;
            }
            self.pairs.insert((t.clone(), corr.clone()), (start, end, bytes));
        }
        Ok(())
    }

    /// Stored bytes of the request-pair items as the load leaves them: each item, and its slow-
    /// or open-requests entry when it has a start.
    fn pair_stored(&self) -> u64 {
        self.pairs.values().map(|&(start, _, bytes)| (bytes + 100) * (1 + u64::from(start))).sum()
    }

    /// Adds the posting items one append of `chunk` would write: per time day, action and
    /// month, category and result (as the sparse indexes now), and per hash bucket of user,
    /// session, correlation and employee. An entry is the `tsid` and 8 bytes of codes (action,
    /// category, result, user hash) so residual filters run on the entries, not the bodies.
    fn add_postings(&mut self, tenant: &str, chunk: &[Record]) {
        let mut items: HashMap<String, u64> = HashMap::new();
        for r in chunk {
            let entry = keys::tsid(r.occurred_at.timestamp_micros(), &r.id).len() as u64 + 8;
            // The time and action indexes are no GSIs any more: their keys here are a day's and
            // category's, and a month's action's.
            let time = ("g1", format!("T#{tenant}#D#{}#{}", r.occurred_at.format("%Y%m%d"), r.category.as_str()));
            let action = ("g2", format!("T#{tenant}#A#{}#{}", r.action, r.occurred_at.format("%Y%m")));
            for (g, v) in [time, action].into_iter().chain(index_keys(r)) {
                let key = match g {
                    "g3" | "g6" | "g7" | "g8" => {
                        let h = Sha256::digest(v.as_bytes());
                        let b = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % POSTING_BUCKETS;
                        format!("T#{tenant}#{g}#{b}")
                    }
                    _ => v,
                };
                *items.entry(key).or_default() += entry;
            }
        }
        for (key, entries) in items {
            // pk = the key, sk = the batch id (26), `e` = the entries.
            let bytes = attr("pk", &key) + attr("sk", "01JBENCHBATCH0000000000000") + 1 + entries;
            self.posting_units += bytes.div_ceil(1024);
            self.posting_stored += bytes + 100;
        }
    }
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let (store, blobs) = moto::fresh().await;
    let now = Utc::now();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    // 3 tenants, one with 80 % of the volume, over 30 days.
    let tenants = [("big", 0.8), ("mid", 0.15), ("small", 0.05)];
    let limits = auditrail_shared::record::ValidationLimits::default();
    let mut units = 0u64;
    // Time and action postings as loaded (items, units, bytes), and their units had each append
    // been live.
    let mut time = (0u64, 0u64, 0u64);
    let mut time_live = 0u64;
    let mut journal_units = 0u64;
    let mut journal_bytes = 0u64;
    let mut sizes = Sizes::default();
    let mut typical = None;
    let (mut sample_session, mut sample_corr, mut sample_emp) = (None, None, None);
    let t = Instant::now();
    for (tenant, share) in tenants {
        let count = (n as f64 * share) as usize;
        let mut recs: Vec<Record> = (0..count)
            .map(|i| {
                let v = record(&mut rng, i, now);
                sizes.json += v.to_string().len() as u64;
                let inc: auditrail_shared::record::IncomingRecord = serde_json::from_value(v).expect("valid");
                inc.into_record(tenant, now, &limits).expect("valid")
            })
            .collect();
        // Appended in time order, as a live feed sends them (the postings of an append are one
        // item per partition and hour it spans, or per day where they are sparse).
        recs.sort_by_key(|r| r.occurred_at);
        if tenant == "big" {
            // Sample ids from inside the 10-day window the table below queries.
            let recent = |r: &&Record| r.occurred_at > now - Duration::days(9);
            sample_session = recs.iter().filter(recent).find_map(|r| r.session_id.clone());
            sample_corr = recs.iter().filter(recent).find_map(|r| r.correlation_id.clone());
            sample_emp = recs
                .iter()
                .filter(recent)
                .find(|r| r.category == Category::SignIn)
                .and_then(|r| r.actor.employee_id.clone());
        }
        for chunk in recs.chunks(1000) {
            // The append's journal item: pk, sk (a 26-character batch id), `ids` as a JSON array.
            let ids = serde_json::to_string(&chunk.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())?;
            let bytes = "pk".len() + format!("T#{tenant}#JNL").len() + "sk".len() + 26 + "ids".len() + ids.len();
            journal_units += bytes.div_ceil(1024) as u64;
            journal_bytes += bytes as u64 + 100;
            sizes.add_postings(tenant, chunk);
            let (items, units, bytes) = dynamodb::append_posting_cost(tenant, chunk);
            time.0 += items as u64;
            time.1 += units;
            time.2 += bytes;
            // The same records as a live append sends them: within the last minute.
            let live: Vec<Record> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| Record {
                    occurred_at: now - Duration::seconds(60) + Duration::milliseconds(i as i64 * 50),
                    ..r.clone()
                })
                .collect();
            let (_, units, _) = dynamodb::append_posting_cost(tenant, &live);
            time_live += units;
        }
        for r in &recs {
            // As stored: with its batch id and salt key.
            let mut r = r.clone();
            auditrail_shared::record::integrity::stamp(&mut r, "01JBENCHBATCH0000000000000");
            let r = &r;
            units += write_units(r)?;
            sizes.add(r)?;
            if typical.is_none()
                && r.category == Category::Audit
                && r.result == Some(ResultCode::Ok)
                && r.session_id.is_none()
            {
                typical = Some((write_units(r)?, serde_json::to_string(r)?.len()));
            }
        }
        for chunk in recs.chunks(1000) {
            store.append(tenant, chunk).await?;
        }
    }
    // Seal everything (as the scheduler would once the settle time has passed): per seal one
    // transaction of two items (the seal, ~1 KB, and its by-position item; a transactional write
    // costs two units per KB) and one S3 PUT of its digest.
    let app = auditrail_shared::app::App::new(store.clone(), blobs.clone(), &[7; 32], &[8; 32]);
    let later = Utc::now() + Duration::minutes(3);
    let mut seals = 0u64;
    for (tenant, _) in tenants {
        seals += app.sealing().seal_tenant(tenant, later).await?.seals;
    }
    let seal_units = seals * 2 * (1 + 1);
    // The tenant registry's updates sent by the appends (`settings.rs`): a process's first note of
    // a tenant's oldest record, and two per category with records older than a day (a backfill
    // like this one; a live feed sends none), one unit each.
    let registry_units = store.counters().registry_updates.load(Ordering::Relaxed);
    let written = store.counters().records_written.load(Ordering::Relaxed);
    let moto_units = store.counters().write_tenths.load(Ordering::Relaxed) as f64 / 10.0;
    println!(
        "## DynamoDB (moto), {n} records, 3 tenants (80/15/5 %), 30 days — loaded in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    if let Some((u, size)) = typical {
        println!(
            "typical audit record ({size} B JSON): {u} write units (item + user entry; its time and action entries are in postings)"
        );
    }
    let written_postings = store.counters().posting_units.load(Ordering::Relaxed);
    anyhow::ensure!(
        written_postings == time.1,
        "the store wrote {written_postings} posting units, the model {}",
        time.1
    );
    println!(
        "write units per record, by the key design: {:.2} = item and GSI entries {:.2} + time and action postings {:.3} \
         ({} items for {n} records appended in time order; live appends of 1000 within a minute would write \
         {:.3}) (moto reports {:.2}: it does not charge GSI writes)\n",
        (units + time.1) as f64 / n as f64,
        units as f64 / n as f64,
        time.1 as f64 / n as f64,
        time.0,
        time_live as f64 / n as f64,
        moto_units / written.max(1) as f64
    );
    println!(
        "tamper evidence: journal {:.4} + seals {:.4} ({seals} seals) = {:.4} extra write units per record \
         (batches of 1000), and {seals} S3 PUTs\n",
        journal_units as f64 / n as f64,
        seal_units as f64 / n as f64,
        (journal_units + seal_units) as f64 / n as f64
    );

    let base = EventFilter::window(now - Duration::days(10), now);
    let mut filters: Vec<(&str, EventFilter)> = Vec::new();
    let with = |f: &dyn Fn(&mut EventFilter)| {
        let mut x = base.clone();
        f(&mut x);
        x
    };
    filters.push(("none (last 10 days)", base.clone()));
    filters.push(("action", with(&|f| f.actions = vec!["ACCESS_MEDIA".into()])));
    filters.push(("user", with(&|f| f.user = Some("agent.42".into()))));
    filters.push(("result=FAIL", with(&|f| f.result = Some(ResultCode::Fail))));
    filters.push(("result=OK", with(&|f| f.result = Some(ResultCode::Ok))));
    filters.push(("category=sign_in", with(&|f| f.categories = vec![Category::SignIn])));
    filters.push(("category=audit", with(&|f| f.categories = vec![Category::Audit])));
    filters.push(("session", with(&|f| f.session_id = sample_session.clone())));
    filters.push(("correlation", with(&|f| f.correlation_id = sample_corr.clone())));
    filters.push((
        "employee (sign-ins)",
        with(&|f| {
            f.employee_id = sample_emp.clone();
            f.categories = vec![Category::SignIn];
        }),
    ));
    filters.push((
        "user + result",
        with(&|f| {
            f.user = Some("agent.42".into());
            f.result = Some(ResultCode::Fail);
        }),
    ));
    filters.push((
        "action + result",
        with(&|f| {
            f.actions = vec!["LOGIN".into()];
            f.result = Some(ResultCode::Fail);
        }),
    ));
    filters.push((
        "category + user",
        with(&|f| {
            f.categories = vec![Category::SignIn];
            f.user = Some("agent.7".into());
        }),
    ));
    filters.push((
        "employee + result",
        with(&|f| {
            f.employee_id = sample_emp.clone();
            f.categories = vec![Category::SignIn];
            f.result = Some(ResultCode::Ok);
        }),
    ));
    filters.push((
        "category=audit + result=OK",
        with(&|f| {
            f.categories = vec![Category::Audit];
            f.result = Some(ResultCode::Ok);
        }),
    ));
    // The combinations again over the last day only (a time range inside the 10-day one).
    let combos: Vec<(String, EventFilter)> = filters
        .iter()
        .filter(|(name, _)| name.contains(" + "))
        .map(|(name, f)| (format!("{name}, last 24 h"), EventFilter { from: now - Duration::days(1), ..f.clone() }))
        .collect();
    let mut filters: Vec<(String, EventFilter)> = filters.into_iter().map(|(n, f)| (n.to_owned(), f)).collect();
    filters.extend(combos);
    println!("| filter | index chosen | items read | returned | read ÷ returned | posting items read (KB) |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut default_page = None;
    for (name, f) in filters {
        let page = store.query("big", &f, PageRequest { limit: 50, after: None }).await?;
        let s = page.stats;
        let amp = if s.items_returned == 0 { 0.0 } else { s.items_read as f64 / s.items_returned as f64 };
        let postings = if s.postings_read == 0 {
            "—".to_owned()
        } else {
            format!("{} ({:.1})", s.postings_read, s.posting_bytes as f64 / 1024.0)
        };
        println!("| {name} | {} | {} | {} | {amp:.2} | {postings} |", page.plan, s.items_read, s.items_returned);
        default_page.get_or_insert(s);
    }
    println!();

    // The CPU path per 1000 records, on the bench's own mix (at most 20 batches).
    let bodies = crate::batches(n.min(20_000), 7, now);
    let (prepared, secs) = crate::prepare_secs(&bodies, now);
    let page = default_page.unwrap_or_default();
    let per = |x: u64| x as f64 / n as f64;
    let measured = Measured {
        record_units: per(units + time.1),
        pair_units: per(sizes.pair_units),
        integrity_units: per(journal_units + seal_units),
        registry_units: per(registry_units),
        record_bytes: per(sizes.stored + time.2),
        other_bytes: per(sizes.pair_stored() + journal_bytes),
        item_bytes: per(sizes.item),
        index_entries: per(sizes.entries),
        json_bytes: per(sizes.json),
        // A JSON array of 1000: the records, their commas and the brackets.
        batch_bytes: 1000.0 * (per(sizes.json) + 1.0) + 1.0,
        cpu_ms_per_batch: secs * 1000.0 / (prepared as f64 / 1000.0),
        debug_build: cfg!(debug_assertions),
        // Every record's put, its request-pair updates, the journal item and the `oldest` update.
        writes_per_batch: 1000.0 * (1.0 + per(sizes.pair_writes)) + 2.0,
        page_items_read: page.items_read as f64,
        page_queries: page.queries as f64,
        page_posting_bytes: page.posting_bytes as f64,
        time_posting_bytes: per(time.2),
        item_units: per(sizes.item_units),
        keys_only_bytes: per(sizes.keys_only),
        posting_units: per(sizes.posting_units),
        posting_bytes: per(sizes.posting_stored),
    };
    print_costs(&measured);
    crate::cost::design::print(&measured);
    Ok(())
}
