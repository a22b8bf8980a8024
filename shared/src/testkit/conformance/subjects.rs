//! The DPO subject index: written with a record, exact and prefix lookups, the window before the
//! limit, following a replacement, gone with a purge.

use std::sync::Arc;

use chrono::Duration;

use super::{FullStore, ids, rec, t0, tenant};
use crate::record::{Category, ResultCode};
use crate::store::StoreError;

/// The subject index is written with a record, follows a replacement and goes with a purge.
pub async fn subject_index_follows_its_records(store: Arc<dyn FullStore>) {
    use crate::record::Subject;
    use crate::record::subject::{ANONYMIZED, email_key, name_key, phone_key};
    let t = tenant("subjects");
    let mut contact = rec(&t, "c1", 0, "CONTACT", "agent", ResultCode::Ok);
    contact.category = Category::Contact;
    contact.subject = Some(Subject {
        emails: vec!["Jan@Example.com".into()],
        phones: vec!["+420 777 123 456".into()],
        first_name: Some("Jan".into()),
        last_name: Some("Novák".into()),
    });
    let mut entry = rec(&t, "d1", 1, "DIRECTORY_ENTRY", "agent", ResultCode::Ok);
    entry.category = Category::DirectoryEntry;
    entry.subject =
        Some(Subject { first_name: Some("jan".into()), last_name: Some("NOVÁK".into()), ..Default::default() });
    store.append(&t, &[contact.clone(), entry]).await.unwrap();
    let look = |key: String, prefix: bool| {
        let (store, t) = (store.clone(), t.clone());
        async move {
            let (found, stats) = store.subject_lookup(&t, &key, prefix, (None, None), 1000).await.unwrap();
            assert_eq!(stats.items_read, found.len() as u64, "one item read per hit");
            let mut ids: Vec<String> = found.into_iter().map(|r| r.id).collect();
            ids.sort();
            ids
        }
    };
    let email = email_key("jan@example.com").unwrap();
    assert_eq!(look(email.clone(), false).await, vec!["c1"]);
    assert_eq!(look("p:654321".into(), true).await, vec!["c1"], "the last six digits");
    assert_eq!(look(phone_key("777123456").unwrap(), true).await, vec!["c1"]);
    assert!(look(phone_key("777123456").unwrap(), false).await.is_empty(), "exact keys are exact");
    assert_eq!(look(name_key("Jan", "Novák").unwrap(), false).await, vec!["d1"], "contacts are not found by name");
    // The window applies in the lookup, before the limit: a limit of 0 still finds the one record
    // in the window (and tells "more" only when more are in it).
    let m = Duration::minutes(1);
    let (inside, _) = store.subject_lookup(&t, "p:654", true, (Some(t0()), Some(t0() + m)), 0).await.unwrap();
    assert_eq!(inside.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["c1"]);
    let (later, _) = store.subject_lookup(&t, &email, false, (Some(t0() + m), None), 1000).await.unwrap();
    assert!(later.is_empty(), "c1 occurred before the window");
    let (before, _) = store.subject_lookup(&t, &email, false, (None, Some(t0())), 1000).await.unwrap();
    assert!(before.is_empty(), "`to` is exclusive");
    assert!(store.subject_lookup(&tenant("other"), &email, false, (None, None), 10).await.unwrap().0.is_empty());

    let mut anon = contact.clone();
    anon.subject =
        Some(Subject { emails: vec![ANONYMIZED.into()], phones: vec![ANONYMIZED.into()], ..Default::default() });
    store.replace(&t, &anon).await.unwrap();
    assert!(look(email.clone(), false).await.is_empty());
    assert!(look("p:654321".into(), true).await.is_empty());
    assert_eq!(store.get(&t, "c1").await.unwrap().unwrap().subject, anon.subject);
    let mut ghost = anon.clone();
    ghost.id = "nope".into();
    assert!(matches!(store.replace(&t, &ghost).await, Err(StoreError::NotFound)));

    let gone = store.purge(&t, Category::DirectoryEntry, t0() + Duration::days(1), 100).await.unwrap();
    assert_eq!(ids(&gone), vec!["d1"]);
    assert!(look(name_key("Jan", "Novák").unwrap(), false).await.is_empty(), "purged with its record");
}

/// A record refused because its id is taken leaves no index entry of its own: a DPO search
/// finds the stored record alone, as stored, and a purge's look-up of an upload the refused
/// record named finds nothing (else its file were kept forever).
pub async fn a_refused_duplicate_leaves_no_subject_entry(store: Arc<dyn FullStore>) {
    use crate::record::subject::{email_key, upload_key};
    use crate::record::{Attachment, Subject};
    use crate::store::AppendOutcome;
    let t = tenant("refused");
    let subject =
        |emails: &[&str]| Some(Subject { emails: emails.iter().map(|e| (*e).into()).collect(), ..Default::default() });
    let mut stored = rec(&t, "c1", 0, "CONTACT", "agent", ResultCode::Ok);
    stored.category = Category::Contact;
    stored.subject = subject(&["jan@example.com"]);
    assert_eq!(store.append(&t, &[stored.clone()]).await.unwrap(), vec![AppendOutcome::Created]);
    // The same id sent again with other content: another subject, the same e-mail, an upload.
    let mut refused = stored.clone();
    refused.description = Some(serde_json::json!({"note": "sent again, changed"}));
    refused.subject = subject(&["jan@example.com", "eva@example.com"]);
    refused.attachments =
        vec![Attachment { blob: "rec-9".into(), name: "call.wav".into(), size: None, content_type: None, kind: None }];
    assert_eq!(store.append(&t, &[refused]).await.unwrap(), vec![AppendOutcome::Duplicate]);
    let look = |key: String| {
        let (store, t) = (store.clone(), t.clone());
        async move { store.subject_lookup(&t, &key, false, (None, None), 10).await.unwrap().0 }
    };
    let kept = store.get(&t, "c1").await.unwrap().expect("the first record stays");
    assert_eq!(kept.description, stored.description);
    assert_eq!(look(email_key("jan@example.com").unwrap()).await, vec![kept.clone()], "the stored record, as stored");
    assert!(look(email_key("eva@example.com").unwrap()).await.is_empty(), "only the refused record named her");
    assert!(look(upload_key("rec-9")).await.is_empty(), "nor is its upload named by anyone");
    // A replay of the very record stored is a duplicate too, and changes nothing.
    assert_eq!(store.append(&t, &[stored.clone()]).await.unwrap(), vec![AppendOutcome::Duplicate]);
    assert_eq!(look(email_key("jan@example.com").unwrap()).await, vec![kept]);
}
