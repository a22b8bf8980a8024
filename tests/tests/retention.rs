//! Retention settings, the purge, and the legal hold.

use std::sync::Arc;

use async_trait::async_trait;
use auditrail_shared::auth::Role;
use auditrail_shared::record::{Attachment, Category, ResultCode};
use auditrail_shared::retention::{PurgeStores, purge_all, purge_tenant};
use auditrail_shared::store::{BlobKey, EventFilter, StoreError, StoreResult};
use auditrail_tests::blobs::{BlobCall, BlobFaults, FaultyBlobs};
use auditrail_tests::logs::Logs;
use auditrail_tests::{TestApp, event};
use chrono::{Duration, Utc};
use serde_json::json;

async fn seeded() -> TestApp {
    let app = TestApp::new().await;
    // 5 days and 45 days old, in two categories.
    app.ingest(
        "acme",
        &[
            event("new-audit", 60 * 24 * 5, "CREATE_EVALUATION", "u", "OK"),
            event("old-audit", 60 * 24 * 45, "CREATE_EVALUATION", "u", "OK"),
            event("old-login", 60 * 24 * 45, "LOGIN", "u", "OK"),
        ],
    )
    .await;
    app.ingest("globex", &[event("globex-old", 60 * 24 * 45, "CREATE_EVALUATION", "u", "OK")]).await;
    app
}

