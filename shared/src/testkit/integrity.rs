//! Tamper evidence, end to end on one back end: records stored through the port, sealed,
//! verified — then tampered with *beneath* the port, the way someone with write access to the
//! database or the table would (`Tamper`), and each change found and named. And the other side:
//! no false alarm after a DPO erasure, a retention purge, a legal hold, a replayed batch, a sealer
//! killed between its two writes, or two sealers at once.
//!
//! `integrity_tests!(factory)` expands to one test per check; the factory returns a `Rig`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use serde_json::json;

use super::conformance::{rec, t0, tenant};
use crate::app::App;
use crate::dpo::erasure::anonymize;
use crate::integrity::proof::{check, prove};
use crate::integrity::sealer::Sealing;
use crate::integrity::verify::{Kind, Options, Report, Verifier};
use crate::merkle::b64;
use crate::record::{Attachment, Category, Phase, Record, ResultCode, Subject};
use crate::seal::{LocalSigner, Seal, SealSigner};
use crate::store::AppendOutcome;

/// Writes beneath the port: what an attacker with access to the database could do.
#[async_trait]
pub trait Tamper: Send + Sync {
    /// Replaces the stored body of `r.id` with `r` (no journal, no index upkeep beyond the row).
    async fn overwrite(&self, r: &Record);
    /// Stores `r` without a journal entry.
    async fn insert(&self, r: &Record);
    async fn delete(&self, tenant: &str, id: &str);
    async fn delete_seal(&self, tenant: &str, seq: u64);
    async fn overwrite_seal(&self, seal: &Seal);
}

pub struct Rig {
    pub app: App,
    pub tamper: Arc<dyn Tamper>,
    /// Whether two writers' conditional writes of one key are atomic under concurrent requests.
    /// Not on moto: its threaded server checks a transaction's condition and writes without a
    /// lock, so two sealers' puts of one seal number can both succeed there (DynamoDB itself
    /// refuses the second).
    pub atomic_conditions: bool,
}

impl Rig {
    fn sealing(&self, max_leaves: usize) -> Sealing {
        Sealing { max_leaves, ..self.app.sealing() }
    }

    async fn key(&self) -> Vec<u8> {
        self.app.signer.public_key_der().await.unwrap()
    }

    async fn verify_with(&self, t: &str, opts: &Options) -> Report {
        let key = self.key().await;
        let v = Verifier {
            seals: &*self.app.seals,
            records: &*self.app.records,
            blobs: &*self.app.seal_blobs,
            public_key: &key,
        };
        v.verify(t, opts).await.expect("verify")
    }

    async fn verify(&self, t: &str) -> Report {
        self.verify_with(t, &Options::default()).await
    }

    /// Seals everything settled, as if `settle` had passed.
    async fn seal(&self, t: &str, max_leaves: usize) -> crate::integrity::sealer::SealRun {
        let later = Utc::now() + Duration::from_std(self.app.seals.settle_time()).unwrap() + Duration::seconds(1);
        self.sealing(max_leaves).seal_tenant(t, later).await.expect("seal")
    }

    async fn get(&self, t: &str, id: &str) -> Record {
        self.app.records.get(t, id).await.unwrap().expect("stored")
    }
}

