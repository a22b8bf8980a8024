//! `GET /v1/events`, `/v1/sign-ins` and session timelines: filters, paging, time zones.

use auditrail_shared::auth::Role;
use auditrail_tests::{TestApp, event};
use serde_json::{Value, json};

async fn seeded() -> (TestApp, String) {
    let app = TestApp::new().await;
    let mut recs: Vec<Value> = Vec::new();
    for i in 0..30 {
        let (action, user, result) = match i % 5 {
            0 => ("LOGIN", "alice", "OK"),
            1 => ("LOGIN_ERROR", "bob", "FAIL"),
            2 => ("CONVERSATION_SEARCH", "alice", "OK"),
            3 => ("EXPORT_EXECUTE", "carol", "UNAUTHORIZED"),
            _ => ("USER_LOGOUT", "bob", "OK"),
        };
        recs.push(event(&format!("e{i:02}"), 60 * i, action, user, result));
    }
    // Older than the default 10 days: only found with an explicit window.
    recs.push(event("old", 60 * 24 * 12, "LOGIN", "alice", "OK"));
    app.ingest("acme", &recs).await;
    let reader = app.token("acme", &[Role::ComplianceAnalyst]);
    (app, reader)
}

#[tokio::test]
async fn default_window_is_ten_days_newest_first() {
    let (app, t) = seeded().await;
    let r = app.get("/v1/events?limit=100&category=audit,sign_in", &t).await;
    let ids = r.ids();
    assert_eq!(ids.len(), 30);
    assert!(!ids.contains(&"old".to_string()));
    assert_eq!(ids.first().unwrap(), "e00");
    let from = chrono::DateTime::parse_from_rfc3339(r.body["from"].as_str().unwrap()).unwrap();
    let to = chrono::DateTime::parse_from_rfc3339(r.body["to"].as_str().unwrap()).unwrap();
    assert_eq!((to - from).num_days(), 10);
}

