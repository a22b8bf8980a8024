//! The DPO: personal-data search (seed 002's rules), the CSV report, audited downloads, and
//! erasure that leaves no identifier anywhere in the store.

use auditrail_shared::auth::Role;
use auditrail_tests::{TestApp, event};
use serde_json::{Value, json};

const EMAIL: &str = "Jana.Novakova@Example.CZ";
const PHONE: &str = "+420 777-123-456";
const DIGITS: &str = "420777123456";

fn personal(id: &str, action: &str, minutes_ago: i64, subject: Value, extra: Value) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let mut r = json!({"id": id, "occurred_at": at.to_rfc3339(), "action": action, "result": "OK",
        "actor": {"user_id": "agent-7", "username": "agent.seven", "full_name": "Agent Seven", "kind": "agent"},
        "subject": subject});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

/// acme's data; globex holds the same person (`same_person`) or another one.
async fn seeded_with(same_person: bool) -> (TestApp, String) {
    let app = TestApp::new().await;
    // A recording uploaded by the telephony integration.
    let ingest = app.token("acme", &[Role::Ingest]);
    let up = app
        .call("POST", "/v1/attachments", Some(&ingest), Some("audio/wav"), format!("RIFF recording of {EMAIL}"))
        .await;
    assert_eq!(up.status, 201, "{:#}", up.body);
    let blob = up.body["blob"].as_str().unwrap().to_owned();
    let subject = json!({"emails": [EMAIL], "phones": [PHONE], "first_name": "Jana", "last_name": "Nováková"});
    app.ingest("acme", &[
        personal("c1", "CONTACT", 60, subject.clone(), json!({
            "description": {"channel": "email", "body": format!("Dear agent, please call me at {PHONE}. Jana Nováková")},
            "attachments": [{"blob": blob, "name": "call-2026-11-24.wav", "size": 40, "kind": "recording", "content_type": "audio/wav"}]})),
        personal("c2", "CONTACT", 120, json!({"phones": ["777123456"]}), json!({"description": "inbound call"})),
        personal("d1", "DIRECTORY_ENTRY", 300, json!({"first_name": " jana ", "last_name": "NOVÁKOVÁ", "emails": ["other@example.cz"]}), json!({})),
        personal("k1", "CAMPAIGN_CUSTOMER", 400, json!({"phones": ["00420777123456"]}), json!({"data": {"campaign": "Winter", "status": "called"}})),
        personal("s1", "CONSENT", 500, json!({"phones": [PHONE]}), json!({"data": {"value": 1}})),
        personal("x1", "CONTACT", 30, json!({"phones": ["+420 608 555 111"]}), json!({})),
    ]).await;
    if same_person {
        // A contact with her name but another number: a name search must not find it.
        app.ingest(
            "acme",
            &[personal(
                "n1",
                "CONTACT",
                90,
                json!({"first_name": "Jana", "last_name": "Nováková", "phones": ["+1 555 0100"]}),
                json!({}),
            )],
        )
        .await;
    }
    // An audit record that names her (a QM evaluation note).
    let mut audit = event("a1", 20, "CREATE_EVALUATION", "supervisor", "OK");
    audit["description"] = json!({"note": format!("evaluated the call with {EMAIL}")});
    audit["subject"] = json!({"emails": [EMAIL]});
    app.ingest("acme", &[audit]).await;
    let other = if same_person {
        subject
    } else {
        json!({"emails": ["Other.Person@example.com"], "phones": ["+49 30 1234 5678"]})
    };
    app.ingest("globex", &[personal("g1", "CONTACT", 60, other, json!({}))]).await;
    (app, blob)
}

async fn seeded() -> (TestApp, String) {
    seeded_with(true).await
}

fn dpo(app: &TestApp, tenant: &str) -> String {
    app.token(tenant, &[Role::Dpo])
}

fn ids(r: &Value) -> Vec<String> {
    auditrail_tests::dpo_hits(r)
}