/// A mixed trail: audit records, a contact with a subject and an attachment, an asynchronous
/// pair, a co-browsing record.
fn trail(t: &str, n: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut r = rec(t, &format!("r{i:03}"), i as i64, "USER_LOGIN", &format!("user{}", i % 4), ResultCode::Ok);
        match i % 5 {
            1 => {
                r.action = "CONTACT_CREATE".into();
                r.category = Category::Contact;
                r.result = None;
                r.subject = Some(Subject {
                    emails: vec![format!("eva{i}@example.com")],
                    phones: vec![format!("+42077712{i:04}")],
                    first_name: Some("Eva".into()),
                    last_name: Some("Svobodová".into()),
                });
                r.description = Some(json!({"note": format!("call eva{i}@example.com back"), "n": i}));
                r.attachments = vec![Attachment {
                    blob: format!("b{i}"),
                    name: "passport.jpg".into(),
                    size: Some(1234),
                    content_type: Some("image/jpeg".into()),
                    kind: Some("photo".into()),
                }];
            }
            2 => {
                r.correlation_id = Some(format!("c{}", i / 5));
                r.phase = Some(Phase::Start);
                r.result = None;
            }
            3 => {
                r.session_id = Some("cob-1".into());
                r.category = Category::Cobrowse;
                r.action = "COBROWSE_CLICK".into();
                r.data = Some(json!({"element": "#submit", "by": "customer"}));
            }
            _ => {}
        }
        out.push(r);
    }
    out
}

async fn stored(rig: &Rig, t: &str, n: usize) -> Vec<Record> {
    let recs = trail(t, n);
    for chunk in recs.chunks(7) {
        let out = rig.app.records.append(t, chunk).await.unwrap();
        assert!(out.iter().all(|o| *o == AppendOutcome::Created), "{out:?}");
    }
    recs
}

fn kinds_of(rep: &Report) -> Vec<(Kind, Option<String>)> {
    rep.findings.iter().map(|f| (f.kind, f.record.clone())).collect()
}

fn has(rep: &Report, kind: Kind, record: Option<&str>) -> bool {
    rep.findings.iter().any(|f| f.kind == kind && (record.is_none() || f.record.as_deref() == record))
}

pub async fn an_honest_trail_verifies_and_proves_each_record(rig: Rig) {
    let t = tenant("honest");
    let recs = stored(&rig, &t, 40).await;
    // A replayed batch: duplicates, never a second leaf.
    let again = rig.app.records.append(&t, &recs[..10]).await.unwrap();
    assert!(again.iter().all(|o| *o == AppendOutcome::Duplicate));
    let run = rig.seal(&t, 16).await;
    assert_eq!(run.leaves, 40, "{run:?}");
    // Whole batches of 7 until a seal holds 16 or more.
    assert!(run.seals >= 2, "{run:?}");
    assert_eq!(rig.seal(&t, 16).await.seals, 0, "sealing again seals nothing");
    let rep = rig.verify(&t).await;
    assert!(rep.ok(), "{:?}", kinds_of(&rep));
    assert_eq!((rep.records_checked, rep.pending, rep.seals), (40, 0, run.seals));
    for id in ["r000", "r001", "r017", "r039"] {
        let r = rig.get(&t, id).await;
        let p = prove(&*rig.app.seals, &*rig.app.seal_blobs, &t, &r).await.expect("a sealed record has a proof");
        assert_eq!(p.leaf, p.leaf_now);
        check(&p, &r, &rig.key().await).expect("the proof verifies");
        let size = serde_json::to_vec(&p).unwrap().len();
        assert!(size <= 2048, "a proof is at most 2 KB: {size}");
        let mut changed = r.clone();
        changed.action = "USER_LOGOUT".into();
        assert!(check(&p, &changed, &rig.key().await).is_err());
    }
    // Stored after the last seal: pending, not a finding; and no proof yet.
    let late = rec(&t, "late", 99, "USER_LOGIN", "x", ResultCode::Ok);
    rig.app.records.append(&t, std::slice::from_ref(&late)).await.unwrap();
    let rep = rig.verify(&t).await;
    assert!(rep.ok(), "{:?}", kinds_of(&rep));
    assert_eq!(rep.pending, 1);
    assert!(prove(&*rig.app.seals, &*rig.app.seal_blobs, &t, &rig.get(&t, "late").await).await.is_err());
}

