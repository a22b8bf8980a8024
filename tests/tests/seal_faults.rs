//! A sealer killed at any port call — before or after the seal item, before or after its
//! digest, mid-journal, while signing, while repairing the last seal — and then run again
//! leaves a chain the verifier accepts: every record sealed exactly once, seals 0..n each
//! chained to the one before with a digest beside it, and nothing left to seal.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use auditrail_shared::integrity::digest_key;
use auditrail_shared::integrity::sealer::{SealRun, Sealing, seals_through};
use auditrail_shared::integrity::verify::Verifier;
use auditrail_shared::merkle::b64;
use auditrail_shared::record::{Record, ResultCode};
use auditrail_shared::seal::{PurgeNote, Seal, SealDigest, SealSigner};
use auditrail_shared::store::{AppendOutcome, JournalEntry, SealStore, StoreResult};
use auditrail_shared::testkit::conformance::{rec, tenant};
use auditrail_tests::blobs::{BlobCall, BlobFaults, FaultyBlobs};
use auditrail_tests::{Killer, TestApp};

/// Reads have no effect, so one gate each; writes are gated on both sides (not done / done but
/// not acknowledged).
struct S(Arc<dyn SealStore>, Arc<Killer>);
struct Gates(Arc<Killer>);
struct K(Arc<dyn SealSigner>, Arc<Killer>);

#[async_trait]
impl SealStore for S {
    async fn journal(&self, t: &str, a: Option<&str>, to: Option<&str>, l: usize) -> StoreResult<Vec<JournalEntry>> {
        self.1.gate("journal").await;
        self.0.journal(t, a, to, l).await
    }
    async fn note_purges(&self, t: &str, b: &str, n: &[PurgeNote]) -> StoreResult<()> {
        self.0.note_purges(t, b, n).await
    }
    async fn records_by_id(&self, t: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        self.1.gate("records").await;
        self.0.records_by_id(t, ids).await
    }
    async fn put_seal(&self, s: &Seal) -> StoreResult<()> {
        self.1.gate("put-seal-before").await;
        self.0.put_seal(s).await?;
        self.1.gate("put-seal-after").await;
        Ok(())
    }
    async fn seals(&self, t: &str, from: u64, l: usize) -> StoreResult<Vec<Seal>> {
        self.1.gate("seals").await;
        self.0.seals(t, from, l).await
    }
    async fn last_seal(&self, t: &str) -> StoreResult<Option<Seal>> {
        self.1.gate("last-seal").await;
        self.0.last_seal(t).await
    }
    async fn seal_of_batch(&self, t: &str, b: &str) -> StoreResult<Option<Seal>> {
        self.1.gate("seal-of-batch").await;
        self.0.seal_of_batch(t, b).await
    }
    fn settle_time(&self) -> std::time::Duration {
        self.0.settle_time()
    }
}

/// The digest blobs' calls are kill points.
#[async_trait]
impl BlobFaults for Gates {
    async fn before(&self, call: BlobCall) -> StoreResult<()> {
        match call {
            BlobCall::Put => self.0.gate("digest-put-before").await,
            BlobCall::Get => self.0.gate("digest-get").await,
            BlobCall::Open => self.0.gate("digest-open").await,
            BlobCall::Delete => self.0.gate("digest-delete").await,
            _ => {}
        }
        Ok(())
    }
    async fn after(&self, call: BlobCall) -> StoreResult<()> {
        if call == BlobCall::Put {
            self.0.gate("digest-put-after").await;
        }
        Ok(())
    }
}

#[async_trait]
impl SealSigner for K {
    async fn public_key_der(&self) -> anyhow::Result<Vec<u8>> {
        self.0.public_key_der().await
    }
    async fn sign(&self, m: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.1.gate("sign").await;
        self.0.sign(m).await
    }
}

/// Small seals, so one run writes several (whole journal entries until 10 leaves or more).
const MAX_LEAVES: usize = 10;
/// Batches of 7 records: sealed before the run under test, then left for it.
const SEALED_BATCHES: usize = 2;
const OPEN_BATCHES: usize = 6;
const PER_BATCH: usize = 7;

