//! Proposed designs (not built), costed from the same measured records: what a million events
//! would cost to ingest and to keep 400 days with lean index projections, posting items per
//! batch, the Standard-IA table class, a hot window in DynamoDB tiered to S3, and combinations.
//! docs/cost.md explains each; this module only does the arithmetic, so the doc's figures are
//! the bench's.

use super::{
    ASSUMED, Assumptions, Cost, EU_CENTRAL_1_2025, Measured, Prices, RETENTION_DAYS, export_ms, ingest_per_million,
    lake_per_million, lambda, query_read_units, storage, usd,
};

/// Records older than the hot window live in S3 only, one compressed columnar file per tenant,
/// day and category (retention deletes whole files), with a manifest item per file.
#[derive(Debug, Clone, Copy)]
pub struct Tier {
    /// Days a record stays in DynamoDB (its TTL; TTL deletes cost no write units).
    pub hot_days: f64,
}

/// What the tier's arithmetic assumes (not measured: nothing of it is built).
#[derive(Debug, Clone, Copy)]
pub struct TierAssumptions {
    /// Bytes per record in S3: the whole stored record as Parquet/zstd (the export's deflated
    /// CSV of eight columns is 29 B per record; the body's JSON compresses less well) plus the
    /// per-file min/max and bloom data and the id bloom for replays older than the window.
    pub s3_bytes: f64,
    /// Records per file (a tenant-day of one category); small tenants have smaller files.
    pub records_per_file: f64,
    /// DynamoDB's TTL deletes within days of expiry: storage is paid this much longer.
    pub ttl_lag_days: f64,
}

pub const TIER_ASSUMED: TierAssumptions =
    TierAssumptions { s3_bytes: 120.0, records_per_file: 10_000.0, ttl_lag_days: 2.0 };

/// One design's figures per million events.
#[derive(Debug, Clone, Copy)]
pub struct Design {
    pub name: &'static str,
    /// Write units and DynamoDB stored bytes per record.
    pub units: f64,
    pub bytes: f64,
    pub ingest: Cost,
    pub keep: Cost,
}

impl Design {
    pub fn lifetime(&self) -> f64 {
        self.ingest.total() + self.keep.total()
    }
}

/// Standard-IA: the same table at its (approximate) request and storage prices.
fn infrequent_access(p: &Prices) -> Prices {
    Prices { dynamo_wru: p.dynamo_ia_wru, dynamo_rru: p.dynamo_ia_rru, dynamo_gb_month: p.dynamo_ia_gb_month, ..*p }
}

/// A design writing `units` and storing `bytes` per record, kept in DynamoDB for the whole
/// retention or, with a tier, for its hot window and in S3 for the retention.
pub fn cost(
    name: &'static str,
    p: &Prices,
    m: &Measured,
    a: &Assumptions,
    (units, bytes): (f64, f64),
    tier: Option<Tier>,
) -> Design {
    let mut ingest = ingest_per_million(p, m, a);
    ingest.dynamodb = 1e6 * units * p.dynamo_wru;
    let t = TIER_ASSUMED;
    let keep = match tier {
        None => Cost { dynamodb: storage(1e6 * bytes, RETENTION_DAYS, p.dynamo_gb_month), ..Cost::default() },
        Some(tier) => {
            let files = 1e6 / t.records_per_file;
            // Tiering reads every record once (as an export does), writes a file, its bloom data
            // and a manifest item per file; the records then expire by TTL.
            let calls = (1e6 * m.item_bytes / 1e6).ceil();
            Cost {
                dynamodb: storage(1e6 * bytes, tier.hot_days + t.ttl_lag_days, p.dynamo_gb_month)
                    + query_read_units(1e6, m.item_bytes, calls) * p.dynamo_rru
                    + files * p.dynamo_wru,
                lambda: lambda(p, super::EXPORT_WORKER_MB, export_ms(m, a)),
                api: 0.0,
                s3: 2.0 * files * p.s3_put + storage(1e6 * t.s3_bytes, RETENTION_DAYS, p.s3_gb_month),
            }
        }
    };
    Design { name, units, bytes, ingest, keep }
}

/// Every option of docs/cost.md for the measured records.
pub fn designs(p: &Prices, m: &Measured, a: &Assumptions) -> Vec<Design> {
    let ia = infrequent_access(p);
    let built = (m.write_units(), m.stored_bytes());
    // KEYS_ONLY entries: the same units (an entry costs a unit however small), far fewer bytes.
    let lean = (m.write_units(), m.item_bytes + 100.0 + m.keys_only_bytes + m.other_bytes);
    // Posting items: no per-record entry at all; the item, the batch's postings, pairs, journal.
    let posting = (
        m.item_units + m.posting_units + m.pair_units + m.integrity_units + m.registry_units,
        m.item_bytes + 100.0 + m.posting_bytes + m.other_bytes,
    );
    let hot = |days| Some(Tier { hot_days: days });
    vec![
        cost(
            "built: time and action postings, other entries ALL-projected, 400 days in DynamoDB",
            p,
            m,
            a,
            built,
            None,
        ),
        cost("A. KEYS_ONLY entries, bodies by BatchGetItem", p, m, a, lean, None),
        cost("B. every index as posting items per batch", p, m, a, posting, None),
        cost("C. built, Standard-IA table class (approx.)", &ia, m, a, built, None),
        cost("B + C", &ia, m, a, posting, None),
        cost("D. built, 30 hot days + S3 tier", p, m, a, built, hot(30.0)),
        cost("A + D (30 hot days)", p, m, a, lean, hot(30.0)),
        cost("B + D (30 hot days)", p, m, a, posting, hot(30.0)),
        cost("B + D (14 hot days)", p, m, a, posting, hot(14.0)),
    ]
}