pub async fn every_kind_of_record_tampering_is_named(rig: Rig) {
    type Change = fn(&mut Record);
    let changes: [(&str, Change); 6] = [
        ("action", |r| r.action = "USER_LOGOUT".into()),
        ("received_at", |r| r.received_at += Duration::microseconds(1)),
        ("actor name", |r| r.actor.username = Some("someone-else".into())),
        ("result", |r| r.result = Some(ResultCode::Fail)),
        ("back-dated", |r| r.occurred_at -= Duration::days(3)),
        ("description", |r| r.description = Some(json!("nothing happened"))),
    ];
    let t = tenant("tamper-rec");
    stored(&rig, &t, 30).await;
    rig.seal(&t, 8192).await;
    for (i, (what, change)) in changes.iter().enumerate() {
        let id = format!("r{:03}", i * 4);
        let mut r = rig.get(&t, &id).await;
        change(&mut r);
        rig.tamper.overwrite(&r).await;
        let rep = rig.verify(&t).await;
        assert!(has(&rep, Kind::Modified, Some(&id)), "{what}: {:?}", kinds_of(&rep));
    }
    // A personal value of a contact changed: its commitment no longer matches.
    let mut c = rig.get(&t, "r001").await;
    c.subject.as_mut().unwrap().phones[0] = "+420000000000".into();
    rig.tamper.overwrite(&c).await;
    // Two records swapped in time.
    let (mut a, mut b) = (rig.get(&t, "r002").await, rig.get(&t, "r003").await);
    std::mem::swap(&mut a.occurred_at, &mut b.occurred_at);
    rig.tamper.overwrite(&a).await;
    rig.tamper.overwrite(&b).await;
    // Deleted, and inserted (back-dated, without a journal entry; and with a sealed record's batch).
    rig.tamper.delete(&t, "r005").await;
    let mut forged = rec(&t, "forged", -20, "USER_LOGIN", "ghost", ResultCode::Ok);
    rig.tamper.insert(&forged).await;
    forged.id = "forged2".into();
    forged.integrity = rig.get(&t, "r006").await.integrity;
    rig.tamper.insert(&forged).await;
    let rep = rig.verify(&t).await;
    for id in ["r001", "r002", "r003"] {
        assert!(has(&rep, Kind::Modified, Some(id)), "{id}: {:?}", kinds_of(&rep));
    }
    assert!(has(&rep, Kind::Deleted, Some("r005")), "{:?}", kinds_of(&rep));
    assert!(has(&rep, Kind::Inserted, Some("forged")), "{:?}", kinds_of(&rep));
    assert!(has(&rep, Kind::Inserted, Some("forged2")), "{:?}", kinds_of(&rep));
    assert!(!has(&rep, Kind::Modified, Some("r007")), "untouched records are not named");
}

