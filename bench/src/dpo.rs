//! DPO figures: personal-data search latency through the router on the embedded store (every
//! criterion, p50/p99), items read per hit on SQLite and on the DynamoDB design (moto), and the
//! erasure rate.

use std::sync::Arc;
use std::time::Instant;

use auditrail_shared::api::{AppState, router, routes};
use auditrail_shared::auth::Role;
use auditrail_shared::config::Config;
use auditrail_shared::dpo::search::{self, SearchRequest};
use auditrail_shared::record::{Actor, Category, Record, ResultCode, Subject};
use auditrail_shared::store::{RecordStore, SubjectStore};
use axum::body::Body;
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tower::ServiceExt;

const FIRST: [&str; 10] = ["Jana", "Petr", "Eva", "Jan", "Marie", "Tomáš", "Lucie", "Martin", "Anna", "Pavel"];

fn email(k: usize) -> String {
    format!("person{k}@example{}.com", k % 50)
}
fn phone(k: usize) -> String {
    format!("+420 6{:02} {:03} {:03}", k / 1_000_000 % 100, k / 1000 % 1000, k % 1000)
}

/// `n` records; 40 % are personal-data records about one of `subjects` people.
pub fn records(tenant: &str, n: usize, subjects: usize, seed: u64) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Utc::now();
    let cats = [
        ("CONTACT", Category::Contact),
        ("CONSENT", Category::Consent),
        ("CAMPAIGN_CUSTOMER", Category::CampaignCustomer),
        ("DIRECTORY_ENTRY", Category::DirectoryEntry),
    ];
    (0..n)
        .map(|i| {
            let personal = rng.random_range(0..10) < 4;
            let (action, cat) =
                if personal { cats[rng.random_range(0..4)] } else { ("CREATE_EVALUATION", Category::Audit) };
            let mut r = Record::system(
                tenant,
                action,
                Actor { username: Some(format!("agent.{}", i % 500)), ..Default::default() },
                Some(ResultCode::Ok),
                json!({"note": format!("item {i}")}),
            );
            r.id = format!("r{i:08}");
            r.category = cat;
            r.occurred_at = now - Duration::seconds(rng.random_range(1..30 * 86_400));
            if personal {
                let k = rng.random_range(0..subjects);
                r.subject = Some(Subject {
                    emails: vec![email(k)],
                    phones: vec![phone(k)],
                    first_name: Some(FIRST[k % FIRST.len()].into()),
                    last_name: Some(format!("Surname{k}")),
                });
            }
            r
        })
        .collect()
}

/// A named search built from a person's number.
type Case<T> = (&'static str, fn(usize) -> T);

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn post(app: &axum::Router, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let req = http::Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("router");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub async fn run(n: usize, subjects: usize, samples: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = AppState::from_config(&Config::embedded(dir.path())).await?;
    let app = router::<routes::All>(state.clone());
    let t = Instant::now();
    for chunk in records("acme", n, subjects, 5).chunks(1000) {
        state.records.append("acme", chunk).await?;
    }
    state.records.maintain().await?;
    println!(
        "## DPO search on the embedded store ({n} records, {subjects} subjects; loaded in {:.0} s)",
        t.elapsed().as_secs_f64()
    );
    let token = state.auth.mint("acme", "dpo", Some("dpo"), &[Role::Dpo], 36_000)?;
    let mut rng = StdRng::seed_from_u64(9);
    println!("| criterion | p50 ms | p99 ms | hits (mean) |");
    println!("|---|---:|---:|---:|");
    let kinds: [Case<Value>; 5] = [
        ("e-mail", |k| json!({"email": email(k).to_uppercase()})),
        ("phone, all digits", |k| json!({"phone": phone(k)})),
        ("phone, last 6 digits", |k| json!({"phone": phone(k), "phone_digits": 6})),
        ("first + last name", |k| json!({"first_name": FIRST[k % FIRST.len()], "last_name": format!("surname{k}")})),
        ("e-mail OR phone", |k| json!({"email": email(k), "phone": phone(k + 1)})),
    ];
    for (name, body) in kinds {
        let mut lat = Vec::with_capacity(samples);
        let mut hits = 0u64;
        for _ in 0..samples {
            let k = rng.random_range(0..subjects);
            let t = Instant::now();
            let (status, v) = post(&app, &token, "/v1/dpo/searches", &body(k)).await;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{name}: {status} {v}");
            hits += v["count"].as_u64().unwrap_or(0);
        }
        println!(
            "| {name} | {:.2} | {:.2} | {:.1} |",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            hits as f64 / samples as f64
        );
    }

    // Erasure rate: every hit of 100 people in one job each.
    let mut erased = 0usize;
    let mut busy = 0f64;
    let worker = state.erasure_worker("bench");
    for k in 0..100 {
        let (_, v) = post(&app, &token, "/v1/dpo/searches", &json!({"email": email(k), "phone": phone(k)})).await;
        let items: Vec<Value> = v["groups"]
            .as_object()
            .map(|g| {
                g.values().flat_map(|a| a.as_array().cloned().unwrap_or_default()).map(|h| h["id"].clone()).collect()
            })
            .unwrap_or_default();
        if items.is_empty() {
            continue;
        }
        let (status, _) = post(&app, &token, "/v1/dpo/erasures", &json!({"items": items})).await;
        anyhow::ensure!(status == 202);
        let t = Instant::now();
        worker.run_pending().await?;
        busy += t.elapsed().as_secs_f64();
        erased += items.len();
    }
    println!(
        "\nErasure: {erased} records of 100 people in {busy:.2} s of worker time = {:.0} records/s",
        erased as f64 / busy
    );
    Ok(())
}

/// Items read per hit of the same searches on DynamoDB (moto); latency on an emulator means nothing.
pub async fn dynamodb(n: usize, subjects: usize) -> anyhow::Result<()> {
    let (store, _) = auditrail_shared::testkit::moto::fresh().await;
    let store = Arc::new(store);
    for chunk in records("acme", n, subjects, 5).chunks(1000) {
        store.append("acme", chunk).await?;
    }
    println!("## DPO search on the DynamoDB design (moto, {n} records, {subjects} subjects)");
    println!("| criterion | searches | hits | items read | read ÷ returned |");
    println!("|---|---:|---:|---:|---:|");
    let mut rng = StdRng::seed_from_u64(9);
    let kinds: [Case<SearchRequest>; 4] = [
        ("e-mail", |k| SearchRequest { email: Some(email(k)), ..Default::default() }),
        ("phone, last 6 digits", |k| SearchRequest {
            phone: Some(phone(k)),
            phone_digits: Some(6),
            ..Default::default()
        }),
        ("first + last name", |k| SearchRequest {
            first_name: Some(FIRST[k % FIRST.len()].into()),
            last_name: Some(format!("Surname{k}")),
            ..Default::default()
        }),
        ("e-mail OR phone", |k| SearchRequest {
            email: Some(email(k)),
            phone: Some(phone(k + 1)),
            ..Default::default()
        }),
    ];
    for (name, req) in kinds {
        let (mut read, mut returned) = (0u64, 0u64);
        for _ in 0..100 {
            let c = search::criteria(&req(rng.random_range(0..subjects))).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let search::Outcome::Found { stats, .. } =
                search::search(&*store as &dyn SubjectStore, "acme", &c).await?
            {
                read += stats.items_read;
                returned += stats.items_returned;
            }
        }
        println!("| {name} | 100 | {returned} | {read} | {:.2} |", read as f64 / returned.max(1) as f64);
    }
    Ok(())
}
