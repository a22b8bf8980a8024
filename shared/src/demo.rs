//! A realistic multi-tenant demo data set built from the seeds' vocabulary: Keycloak and Huawei
//! sign-ins (some failed, some forced), Eleveo QM asynchronous request pairs, Chatvisor calls and
//! co-browsing sessions, importer events without a user, and denied calls.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::record::{Actor, ActorKind, Category, Phase, Record, ResultCode};
use crate::store::{RecordStore, StoreResult};

pub const TENANTS: [&str; 2] = ["acme-contact", "globex-care"];

const PEOPLE: [(&str, &str, &str); 6] = [
    ("jana.novak", "Jana Novák", "10017"),
    ("li.wei", "Li Wei", "10023"),
    ("maria.garcia", "María García", "10031"),
    ("olga.ivanova", "Ольга Иванова", "10042"),
    ("sato.yuki", "佐藤 由紀", "10058"),
    ("tom.baker", "Tom Baker", "10064"),
];

const QM_ASYNC: [&str; 5] =
    ["CONVERSATION_SEARCH", "CONVERSATION_BY_ID", "EXPORT_EXECUTE", "AUDIT_SEARCH", "CONVERSATION_EVENT_TAG_ADD"];
const QM_SYNC: [&str; 6] =
    ["CREATE_EVALUATION", "COMPLETE_EVALUATION", "ACCESS_MEDIA", "TAB_OPENED", "EDIT_QUESTIONAIRE", "SEND_FEEDBACK"];
const PAGES: [&str; 3] = ["/checkout", "/account", "/tariffs"];
const COBROWSE: [&str; 6] = ["CLICK", "SCROLL", "INPUT", "FORM", "PAGE-CHANGE", "SELECTION"];

fn base(tenant: &str, rng: &mut StdRng, at: DateTime<Utc>, action: &str, who: usize) -> Record {
    let (username, full_name, employee) = PEOPLE[who];
    let mut r = Record::system(
        tenant,
        action,
        Actor {
            user_id: Some(format!("u-{employee}")),
            username: Some(username.to_owned()),
            employee_id: Some(employee.to_owned()),
            full_name: Some(full_name.to_owned()),
            role: Some(if who.is_multiple_of(3) { "supervisor" } else { "agent" }.to_owned()),
            kind: Some(ActorKind::User),
        },
        Some(ResultCode::Ok),
        json!({"userId": format!("u-{employee}")}),
    );
    r.id = format!("demo-{}", ulid::Ulid::from_parts(at.timestamp_millis() as u64, rng.random()));
    r.occurred_at = at;
    r.source_ip = Some(format!("10.20.{}.{}", who + 1, rng.random_range(2..250)));
    r
}

