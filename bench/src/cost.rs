//! What Auditrail costs on AWS, from the bench's measured figures: the price table as code and
//! pure functions from measured inputs to dollars (per million ingested events, per million kept
//! for the default retention, per 1,000 activity-log pages, per 1M-record export, per GB-month),
//! beside CloudTrail Lake for the same events. `print_costs` prints them as a markdown table.
//!
//! Units, once: a GB of storage or ingestion is 2³⁰ bytes, a month is 30.4 days, a Lambda GB is
//! 1,024 MB. Everything not measured by the run is an explicit [`Assumptions`] value, printed with
//! the table. `design` costs the proposed designs of docs/cost.md from the same figures.

pub mod design;

/// AWS on-demand list prices in USD for one region and architecture.
///
/// A GB here is 2³⁰ bytes, a month 30.4 days (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Prices {
    /// Where and when the prices were read.
    pub label: &'static str,
    /// DynamoDB on-demand, Standard table class: per write request unit (≤ 1 KB of item).
    pub dynamo_wru: f64,
    /// Per read request unit (one strongly consistent or two eventually consistent 4 KB reads).
    pub dynamo_rru: f64,
    /// Table storage per GB-month (items and index entries, each with 100 bytes of overhead).
    pub dynamo_gb_month: f64,
    /// Standard-IA table class, *approximate*: requests 25 % dearer, storage 60 % cheaper than
    /// Standard, applied to the Frankfurt Standard prices above.
    pub dynamo_ia_wru: f64,
    pub dynamo_ia_rru: f64,
    pub dynamo_ia_gb_month: f64,
    /// Lambda, arm64: per GB-second of configured memory.
    pub lambda_gb_s: f64,
    /// Lambda: per invocation.
    pub lambda_request: f64,
    /// API Gateway HTTP API: per request (first 300 million a month), metered in 512 KB steps.
    pub api_request: f64,
    /// S3 Standard: per GB-month.
    pub s3_gb_month: f64,
    /// S3 PUT/COPY/POST/LIST, per request.
    pub s3_put: f64,
    /// S3 GET, per request.
    pub s3_get: f64,
    /// CloudTrail Lake, seven-year retention pricing: per GB ingested, storage for seven years
    /// included.
    pub lake_gb: f64,
    /// CloudTrail Lake, one-year extendable retention pricing: per GB ingested (first year of
    /// storage included) …
    pub lake_1y_gb: f64,
    /// … and per GB-month kept after the first year.
    pub lake_1y_gb_month: f64,
}

/// eu-central-1 (Frankfurt), arm64, on-demand, as published in 2025 and known to us when this was
/// written (no network here to re-check): **to be re-checked against the pricing pages before
/// quoting.**
///
/// - DynamoDB: <https://aws.amazon.com/dynamodb/pricing/on-demand/>, after the November 2024
///   on-demand price reduction (<https://aws.amazon.com/about-aws/whats-new/2024/11/amazon-dynamodb-reduces-prices-on-demand-throughput-global-tables/>).
///   Standard-IA prices are derived (×1.25 requests, ×0.4 storage), not read from the page.
/// - Lambda: <https://aws.amazon.com/lambda/pricing/> (arm64).
/// - API Gateway: <https://aws.amazon.com/api-gateway/pricing/> (HTTP APIs).
/// - S3: <https://aws.amazon.com/s3/pricing/> (S3 Standard, first 50 TB).
/// - CloudTrail Lake: <https://aws.amazon.com/cloudtrail/pricing/> (the figures as published;
///   whether Frankfurt differs is not known to us).
pub const EU_CENTRAL_1_2025: Prices = Prices {
    label: "eu-central-1, arm64, on-demand, as published in 2025 (re-check before quoting)",
    dynamo_wru: 0.7625 / 1e6,
    dynamo_rru: 0.1525 / 1e6,
    dynamo_gb_month: 0.306,
    dynamo_ia_wru: 0.7625 * 1.25 / 1e6,
    dynamo_ia_rru: 0.1525 * 1.25 / 1e6,
    dynamo_ia_gb_month: 0.306 * 0.4,
    lambda_gb_s: 0.000_013_333_4,
    lambda_request: 0.20 / 1e6,
    api_request: 1.20 / 1e6,
    s3_gb_month: 0.0245,
    s3_put: 0.0054 / 1000.0,
    s3_get: 0.00043 / 1000.0,
    lake_gb: 2.50,
    lake_1y_gb: 0.75,
    lake_1y_gb_month: 0.023,
};