#[tokio::test]
async fn phone_email_and_name_searches_follow_the_seed() {
    let (app, _) = seeded().await;
    let tok = dpo(&app, "acme");
    let search = |body: Value| {
        let (app, tok) = (&app, tok.clone());
        async move { app.post_json("/v1/dpo/searches", &tok, &body).await }
    };
    let phone_hits = vec!["c1", "c2", "k1", "s1"];
    for phone in ["777123456", "(777) 123 456", "123456"] {
        let r = search(json!({"phone": phone})).await;
        assert_eq!(r.status, 200, "{phone}: {:#}", r.body);
        assert_eq!(ids(&r.body), phone_hits, "{phone}");
    }
    // By default every digit given counts: the 12-digit number does not match the 9-digit one.
    let r = search(json!({"phone": PHONE})).await;
    assert_eq!(ids(&r.body), vec!["c1", "k1", "s1"]);
    // The last 6 digits of a full number.
    let r = search(json!({"phone": PHONE, "phone_digits": 6})).await;
    assert_eq!(ids(&r.body), phone_hits);
    let r = search(json!({"phone": "12"})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["phone"]);
    assert!(r.body["errors"][0]["reason"].as_str().unwrap().contains("at least 3"));
    search(json!({"phone": PHONE, "phone_digits": 2})).await.assert_problem(400);

    let r = search(json!({"email": "jana.novakova@example.cz"})).await;
    assert_eq!(ids(&r.body), vec!["a1", "c1"], "case-insensitive; the audit record that names her too");
    assert_eq!(r.body["groups"]["audit_records"][0]["id"], "a1");

    let r = search(json!({"first_name": "Jana"})).await;
    r.assert_problem(400);
    assert_eq!(r.error_fields(), vec!["last_name"]);
    // Names find directory entries, never contacts (n1 and c1 have the same name).
    let r = search(json!({"first_name": "JANA", "last_name": "nováková"})).await;
    assert_eq!(ids(&r.body), vec!["d1"]);
    assert_eq!(r.body["counts"]["directory_entries"], 1);

    // OR of e-mail and phone: both sets.
    let r = search(json!({"email": EMAIL, "phone": "777123456"})).await;
    assert_eq!(ids(&r.body), vec!["a1", "c1", "c2", "k1", "s1"]);
    assert_eq!(r.body["counts"]["consents"], 1);
    assert_eq!(r.body["groups"]["contacts"][0]["attachments"][0]["download"], "/v1/dpo/attachments/c1/0");
    // A time span.
    let from = (chrono::Utc::now() - chrono::Duration::minutes(200)).to_rfc3339();
    let r = search(json!({"phone": "777123456", "from": from})).await;
    assert_eq!(ids(&r.body), vec!["c1", "c2"]);

    // Other tenants never see acme's records (globex holds the same person once); only the
    // dpo role searches.
    let r = app.post_json("/v1/dpo/searches", &dpo(&app, "globex"), &json!({"phone": "777123456"})).await;
    assert_eq!(ids(&r.body), vec!["g1"]);
    let r = app.post_json("/v1/dpo/searches", &dpo(&app, "globex"), &json!({"email": EMAIL})).await;
    assert_eq!(ids(&r.body), vec!["g1"]);
    let analyst = app.token("acme", &[Role::ComplianceAnalyst, Role::TenantAdmin]);
    app.post_json("/v1/dpo/searches", &analyst, &json!({"email": EMAIL})).await.assert_problem(403);
}

#[tokio::test]
async fn more_than_1000_hits_asks_to_narrow_the_search() {
    let app = TestApp::new().await;
    for chunk in (0..1001).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| personal(&format!("s{i}"), "CONSENT", 10, json!({"phones": ["+420 777 999 000"]}), json!({})))
            .collect();
        app.ingest("acme", &batch).await;
    }
    let r = app.post_json("/v1/dpo/searches", &dpo(&app, "acme"), &json!({"phone": "777999000"})).await;
    r.assert_problem(422);
    assert!(r.body["detail"].as_str().unwrap().contains("more specifically"), "{:#}", r.body);
    assert!(r.body.get("groups").is_none(), "no partial dump");
}