fn sealer(app: &TestApp, killer: &Arc<Killer>) -> Sealing {
    Sealing {
        store: Arc::new(S(app.state.seals.clone(), killer.clone())),
        blobs: Arc::new(FaultyBlobs(app.state.seal_blobs.clone(), Gates(killer.clone()))),
        signer: Arc::new(K(app.state.signer.clone(), killer.clone())),
        max_leaves: MAX_LEAVES,
    }
}

/// As if the store's settle time had passed since every append.
fn later(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        + chrono::Duration::from_std(app.state.seals.settle_time()).unwrap()
        + chrono::Duration::seconds(1)
}

async fn seal_cleanly(app: &TestApp, t: &str) -> SealRun {
    sealer(app, &Killer::new(i64::MAX)).seal_tenant(t, later(app)).await.expect("a clean run seals")
}

/// A fresh tenant with a sealed prefix (so a run starts by checking the last seal's digest and
/// chains to it) and several seals' worth of records appended since; the ids of all.
async fn seeded(app: &TestApp) -> (String, Vec<String>) {
    let t = tenant("seal-kill");
    let mut ids = Vec::new();
    for b in 0..SEALED_BATCHES + OPEN_BATCHES {
        if b == SEALED_BATCHES {
            let run = seal_cleanly(app, &t).await;
            assert!(run.seals >= 1 && run.leaves == ids.len() as u64, "{run:?}");
        }
        let batch: Vec<Record> = (0..PER_BATCH)
            .map(|i| {
                let n = b * PER_BATCH + i;
                rec(&t, &format!("s{n:03}"), n as i64, "USER_LOGIN", &format!("u{}", n % 3), ResultCode::Ok)
            })
            .collect();
        let out = app.state.records.append(&t, &batch).await.unwrap();
        assert!(out.iter().all(|o| *o == AppendOutcome::Created), "{out:?}");
        ids.extend(batch.into_iter().map(|r| r.id));
    }
    ids.sort();
    (t, ids)
}

/// Runs a sealer that dies at call `at`; panics if it finishes first. The calls it made.
async fn killed(app: &TestApp, t: &str, at: i64, what: &str) -> Vec<&'static str> {
    let killer = Killer::new(at);
    let doomed = sealer(app, &killer);
    tokio::select! {
        r = doomed.seal_tenant(t, later(app)) => panic!("{what}: kill point {at} was never reached: {r:?}"),
        _ = killer.hit.notified() => {}
    }
    killer.log.lock().unwrap().clone()
}

