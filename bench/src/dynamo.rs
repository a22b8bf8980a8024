//! DynamoDB figures on the moto emulator: write units per stored record (by the key design, and
//! as moto reports them) and read amplification (items read ÷ returned) of the first page of
//! every single seed filter and the two-filter combinations, with the index the planner chose.
//! Latency on an emulator means nothing, so none is printed.

use std::sync::atomic::Ordering;
use std::time::Instant;

use auditrail_shared::record::{Category, Record, ResultCode};
use auditrail_shared::store::dynamodb::write_units;
use auditrail_shared::store::{EventFilter, PageRequest, RecordStore};
use auditrail_shared::testkit::moto;
use chrono::{Duration, Utc};

use crate::record;

pub async fn run(n: usize) -> anyhow::Result<()> {
    let (store, blobs) = moto::fresh().await;
    let now = Utc::now();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    // 3 tenants, one with 80 % of the volume, over 30 days.
    let tenants = [("big", 0.8), ("mid", 0.15), ("small", 0.05)];
    let limits = auditrail_shared::record::ValidationLimits::default();
    let mut units = 0u64;
    let mut journal_units = 0u64;
    let mut typical = None;
    let (mut sample_session, mut sample_corr, mut sample_emp) = (None, None, None);
    let t = Instant::now();
    for (tenant, share) in tenants {
        let count = (n as f64 * share) as usize;
        let recs: Vec<Record> = (0..count)
            .map(|i| {
                let v = record(&mut rng, i, now);
                let inc: auditrail_shared::record::IncomingRecord = serde_json::from_value(v).expect("valid");
                inc.into_record(tenant, now, &limits).expect("valid")
            })
            .collect();
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
        }
        for r in &recs {
            // As stored: with its batch id and salt key.
            let mut r = r.clone();
            auditrail_shared::record::integrity::stamp(&mut r, "01JBENCHBATCH0000000000000");
            let r = &r;
            units += write_units(r)?;
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
    let written = store.counters().records_written.load(Ordering::Relaxed);
    let moto_units = store.counters().write_tenths.load(Ordering::Relaxed) as f64 / 10.0;
    println!(
        "## DynamoDB (moto), {n} records, 3 tenants (80/15/5 %), 30 days — loaded in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    if let Some((u, size)) = typical {
        println!("typical audit record ({size} B JSON): {u} write units (item + time, action, user entries)");
    }
    println!(
        "write units per record, by the key design: {:.2} (moto reports {:.2}: it does not charge GSI writes)\n",
        units as f64 / n as f64,
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
    println!("| filter | index chosen | items read | returned | read ÷ returned |");
    println!("|---|---|---:|---:|---:|");
    for (name, f) in filters {
        let page = store.query("big", &f, PageRequest { limit: 50, after: None }).await?;
        let s = page.stats;
        let amp = if s.items_returned == 0 { 0.0 } else { s.items_read as f64 / s.items_returned as f64 };
        println!("| {name} | {} | {} | {} | {amp:.2} |", page.plan, s.items_read, s.items_returned);
    }
    Ok(())
}