#[tokio::test]
async fn the_report_has_the_selected_items_and_downloads_are_recorded() {
    let (app, _) = seeded().await;
    let tok = dpo(&app, "acme");
    let (status, headers, csv) = {
        let body = json!({"search": {"phone": "777123456"}, "exclude_groups": ["consents"], "exclude_items": ["c2"]});
        let r = app.call("POST", "/v1/dpo/reports", Some(&tok), Some("application/json"), body.to_string()).await;
        (r.status, r.content_type, r.body)
    };
    assert_eq!(status, 200);
    assert!(headers.starts_with("text/csv"));
    let csv = csv.as_str().unwrap().to_owned();
    assert!(csv.starts_with("Group,ID,Time,Category,Activity,E-mails,Phones"), "{csv}");
    let rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("contacts,") || l.starts_with("campaign_customers,") || l.starts_with("consents,"))
        .collect();
    assert_eq!(rows.len(), 2, "c1 and k1 only: {csv}");
    assert!(csv.contains("call-2026-11-24.wav (40 bytes)"));

    let (status, _, bytes) = app.raw("GET", "/v1/dpo/attachments/c1/0", &tok).await;
    assert_eq!(status, 200);
    assert!(bytes.starts_with(b"RIFF"));
    let (status, _, _) = app.raw("GET", "/v1/dpo/attachments/c1/0", &dpo(&app, "globex")).await;
    assert_eq!(status, 404, "another tenant's record");
    let f = auditrail_shared::store::EventFilter::window(
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let page = app
        .state
        .records
        .query("acme", &f, auditrail_shared::store::PageRequest { limit: 1000, after: None })
        .await
        .unwrap();
    let audits: Vec<_> = page.records.iter().filter(|r| r.action.starts_with("DPO_")).collect();
    assert!(audits.iter().any(|r| r.action == "DPO_REPORT"));
    assert!(audits.iter().any(|r| r.action == "DPO_DOWNLOAD"));
    let text = serde_json::to_string(&audits).unwrap();
    assert!(
        !text.contains("777123456") && !text.to_lowercase().contains("novakova"),
        "criteria only as hashes: {text}"
    );
}

#[tokio::test]
async fn erasure_leaves_no_identifier_anywhere_in_the_store() {
    let (app, _) = seeded_with(false).await;
    let tok = dpo(&app, "acme");
    // An error report naming her number, and an export that contains her contact.
    let agent = app.token("acme", &[Role::Agent]);
    let report = json!({"created_at": chrono::Utc::now().to_rfc3339(), "username": "agent.seven", "reason": "dropped call",
        "dialed_numbers": [PHONE], "caller_ids": [{"number": PHONE, "name": "Jana Nováková"}], "log": []});
    let up = app.post_json("/v1/error-reports", &agent, &report).await;
    assert_eq!(up.status, 201, "{:#}", up.body);
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let exp = app
        .post_json("/v1/exports", &analyst, &json!({"filter": {"category": "contact"}, "compression": "none"}))
        .await;
    let export_id = exp.body["id"].as_str().unwrap().to_owned();
    app.state.export_worker("t").run_pending().await.unwrap();
    let unrelated = app.post_json("/v1/exports", &analyst, &json!({"filter": {"action": "LOGIN"}})).await;
    app.state.export_worker("t").run_pending().await.unwrap();

    let found = app
        .post_json(
            "/v1/dpo/searches",
            &tok,
            &json!({"email": EMAIL, "phone": "777123456", "first_name": "Jana", "last_name": "Nováková"}),
        )
        .await;
    let items = ids(&found.body);
    assert!(
        items.contains(&up.body["id"].as_str().unwrap().to_owned()),
        "the error report is found by its caller id: {items:?}"
    );
    assert_eq!(found.body["counts"]["error_reports"], 1);
    // Another tenant's id is refused, nothing queued.
    let r = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": ["g1"]})).await;
    r.assert_problem(400);
    let r = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": items})).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.state.erasure_worker("t").run_pending().await.unwrap(), 1);
    let done = app.get(&format!("/v1/dpo/erasures/{id}"), &tok).await;
    assert_eq!(done.body["status"], "SUCCEEDED", "{:#}", done.body);
    assert_eq!(done.body["result"]["anonymized"], items.len());
    assert_eq!(done.body["result"]["attachments_deleted"], 1);
    assert_eq!(done.body["result"]["error_reports_deleted"], 1);
    assert_eq!(done.body["result"]["exports_deleted"], json!([export_id]));
    let u = app.get(&format!("/v1/exports/{}", unrelated.body["id"].as_str().unwrap()), &analyst).await;
    assert_eq!(u.body["status"], "SUCCEEDED", "an export without her records stays");

    // Nothing is found any more; the anonymised records say so.
    let again = app
        .post_json(
            "/v1/dpo/searches",
            &tok,
            &json!({"email": EMAIL, "phone": "777123456", "first_name": "Jana", "last_name": "Nováková"}),
        )
        .await;
    assert_eq!(again.body["count"], 0, "{:#}", again.body);
    let c1 = app.state.records.get("acme", "c1").await.unwrap().unwrap();
    assert_eq!(c1.subject.as_ref().unwrap().emails, vec!["{Anonymized by DPO}"]);
    assert_eq!(c1.description.as_ref().unwrap()["body"], "{Anonymized by DPO}");
    let a1 = app.state.records.get("acme", "a1").await.unwrap().unwrap();
    assert_eq!(a1.description.as_ref().unwrap()["note"], "evaluated the call with {Anonymized by DPO}");

    // Byte level: the whole store (database file after a checkpoint and the blob folder, or the
    // emulator's table and bucket) holds none of her identifiers.
    let all = app.everything_stored().await;
    let lower = String::from_utf8_lossy(&all).to_lowercase();
    for needle in ["jana.novakova@example.cz", DIGITS, "777123456", "777-123-456", "nováková", "jana"] {
        if let Some(at) = lower.find(needle) {
            let ctx: String = lower[at.saturating_sub(300)..].chars().take(600).collect();
            panic!("`{needle}` is still stored somewhere: …{ctx}…");
        }
    }
    assert!(lower.contains("{anonymized by dpo}"));
    // Another tenant's person is untouched.
    let r = app.post_json("/v1/dpo/searches", &dpo(&app, "globex"), &json!({"phone": "+49 30 1234 5678"})).await;
    assert_eq!(ids(&r.body), vec!["g1"]);
}