async fn stored_ids(app: &TestApp, tenant: &str) -> Vec<String> {
    let f = EventFilter::window(Utc::now() - Duration::days(399), Utc::now() + Duration::days(1));
    let page = app
        .state
        .records
        .query(tenant, &f, auditrail_shared::store::PageRequest { limit: 1000, after: None })
        .await
        .unwrap();
    // Only the seeded records, not Auditrail's own audit of the test's calls.
    let mut ids: Vec<String> = page
        .records
        .into_iter()
        .filter(|r| matches!(r.action.as_str(), "CREATE_EVALUATION" | "LOGIN"))
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

async fn put_retention(app: &TestApp, token: &str, body: impl Into<String>) -> auditrail_tests::Resp {
    app.call("PUT", "/v1/settings/retention", Some(token), Some("application/json"), body.into()).await
}

async fn purge(app: &TestApp) {
    purge_all(app.state.purge_stores(), Utc::now()).await.unwrap();
}

#[tokio::test]
async fn defaults_are_documented_values_and_changes_are_audited() {
    let app = TestApp::new().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let r = app.get("/v1/settings/retention", &admin).await;
    assert_eq!(r.body["days"]["audit"], 400);
    assert_eq!(r.body["days"]["error_report"], 30);
    assert_eq!(r.body["legal_hold"], false);
    assert_eq!(r.body["export_archive_days"], 7);
    let put = put_retention(&app, &admin, json!({"days": {"audit": 30}, "legal_hold": true}).to_string()).await;
    assert_eq!(put.status.as_u16(), 200, "{:#}", put.body);
    assert_eq!(app.get("/v1/settings/retention", &admin).await.body["days"]["audit"], 30);
    let changes = app.get("/v1/events?action=RETENTION_CHANGE,LEGAL_HOLD_CHANGE", &admin).await;
    assert_eq!(changes.items().len(), 2);

    // Other tenants see their own (default) settings; readers cannot change them.
    let other = app.token("globex", &[Role::TenantAdmin]);
    assert_eq!(app.get("/v1/settings/retention", &other).await.body["days"]["audit"], 400);
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    put_retention(&app, &analyst, "{\"legal_hold\":false}").await.assert_problem(403);
    let bad =
        put_retention(&app, &admin, json!({"days": {"audit": 0, "calls": 3}, "legal_hold": false}).to_string()).await;
    assert_eq!(bad.assert_problem(400).error_fields(), vec!["days.audit", "days.calls"]);

    // What a body leaves out keeps its current value: lifting the hold alone keeps the 30 days
    // set above (it used to reset them to 400), and `null` is the default again.
    let longer = put_retention(&app, &admin, json!({"days": {"contact": 3000}}).to_string()).await;
    assert_eq!(longer.status, 200, "{:#}", longer.body);
    assert_eq!(longer.body["days"]["audit"], 30);
    assert_eq!(longer.body["legal_hold"], true);
    let lifted = put_retention(&app, &admin, json!({"legal_hold": false}).to_string()).await;
    assert_eq!(lifted.status, 200, "{:#}", lifted.body);
    let now = app.get("/v1/settings/retention", &admin).await.body;
    assert_eq!((now["days"]["audit"].clone(), now["days"]["contact"].clone()), (json!(30), json!(3000)));
    assert_eq!(now["legal_hold"], false);
    let reset = put_retention(&app, &admin, json!({"days": {"audit": null}}).to_string()).await;
    assert_eq!(reset.body["days"]["audit"], 400, "{:#}", reset.body);
    assert_eq!(reset.body["days"]["contact"], 3000);
    // A category given twice is refused rather than the last one silently taken.
    let twice = put_retention(&app, &admin, r#"{"days": {"audit": 30, "audit": 3000}}"#).await;
    assert_eq!(twice.assert_problem(400).error_fields(), vec!["days"]);
    assert_eq!(app.get("/v1/settings/retention", &admin).await.body["days"]["audit"], 400, "nothing changed");
}

#[tokio::test]
async fn records_older_than_the_retention_disappear_everywhere() {
    let app = seeded().await;
    let mut marked = event("old-marked", 60 * 24 * 50, "CREATE_EVALUATION", "u", "OK");
    marked["description"] = json!({"note": "purge-me-7f3a9c"});
    app.ingest("acme", &[marked]).await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    put_retention(&app, &admin, json!({"days": {"audit": 30}, "legal_hold": false}).to_string()).await;
    purge(&app).await;
    // Gone from every file of the store as soon as the purge returns (WAL included).
    let stored = app.everything_stored().await;
    let needle: &[u8] = b"purge-me-7f3a9c";
    assert!(!stored.windows(needle.len()).any(|w| w == needle), "purged text still stored");
    let ids = stored_ids(&app, "acme").await;
    assert!(ids.contains(&"new-audit".to_string()));
    assert!(!ids.contains(&"old-audit".to_string()), "older than 30 days: purged");
    assert!(ids.contains(&"old-login".to_string()), "sign-ins keep their own 400 days");
    assert!(app.state.records.get("acme", "old-audit").await.unwrap().is_none());
    let from = (Utc::now() - Duration::days(60)).to_rfc3339().replace('+', "%2B");
    let listed = app.get(&format!("/v1/events?from={from}&action=CREATE_EVALUATION"), &admin).await;
    assert_eq!(listed.ids(), vec!["new-audit"]);
    assert_eq!(stored_ids(&app, "globex").await, vec!["globex-old"], "another tenant's settings do not apply");
    let purges = app.get("/v1/events?action=RETENTION_PURGE", &admin).await;
    let purge = &purges.items()[0]["description"];
    assert_eq!(purge["deleted"]["audit"], 2);
    // What it removed, as the verifier reads it: the audit cutoff, 30 days back, and no other
    // category (sign-ins were kept).
    let cutoffs = purge["cutoffs"].as_array().unwrap();
    assert_eq!(cutoffs.len(), 1, "{cutoffs:?}");
    assert_eq!(cutoffs[0]["category"], "audit");
    let before: chrono::DateTime<Utc> = cutoffs[0]["before"].as_str().unwrap().parse().unwrap();
    assert!((before - (Utc::now() - Duration::days(30))).num_minutes().abs() < 5, "{before}");
    assert_eq!(purge["journal_batch"].as_str().map(str::len), Some(26), "the journal note's batch id");
}

#[tokio::test]
async fn a_legal_hold_keeps_everything() {
    let app = seeded().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    put_retention(&app, &admin, json!({"days": {"audit": 1, "sign_in": 1}, "legal_hold": true}).to_string()).await;
    purge(&app).await;
    assert_eq!(stored_ids(&app, "acme").await, vec!["new-audit", "old-audit", "old-login"]);
    put_retention(&app, &admin, json!({"days": {"audit": 1, "sign_in": 1}, "legal_hold": false}).to_string()).await;
    purge(&app).await;
    assert!(stored_ids(&app, "acme").await.is_empty(), "{:?}", stored_ids(&app, "acme").await);
}

/// An agent's error report of `days` ago (its blob stored): its id and blob key.
async fn error_report(app: &TestApp, days: i64) -> (String, BlobKey) {
    let agent = app.token("acme", &[Role::Agent]);
    let old = (Utc::now() - Duration::days(days)).to_rfc3339();
    let r =
        app.post_json("/v1/error-reports", &agent, &json!({"created_at": old, "username": "jdoe", "log": []})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let key = BlobKey::new("acme", "error-reports", &id).unwrap();
    (id, key)
}

#[tokio::test]
async fn purged_error_reports_lose_their_blob() {
    let app = TestApp::new().await;
    let (id, key) = error_report(&app, 40).await;
    assert!(app.state.blobs.get(&key).await.unwrap().is_some());
    purge(&app).await;
    assert!(app.state.blobs.get(&key).await.unwrap().is_none(), "30-day default: blob deleted");
    assert!(app.state.records.get("acme", &id).await.unwrap().is_none());
}

/// Blob deletes fail (S3 answering errors for a while).
struct DeletesFail;

#[async_trait]
impl BlobFaults for DeletesFail {
    async fn before(&self, call: BlobCall) -> StoreResult<()> {
        match call {
            BlobCall::Delete => {
                Err(StoreError::Backend(anyhow::anyhow!("S3 DeleteObject failed: InternalError (injected)")))
            }
            _ => Ok(()),
        }
    }
}

/// A purge whose blob deletes fail deletes no record that has one: the next run finds the error
/// report again and deletes its blob and then the record, so no blob is left that no record
/// points at. The other categories are purged meanwhile, and recorded.
#[tokio::test]
async fn a_blob_that_cannot_be_deleted_keeps_its_record_for_the_next_run() {
    let app = seeded().await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    put_retention(&app, &admin, json!({"days": {"audit": 30}, "legal_hold": false}).to_string()).await;
    let (id, key) = error_report(&app, 40).await;
    let failing = FaultyBlobs(Arc::clone(&app.state.blobs), DeletesFail);
    let s = &app.state;
    let (logs, guard) = Logs::capture();
    let err = purge_tenant(PurgeStores { blobs: &failing, ..s.purge_stores() }, "acme", Utc::now()).await.unwrap_err();
    drop(guard);
    assert!(err.to_string().contains("DeleteObject"), "{err}");
    // The line the template's alarm counts (`RetentionPurgeFailures`), naming tenant and category.
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
    let filter = template.lines().find_map(|l| l.trim().strip_prefix("FilterPattern: '{ $.message = \"")).unwrap();
    let alarmed = filter.split_once("*\"").unwrap().0;
    let errors = logs.at("ERROR");
    assert!(
        errors.iter().any(|l| {
            l["message"].as_str().unwrap().starts_with(alarmed)
                && l["tenant"] == "acme"
                && l["category"] == "error_report"
        }),
        "{alarmed}: {errors:#?}"
    );
    assert!(s.records.get("acme", &id).await.unwrap().is_some(), "the record stays while its blob does");
    assert!(s.blobs.get(&key).await.unwrap().is_some());
    assert!(s.records.get("acme", "old-audit").await.unwrap().is_none(), "another category is purged");
    let purges = app.get("/v1/events?action=RETENTION_PURGE", &admin).await;
    assert_eq!(purges.items()[0]["description"]["deleted"], json!({"audit": 1}), "and recorded");
    purge(&app).await;
    assert!(s.blobs.get(&key).await.unwrap().is_none());
    assert!(s.records.get("acme", &id).await.unwrap().is_none());
}

/// A record may not name an error report as its attachment (refused at ingest); one stored
/// naming it anyway (by a version before that check) is purged without the report's file, which
/// stays with its report until the report's own retention.
#[tokio::test]
async fn purging_a_record_that_names_an_error_report_keeps_the_report() {
    let app = TestApp::new().await;
    let (report, key) = error_report(&app, 2).await;
    let mut named = event("names-report", 60 * 24 * 500, "CREATE_EVALUATION", "u", "OK");
    named["attachments"] = json!([{"blob": report, "name": "r.json", "kind": "error_report"}]);
    let r = app.post_json("/v1/events", &app.token("acme", &[Role::Ingest]), &json!([named])).await;
    assert_eq!(r.body["items"][0]["errors"][0]["field"], "attachments[0].kind", "{:#}", r.body);
    let mut stored = auditrail_shared::testkit::conformance::rec(
        "acme",
        "names-report",
        0,
        "CREATE_EVALUATION",
        "u",
        ResultCode::Ok,
    );
    stored.occurred_at = Utc::now() - Duration::days(500);
    stored.attachments = vec![Attachment {
        blob: report.clone(),
        name: "r.json".into(),
        size: None,
        content_type: None,
        kind: Some("error_report".into()),
    }];
    app.state.records.append("acme", &[stored]).await.unwrap();
    purge(&app).await;
    assert!(app.state.records.get("acme", "names-report").await.unwrap().is_none(), "the old record is purged");
    assert!(app.state.blobs.get(&key).await.unwrap().is_some(), "the report it named keeps its file");
    let admin = app.token("acme", &[Role::TenantAdmin]);
    assert_eq!(app.get(&format!("/v1/error-reports/{report}"), &admin).await.status, http::StatusCode::OK);
}

/// One upload named by two records (a recording attached to a request and to its response):
/// purging the older keeps the file for the newer, whose download still works; purging the newer
/// too deletes it. An upload only the purged record names goes with it.
#[tokio::test]
async fn an_upload_two_records_name_is_kept_until_the_last_of_them_is_purged() {
    let app = seeded().await;
    let ingest = app.token("acme", &[Role::Ingest]);
    let upload = async |body: &'static str| {
        let r = app.call("POST", "/v1/attachments", Some(&ingest), Some("audio/wav"), body).await;
        assert_eq!(r.status, 201, "{:#}", r.body);
        r.body["blob"].as_str().unwrap().to_owned()
    };
    let (shared, own) = (upload("RIFF shared recording").await, upload("RIFF own recording").await);
    let naming = |id: &str, days: i64, blobs: &[&str]| {
        let mut e = event(id, 60 * 24 * days, "CREATE_EVALUATION", "u", "OK");
        e["attachments"] = blobs.iter().map(|b| json!({"blob": b, "name": "call.wav"})).collect();
        e
    };
    // att-old names its own upload twice (the same file under two names): deleted once.
    app.ingest("acme", &[naming("att-old", 50, &[&shared, &own, &own]), naming("att-new", 20, &[&shared])]).await;
    let admin = app.token("acme", &[Role::TenantAdmin]);
    put_retention(&app, &admin, json!({"days": {"audit": 30}}).to_string()).await;
    purge(&app).await;
    let stored =
        async |blob: &str| app.state.blobs.get(&BlobKey::new("acme", "attachments", blob).unwrap()).await.unwrap();
    assert!(app.state.records.get("acme", "att-old").await.unwrap().is_none(), "past its retention");
    assert!(stored(&own).await.is_none(), "named by the purged record alone: deleted with it");
    assert_eq!(stored(&shared).await.as_deref(), Some(&b"RIFF shared recording"[..]), "att-new still names it");
    let dpo = app.token("acme", &[Role::Dpo]);
    let (status, _, bytes) = app.raw("GET", "/v1/dpo/attachments/att-new/0", &dpo).await;
    assert_eq!((status.as_u16(), bytes.as_slice()), (200, &b"RIFF shared recording"[..]));

    put_retention(&app, &admin, json!({"days": {"audit": 10}}).to_string()).await;
    purge(&app).await;
    assert!(app.state.records.get("acme", "att-new").await.unwrap().is_none());
    assert!(stored(&shared).await.is_none(), "the last record naming it is gone: so is the file");
}

/// Stored settings that cannot be read stop that tenant's purge: the defaults could delete what
/// a longer retention or a legal hold keeps (they were taken silently before).
#[tokio::test]
async fn unreadable_settings_purge_nothing() {
    let app = seeded().await;
    let s = &app.state;
    s.settings
        .put_setting("acme", auditrail_shared::retention::SETTING, &json!({"days": "all", "legal_hold": true}))
        .await
        .unwrap();
    let err = purge_tenant(s.purge_stores(), "acme", Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");
    assert!(s.records.get("acme", "old-audit").await.unwrap().is_some());
    // The admin is told, and told how to mend it: a partial update cannot be merged over them,
    // complete settings replace them.
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let r = app.get("/v1/settings/retention", &admin).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("PUT complete settings"), "{}", r.body);
    let r = put_retention(&app, &admin, json!({"legal_hold": false}).to_string()).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let kept = s.settings.get_setting("acme", auditrail_shared::retention::SETTING).await.unwrap();
    assert_eq!(kept, Some(json!({"days": "all", "legal_hold": true})), "a refused update changes nothing");
    let days: serde_json::Map<String, serde_json::Value> =
        Category::ALL.iter().map(|c| (c.as_str().to_owned(), json!(30))).collect();
    let complete = json!({"days": days, "legal_hold": false, "export_archive_days": 3});
    let r = put_retention(&app, &admin, complete.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["days"]["audit"].clone(), r.body["export_archive_days"].clone()), (json!(30), json!(3)));
    assert_eq!(app.get("/v1/settings/retention", &admin).await.body, r.body);
    let trail = app.get("/v1/events?action=RETENTION_CHANGE", &admin).await;
    let change = &trail.body["items"][0]["description"];
    assert_eq!(change["old"], json!(null), "{}", trail.body);
    assert_eq!(change["old_unreadable"], json!({"days": "all", "legal_hold": true}), "what was replaced, as stored");
    let hold = app.get("/v1/events?action=LEGAL_HOLD_CHANGE", &admin).await;
    assert_eq!(hold.body["items"][0]["description"]["legal_hold"], json!(false), "{}", hold.body);
    purge(&app).await;
    assert!(s.records.get("acme", "old-audit").await.unwrap().is_none(), "the purge runs again");
    // Settings stored before a category existed keep its default for it.
    s.settings
        .put_setting("acme", auditrail_shared::retention::SETTING, &json!({"days": {"audit": 1000}}))
        .await
        .unwrap();
    let r = app.get("/v1/settings/retention", &admin).await;
    assert_eq!((r.body["days"]["audit"].clone(), r.body["days"]["sign_in"].clone()), (json!(1000), json!(400)));
    assert_eq!((r.body["legal_hold"].clone(), r.body["export_archive_days"].clone()), (json!(false), json!(7)));
}
