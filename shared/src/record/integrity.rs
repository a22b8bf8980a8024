//! Commitments that outlive erasure: each record carries a random key from the moment it is
//! stored; every personal value's salt is derived from it, and the record's leaf (what a seal's
//! Merkle tree covers) holds only the salted commitment of each personal value. A DPO erasure
//! replaces the value, keeps its commitment, keeps the salts of the values it did not change and
//! destroys the key — so the leaf, and every seal above it, still verify, while the erased value
//! can neither be read nor confirmed by guessing (without its salt no guess can be checked).
//!
//! Formats (docs/integrity.md):
//! - salt(p) = HMAC-SHA256(key, "auditrail/v1/salt" 0x00 p)[0..16], p the value's JSON pointer
//! - commitment(p) = SHA-256("auditrail/v1/commit" 0x00 salt(p) JCS(value))
//! - leaf data = JCS({"v":1, "batch": B, "record": R'}) where R' is the record's JSON without
//!   `integrity`, `occurred_at`/`received_at` as integer microseconds since the epoch, and every
//!   personal value replaced by `"c:" + base64(commitment)`; leaf hash = SHA-256(0x00 || data).

use std::collections::{BTreeMap, BTreeSet};

use hmac::Mac;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::merkle::{Hash, b64, canonical, leaf_hash, unb64};
use crate::record::Record;

/// The leaf format's version.
pub const VERSION: u64 = 1;

/// What a stored record carries so that it can be sealed and verified. Set by the store when the
/// record is appended (never by a client), changed only by a DPO erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    /// The append batch the record was stored in (its place in the tenant's journal).
    pub batch: String,
    /// Base64 of the record's 16-byte salt key; removed by a DPO erasure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// After an erasure: the salts of the personal values it kept, by JSON pointer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub salts: BTreeMap<String, String>,
    /// After an erasure: the commitments of the values it replaced, by JSON pointer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub erased: BTreeMap<String, Erased>,
}

/// A value a DPO erasure replaced: its commitment stays, the value and its salt are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Erased {
    /// Base64 of the value's commitment.
    pub commitment: String,
    /// The erasure job that replaced it.
    pub job: String,
}

/// Gives a record about to be stored its key and batch (a record that has them keeps them).
pub fn stamp(r: &mut Record, batch: &str) {
    if r.integrity.is_none() {
        let mut key = [0u8; 16];
        rand::rng().fill_bytes(&mut key);
        r.integrity = Some(Integrity {
            batch: batch.to_owned(),
            key: Some(b64(&key)),
            salts: BTreeMap::new(),
            erased: BTreeMap::new(),
        });
    }
}

/// Whether a field at the top of a record holds personal data (everything under it is committed).
fn personal_root(path: &[String]) -> bool {
    match path {
        [first, ..] if matches!(first.as_str(), "description" | "data" | "subject" | "failure_reason_code") => true,
        [actor, field, ..] if actor == "actor" => matches!(field.as_str(), "user_id" | "username" | "full_name"),
        [att, _, field, ..] if att == "attachments" => field == "name",
        _ => false,
    }
}

/// RFC 6901 pointer of a path.
fn pointer(path: &[String]) -> String {
    path.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect()
}

/// Every personal scalar of a record's JSON, by pointer, in document order.
fn personal_values(v: &Value) -> Vec<(String, Value)> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(k.clone());
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(i.to_string());
                    walk(x, path, out);
                    path.pop();
                }
            }
            scalar if personal_root(path) => out.push((pointer(path), scalar.clone())),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn salt_from_key(key: &[u8], ptr: &str) -> [u8; 16] {
    let mut m = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(b"auditrail/v1/salt\0");
    m.update(ptr.as_bytes());
    m.finalize().into_bytes()[..16].try_into().expect("16 bytes")
}

/// The salted commitment of one personal value.
pub fn commitment(salt: &[u8], value: &Value) -> Hash {
    let mut h = Sha256::new();
    h.update(b"auditrail/v1/commit\0");
    h.update(salt);
    h.update(canonical(value));
    h.finalize().into()
}

/// What re-deriving a stored record's leaf found.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub leaf: Hash,
    /// The batch the record says it was stored in.
    pub batch: String,
    /// Erasure jobs that anonymised values of this record.
    pub erased_by: BTreeSet<String>,
    /// What cannot be right whatever the seal says (a personal value without salt, an erased
    /// value that is no longer there, no integrity data at all).
    pub problems: Vec<String>,
}