pub async fn every_kind_of_seal_tampering_is_named(rig: Rig) {
    async fn sealed(rig: &Rig, name: &str) -> (String, Vec<Seal>) {
        let t = tenant(name);
        stored(rig, &t, 35).await;
        rig.seal(&t, 5).await;
        let seals = rig.app.seals.seals(&t, 0, 100).await.unwrap();
        assert!(seals.len() >= 4, "{}", seals.len());
        assert!(rig.verify(&t).await.ok());
        (t, seals)
    }
    // A seal removed from the middle.
    let (t, _) = sealed(&rig, "seal-gap").await;
    rig.tamper.delete_seal(&t, 1).await;
    let rep = rig.verify(&t).await;
    assert!(rep.findings.iter().any(|f| f.kind == Kind::SealMissing && f.seal == Some(1)), "{:?}", rep.findings);
    // A seal replaced by one signed with another key over other content.
    let (t, seals) = sealed(&rig, "seal-replaced").await;
    let other = LocalSigner::from_secret(b"someone else's key, 32 bytes long");
    let mut fake = seals[2].clone();
    fake.statement.body.size = 0;
    fake.statement.body.root = b64(&crate::merkle::root(&[]));
    fake.statement.key_id = other.key_id().into();
    fake.signature = b64(&other.sign(&fake.statement.bytes()).await.unwrap());
    rig.tamper.overwrite_seal(&fake).await;
    let rep = rig.verify(&t).await;
    let at2: Vec<Kind> = rep.findings.iter().filter(|f| f.seal == Some(2)).map(|f| f.kind).collect();
    assert!(at2.contains(&Kind::BadSignature) && at2.contains(&Kind::SealReplaced), "{:?}", rep.findings);
    // A forged signature (another seal's) on an unchanged statement.
    let (t, seals) = sealed(&rig, "seal-forged").await;
    let mut forged = seals[1].clone();
    forged.signature = seals[0].signature.clone();
    rig.tamper.overwrite_seal(&forged).await;
    let rep = rig.verify(&t).await;
    assert!(rep.findings.iter().any(|f| f.kind == Kind::BadSignature && f.seal == Some(1)), "{:?}", rep.findings);
    // The chain cut at its end: the digest copy still names the removed seal.
    let (t, seals) = sealed(&rig, "seal-truncated").await;
    let last = seals.last().unwrap().seq();
    rig.tamper.delete_seal(&t, last).await;
    let rep = rig.verify(&t).await;
    assert!(rep.findings.iter().any(|f| f.kind == Kind::SealMissing && f.seal == Some(last)), "{:?}", rep.findings);
    // Cut with its digest too: only the auditor's anchor from an earlier run shows it.
    let (t, seals) = sealed(&rig, "seal-anchor").await;
    let anchor = rig.verify(&t).await.last_seal.expect("sealed");
    let last = seals.last().unwrap().seq();
    rig.tamper.delete_seal(&t, last).await;
    rig.app.seal_blobs.delete(&crate::integrity::digest_key(&t, last).unwrap()).await.unwrap();
    let opts = Options { anchor: Some(anchor), ..Default::default() };
    let rep = rig.verify_with(&t, &opts).await;
    assert!(rep.findings.iter().any(|f| f.kind == Kind::SealMissing && f.seal == Some(last)), "{:?}", rep.findings);
}

pub async fn erasure_purge_hold_replay_and_crashes_raise_no_false_alarm(rig: Rig) {
    let t = tenant("no-false-alarm");
    stored(&rig, &t, 30).await;
    rig.seal(&t, 8192).await;
    // A DPO erasure of two contacts (as the erasure job does it).
    for id in ["r001", "r006"] {
        let r = rig.get(&t, id).await;
        let ids = crate::dpo::subject::identifiers(r.subject.as_ref().unwrap());
        let mut anon = anonymize(&r, &ids);
        crate::record::integrity::erase(&r, &mut anon, "erasure-1");
        rig.app.records.replace(&t, &anon).await.unwrap();
        let stored = serde_json::to_string(&rig.get(&t, id).await).unwrap();
        assert!(!stored.contains("@example.com") && !stored.contains("77712"), "{stored}");
    }
    let rep = rig.verify(&t).await;
    assert!(rep.ok(), "{:?}", kinds_of(&rep));
    let erased: Vec<(&str, &[String])> = rep.erased.iter().map(|e| (e.record.as_str(), e.jobs.as_slice())).collect();
    assert_eq!(erased, [("r001", &["erasure-1".to_owned()][..]), ("r006", &["erasure-1".to_owned()][..])]);
    let p = prove(&*rig.app.seals, &*rig.app.seal_blobs, &t, &rig.get(&t, "r001").await).await.unwrap();
    check(&p, &rig.get(&t, "r001").await, &rig.key().await).expect("an erased record still proves");
    assert_eq!(p.erased_by, ["erasure-1"]);

    // A legal hold: nothing purged, nothing flagged.
    let mut retention = crate::retention::Retention::default();
    retention.days.insert(Category::Contact, 7);
    retention.legal_hold = true;
    let put = |r: &crate::retention::Retention| serde_json::to_value(r).unwrap();
    rig.app.settings.put_setting(&t, crate::retention::SETTING, &put(&retention)).await.unwrap();
    let now = t0() + Duration::days(10);
    let a = &rig.app;
    let held = crate::retention::purge_tenant(a.purge_stores(), &t, now).await.unwrap();
    assert!(held.held && held.deleted.is_empty());
    let rep = rig.verify(&t).await;
    assert!(rep.ok() && rep.purged.is_empty(), "right after a held run: {:?}", kinds_of(&rep));
    // A retention purge of the contacts: sealed records gone, explained by the noted cutoff.
    retention.legal_hold = false;
    rig.app.settings.put_setting(&t, crate::retention::SETTING, &put(&retention)).await.unwrap();
    let purged = crate::retention::purge_tenant(a.purge_stores(), &t, now).await.unwrap();
    assert_eq!(purged.deleted.get(&Category::Contact), Some(&6), "{purged:?}");
    let rep = rig.verify(&t).await;
    assert!(rep.pending >= 1, "the purge's own record waits for the next seal");
    rig.seal(&t, 8192).await;
    let rep = rig.verify(&t).await;
    assert!(rep.ok() && rep.pending == 0, "{:?}", kinds_of(&rep));
    assert_eq!(rep.purged.get(&Category::Contact), Some(&6));
    // Deleting a record the purge did not cover is still found.
    rig.tamper.delete(&t, "r000").await;
    assert!(has(&rig.verify(&t).await, Kind::Deleted, Some("r000")));
}