/// Everything a crash must not break, checked after a clean run has finished the work.
async fn assert_intact(app: &TestApp, t: &str, want: &[String], what: &str) {
    let key = app.state.signer.public_key_der().await.unwrap();
    let v = Verifier {
        seals: &*app.state.seals,
        records: &*app.state.records,
        blobs: &*app.state.seal_blobs,
        public_key: &key,
    };
    let rep = v.verify(t, &Default::default()).await.expect("verify");
    let found: Vec<_> = rep.findings.iter().map(|f| (f.kind, f.seal, f.record.clone())).collect();
    assert!(rep.ok(), "{what}: {found:?}");
    assert_eq!((rep.records_checked, rep.pending), (want.len() as u64, 0), "{what}");

    let seals = seals_through(&*app.state.seals, t, None).await.unwrap();
    assert_eq!(rep.seals, seals.len() as u64, "{what}");
    let mut sealed = Vec::new();
    for (i, s) in seals.iter().enumerate() {
        assert_eq!(s.seq(), i as u64, "{what}: seals are numbered 0..n without a gap");
        let prev = i.checked_sub(1).map(|p| &seals[p]);
        assert_eq!(
            s.statement.prev,
            prev.map(|p| b64(&p.statement.hash())),
            "{what}: seal {i} chains to the one before"
        );
        assert_eq!(
            s.statement.body.from_pos,
            prev.map(|p| p.statement.body.to_pos.clone()),
            "{what}: seal {i} starts where the one before stopped"
        );
        let bytes = app.state.seal_blobs.get(&digest_key(t, s.seq()).unwrap()).await.unwrap();
        let bytes = bytes.unwrap_or_else(|| panic!("{what}: seal {i} has no digest"));
        let digest: SealDigest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((&digest.statement, &digest.signature), (&s.statement, &s.signature), "{what}: digest {i}");
        assert_eq!(digest.leaves.len() as u64, s.statement.body.size, "{what}: digest {i} holds its seal's leaves");
        sealed.extend(digest.leaves.into_iter().map(|l| l.id));
    }
    let total: u64 = seals.iter().map(|s| s.statement.body.size).sum();
    assert_eq!(total, want.len() as u64, "{what}: the seals' leaves add up to the records");
    let distinct: BTreeSet<&String> = sealed.iter().collect();
    assert_eq!(distinct.len(), sealed.len(), "{what}: no record sealed twice");
    sealed.sort();
    assert_eq!(sealed, want, "{what}: every record sealed");

    let again = seal_cleanly(app, t).await;
    assert_eq!((again.seals, again.repaired), (0, 0), "{what}: sealing again seals nothing: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealer_killed_at_any_call_then_rerun_seals_every_record_exactly_once() {
    let started = std::time::Instant::now();
    let app = TestApp::new().await;
    // A clean run counts the port calls, so kill points can be spread over the whole run.
    let (t, want) = seeded(&app).await;
    let counter = Killer::new(i64::MAX);
    let run = sealer(&app, &counter).seal_tenant(&t, later(&app)).await.unwrap();
    assert!(run.seals >= 3, "several seals in one run: {run:?}");
    assert_intact(&app, &t, &want, "clean run").await;
    let total = counter.calls.load(Ordering::SeqCst);
    let log = counter.log.lock().unwrap().clone();
    // Every kind of call's first occurrence, killed in it and right after it returned; and the
    // second seal's commit point (a digest-less seal with a sealed one before it).
    let first =
        |what: &str| log.iter().position(|w| *w == what).unwrap_or_else(|| panic!("no {what} in {log:?}")) as i64 + 1;
    let nth = |what: &str, n: usize| log.iter().enumerate().filter(|(_, w)| **w == what).nth(n).unwrap().0 as i64 + 1;
    let kinds = [
        "last-seal",
        "digest-get",
        "journal",
        "records",
        "sign",
        "put-seal-before",
        "put-seal-after",
        "digest-put-before",
        "digest-put-after",
    ];
    let mut points: BTreeSet<i64> = kinds.iter().flat_map(|k| [first(k), first(k) + 1]).collect();
    points.extend([nth("put-seal-after", 1), nth("digest-put-before", 1)]);
    if auditrail_tests::backend() == "dynamodb" {
        // About 4 s a point on the emulator: the aimed points, the middle and the end.
        points.extend([total / 2, total - 1]);
    } else {
        points.extend(1..=total);
    }
    points.retain(|p| (1..=total).contains(p));
    eprintln!("{total} calls: {log:?}; kill points {points:?}");

    for &at in &points {
        // On the emulator each point has a table of its own: moto reads a whole table for every
        // Query, so with every point's tenant in one table each point was slower than the last.
        let fresh;
        let app = match auditrail_tests::backend() {
            "dynamodb" => {
                fresh = TestApp::new().await;
                &fresh
            }
            _ => &app,
        };
        let (t, want) = seeded(app).await;
        let what = format!("killed at call {at} of {total} ({})", log[at as usize - 1]);
        let calls = killed(app, &t, at, &what).await;
        assert_eq!(calls, log[..at as usize], "{what}: the doomed run made the clean run's calls");
        seal_cleanly(app, &t).await;
        assert_intact(app, &t, &want, &what).await;
    }

    // Killed between a seal and its digest; the next run killed repairing it, before the digest
    // is written; then a clean run.
    let (t, want) = seeded(&app).await;
    let at = first("put-seal-after");
    killed(&app, &t, at, "first of two kills").await;
    let calls = killed(&app, &t, 5, "second of two kills").await;
    assert_eq!(
        calls,
        ["last-seal", "digest-get", "journal", "records", "digest-put-before"],
        "the second run dies repairing"
    );
    seal_cleanly(&app, &t).await;
    assert_intact(&app, &t, &want, "killed twice in a row").await;
    eprintln!("{} kill points in {:?}", points.len() + 1, started.elapsed());
}