pub const GB: f64 = (1u64 << 30) as f64;
pub const DAYS_PER_MONTH: f64 = 30.4;
/// HTTP API requests are metered in 512 KB increments.
pub const API_METERING_BYTES: f64 = 512.0 * 1024.0;
/// Lambda has the equivalent of one vCPU at 1,769 MB and a proportional share below it.
pub const ONE_VCPU_MB: f64 = 1769.0;
/// The default retention of audit records and sign-ins (`retention::default_days`).
pub const RETENTION_DAYS: f64 = 400.0;
/// Function memory as infra/template.yaml sets it (a test reads the template).
pub const INGEST_MB: f64 = 256.0;
pub const QUERY_MB: f64 = 256.0;
pub const EXPORT_WORKER_MB: f64 = 512.0;

/// What the run cannot measure on an emulator: AWS round-trip times and the export figures
/// measured by `--export` (README, "Measured").
#[derive(Debug, Clone, Copy)]
pub struct Assumptions {
    /// One conditional PutItem/UpdateItem, in-region (DynamoDB's single-digit milliseconds,
    /// rounded up).
    pub write_ms: f64,
    /// Writes in flight per append (`WRITE_CONCURRENCY` in the DynamoDB adapter).
    pub writes_in_flight: f64,
    /// One Query call (≤ 1 MB), in-region, the partitions of a page read one after another.
    pub query_ms: f64,
    /// CSV bytes per record and archive bytes per record of an export (`--export 1000000`:
    /// 183 MB of CSV, 29.12 MB archive), and the one-core writer throughput (107 MB of CSV/s).
    pub export_csv_bytes: f64,
    pub export_archive_bytes: f64,
    pub export_mb_s: f64,
    /// Archive part size (the writer's default) and days an archive is kept (`ExportArchiveDays`).
    pub export_part_bytes: f64,
    pub export_archive_days: f64,
}

pub const ASSUMED: Assumptions = Assumptions {
    write_ms: 10.0,
    writes_in_flight: 32.0,
    query_ms: 15.0,
    export_csv_bytes: 183.0,
    export_archive_bytes: 29.12,
    export_mb_s: 107.0,
    export_part_bytes: 8.0 * 1024.0 * 1024.0,
    export_archive_days: 7.0,
};

/// The measured inputs, per record or per batch of 1000 as named.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Write units per record by the key design: the item and its index entries …
    pub record_units: f64,
    /// … the request-pair updates (item and `g9`/`g10` entries) …
    pub pair_units: f64,
    /// … its share of the journal and seals (tamper evidence) …
    pub integrity_units: f64,
    /// … and of the tenant registry's updates per append, as the store counted them (a process's
    /// first note of a tenant's oldest record; for records older than a day, each category's late
    /// count and purge horizon: a unit each, even when a condition fails).
    pub registry_units: f64,
    /// Stored bytes per record (DynamoDB's accounting: 100 B of overhead per item and entry):
    /// the item and its index entries …
    pub record_bytes: f64,
    /// … and its share of the request-pair items and entries and of the journal.
    pub other_bytes: f64,
    /// The record item alone (attribute names and values), the size of one ALL-projected copy.
    pub item_bytes: f64,
    /// Index entries per record.
    pub index_entries: f64,
    /// A record's JSON as the client sends it (what CloudTrail Lake would ingest).
    pub json_bytes: f64,
    /// Request body bytes of one batch of 1000.
    pub batch_bytes: f64,
    /// CPU time of the ingest path (split, parse, validate, stored form) per 1000 records on one
    /// core of the bench machine.
    pub cpu_ms_per_batch: f64,
    /// Whether that CPU time comes from a debug build (then it overstates Lambda time).
    pub debug_build: bool,
    /// DynamoDB writes per batch of 1000: record puts, request-pair updates, journal, `oldest`.
    pub writes_per_batch: f64,
    /// Items read and Query calls of the default activity-log page (last 10 days, limit 50).
    pub page_items_read: f64,
    pub page_queries: f64,
    /// Bytes of posting items (time, action) the page read (entries of many records each).
    pub page_posting_bytes: f64,
    /// Time posting bytes stored per record (its entry's share of the items).
    pub time_posting_bytes: f64,
    /// For the proposed designs (`design`), the same records as they would be: the item alone in
    /// write units …
    pub item_units: f64,
    /// … KEYS_ONLY index entries' stored bytes …
    pub keys_only_bytes: f64,
    /// … and posting items' (one per index key or hash bucket and batch) units and bytes.
    pub posting_units: f64,
    pub posting_bytes: f64,
}