/// A purge notes its cutoffs before deleting; verification reads the notes still pending in the
/// journal, so the purge is explained at once, not only after the next seal signs it.
pub async fn a_purge_is_explained_before_the_next_seal(rig: Rig) {
    let t = tenant("purge-pending");
    stored(&rig, &t, 30).await;
    rig.seal(&t, 8192).await;
    let mut retention = crate::retention::Retention::default();
    retention.days.insert(Category::Contact, 7);
    rig.app
        .settings
        .put_setting(&t, crate::retention::SETTING, &serde_json::to_value(&retention).unwrap())
        .await
        .unwrap();
    let a = &rig.app;
    let now = t0() + Duration::days(10);
    let purged = crate::retention::purge_tenant(a.purge_stores(), &t, now).await.unwrap();
    assert_eq!(purged.deleted.get(&Category::Contact), Some(&6), "{purged:?}");
    // Not sealed since: the notes are only in the journal.
    let rep = rig.verify(&t).await;
    assert!(rep.ok(), "{:?}", kinds_of(&rep));
    assert_eq!(rep.purged.get(&Category::Contact), Some(&6));
    assert!(rep.pending >= 1, "the purge's own record waits for the next seal");
    // A pending note explains only what it covers: another deletion is still named.
    rig.tamper.delete(&t, "r000").await;
    let rep = rig.verify(&t).await;
    assert_eq!(kinds_of(&rep), [(Kind::Deleted, Some("r000".to_owned()))]);
}

/// `Options.from/to` (`auditrail verify --from --to`) bound the records checked: a tampered
/// record outside the window is not named, one inside is.
pub async fn verify_from_to_checks_only_the_records_in_range(rig: Rig) {
    let t = tenant("verify-window");
    stored(&rig, &t, 30).await;
    rig.seal(&t, 8192).await;
    for id in ["r002", "r022"] {
        let mut r = rig.get(&t, id).await;
        r.action = "USER_LOGOUT".into();
        rig.tamper.overwrite(&r).await;
    }
    rig.tamper.delete(&t, "r004").await;
    rig.tamper.delete(&t, "r024").await;
    let at = |minutes| Some(t0() + Duration::minutes(minutes));
    let named = |rep: &Report| {
        let mut k = kinds_of(rep);
        k.sort();
        k
    };
    let id = |s: &str| Some(s.to_owned());
    let late = rig.verify_with(&t, &Options { from: at(10), to: at(30), ..Default::default() }).await;
    assert_eq!(named(&late), [(Kind::Modified, id("r022")), (Kind::Deleted, id("r024"))]);
    let early = rig.verify_with(&t, &Options { from: at(0), to: at(10), ..Default::default() }).await;
    assert_eq!(named(&early), [(Kind::Modified, id("r002")), (Kind::Deleted, id("r004"))]);
    assert!(early.records_checked < 30 && late.records_checked < 30);
    // Only `to`: from the start of the trail.
    let until = rig.verify_with(&t, &Options { to: at(3), ..Default::default() }).await;
    assert_eq!(named(&until), [(Kind::Modified, id("r002"))]);
    // The whole trail names all four.
    assert_eq!(rig.verify(&t).await.findings.len(), 4);
}