#[tokio::test]
async fn large_attachments_go_straight_to_s3_through_a_presigned_put() {
    let app = TestApp::new().await;
    let agent = app.token("acme", &[Role::Agent]);
    let r = app.post_json("/v1/attachments/upload-url", &agent, &json!({})).await;
    if auditrail_tests::backend() == "sqlite" {
        r.assert_problem(409);
        assert!(r.body["detail"].as_str().unwrap().contains("/v1/attachments"));
        return;
    }
    assert_eq!(r.status, 201, "{:#}", r.body);
    let (blob, url) = (r.body["blob"].as_str().unwrap().to_owned(), r.body["url"].as_str().unwrap().to_owned());
    assert!(url.contains(&format!("tenants/acme/attachments/{blob}")) && url.contains("X-Amz-Expires=900"), "{url}");
    let put = reqwest::Client::new()
        .put(&url)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    app.ingest(
        "acme",
        &[personal(
            "big1",
            "CONTACT",
            5,
            json!({"phones": ["+420 111 222 333"]}),
            json!({"attachments": [{"blob": blob, "name": "long-call.wav", "kind": "recording"}]}),
        )],
    )
    .await;
    let (status, _, bytes) = app.raw("GET", "/v1/dpo/attachments/big1/0", &dpo(&app, "acme")).await;
    assert_eq!(status, 200);
    assert_eq!(bytes.len(), 3 * 1024 * 1024);
}

#[tokio::test]
async fn the_report_neutralises_formula_cells() {
    let app = TestApp::new().await;
    let subject = json!({"phones": ["+420 777 888 999"], "first_name": "=1+2", "last_name": "@cmd"});
    app.ingest("acme", &[personal("f1", "CONTACT", 10, subject, json!({"description": "\tTAB", "data": {"v": 1}}))])
        .await;
    let body = json!({"search": {"phone": "777888999"}});
    let r =
        app.call("POST", "/v1/dpo/reports", Some(&dpo(&app, "acme")), Some("application/json"), body.to_string()).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let text = r.body.as_str().unwrap().to_owned();
    let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let row = rows.iter().find(|r| r[col("ID")] == "f1").expect("f1 in the report");
    assert_eq!(row[col("Phones")], "'+420 777 888 999");
    assert_eq!(row[col("First name")], "'=1+2");
    assert_eq!(row[col("Last name")], "'@cmd");
    assert_eq!(row[col("Description")], "'\tTAB");
}

/// Runs one erasure of `items` to its end and returns its status view.
async fn erase(app: &TestApp, tok: &str, items: &[&str]) -> Value {
    let r = app.post_json("/v1/dpo/erasures", tok, &json!({"items": items})).await;
    assert_eq!(r.status, 202, "{:#}", r.body);
    app.state.erasure_worker("t").run_pending().await.unwrap();
    let done = app.get(&format!("/v1/dpo/erasures/{}", r.body["id"].as_str().unwrap()), tok).await;
    assert_eq!(done.body["status"], "SUCCEEDED", "{:#}", done.body);
    done.body
}