impl Measured {
    /// Every write unit a record costs as built.
    pub fn write_units(&self) -> f64 {
        self.record_units + self.pair_units + self.integrity_units + self.registry_units
    }

    /// Every stored byte a record costs as built.
    pub fn stored_bytes(&self) -> f64 {
        self.record_bytes + self.other_bytes
    }
}

/// One figure split by service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub dynamodb: f64,
    pub lambda: f64,
    pub api: f64,
    pub s3: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.dynamodb + self.lambda + self.api + self.s3
    }
}

/// One invocation of `memory_mb` running `ms`, billed by the millisecond.
pub fn lambda(p: &Prices, memory_mb: f64, ms: f64) -> f64 {
    memory_mb / 1024.0 * ms.ceil() / 1000.0 * p.lambda_gb_s + p.lambda_request
}

/// CPU time measured on one full core, as a function of `memory_mb` sees it (its vCPU share).
pub fn lambda_cpu_ms(one_core_ms: f64, memory_mb: f64) -> f64 {
    one_core_ms * (ONE_VCPU_MB / memory_mb).max(1.0)
}

/// HTTP API requests metered for one request of `body_bytes`.
pub fn api_requests(body_bytes: f64) -> f64 {
    (body_bytes / API_METERING_BYTES).ceil().max(1.0)
}

/// Read units of reading `items` of `item_bytes` through `queries` eventually consistent Query
/// calls (index reads always are): half a unit per 4 KB, each call rounded up — on average half
/// a 4 KB block more per call.
pub fn query_read_units(items: f64, item_bytes: f64, queries: f64) -> f64 {
    0.5 * (items * item_bytes / 4096.0 + 0.5 * queries)
}

/// Storage of `bytes` for `days` at `gb_month`.
pub fn storage(bytes: f64, days: f64, gb_month: f64) -> f64 {
    bytes / GB * days / DAYS_PER_MONTH * gb_month
}

/// Lambda time of one ingest batch of 1000: the CPU path at the function's vCPU share, plus the
/// DynamoDB writes `writes_in_flight` at a time.
pub fn ingest_batch_ms(m: &Measured, a: &Assumptions) -> f64 {
    lambda_cpu_ms(m.cpu_ms_per_batch, INGEST_MB) + (m.writes_per_batch / a.writes_in_flight).ceil() * a.write_ms
}

/// Ingesting a million events in batches of 1000.
pub fn ingest_per_million(p: &Prices, m: &Measured, a: &Assumptions) -> Cost {
    let batches = 1000.0;
    Cost {
        dynamodb: 1e6 * m.write_units() * p.dynamo_wru,
        lambda: batches * lambda(p, INGEST_MB, ingest_batch_ms(m, a)),
        api: batches * api_requests(m.batch_bytes) * p.api_request,
        s3: 0.0,
    }
}

/// Keeping a million events for `days` in DynamoDB.
pub fn keep_per_million(p: &Prices, m: &Measured, days: f64) -> Cost {
    Cost { dynamodb: storage(1e6 * m.stored_bytes(), days, p.dynamo_gb_month), ..Cost::default() }
}

/// Read units of the default activity-log page.
pub fn page_read_units(m: &Measured) -> f64 {
    query_read_units(m.page_items_read, m.item_bytes, m.page_queries) + 0.5 * m.page_posting_bytes / 4096.0
}

/// 1,000 activity-log pages (a GET each: one API request, one query invocation).
pub fn pages_per_thousand(p: &Prices, m: &Measured, a: &Assumptions) -> Cost {
    Cost {
        dynamodb: 1000.0 * page_read_units(m) * p.dynamo_rru,
        lambda: 1000.0 * lambda(p, QUERY_MB, m.page_queries * a.query_ms),
        api: 1000.0 * p.api_request,
        s3: 0.0,
    }
}

/// Keys per BatchGetItem call, and calls in flight (`DynamoStore::batch_get`).
pub const BATCH_GET_KEYS: f64 = 100.0;
pub const BATCH_GETS_IN_FLIGHT: f64 = 16.0;