pub async fn a_sealer_killed_or_racing_never_breaks_the_chain(rig: Rig) {
    let t = tenant("sealer-crash");
    stored(&rig, &t, 20).await;
    // Killed after the seal item, before its digest: verification sees the missing digest; the
    // next run writes it and everything verifies.
    let s = rig.sealing(8192);
    let entries = rig.app.seals.journal(&t, None, None, 1000).await.unwrap();
    let leaves = crate::integrity::sealer::leaves_of(&*rig.app.seals, &t, &entries).await.unwrap();
    let hashes: Vec<_> = leaves.iter().map(|l| l.1).collect();
    let seal =
        crate::seal::make_seal(&*s.signer, None, &t, entries.last().unwrap().pos.clone(), &hashes, vec![], Utc::now())
            .await
            .unwrap();
    rig.app.seals.put_seal(&seal).await.unwrap();
    let rep = rig.verify(&t).await;
    assert_eq!(kinds_of(&rep), [(Kind::DigestMismatch, None)], "only the missing digest, no record named");
    let run = rig.seal(&t, 8192).await;
    assert_eq!((run.repaired, run.seals), (1, 0), "{run:?}");
    assert!(rig.verify(&t).await.ok());
    // A second seal of the same interval is refused: one seal per sequence number.
    assert!(matches!(rig.app.seals.put_seal(&seal).await, Err(crate::store::StoreError::Conflict(_))));
    // Two sealers at once over new records: one seal each interval, every record once.
    let more: Vec<Record> =
        (0..30).map(|i| rec(&t, &format!("m{i}"), 100 + i, "USER_LOGIN", "u", ResultCode::Ok)).collect();
    for c in more.chunks(3) {
        rig.app.records.append(&t, c).await.unwrap();
    }
    let (a, b) = if rig.atomic_conditions {
        tokio::join!(rig.seal(&t, 6), rig.seal(&t, 6))
    } else {
        // The emulator's conditions are not atomic (see `Rig`): one sealer after the other, so
        // the second finds every interval sealed.
        let a = rig.seal(&t, 6).await;
        (a, rig.seal(&t, 6).await)
    };
    let rep = rig.verify(&t).await;
    assert!(rep.ok(), "{:?} {a:?} {b:?}", kinds_of(&rep));
    assert_eq!((rep.records_checked, rep.pending), (50, 0), "{a:?} {b:?}");
}

/// `integrity_tests!(factory)`: one `#[tokio::test]` per check, each calling `factory().await`.
#[macro_export]
macro_rules! integrity_tests {
    ($factory:path) => {
        $crate::integrity_tests!(@emit $factory;
            an_honest_trail_verifies_and_proves_each_record,
            every_kind_of_record_tampering_is_named,
            every_kind_of_seal_tampering_is_named,
            erasure_purge_hold_replay_and_crashes_raise_no_false_alarm,
            a_purge_is_explained_before_the_next_seal,
            verify_from_to_checks_only_the_records_in_range,
            a_sealer_killed_or_racing_never_breaks_the_chain);
    };
    (@emit $factory:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::testkit::integrity::$check($factory().await).await;
            }
        )*
    };
}