/// The record's JSON as a leaf covers it: no `integrity`, times in microseconds.
fn leaf_body(r: &Record) -> Value {
    let mut v = serde_json::to_value(r).expect("a record serialises");
    if let Value::Object(m) = &mut v {
        m.remove("integrity");
        m.insert("occurred_at".into(), r.occurred_at.timestamp_micros().into());
        m.insert("received_at".into(), r.received_at.timestamp_micros().into());
    }
    v
}

fn set_at(v: &mut Value, ptr: &str, new: Value) {
    if let Some(slot) = v.pointer_mut(ptr) {
        *slot = new;
    }
}

/// Re-derives a stored record's leaf from what it holds now.
pub fn derive(r: &Record) -> Derived {
    let mut problems = Vec::new();
    let Some(int) = &r.integrity else {
        return Derived {
            leaf: [0; 32],
            batch: String::new(),
            erased_by: BTreeSet::new(),
            problems: vec!["the record carries no integrity data (not stored through the journal)".into()],
        };
    };
    let key = match int.key.as_deref().map(unb64) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(_)) => {
            problems.push("the record's salt key is not base64".into());
            None
        }
    };
    let mut body = leaf_body(r);
    let mut seen = BTreeSet::new();
    let mut erased_by = BTreeSet::new();
    for (ptr, value) in personal_values(&body) {
        let marker = if let Some(e) = int.erased.get(&ptr) {
            erased_by.insert(e.job.clone());
            seen.insert(ptr.clone());
            format!("c:{}", e.commitment)
        } else {
            let salt = match (&key, int.salts.get(&ptr)) {
                (_, Some(s)) => unb64(s).ok(),
                (Some(k), None) => Some(salt_from_key(k, &ptr).to_vec()),
                (None, None) => None,
            };
            match salt {
                Some(s) => format!("c:{}", b64(&commitment(&s, &value))),
                None => {
                    problems
                        .push(format!("{ptr}: a personal value without a salt (added after the record was stored)"));
                    "c:?".to_owned()
                }
            }
        };
        set_at(&mut body, &ptr, Value::String(marker));
    }
    for ptr in int.erased.keys().filter(|p| !seen.contains(*p)) {
        problems.push(format!("{ptr}: an erased value is no longer in the record"));
    }
    let doc = serde_json::json!({"v": VERSION, "batch": int.batch, "record": body});
    Derived { leaf: leaf_hash(&canonical(&doc)), batch: int.batch.clone(), erased_by, problems }
}