#[tokio::test]
async fn every_filter_narrows_the_log() {
    let (app, t) = seeded().await;
    let count = |q: &'static str| {
        let (app, t) = (&app, t.clone());
        async move {
            app.get(&format!("/v1/events?limit=100&{q}"), &t)
                .await
                .ids()
                .into_iter()
                .filter(|i| i.starts_with('e'))
                .count()
        }
    };
    assert_eq!(count("action=LOGIN").await, 6);
    assert_eq!(count("action=LOGIN&action=LOGIN_ERROR").await, 12);
    assert_eq!(count("user=alice").await, 12);
    assert_eq!(count("user=uid-bob").await, 0, "a user id only matches records without a username");
    assert_eq!(count("user=ALICE&action=CONVERSATION_SEARCH").await, 6);
    assert_eq!(count("result=FAIL").await, 6);
    assert_eq!(count("result=UNAUTHORIZED&user=carol").await, 6);
    assert_eq!(count("category=sign_in").await, 6 + 6);
    assert_eq!(count("q=conversation_search%20by%20alice").await, 6);
    let from = (chrono::Utc::now() - chrono::Duration::minutes(60 * 9 + 30)).to_rfc3339();
    let r = app.get(&format!("/v1/events?limit=100&from={}", urlencode(&from)), &t).await;
    assert_eq!(r.ids().iter().filter(|i| i.starts_with('e')).count(), 10);
    let old = app
        .get(
            &format!(
                "/v1/events?from={}&action=LOGIN&user=alice&limit=100",
                urlencode(&(chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339())
            ),
            &t,
        )
        .await;
    assert!(old.ids().contains(&"old".to_string()));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn paging_walks_every_record_once() {
    let (app, t) = seeded().await;
    let mut seen = Vec::new();
    let mut uri =
        "/v1/events?limit=7&action=LOGIN,LOGIN_ERROR,CONVERSATION_SEARCH,EXPORT_EXECUTE,USER_LOGOUT".to_string();
    let mut pages = 0;
    loop {
        let r = app.get(&uri, &t).await;
        assert_eq!(r.status.as_u16(), 200, "{:#}", r.body);
        seen.extend(r.ids());
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                uri = format!(
                    "/v1/events?limit=7&action=LOGIN,LOGIN_ERROR,CONVERSATION_SEARCH,EXPORT_EXECUTE,USER_LOGOUT&cursor={c}"
                )
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let want: Vec<String> = (0..30).map(|i| format!("e{i:02}")).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn cursors_are_tamper_proof_and_bound_to_filter_and_tenant() {
    let (app, t) = seeded().await;
    let first = app.get("/v1/events?limit=3&user=alice", &t).await;
    let c = first.body["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = c.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = app.get(&format!("/v1/events?limit=3&user=alice&cursor={tampered}"), &t).await;
    assert_eq!(r.assert_problem(400).error_fields(), vec!["cursor"]);
    let r = app.get(&format!("/v1/events?limit=3&user=bob&cursor={c}"), &t).await;
    assert_eq!(r.assert_problem(400).error_fields(), vec!["cursor"]);
    let other = app.token("globex", &[Role::ComplianceAnalyst]);
    let r = app.get(&format!("/v1/events?limit=3&user=alice&cursor={c}"), &other).await;
    assert_eq!(r.assert_problem(400).error_fields(), vec!["cursor"]);
}

#[tokio::test]
async fn times_render_in_the_viewers_zone() {
    let app = TestApp::new().await;
    let mut rec = event("tz1", 0, "LOGIN", "alice", "OK");
    rec["occurred_at"] =
        json!((chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    app.ingest("acme", &[rec.clone()]).await;
    let t = app.token("acme", &[Role::CcManager]);
    let r = app.get("/v1/events?tz=Asia/Tokyo", &t).await;
    let shown = r.items()[0]["occurred_at"].as_str().unwrap();
    assert!(shown.ends_with("+09:00"), "{shown}");
    let utc = chrono::DateTime::parse_from_rfc3339(rec["occurred_at"].as_str().unwrap()).unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(shown).unwrap(), utc);
    assert_eq!(r.body["tz"], "Asia/Tokyo");
}

#[tokio::test]
async fn bad_query_parameters_are_problems() {
    let (app, t) = seeded().await;
    for (q, field) in [
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
        ("tz=Europe/Atlantis", "tz"),
        ("action=NOPE", "action"),
        ("result=MAYBE", "result"),
        ("limit=5000", "limit"),
        ("category=calls", "category"),
        ("sort=asc", "sort"),
        ("from=yesterday", "from"),
        ("cursor=abc.def", "cursor"),
        ("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("period=1d", "period"),
    ] {
        let r = app.get(&format!("/v1/events?{q}"), &t).await;
        assert_eq!(r.assert_problem(400).error_fields(), vec![field], "{q}");
    }
}

#[tokio::test]
async fn sign_in_log_has_the_seed_columns_and_filters() {
    let app = TestApp::new().await;
    let mut recs = Vec::new();
    for (i, (action, result, emp)) in [
        ("SIGN_IN", "OK", "1001"),
        ("FORCIBLE_SIGN_OUT", "OK", "1001"),
        ("LOGIN_ERROR", "FAIL", "1002"),
        ("LOGOUT", "OK", "1002"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = event(&format!("s{i}"), 60 * 24 * i as i64 + 10, action, &format!("acc{emp}"), result);
        r["actor"]["employee_id"] = json!(emp);
        r["source_ip"] = json!("192.0.2.10");
        if result == "FAIL" {
            r["failure_reason_code"] = json!("AICC-10203");
        }
        recs.push(r);
    }
    recs.push(event("audit-only", 5, "CREATE_EVALUATION", "acc1001", "OK"));
    app.ingest("acme", &recs).await;
    let t = app.token("acme", &[Role::TenantAdmin]);

    let all = app.get("/v1/sign-ins?period=7d", &t).await;
    assert_eq!(all.ids(), vec!["s0", "s1", "s2", "s3"]);
    let row = &all.items()[2];
    assert_eq!(row["operation"], "Sign In");
    assert_eq!(row["result"], "Failed");
    assert_eq!(row["failure_reason_code"], "AICC-10203");
    assert_eq!(row["sign_in_ip"], "192.0.2.10");
    assert_eq!(row["account"], "acc1002");
    assert_eq!(app.get("/v1/sign-ins?period=1d", &t).await.ids(), vec!["s0"]);
    assert_eq!(app.get("/v1/sign-ins?period=3d&employee_id=1002", &t).await.ids(), vec!["s2"]);
    assert_eq!(app.get("/v1/sign-ins?period=7d&operation=Forcible%20Sign%20Out", &t).await.ids(), vec!["s1"]);
    assert_eq!(app.get("/v1/sign-ins?period=7d&result=Failed", &t).await.ids(), vec!["s2"]);
    assert_eq!(app.get("/v1/sign-ins?period=7d&account=acc1001", &t).await.ids(), vec!["s0", "s1"]);
    app.get("/v1/sign-ins?period=2d", &t).await.assert_problem(400);
}

#[tokio::test]
async fn cobrowse_session_timeline_is_oldest_first() {
    let app = TestApp::new().await;
    let mk = |id: &str, mins: i64, action: &str, kind: &str, data: Value| {
        let mut r = event(id, mins, action, "agent7", "OK");
        r.as_object_mut().unwrap().remove("result");
        r["session_id"] = json!("cb-1");
        r["actor"] = json!({"kind": kind});
        r["data"] = data;
        r
    };
    app.ingest(
        "acme",
        &[
            mk("c3", 1, "FORM", "customer", json!({"form": "checkout"})),
            mk("c1", 3, "PAGE-CHANGE", "customer", json!({"page": "/tariffs"})),
            mk("c2", 2, "CLICK", "agent", json!({"element": "#buy"})),
        ],
    )
    .await;
    let t = app.token("acme", &[Role::CcManager]);
    let r = app.get("/v1/sessions/cb-1/events", &t).await;
    assert_eq!(r.ids(), vec!["c1", "c2", "c3"]);
    assert_eq!(r.items()[1]["by"], "agent");
    assert_eq!(r.items()[0]["type"], "PAGE-CHANGE");
    assert_eq!(r.items()[0]["extra"]["page"], "/tariffs");
}

#[tokio::test]
async fn searches_are_themselves_audited() {
    let (app, t) = seeded().await;
    app.get("/v1/events?action=LOGIN&user=alice", &t).await;
    let r = app.get("/v1/events?action=AUDIT_SEARCH", &t).await;
    assert_eq!(r.items().len(), 1);
    let rec = &r.items()[0];
    assert_eq!(rec["result"], "OK");
    assert_eq!(rec["description"]["action"], "LOGIN");
    assert_eq!(rec["description"]["user"], "alice");
    assert_eq!(rec["actor"]["user_id"], "user-acme");
}

/// Every sign-in action of the catalogue (Huawei AICC, Keycloak, Eleveo QM, Chatvisor) sent with
/// its default category — `USER_LOGIN`, `USER_LOGOUT` and `LOGGED_IN` default to `audit` — is in
/// the sign-in log, under the operation the row shows, by account and employee id; and so is a
/// Keycloak `LOGIN` a client stored as `audit`.
#[tokio::test]
async fn every_sign_in_action_is_in_the_sign_in_log_whatever_its_category() {
    use auditrail_shared::record::catalogue;
    let app = TestApp::new().await;
    let actions = catalogue::sign_in_actions();
    for must in
        ["USER_LOGIN", "USER_LOGOUT", "LOGGED_IN", "LOGIN", "LOGOUT", "LOGIN_ERROR", "SIGN_IN", "FORCIBLE_SIGN_OUT"]
    {
        assert!(actions.contains(&must), "{must} is a sign-in action");
    }
    let mut recs: Vec<Value> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut r = event(&format!("si-{i}"), 10 + i as i64, a, "acc7", "OK");
            r["actor"]["employee_id"] = json!("7007");
            r
        })
        .collect();
    let mut as_audit = event("kc-audit", 5, "LOGIN", "acc8", "OK");
    as_audit["category"] = json!("audit");
    as_audit["actor"]["employee_id"] = json!("8008");
    recs.push(as_audit);
    recs.push(event("not-a-sign-in", 6, "CREATE_EVALUATION", "acc7", "OK"));
    app.ingest("acme", &recs).await;
    let t = app.token("acme", &[Role::ComplianceAnalyst]);

    let all = app.get("/v1/sign-ins?period=1d&limit=100", &t).await;
    let got: Vec<&str> = all.items().iter().map(|i| i["action"].as_str().unwrap()).collect();
    for a in actions {
        assert!(got.contains(a), "{a} is missing from the sign-in log: {got:?}");
    }
    assert_eq!(all.items().len(), actions.len() + 1, "{got:?}");
    assert!(!all.ids().contains(&"not-a-sign-in".to_string()));
    for row in all.items() {
        let action = row["action"].as_str().unwrap();
        assert_eq!(row["operation"], auditrail_shared::query::sign_in::operation_label(action));
        let op = row["operation"].as_str().unwrap().replace(' ', "%20");
        let by_op = app.get(&format!("/v1/sign-ins?period=1d&limit=100&operation={op}"), &t).await;
        assert!(by_op.ids().contains(&row["id"].as_str().unwrap().to_owned()), "{action} not under {op}");
    }
    let by_emp = app.get("/v1/sign-ins?period=1d&limit=100&employee_id=7007", &t).await;
    assert_eq!(by_emp.items().len(), actions.len(), "{:#}", by_emp.body);
    assert_eq!(app.get("/v1/sign-ins?period=1d&employee_id=8008", &t).await.ids(), vec!["kc-audit"]);
    assert_eq!(app.get("/v1/sign-ins?period=1d&account=acc8", &t).await.ids(), vec!["kc-audit"]);
    let page1 = app.get("/v1/sign-ins?period=1d&limit=5", &t).await;
    let c = page1.body["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/v1/sign-ins?period=1d&limit=100&cursor={c}"), &t).await;
    assert_eq!(page1.items().len() + page2.items().len(), actions.len() + 1);

    // An export of the sign-in view selects the same rows.
    let r = app
        .post_json("/v1/exports", &t, &json!({"filter": {"view": "sign-ins", "period": "1d"}, "compression": "none"}))
        .await;
    assert_eq!(r.status.as_u16(), 202, "{:#}", r.body);
}

/// Viewing a co-browsing session is on record with the session viewed.
#[tokio::test]
async fn a_session_view_records_the_session() {
    let app = TestApp::new().await;
    let t = app.token("acme", &[Role::CcManager]);
    app.get("/v1/sessions/cb-42/events", &t).await;
    app.get("/v1/sessions/cb-43/events?limit=5", &t).await;
    let views = app.get("/v1/events?action=SESSION_VIEW", &t).await;
    let sessions: Vec<&str> = views.items().iter().map(|v| v["description"]["session_id"].as_str().unwrap()).collect();
    assert_eq!(sessions, vec!["cb-43", "cb-42"]);
}

/// A rare text on a read budget (DynamoDB evaluates `q`, 10 items per page here): pages end short
/// with a cursor and `searched_until` in the viewer's zone, each further back, and following the
/// cursors finds exactly the matches, newest first. The embedded store answers in one page from
/// its text index, without `searched_until`.
#[tokio::test]
async fn a_rare_text_is_found_page_by_page_and_short_pages_say_how_far_they_searched() {
    let app = TestApp::new().await.with_read_budget(10);
    let recs: Vec<Value> = (0..60)
        .map(|i| {
            let mut r = event(&format!("t{i:02}"), 5 * i, "CONVERSATION_SEARCH", "alice", "OK");
            r["description"] = json!(if i % 25 == 3 { "invoice ČEZ-7 sent" } else { "routine" });
            r
        })
        .collect();
    app.ingest("acme", &recs).await;
    let t = app.token("acme", &[Role::ComplianceAnalyst]);
    let (mut found, mut short, mut pages, mut cursor) = (Vec::new(), Vec::new(), 0, None::<String>);
    loop {
        let uri = match &cursor {
            None => "/v1/events?q=%C4%8Dez-7&limit=5&tz=Europe/Prague".to_owned(),
            Some(c) => format!("/v1/events?q=%C4%8Dez-7&limit=5&tz=Europe/Prague&cursor={c}"),
        };
        let r = app.get(&uri, &t).await;
        assert_eq!(r.status, 200, "{:#}", r.body);
        pages += 1;
        found.extend(r.ids());
        if let Some(u) = r.body["searched_until"].as_str() {
            assert!(u.ends_with("+01:00"), "in the viewer's zone: {u}");
            short.push(chrono::DateTime::parse_from_rfc3339(u).unwrap());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 100, "the cursors must end");
    }
    assert_eq!(found, ["t03", "t28", "t53"], "every match, newest first, once");
    if auditrail_tests::backend() == "dynamodb" {
        assert!(short.len() >= 3, "60 records on a budget of 10: several short pages ({pages} pages)");
        assert!(short.windows(2).all(|w| w[1] <= w[0]), "each short page searched further back: {short:?}");
    } else {
        assert_eq!((pages, short.len()), (1, 0), "the embedded store needs no budget");
    }
}