/// About `per_tenant` records for each demo tenant over the last 9 days.
pub fn records(now: DateTime<Utc>, per_tenant: usize) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(0xA0D1);
    let mut out = Vec::new();
    for tenant in TENANTS {
        let mut n = 0;
        while n < per_tenant {
            let at = now - Duration::seconds(rng.random_range(60..9 * 86_400));
            let who = rng.random_range(0..PEOPLE.len());
            match rng.random_range(0..10) {
                0..=2 => {
                    // Sign-ins from both seed products, some failed or forced.
                    let action = ["LOGIN", "SIGN_IN", "LOGOUT", "SIGN_OUT", "FORCIBLE_SIGN_OUT", "LOGIN_ERROR"]
                        [rng.random_range(0..6)];
                    let mut r = base(tenant, &mut rng, at, action, who);
                    r.category = Category::SignIn;
                    if action == "LOGIN_ERROR" || rng.random_bool(0.05) {
                        r.result = Some(ResultCode::Fail);
                        r.failure_reason_code = Some(
                            ["invalid_user_credentials", "AICC-10203", "user_disabled"][rng.random_range(0..3)].into(),
                        );
                    }
                    out.push(r);
                    n += 1;
                }
                3..=4 => {
                    // An asynchronous QM request: start without result, end with one, a delay between.
                    let action = QM_ASYNC[rng.random_range(0..QM_ASYNC.len())];
                    let corr = format!("req-{}", ulid::Ulid::from_parts(at.timestamp_millis() as u64, rng.random()));
                    let mut start = base(tenant, &mut rng, at, action, who);
                    start.phase = Some(Phase::Start);
                    start.result = None;
                    start.correlation_id = Some(corr.clone());
                    start.description =
                        Some(json!({"userId": start.actor.user_id, "query": "agent:li.wei AND duration>60"}));
                    out.push(start);
                    if rng.random_bool(0.97) {
                        let delay = if rng.random_bool(0.05) {
                            rng.random_range(5_000..60_000)
                        } else {
                            rng.random_range(40..900)
                        };
                        let mut end = base(tenant, &mut rng, at + Duration::milliseconds(delay), action, who);
                        end.phase = Some(Phase::End);
                        end.correlation_id = Some(corr);
                        end.result = Some(if rng.random_bool(0.9) { ResultCode::Ok } else { ResultCode::Fail });
                        out.push(end);
                        n += 1;
                    }
                    n += 1;
                }
                5..=6 => {
                    let action = QM_SYNC[rng.random_range(0..QM_SYNC.len())];
                    let mut r = base(tenant, &mut rng, at, action, who);
                    if rng.random_bool(0.04) {
                        r.result = Some(ResultCode::Unauthorized);
                    }
                    r.description =
                        Some(json!({"userId": r.actor.user_id, "evaluationId": rng.random_range(1000..9999)}));
                    out.push(r);
                    n += 1;
                }
                7 => {
                    // A co-browsing session: the agent joins, then customer and agent events.
                    let session = format!("cb-{}", ulid::Ulid::from_parts(at.timestamp_millis() as u64, rng.random()));
                    let mut live = base(tenant, &mut rng, at, "LIVE_VIEW", who);
                    live.data = Some(json!({"sessionID": session}));
                    out.push(live);
                    for step in 0..rng.random_range(4..12) {
                        let action = COBROWSE[rng.random_range(0..COBROWSE.len())];
                        let mut r = base(tenant, &mut rng, at + Duration::seconds(5 * (step + 1)), action, who);
                        r.category = Category::Cobrowse;
                        r.result = None;
                        r.session_id = Some(session.clone());
                        if rng.random_bool(0.6) {
                            r.actor = Actor { kind: Some(ActorKind::Customer), ..Default::default() };
                        } else {
                            r.actor.kind = Some(ActorKind::Agent);
                        }
                        r.data = Some(match action {
                            "PAGE-CHANGE" => json!({"page": PAGES[rng.random_range(0..3)]}),
                            "SCROLL" => json!({"scroll_position": rng.random_range(0..4000), "element": "body"}),
                            "INPUT" => json!({"element": "#iban", "text": "••••"}),
                            _ => json!({"element": format!("#btn-{}", rng.random_range(1..20))}),
                        });
                        out.push(r);
                        n += 1;
                    }
                }
                8 => {
                    let action =
                        ["START_CALL", "MESSENGER_SEND", "ROLE_CHANGE", "SETTINGS_CHANGE"][rng.random_range(0..4)];
                    let mut r = base(tenant, &mut rng, at, action, who);
                    r.data = Some(
                        json!({"callID": format!("call-{}", rng.random_range(10000..99999)), "customerID": format!("c-{}", rng.random_range(100..999))}),
                    );
                    out.push(r);
                    n += 1;
                }
                _ => {
                    // User importer: no user, no username (seed 004).
                    let action = ["DELETE_IMPORTED_USERS", "ACTION_PUSHER_SYNC", "UPDATE_USER_EXTENSION"]
                        [rng.random_range(0..3)];
                    let mut r = base(tenant, &mut rng, at, action, who);
                    r.actor = Actor { kind: Some(ActorKind::Importer), ..Default::default() };
                    r.source_ip = None;
                    r.description = Some(json!({"source": "ldap-import", "count": rng.random_range(1..40)}));
                    out.push(r);
                    n += 1;
                }
            }
        }
    }
    out
}

/// Loads the demo set (idempotent: the ids are deterministic per run of `records`).
pub async fn load(store: &dyn RecordStore, now: DateTime<Utc>, per_tenant: usize) -> StoreResult<usize> {
    let recs = records(now, per_tenant);
    let mut created = 0;
    for tenant in TENANTS {
        let mine: Vec<Record> = recs.iter().filter(|r| r.tenant_id == tenant).cloned().collect();
        for chunk in mine.chunks(1000) {
            created += store
                .append(tenant, chunk)
                .await?
                .iter()
                .filter(|o| **o == crate::store::AppendOutcome::Created)
                .count();
        }
    }
    Ok(created)
}