/// The stored archive of export `id` of acme, if any.
async fn archive(app: &TestApp, id: &str) -> Option<axum::body::Bytes> {
    use auditrail_shared::jobs::TaskKind;
    let t = app.state.tasks.get_task("acme", TaskKind::Export, id).await.unwrap().unwrap();
    let b: auditrail_shared::export::ExportBody = t.body().unwrap();
    app.state.blobs.get(&auditrail_shared::export::archive_key(&t, &b.spec).unwrap()).await.unwrap()
}

/// The status view of export `id`.
async fn export_status(app: &TestApp, tok: &str, id: &str) -> Value {
    app.get(&format!("/v1/exports/{id}"), tok).await.body
}

#[tokio::test]
async fn erasure_takes_only_search_hits_counts_what_changed_and_deletes_only_archives_that_held_them() {
    let (app, _) = seeded_with(false).await;
    let tok = dpo(&app, "acme");
    app.ingest("acme", &[event("plain", 10, "CREATE_EVALUATION", "supervisor", "OK")]).await;

    // Items that are no hit of any DPO search are refused, each with its reason; nothing queued.
    let r = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": ["c1", "nope", "plain", "g1"]})).await;
    r.assert_problem(400);
    let errors = r.body["errors"].as_array().unwrap();
    let reason = |field: &str| {
        errors
            .iter()
            .find(|e| e["field"] == field)
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(r.error_fields(), vec!["items[1]", "items[2]", "items[3]"], "{:#}", r.body);
    assert_eq!(reason("items[1]"), "no such record");
    assert!(reason("items[2]").contains("not a hit of any DPO search"), "{}", reason("items[2]"));
    assert_eq!(reason("items[3]"), "no such record", "another tenant's record is not there");
    let queued = app.state.tasks.active_tasks(auditrail_shared::jobs::TaskKind::Erasure, 10).await.unwrap();
    assert!(queued.is_empty(), "a refused request queues nothing");

    // Three finished exports by two analysts: her contacts, her directory entry, and logins.
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let other_analyst =
        app.state.auth.mint("acme", "user-other", Some("other"), &[Role::ComplianceAnalyst], 600).unwrap();
    let mut exports = Vec::new();
    for (tok, filter) in [
        (&analyst, json!({"category": "contact"})),
        (&other_analyst, json!({"category": "directory_entry"})),
        (&other_analyst, json!({"action": "LOGIN"})),
    ] {
        let e = app.post_json("/v1/exports", tok, &json!({"filter": filter, "compression": "none"})).await;
        assert_eq!(e.status, 202, "{:#}", e.body);
        exports.push(e.body["id"].as_str().unwrap().to_owned());
    }
    app.state.export_worker("t").run_pending().await.unwrap();
    for id in &exports {
        assert_eq!(export_status(&app, &analyst, id).await["status"], "SUCCEEDED");
    }

    // Erasing her contact changes one record and deletes only the archive that held it.
    let done = erase(&app, &tok, &["c1"]).await;
    let result = &done["result"];
    assert_eq!(result["anonymized"], 1, "{result:#}");
    assert_eq!(result["unchanged"], 0);
    assert_eq!(result["attachments_deleted"], 1);
    assert_eq!(result["exports_deleted"], json!([exports[0]]), "{result:#}");
    let gone = export_status(&app, &analyst, &exports[0]).await;
    assert_eq!(gone["status"], "EXPIRED");
    assert!(gone["error"].as_str().unwrap().contains(done["id"].as_str().unwrap()), "{gone:#}");
    for id in &exports[1..] {
        assert_eq!(export_status(&app, &analyst, id).await["status"], "SUCCEEDED", "{id} did not hold her contact");
    }
    assert!(archive(&app, &exports[0]).await.is_none(), "the archive that held her contact is deleted");
    assert!(archive(&app, &exports[1]).await.is_some(), "the other analyst's archive is still there");

    // Erasing it again is refused with the reason.
    let again = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": ["c1"]})).await;
    again.assert_problem(400);
    assert_eq!(again.body["errors"][0]["reason"], "already anonymised by a DPO erasure");

    // Two erasures of the same record asked for before either runs: the second changes nothing
    // and says so.
    let a = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": ["d1"]})).await;
    let b = app.post_json("/v1/dpo/erasures", &tok, &json!({"items": ["d1"]})).await;
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (202, 202));
    app.state.erasure_worker("t").run_pending().await.unwrap();
    let mut results = Vec::new();
    for id in [&a.body["id"], &b.body["id"]] {
        let s = app.get(&format!("/v1/dpo/erasures/{}", id.as_str().unwrap()), &tok).await;
        assert_eq!(s.body["status"], "SUCCEEDED", "{:#}", s.body);
        results
            .push((s.body["result"]["anonymized"].as_u64().unwrap(), s.body["result"]["unchanged"].as_u64().unwrap()));
    }
    results.sort();
    assert_eq!(results, vec![(0, 1), (1, 0)], "one erasure changed d1, the other found nothing left");
    assert_eq!(export_status(&app, &analyst, &exports[1]).await["status"], "EXPIRED", "d1's archive is deleted once");
}