/// Export worker time for a million records through the time index: BatchGetItem calls of 100
/// bodies, 16 in flight (the posting items' Queries are a few per thousand records), and the CSV
/// and compression at the worker's vCPU share beside them (the worker reads the next page while
/// it writes the current one), so the longer of the two, plus one round of the other.
pub fn export_ms(_m: &Measured, a: &Assumptions) -> f64 {
    let rounds = (1e6 / BATCH_GET_KEYS / BATCH_GETS_IN_FLIGHT).ceil();
    let cpu_ms = lambda_cpu_ms(1e6 * a.export_csv_bytes / (a.export_mb_s * 1e6) * 1000.0, EXPORT_WORKER_MB);
    let io_ms = rounds * a.query_ms;
    io_ms.max(cpu_ms) + io_ms.min(cpu_ms) / rounds.max(1.0)
}

/// Read units of a million records read through the time index: each body by BatchGetItem (half a
/// unit per started 4 KB, eventually consistent) and the posting items' bytes by Query.
pub fn export_read_units(m: &Measured) -> f64 {
    1e6 * 0.5 * (m.item_bytes / 4096.0).ceil() + 0.5 * 1e6 * m.time_posting_bytes / 4096.0
}

/// A 1M-record export: reading every record through the time index, the worker's time (one
/// invocation per 15 minutes), the multipart upload (create, parts, complete), a checkpoint put
/// per part (≤ 2 units), one download and the archive kept `export_archive_days`.
pub fn export_per_million(p: &Prices, m: &Measured, a: &Assumptions) -> Cost {
    let ms = export_ms(m, a);
    let invocations = (ms / 900_000.0).ceil().max(1.0);
    let archive = 1e6 * a.export_archive_bytes;
    let parts = (archive / a.export_part_bytes).ceil().max(1.0);
    Cost {
        dynamodb: export_read_units(m) * p.dynamo_rru + parts * 2.0 * p.dynamo_wru,
        lambda: invocations * lambda(p, EXPORT_WORKER_MB, ms / invocations),
        api: 2.0 * p.api_request,
        s3: (parts + 2.0) * p.s3_put + p.s3_get + storage(archive, a.export_archive_days, p.s3_gb_month),
    }
}

/// CloudTrail Lake for a million events of `json_bytes`: (seven-year pricing, one-year
/// extendable pricing kept `days`).
pub fn lake_per_million(p: &Prices, json_bytes: f64, days: f64) -> (f64, f64) {
    let gb = 1e6 * json_bytes / GB;
    let beyond_year = (days - 365.0).max(0.0) / DAYS_PER_MONTH;
    (gb * p.lake_gb, gb * p.lake_1y_gb + gb * beyond_year * p.lake_1y_gb_month)
}

pub(crate) fn usd(x: f64) -> String {
    if x >= 1.0 { format!("${x:.2}") } else { format!("${x:.4}") }
}

fn split(c: &Cost) -> String {
    let mut parts = Vec::new();
    for (name, v) in [("DynamoDB", c.dynamodb), ("Lambda", c.lambda), ("API", c.api), ("S3", c.s3)] {
        if v > 0.0 {
            parts.push(format!("{name} {}", usd(v)));
        }
    }
    parts.join(" + ")
}