/// Prints the proposed designs' table beside CloudTrail Lake.
pub fn print(m: &Measured) {
    let (p, a) = (&EU_CENTRAL_1_2025, &ASSUMED);
    let (lake, _) = lake_per_million(p, m.json_bytes, RETENTION_DAYS);
    let (lake_kb, _) = lake_per_million(p, 1024.0, RETENTION_DAYS);
    let t = TIER_ASSUMED;
    println!("## Proposed designs (NOT built; docs/cost.md), 1M events of this mix, kept {RETENTION_DAYS:.0} days");
    println!(
        "assumed for the S3 tier: {:.0} B per record in S3, {:.0} records per file, TTL deletes free and within {:.0} \
         days; posting items: {:.3} write units and {:.0} B per record measured on this load's batches",
        t.s3_bytes, t.records_per_file, t.ttl_lag_days, m.posting_units, m.posting_bytes
    );
    println!(
        "| design | write units / record | DynamoDB B / record | ingest | keep | lifetime | vs CloudTrail Lake {} ({} at 1 KB) |",
        usd(lake),
        usd(lake_kb)
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for d in designs(p, m, a) {
        println!(
            "| {} | {:.2} | {:.0} | {} | {} | **{}** | {:.2}× ({:.2}×) |",
            d.name,
            d.units,
            d.bytes,
            usd(d.ingest.total()),
            usd(d.keep.total()),
            usd(d.lifetime()),
            d.lifetime() / lake,
            d.lifetime() / lake_kb
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        Measured {
            record_units: 4.0,
            pair_units: 0.0,
            integrity_units: 0.0,
            registry_units: 0.0,
            record_bytes: 4000.0,
            other_bytes: 0.0,
            item_bytes: 700.0,
            index_entries: 4.0,
            json_bytes: 300.0,
            batch_bytes: 301_001.0,
            cpu_ms_per_batch: 2.5,
            debug_build: false,
            writes_per_batch: 1002.0,
            page_items_read: 60.0,
            page_queries: 4.0,
            page_posting_bytes: 0.0,
            time_posting_bytes: 0.0,
            item_units: 1.0,
            keys_only_bytes: 4.0 * 200.0,
            posting_units: 0.1,
            posting_bytes: 200.0,
        }
    }

    #[test]
    fn lean_projections_keep_the_units_and_shrink_the_bytes() {
        let d = designs(&EU_CENTRAL_1_2025, &measured(), &ASSUMED);
        assert_eq!(d[1].units, d[0].units, "an entry costs a unit however small");
        assert_eq!(d[1].bytes, 700.0 + 100.0 + 800.0);
        assert_eq!(d[2].units, 1.1);
        assert_eq!(d[2].bytes, 1000.0);
    }

    #[test]
    fn the_tier_pays_dynamodb_for_the_hot_window_only() {
        let (p, m, a) = (&EU_CENTRAL_1_2025, measured(), ASSUMED);
        let d = cost("x", p, &m, &a, (1.1, 1000.0), Some(Tier { hot_days: 30.0 }));
        // 1000 B × 1M for 32 days (with the TTL lag) at $0.306, plus reading each 700 B item
        // once, one manifest item per 10,000 records.
        let reads = 0.5 * (1e6 * 700.0 / 4096.0 + 0.5 * 700.0) * 0.1525 / 1e6;
        let expected = 1e9 / 1_073_741_824.0 * 32.0 / 30.4 * 0.306 + reads + 100.0 * 0.7625 / 1e6;
        assert!((d.keep.dynamodb - expected).abs() < 1e-9, "{} vs {expected}", d.keep.dynamodb);
        // 120 B × 1M in S3 for 400 days, two PUTs per file.
        let s3 = 1.2e8 / 1_073_741_824.0 * 400.0 / 30.4 * 0.0245 + 200.0 * 0.0054 / 1000.0;
        assert!((d.keep.s3 - s3).abs() < 1e-9);
        assert!((d.ingest.dynamodb - 1.1 * 0.7625).abs() < 1e-9);
    }

    #[test]
    fn infrequent_access_trades_request_price_for_storage_price() {
        let d = designs(&EU_CENTRAL_1_2025, &measured(), &ASSUMED);
        assert!((d[3].ingest.dynamodb / d[0].ingest.dynamodb - 1.25).abs() < 1e-9);
        assert!((d[3].keep.dynamodb / d[0].keep.dynamodb - 0.4).abs() < 1e-9);
    }
}