#[tokio::test]
async fn identifiers_typed_into_searches_and_exports_are_found_by_the_dpo_and_erased() {
    let app = TestApp::new().await;
    let analyst = app.token("acme", &[Role::ComplianceAnalyst]);
    let admin = app.token("acme", &[Role::TenantAdmin]);
    let mail = "Max.Muster@Example.org";
    // An analyst looks for a person in the audit log and the sign-in log, and exports.
    let r = app.get("/v1/events?q=max.muster%40example.org", &analyst).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = app.get("/v1/sign-ins?account=Max%20Muster", &analyst).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = app.get("/v1/events?q=%2B49%2030%20123%20456", &analyst).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let exp = app.post_json("/v1/exports", &analyst, &json!({"filter": {"q": mail}, "compression": "none"})).await;
    assert_eq!(exp.status, 202, "{:#}", exp.body);
    let export_id = exp.body["id"].as_str().unwrap().to_owned();
    let sched = app
        .post_json(
            "/v1/export-schedules",
            &admin,
            &json!({"name": "watch", "every": "1h", "window": "yesterday", "filter": {"user": mail}}),
        )
        .await;
    assert_eq!(sched.status, 201, "{:#}", sched.body);
    let schedule_id = sched.body["id"].as_str().unwrap().to_owned();

    // The DPO finds those self-audit records by her e-mail, her name and her number.
    let tok = dpo(&app, "acme");
    let found = app
        .post_json(
            "/v1/dpo/searches",
            &tok,
            &json!({"email": "max.muster@example.org", "first_name": "Max", "last_name": "Muster", "phone": "30 123 456"}),
        )
        .await;
    assert_eq!(found.status, 200, "{:#}", found.body);
    let actions: Vec<&str> = found.body["groups"]["audit_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["record"]["action"].as_str().unwrap())
        .collect();
    for a in ["AUDIT_SEARCH", "SIGN_IN_SEARCH", "DATA_EXPORT_CREATE", "DATA_EXPORT_CHANGED"] {
        assert!(actions.contains(&a), "{a} found: {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "AUDIT_SEARCH").count(), 2, "the e-mail and the number: {actions:?}");

    // Erasing them scrubs the records and the filters of the export and the schedule.
    let items = ids(&found.body);
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let done = erase(&app, &tok, &items).await;
    assert_eq!(done["result"]["anonymized"], items.len(), "{done:#}");
    let mut scrubbed: Vec<String> = serde_json::from_value(done["result"]["filters_scrubbed"].clone()).unwrap();
    scrubbed.sort();
    let mut expected = vec![export_id.clone(), schedule_id.clone()];
    expected.sort();
    assert_eq!(scrubbed, expected);
    let e = app.get(&format!("/v1/exports/{export_id}"), &analyst).await;
    assert_eq!(e.body["filter"]["q"], "{Anonymized by DPO}", "{:#}", e.body);
    let list = app.get("/v1/export-schedules", &admin).await;
    let s = list.items().iter().find(|s| s["id"] == schedule_id.as_str()).expect("the schedule stays");
    assert_eq!(s["filter"]["user"], "{Anonymized by DPO}", "{s:#}");
    let again = app.post_json("/v1/dpo/searches", &tok, &json!({"email": mail})).await;
    assert_eq!(again.body["count"], 0, "{:#}", again.body);

    // Nowhere in the store, in any file, right after the job (no checkpoint by the test).
    let all = String::from_utf8_lossy(&app.everything_stored().await).to_lowercase();
    for needle in ["max.muster", "max muster", "30 123 456"] {
        assert!(!all.contains(needle), "`{needle}` is still stored");
    }
}