/// Prints the cost table (markdown) for the measured figures at `EU_CENTRAL_1_2025`.
pub fn print_costs(m: &Measured) {
    let (p, a) = (&EU_CENTRAL_1_2025, &ASSUMED);
    let ingest = ingest_per_million(p, m, a);
    let keep = keep_per_million(p, m, RETENTION_DAYS);
    let pages = pages_per_thousand(p, m, a);
    let export = export_per_million(p, m, a);
    let (lake, lake_1y) = lake_per_million(p, m.json_bytes, RETENTION_DAYS);
    let (lake_kb, _) = lake_per_million(p, 1024.0, RETENTION_DAYS);
    println!("## Cost on AWS ({})", p.label);
    println!(
        "inputs per record: {:.2} write units (item + entries {:.2}, request pairs {:.2}, journal + seals {:.3}, \
         tenant registry {:.3}), \
         {:.0} B stored ({:.0} B item × {:.2} copies + 100 B each, and postings = {:.0}; pairs and journal \
         {:.0}), {:.0} B of JSON; {:.0} B per batch of 1000; page: {:.0} items and {:.1} KB of posting items read in \
         {:.0} queries ≈ {:.1} read units (estimated: items × item bytes ÷ 4 KB × 0.5, postings' bytes alike, + a \
         quarter unit per query for rounding)",
        m.write_units(),
        m.record_units,
        m.pair_units,
        m.integrity_units,
        m.registry_units,
        m.stored_bytes(),
        m.item_bytes,
        1.0 + m.index_entries,
        m.record_bytes,
        m.other_bytes,
        m.json_bytes,
        m.batch_bytes,
        m.page_items_read,
        m.page_posting_bytes / 1024.0,
        m.page_queries,
        page_read_units(m)
    );
    println!(
        "assumed: ingest Lambda {:.0} ms per batch of 1000 = CPU path {:.1} ms on one core{} × {:.1} (256 MB is \
         {:.0} % of a vCPU) + {:.0} writes {:.0} in flight at {:.0} ms; a page's queries {:.0} ms each; export \
         {:.0} s of a 512 MB worker (BatchGetItem calls of 100 bodies, 16 in flight, {:.0} ms each; beside them {:.0} B \
         of CSV per record at {:.0} MB/s \
         per core); archive {:.2} B per record kept {:.0} days",
        ingest_batch_ms(m, a),
        m.cpu_ms_per_batch,
        if m.debug_build { " (DEBUG build: overstated)" } else { "" },
        ONE_VCPU_MB / INGEST_MB,
        100.0 * INGEST_MB / ONE_VCPU_MB,
        m.writes_per_batch,
        a.writes_in_flight,
        a.write_ms,
        a.query_ms,
        export_ms(m, a) / 1000.0,
        a.query_ms,
        a.export_csv_bytes,
        a.export_mb_s,
        a.export_archive_bytes,
        a.export_archive_days
    );
    println!();
    println!("| figure | Auditrail (DynamoDB on-demand) | split | CloudTrail Lake |");
    println!("|---|---:|---|---:|");
    let lake_cell = format!(
        "{} (7-year pricing; {} at 1 KB per event); {} (1-year extendable)",
        usd(lake),
        usd(lake_kb),
        usd(lake_1y)
    );
    println!("| ingest 1M events | {} | {} | {lake_cell} |", usd(ingest.total()), split(&ingest));
    println!("| keep 1M events {RETENTION_DAYS:.0} days | {} | {} | included |", usd(keep.total()), split(&keep));
    let life = ingest.total() + keep.total();
    println!("| ingest + keep {RETENTION_DAYS:.0} days, 1M events | **{}** | | **{}** |", usd(life), usd(lake));
    println!("| 1,000 activity-log pages | {} | {} | — |", usd(pages.total()), split(&pages));
    println!("| 1M-record export | {} | {} | — |", usd(export.total()), split(&export));
    println!(
        "| GB-month stored | {} (DynamoDB Standard; S3 Standard {}) | | included for 7 years; {} after the first \
         year (1-year extendable) |",
        usd(p.dynamo_gb_month),
        usd(p.s3_gb_month),
        usd(p.lake_1y_gb_month)
    );
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        Measured {
            record_units: 3.0,
            pair_units: 0.75,
            integrity_units: 0.25,
            registry_units: 0.0,
            record_bytes: 4000.0,
            other_bytes: 96.0,
            item_bytes: 924.0,
            index_entries: 3.0,
            json_bytes: 512.0,
            batch_bytes: 600_000.0,
            cpu_ms_per_batch: 2.5,
            debug_build: false,
            writes_per_batch: 1002.0,
            page_items_read: 80.0,
            page_queries: 8.0,
            page_posting_bytes: 0.0,
            time_posting_bytes: 30.0,
            item_units: 1.0,
            keys_only_bytes: 600.0,
            posting_units: 0.2,
            posting_bytes: 300.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    #[test]
    fn ingest_of_a_million_is_hand_computed() {
        let (p, m, a) = (&EU_CENTRAL_1_2025, measured(), ASSUMED);
        // 2.5 ms × 1769/256 = 17.275… → with 32 rounds of 10 ms = 337.27 ms, billed 338 ms.
        assert!(close(ingest_batch_ms(&m, &a), 2.5 * 1769.0 / 256.0 + 320.0));
        let c = ingest_per_million(p, &m, &a);
        // 4 units × $0.7625 per million units.
        assert!(close(c.dynamodb, 3.05));
        // 1000 batches × (0.25 GB × 0.338 s × $0.0000133334 + $0.0000002).
        assert!(close(c.lambda, 1000.0 * (0.25 * 0.338 * 0.000_013_333_4 + 0.000_000_2)));
        // 600,000 B is two 512 KB increments: 2,000 requests at $1.20 per million.
        assert!(close(c.api, 0.0024));
    }

    #[test]
    fn keeping_a_million_for_400_days_is_hand_computed() {
        // 4096 B × 1M = 3.814697 GiB × 13.157895 months × $0.306 = $15.358…
        let c = keep_per_million(&EU_CENTRAL_1_2025, &measured(), 400.0);
        let expected = 4096.0 * 1e6 / 1_073_741_824.0 * (400.0 / 30.4) * 0.306;
        assert!(close(c.total(), expected));
        assert!((c.total() - 15.3589).abs() < 1e-3, "{}", c.total());
    }

    #[test]
    fn cloudtrail_lake_charges_per_gb_ingested() {
        // 1M × 1 KiB = 0.953674 GiB: $2.3842 at $2.50; the 1-year option $0.7153 + 35 days
        // beyond the year (1.151316 months) × $0.023 per GB-month.
        let (seven, one) = lake_per_million(&EU_CENTRAL_1_2025, 1024.0, 400.0);
        assert!((seven - 2.3842).abs() < 1e-4, "{seven}");
        let gb = 1024.0 * 1e6 / 1_073_741_824.0;
        assert!(close(one, gb * 0.75 + gb * 35.0 / 30.4 * 0.023));
    }

    #[test]
    fn pages_and_reads_are_hand_computed() {
        let (p, m, a) = (&EU_CENTRAL_1_2025, measured(), ASSUMED);
        // 80 items × 924 B = 73,920 B = 18.05 blocks of 4 KB, + 8 × 0.5 rounding = 22.05 × 0.5.
        assert!(close(page_read_units(&m), 0.5 * (80.0 * 924.0 / 4096.0 + 4.0)));
        let c = pages_per_thousand(p, &m, &a);
        assert!(close(c.api, 0.0012));
        // 8 queries × 15 ms = 120 ms at 256 MB.
        assert!(close(c.lambda, 1000.0 * (0.25 * 0.120 * 0.000_013_333_4 + 0.000_000_2)));
        assert!(close(c.dynamodb, 1000.0 * page_read_units(&m) * 0.1525 / 1e6));
    }

    #[test]
    fn api_requests_are_metered_in_512_kb_steps() {
        assert_eq!(api_requests(0.0), 1.0);
        assert_eq!(api_requests(512.0 * 1024.0), 1.0);
        assert_eq!(api_requests(512.0 * 1024.0 + 1.0), 2.0);
    }

    #[test]
    fn export_reads_every_record_and_uploads_its_parts() {
        let (p, m, a) = (&EU_CENTRAL_1_2025, measured(), ASSUMED);
        let c = export_per_million(p, &m, &a);
        // 29.12 MB in 8 MiB parts = 4 parts: 6 PUT-class requests, 1 GET, 29.12 MB kept 7 days.
        let archive = 29.12e6;
        let s3 = 6.0 * 0.0054 / 1000.0 + 0.00043 / 1000.0 + archive / 1_073_741_824.0 * 7.0 / 30.4 * 0.0245;
        assert!(close(c.s3, s3));
        // A million bodies of 924 B by BatchGetItem (half a unit each) and 30 MB of postings.
        let rru = 0.5 * 1e6 + 0.5 * 30e6 / 4096.0;
        assert!(close(c.dynamodb, rru * 0.1525 / 1e6 + 4.0 * 2.0 * 0.7625 / 1e6));
    }

    #[test]
    fn function_memory_matches_the_template() {
        let t = include_str!("../../infra/template.yaml");
        let globals = &t[t.find("Globals:").unwrap()..t.find("Resources:").unwrap()];
        assert!(globals.contains(&format!("MemorySize: {INGEST_MB}")), "ingest and query use the global size");
        assert_eq!(INGEST_MB, QUERY_MB);
        for f in ["IngestFunction:", "QueryFunction:"] {
            let body = &t[t.find(f).unwrap()..];
            let body = &body[..body[f.len()..].find("Function:").unwrap_or(body.len())];
            assert!(!body.contains("MemorySize"), "{f} keeps the global memory size");
        }
        let w = &t[t.find("ExportWorkerFunction:").unwrap()..];
        assert!(w[..w.find("Policies:").unwrap()].contains(&format!("MemorySize: {EXPORT_WORKER_MB}")));
    }
}