/// Moves a record's integrity data through a DPO erasure: `anon` is `original` with personal
/// values replaced. Each replaced value keeps its commitment (with the job), each kept value its
/// salt, and the key is destroyed; the leaf stays what it was.
pub fn erase(original: &Record, anon: &mut Record, job: &str) {
    let Some(int) = &original.integrity else { return };
    let key = int.key.as_deref().and_then(|k| unb64(k).ok());
    let before: BTreeMap<String, Value> = personal_values(&leaf_body(original)).into_iter().collect();
    let after: BTreeMap<String, Value> = personal_values(&leaf_body(anon)).into_iter().collect();
    let mut next =
        Integrity { batch: int.batch.clone(), key: None, salts: BTreeMap::new(), erased: int.erased.clone() };
    for (ptr, value) in &before {
        if next.erased.contains_key(ptr) {
            continue;
        }
        let salt = match (int.salts.get(ptr), &key) {
            (Some(s), _) => s.clone(),
            (None, Some(k)) => b64(&salt_from_key(k, ptr)),
            // A value without salt cannot be committed; verification names it either way.
            (None, None) => continue,
        };
        if after.get(ptr) == Some(value) {
            next.salts.insert(ptr.clone(), salt);
        } else {
            let c = commitment(&unb64(&salt).unwrap_or_default(), value);
            next.erased.insert(ptr.clone(), Erased { commitment: b64(&c), job: job.to_owned() });
        }
    }
    anon.integrity = Some(next);
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::record::{Actor, Category, Subject};

    fn record() -> Record {
        let at = Utc.with_ymd_and_hms(2026, 11, 3, 9, 30, 0).unwrap();
        let mut r =
            Record::system("acme", "CONTACT_CREATE", Actor::default(), None, json!({"note": "call +420 777 123 456"}));
        r.occurred_at = at;
        r.received_at = at;
        r.category = Category::Contact;
        r.actor = Actor { username: Some("jnovak".into()), full_name: Some("Jan Novák".into()), ..Default::default() };
        r.subject = Some(Subject {
            emails: vec!["eva@example.com".into()],
            phones: vec!["+420777123456".into()],
            first_name: Some("Eva".into()),
            last_name: Some("Svobodová".into()),
        });
        stamp(&mut r, "01JBATCH");
        r
    }

    #[test]
    fn every_personal_value_is_committed_and_nothing_else() {
        let r = record();
        let ptrs: Vec<String> = personal_values(&leaf_body(&r)).into_iter().map(|(p, _)| p).collect();
        for p in [
            "/actor/username",
            "/actor/full_name",
            "/description/note",
            "/subject/emails/0",
            "/subject/phones/0",
            "/subject/first_name",
            "/subject/last_name",
        ] {
            assert!(ptrs.contains(&p.to_owned()), "{p} in {ptrs:?}");
        }
        assert!(!ptrs.iter().any(|p| p.starts_with("/action") || p.starts_with("/id")), "{ptrs:?}");
        assert_eq!(pointer(&["a/b".into(), "c~d".into()]), "/a~1b/c~0d");
    }

    #[test]
    fn any_change_changes_the_leaf_and_a_stamp_is_not_repeated() {
        let r = record();
        let d = derive(&r);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(derive(&r.clone()).leaf, d.leaf, "deterministic");
        let mut again = r.clone();
        stamp(&mut again, "other");
        assert_eq!(again.integrity, r.integrity, "a stamped record keeps its key and batch");
        let changes: [fn(&mut Record); 9] = [
            |r| r.action = "CONTACT_DELETE".into(),
            |r| r.received_at += chrono::Duration::microseconds(1),
            |r| r.occurred_at -= chrono::Duration::days(1),
            |r| r.actor.full_name = Some("Jan Novak".into()),
            |r| r.subject.as_mut().unwrap().phones[0] = "+420777123457".into(),
            |r| r.description = Some(json!({"note": "call +420 777 123 456 "})),
            |r| r.integrity.as_mut().unwrap().batch = "01JOTHER".into(),
            |r| r.id = "another".into(),
            |r| r.source_ip = Some("10.0.0.1".into()),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut t = r.clone();
            change(&mut t);
            assert_ne!(derive(&t).leaf, d.leaf, "change {i} went unnoticed");
        }
        let mut keyless = r.clone();
        keyless.integrity.as_mut().unwrap().key = None;
        assert!(!derive(&keyless).problems.is_empty());
    }

    #[test]
    fn an_erasure_keeps_the_leaf_destroys_the_key_and_names_the_job() {
        let r = record();
        let leaf = derive(&r).leaf;
        let mut anon = r.clone();
        anon.subject = Some(Subject {
            emails: vec!["{Anonymized by DPO}".into()],
            phones: vec!["{Anonymized by DPO}".into()],
            first_name: Some("{Anonymized by DPO}".into()),
            last_name: Some("{Anonymized by DPO}".into()),
        });
        anon.description = Some(json!({"note": "call {Anonymized by DPO}"}));
        erase(&r, &mut anon, "job-1");
        let int = anon.integrity.as_ref().unwrap();
        assert!(int.key.is_none(), "the key is destroyed");
        assert_eq!(int.erased.len(), 5, "{:?}", int.erased.keys().collect::<Vec<_>>());
        assert!(int.salts.contains_key("/actor/username") && int.salts.contains_key("/actor/full_name"));
        let d = derive(&anon);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.leaf, leaf, "the erased record still gives the sealed leaf");
        assert_eq!(d.erased_by.into_iter().collect::<Vec<_>>(), ["job-1"]);
        // Nothing stored lets a guess of the erased phone be checked: no salt survives for it.
        let stored = serde_json::to_string(&anon).unwrap();
        let old_salt = b64(&salt_from_key(
            &unb64(r.integrity.as_ref().unwrap().key.as_ref().unwrap()).unwrap(),
            "/subject/phones/0",
        ));
        assert!(!stored.contains(&old_salt) && !stored.contains("777123456"));
        // A kept value changed afterwards is still caught.
        let mut t = anon.clone();
        t.actor.username = Some("someone".into());
        assert_ne!(derive(&t).leaf, leaf);
        // A second erasure (another person named in the same record) keeps the first one's marks.
        let mut twice = anon.clone();
        twice.actor.full_name = Some("{Anonymized by DPO}".into());
        erase(&anon, &mut twice, "job-2");
        let d2 = derive(&twice);
        assert_eq!(d2.leaf, leaf);
        assert_eq!(d2.erased_by.into_iter().collect::<Vec<_>>(), ["job-1", "job-2"]);
    }
}
