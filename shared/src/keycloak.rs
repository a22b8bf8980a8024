//! Keycloak's own event JSON in: the user-event and admin-event representations that Keycloak's
//! admin REST API returns (`GET /admin/realms/{realm}/events`, `/admin-events`) and that event
//! listeners forward, mapped to records.
//!
//! | Keycloak | record |
//! |---|---|
//! | `id` | `id`, the idempotency key (a replay is a duplicate); without one, or one that is not a valid id, `kc-` + 32 hex digits of the SHA-256 of the event's JSON |
//! | `time` (ms since the epoch) | `occurred_at` |
//! | user event `type` | `action` when the catalogue has it under Keycloak, else `custom:keycloak.TYPE` (stored, and counted in `unknown_types`) |
//! | admin event `operationType` + `resourceType` | `action` `ADMIN_{RESOURCE}_{OPERATION}` (e.g. `ADMIN_USER_CREATE`), else `custom:keycloak.admin.RESOURCE.OPERATION` |
//! | `error` (or a type ending in `_ERROR`) | `result` FAIL, `failure_reason_code` = `error`; else OK |
//! | `userId` / `authDetails.userId` | `actor.user_id` |
//! | `details.username` | `actor.username` |
//! | `sessionId` | `session_id` |
//! | `ipAddress` / `authDetails.ipAddress` | `source_ip` |
//! | `realmId`, `realmName`, `clientId`, the original type, `resourcePath` | `data.keycloak` |
//! | `details` | `description` (a JSON object, so `q` searches it) |
//! | `details.email`, `previous_email`, `updated_email`, an e-mail `username`; `first_name` / `last_name` (or `updated_…`) | `subject`, so a DPO search finds the record |
//! | admin `representation` | `data.keycloak.representation` only when the tenant's `keycloak` setting allows it (off by default: it can hold a whole user) |
//!
//! `LOGIN`, `LOGIN_ERROR` and `LOGOUT` are sign-ins (seed 003) when the event names the account
//! (`details.username`); without it (a logout often carries only the user id) they are stored
//! as `audit`, which the catalogue allows for them.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{FieldError, json_field_error};
use crate::record::catalogue::{self, Source};
use crate::record::{Actor, ActorKind, Category, IncomingRecord, ResultCode, Subject};
use crate::store::{SettingsStore, StoreError, StoreResult};

/// The tenant setting that governs what of a Keycloak event is kept.
pub const SETTING: &str = "keycloak";

/// A tenant's Keycloak settings, as stored, set and returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeycloakSettings {
    /// Keep an admin event's `representation` (the created or updated object, e.g. a whole user
    /// with e-mail and attributes) in `data.keycloak.representation`. Off by default.
    #[serde(default)]
    pub store_representation: bool,
}

/// The tenant's Keycloak settings (defaults until a tenant admin sets them).
pub async fn load(settings: &dyn SettingsStore, tenant: &str) -> StoreResult<KeycloakSettings> {
    match settings.get_setting(tenant, SETTING).await? {
        None => Ok(KeycloakSettings::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("keycloak setting: {e}"))),
    }
}

/// Keycloak's `EventRepresentation`. Unknown fields are ignored: Keycloak adds some in new
/// versions.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserEvent {
    time: i64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    realm_id: Option<String>,
    #[serde(default)]
    realm_name: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    ip_address: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    details: Option<Map<String, Value>>,
}

/// Keycloak's `AdminEventRepresentation`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdminEvent {
    time: i64,
    #[serde(default)]
    realm_id: Option<String>,
    #[serde(default)]
    realm_name: Option<String>,
    #[serde(default)]
    auth_details: Option<AuthDetails>,
    operation_type: String,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    resource_path: Option<String>,
    #[serde(default)]
    representation: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    details: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthDetails {
    #[serde(default)]
    realm_id: Option<String>,
    #[serde(default)]
    realm_name: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    ip_address: Option<String>,
}

/// One Keycloak event mapped to an incoming record, and the Keycloak type the catalogue did not
/// know (stored as a custom action).
#[derive(Debug)]
pub struct Mapped {
    pub record: IncomingRecord,
    pub unknown_type: Option<String>,
}

/// Maps one event (a user or an admin event, told apart by `operationType`); a malformed event
/// is refused with its field named.
pub fn map_event(raw: &RawValue, settings: &KeycloakSettings) -> Result<Mapped, Vec<FieldError>> {
    let probe: Value = serde_json::from_str(raw.get()).map_err(|e| vec![FieldError::new("event", e.to_string())])?;
    let Some(obj) = probe.as_object() else {
        return Err(vec![FieldError::new("event", "a Keycloak event is a JSON object")]);
    };
    let id = event_id(obj.get("id"), raw);
    if obj.contains_key("operationType") {
        let ev: AdminEvent = parse(raw)?;
        Ok(map_admin(ev, id, settings))
    } else if obj.contains_key("type") {
        let ev: UserEvent = parse(raw)?;
        Ok(map_user(ev, id))
    } else {
        Err(vec![FieldError::new(
            "type",
            "neither a Keycloak user event (`type`) nor an admin event (`operationType`)",
        )])
    }
}

fn parse<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, Vec<FieldError>> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| vec![json_field_error(e, "event")])
}

/// Keycloak's id when it is a usable record id (a UUID in every version that sets one), else a
/// digest of the event itself, so a replay of the same event is still a duplicate.
fn event_id(id: Option<&Value>, raw: &RawValue) -> String {
    match id.and_then(Value::as_str) {
        Some(id)
            if (1..=128).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')) =>
        {
            id.to_owned()
        }
        _ => {
            let digest = Sha256::digest(raw.get().trim().as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("kc-{hex}")
        }
    }
}

/// `time` (ms since the epoch) as RFC 3339; one out of chrono's range is left for the record's
/// validation to refuse (as a time before 2000).
fn occurred_at(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The catalogue's Keycloak action of that name, if it has one.
fn known(name: &str) -> bool {
    catalogue::lookup(name).is_some_and(|d| d.source == Source::Keycloak)
}

/// A Keycloak name made safe for the custom namespace (letters, digits, `_ . -`, ≤ 64 after
/// `custom:`).
fn custom(parts: &[&str]) -> String {
    let name: String = std::iter::once("keycloak")
        .chain(parts.iter().copied())
        .collect::<Vec<_>>()
        .join(".")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
        .take(64)
        .collect();
    format!("{}{name}", catalogue::CATALOGUE_CUSTOM_PREFIX)
}

fn text(details: &Map<String, Value>, key: &str) -> Option<String> {
    details.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The person an event is about, from its details (and an admin event's kept representation).
fn subject_of(details: &Map<String, Value>, username: Option<&str>) -> Option<Subject> {
    let mut emails: Vec<String> = ["email", "previous_email", "updated_email"]
        .iter()
        .filter_map(|k| text(details, k))
        .chain(username.filter(|u| u.contains('@')).map(str::to_owned))
        .filter(|e| e.split('@').count() == 2 && !e.starts_with('@') && !e.ends_with('@') && e.len() <= 254)
        .collect();
    emails.sort();
    emails.dedup();
    let first_name = text(details, "first_name").or_else(|| text(details, "updated_first_name"));
    let last_name = text(details, "last_name").or_else(|| text(details, "updated_last_name"));
    let s = Subject { emails, phones: Vec::new(), first_name, last_name };
    (s != Subject::default()).then_some(s)
}

fn non_empty(m: Map<String, Value>) -> Option<Value> {
    (!m.is_empty()).then_some(Value::Object(m))
}

/// `{key: value}` of the present values.
fn keycloak_data(pairs: &[(&str, Option<&str>)]) -> Map<String, Value> {
    pairs.iter().filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::String(v.to_owned())))).collect()
}

fn map_user(ev: UserEvent, id: String) -> Mapped {
    let kind = ev.kind.trim().to_owned();
    let unknown = !known(&kind);
    let action = if unknown { custom(&[&kind]) } else { kind.clone() };
    let failed = ev.error.is_some() || kind.ends_with("_ERROR");
    let details = ev.details.unwrap_or_default();
    let username = text(&details, "username");
    let subject = subject_of(&details, username.as_deref());
    // A sign-in needs the account; without it the catalogue's `audit` alternative keeps the event.
    let category = (catalogue::is_sign_in(&action) && username.is_none()).then_some(Category::Audit);
    let mut kc = keycloak_data(&[
        ("type", Some(&kind)),
        ("realm_id", ev.realm_id.as_deref()),
        ("realm_name", ev.realm_name.as_deref()),
        ("client_id", ev.client_id.as_deref()),
    ]);
    if let Some(e) = &ev.error {
        kc.insert("error".to_owned(), Value::String(e.clone()));
    }
    Mapped {
        record: IncomingRecord {
            id: Some(id),
            occurred_at: occurred_at(ev.time),
            category,
            action,
            actor: Some(Actor { user_id: ev.user_id, username, kind: Some(ActorKind::User), ..Default::default() }),
            result: Some(if failed { ResultCode::Fail } else { ResultCode::Ok }),
            phase: None,
            correlation_id: None,
            source_ip: ev.ip_address,
            session_id: ev.session_id,
            failure_reason_code: if failed { ev.error.or(Some("error".to_owned())) } else { None },
            description: non_empty(details),
            data: Some(json!({ "keycloak": kc })),
            subject,
            attachments: Vec::new(),
        },
        unknown_type: unknown.then_some(kind),
    }
}

fn map_admin(ev: AdminEvent, id: String, settings: &KeycloakSettings) -> Mapped {
    let op = ev.operation_type.trim().to_owned();
    let resource = ev.resource_type.as_deref().map(str::trim).unwrap_or("").to_owned();
    let name = format!("ADMIN_{resource}_{op}");
    let unknown = resource.is_empty() || !known(&name);
    let action = if unknown { custom(&["admin", &resource, &op]) } else { name };
    let auth = ev.auth_details.unwrap_or_default();
    let mut kc = keycloak_data(&[
        ("operation_type", Some(&op)),
        ("resource_type", (!resource.is_empty()).then_some(resource.as_str())),
        ("resource_path", ev.resource_path.as_deref()),
        ("realm_id", ev.realm_id.as_deref()),
        ("realm_name", ev.realm_name.as_deref()),
        ("auth_realm_id", auth.realm_id.as_deref()),
        ("auth_realm_name", auth.realm_name.as_deref()),
        ("client_id", auth.client_id.as_deref()),
    ]);
    if let Some(e) = &ev.error {
        kc.insert("error".to_owned(), Value::String(e.clone()));
    }
    let mut details = ev.details.unwrap_or_default();
    let mut subject = subject_of(&details, None);
    if settings.store_representation
        && let Some(rep) = ev.representation
    {
        // Keycloak sends the object as a JSON string; kept parsed when it parses.
        let rep = serde_json::from_str::<Value>(&rep).unwrap_or(Value::String(rep));
        if let Some(obj) = rep.as_object() {
            let named = |k: &str| obj.get(k).and_then(Value::as_str).map(|s| (k.to_owned(), s.to_owned()));
            let from_rep: Map<String, Value> = ["email", "firstName", "lastName", "username"]
                .iter()
                .filter_map(|k| named(k))
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        "firstName" => "first_name",
                        "lastName" => "last_name",
                        other => other,
                    };
                    (key.to_owned(), Value::String(v))
                })
                .collect();
            let username = text(&from_rep, "username");
            subject = subject_of(&from_rep, username.as_deref()).or(subject);
        }
        kc.insert("representation".to_owned(), rep);
    }
    if let Some(path) = &ev.resource_path {
        details.entry("resource_path").or_insert_with(|| Value::String(path.clone()));
    }
    Mapped {
        record: IncomingRecord {
            id: Some(id),
            occurred_at: occurred_at(ev.time),
            category: None,
            action,
            actor: Some(Actor {
                user_id: auth.user_id,
                username: auth.username,
                kind: Some(ActorKind::User),
                role: Some("keycloak-admin".to_owned()),
                ..Default::default()
            }),
            result: Some(if ev.error.is_some() { ResultCode::Fail } else { ResultCode::Ok }),
            phase: None,
            correlation_id: None,
            source_ip: auth.ip_address,
            session_id: None,
            failure_reason_code: ev.error,
            description: non_empty(details),
            data: Some(json!({ "keycloak": kc })),
            subject,
            attachments: Vec::new(),
        },
        unknown_type: unknown.then(|| if resource.is_empty() { op } else { format!("{resource}.{op}") }),
    }
}

/// How many events of each type the catalogue did not know (stored as custom actions).
pub type UnknownTypes = BTreeMap<String, usize>;

/// Every `org.keycloak.events.EventType` of Keycloak's main branch as of the 26.x releases
/// (stable indexes 0–60; each also has its `_ERROR` twin), from `server-spi-private/src/main/
/// java/org/keycloak/events/EventType.java`. The tests check the catalogue has them all.
pub const USER_EVENT_TYPES: &[&str] = &[
    "LOGIN",
    "REGISTER",
    "LOGOUT",
    "CODE_TO_TOKEN",
    "CLIENT_LOGIN",
    "REFRESH_TOKEN",
    "VALIDATE_ACCESS_TOKEN",
    "INTROSPECT_TOKEN",
    "FEDERATED_IDENTITY_LINK",
    "REMOVE_FEDERATED_IDENTITY",
    "UPDATE_EMAIL",
    "UPDATE_PROFILE",
    "UPDATE_PASSWORD",
    "UPDATE_TOTP",
    "VERIFY_EMAIL",
    "VERIFY_PROFILE",
    "REMOVE_TOTP",
    "GRANT_CONSENT",
    "UPDATE_CONSENT",
    "REVOKE_GRANT",
    "SEND_VERIFY_EMAIL",
    "SEND_RESET_PASSWORD",
    "SEND_IDENTITY_PROVIDER_LINK",
    "RESET_PASSWORD",
    "RESTART_AUTHENTICATION",
    "INVALID_SIGNATURE",
    "REGISTER_NODE",
    "UNREGISTER_NODE",
    "USER_INFO_REQUEST",
    "IDENTITY_PROVIDER_LINK_ACCOUNT",
    "IDENTITY_PROVIDER_LOGIN",
    "IDENTITY_PROVIDER_FIRST_LOGIN",
    "IDENTITY_PROVIDER_POST_LOGIN",
    "IDENTITY_PROVIDER_RESPONSE",
    "IDENTITY_PROVIDER_RETRIEVE_TOKEN",
    "IMPERSONATE",
    "CUSTOM_REQUIRED_ACTION",
    "EXECUTE_ACTIONS",
    "EXECUTE_ACTION_TOKEN",
    "CLIENT_INFO",
    "CLIENT_REGISTER",
    "CLIENT_UPDATE",
    "CLIENT_DELETE",
    "CLIENT_INITIATED_ACCOUNT_LINKING",
    "TOKEN_EXCHANGE",
    "OAUTH2_DEVICE_AUTH",
    "OAUTH2_DEVICE_VERIFY_USER_CODE",
    "OAUTH2_DEVICE_CODE_TO_TOKEN",
    "AUTHREQID_TO_TOKEN",
    "PERMISSION_TOKEN",
    "DELETE_ACCOUNT",
    "PUSHED_AUTHORIZATION_REQUEST",
    "USER_DISABLED_BY_PERMANENT_LOCKOUT",
    "USER_DISABLED_BY_TEMPORARY_LOCKOUT",
    "OAUTH2_EXTENSION_GRANT",
    "FEDERATED_IDENTITY_OVERRIDE_LINK",
    "UPDATE_CREDENTIAL",
    "REMOVE_CREDENTIAL",
    "INVITE_ORG",
    "JWT_BEARER",
];

/// Every `org.keycloak.events.admin.ResourceType` of the same sources; admin events' operations
/// are `CREATE`, `UPDATE`, `DELETE` and `ACTION`.
pub const RESOURCE_TYPES: &[&str] = &[
    "REALM",
    "REALM_ROLE",
    "REALM_ROLE_MAPPING",
    "REALM_SCOPE_MAPPING",
    "AUTH_FLOW",
    "AUTH_EXECUTION_FLOW",
    "AUTH_EXECUTION",
    "AUTHENTICATOR_CONFIG",
    "REQUIRED_ACTION",
    "IDENTITY_PROVIDER",
    "IDENTITY_PROVIDER_MAPPER",
    "PROTOCOL_MAPPER",
    "USER",
    "USER_LOGIN_FAILURE",
    "USER_SESSION",
    "USER_FEDERATION_PROVIDER",
    "USER_FEDERATION_MAPPER",
    "GROUP",
    "GROUP_MEMBERSHIP",
    "CLIENT",
    "CLIENT_INITIAL_ACCESS_MODEL",
    "CLIENT_ROLE",
    "CLIENT_ROLE_MAPPING",
    "CLIENT_SCOPE",
    "CLIENT_SCOPE_MAPPING",
    "CLIENT_SCOPE_CLIENT_MAPPING",
    "CLUSTER_NODE",
    "COMPONENT",
    "AUTHORIZATION_RESOURCE_SERVER",
    "AUTHORIZATION_RESOURCE",
    "AUTHORIZATION_SCOPE",
    "AUTHORIZATION_POLICY",
    "CUSTOM",
    "USER_PROFILE",
    "ORGANIZATION",
    "ORGANIZATION_MEMBERSHIP",
    "ORGANIZATION_ROLE",
    "ORGANIZATION_ROLE_MAPPING",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Mapped {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        map_event(&raw, &KeycloakSettings::default()).unwrap()
    }

    #[test]
    fn a_login_is_a_sign_in_with_the_account_and_the_e_mail_as_subject() {
        let m = map(r#"{"id":"6b8c2b3e-7c11-4a8e-9a57-2f1d8a3c1e01","time":1764000000123,"type":"LOGIN",
            "realmId":"contact-centre","clientId":"agent-desktop","userId":"u-1","sessionId":"s-1",
            "ipAddress":"10.0.0.7","details":{"username":"jdoe@example.com","auth_method":"openid-connect"}}"#);
        let r = m.record;
        assert_eq!(m.unknown_type, None);
        assert_eq!(r.id.as_deref(), Some("6b8c2b3e-7c11-4a8e-9a57-2f1d8a3c1e01"));
        assert_eq!(r.occurred_at, "2025-11-24T16:00:00.123Z");
        assert_eq!((r.action.as_str(), r.category, r.result), ("LOGIN", None, Some(ResultCode::Ok)));
        let actor = r.actor.unwrap();
        assert_eq!((actor.user_id.as_deref(), actor.username.as_deref()), (Some("u-1"), Some("jdoe@example.com")));
        assert_eq!(r.subject.unwrap().emails, ["jdoe@example.com"]);
        assert_eq!(r.data.unwrap()["keycloak"]["client_id"], "agent-desktop");
        assert_eq!(r.description.unwrap()["auth_method"], "openid-connect");
    }

    #[test]
    fn an_error_fails_with_its_reason_and_a_logout_without_account_is_audit() {
        let m = map(r#"{"time":1764000000000,"type":"LOGIN_ERROR","error":"invalid_user_credentials",
            "details":{"username":"jdoe"}}"#);
        assert_eq!(m.record.result, Some(ResultCode::Fail));
        assert_eq!(m.record.failure_reason_code.as_deref(), Some("invalid_user_credentials"));
        assert!(m.record.id.unwrap().starts_with("kc-"), "no id: a digest of the event");
        let m = map(r#"{"time":1764000000000,"type":"LOGOUT","userId":"u-1"}"#);
        assert_eq!(m.record.category, Some(Category::Audit));
    }

    #[test]
    fn unknown_types_become_custom_actions_and_are_reported() {
        let m = map(r#"{"time":1764000000000,"type":"QUANTUM_LOGIN"}"#);
        assert_eq!(m.record.action, "custom:keycloak.QUANTUM_LOGIN");
        assert_eq!(m.unknown_type.as_deref(), Some("QUANTUM_LOGIN"));
        let m = map(r#"{"time":1764000000000,"operationType":"CREATE","resourceType":"WORKFLOW"}"#);
        assert_eq!(m.record.action, "custom:keycloak.admin.WORKFLOW.CREATE");
        assert_eq!(m.unknown_type.as_deref(), Some("WORKFLOW.CREATE"));
    }

    #[test]
    fn admin_representation_only_when_the_tenant_allows_it() {
        let ev = r#"{"id":"a1","time":1764000000000,"operationType":"CREATE","resourceType":"USER",
            "resourcePath":"users/42","authDetails":{"userId":"admin-1","ipAddress":"10.0.0.1","clientId":"admin-cli"},
            "representation":"{\"username\":\"mk\",\"email\":\"mk@example.org\",\"firstName\":\"Mia\"}"}"#;
        let raw: Box<RawValue> = serde_json::from_str(ev).unwrap();
        let off = map_event(&raw, &KeycloakSettings::default()).unwrap().record;
        assert_eq!(off.action, "ADMIN_USER_CREATE");
        assert_eq!(off.actor.as_ref().unwrap().user_id.as_deref(), Some("admin-1"));
        assert!(off.data.as_ref().unwrap()["keycloak"].get("representation").is_none());
        assert!(off.subject.is_none());
        assert!(!serde_json::to_string(&off.data).unwrap().contains("mk@example.org"));
        let on = map_event(&raw, &KeycloakSettings { store_representation: true }).unwrap().record;
        assert_eq!(on.data.unwrap()["keycloak"]["representation"]["email"], "mk@example.org");
        let s = on.subject.unwrap();
        assert_eq!((s.emails, s.first_name.as_deref()), (vec!["mk@example.org".to_owned()], Some("Mia")));
    }

    #[test]
    fn malformed_events_name_the_field() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"type":"LOGIN","time":"yesterday"}"#).unwrap();
        assert_eq!(map_event(&raw, &KeycloakSettings::default()).unwrap_err()[0].field, "time");
        let raw: Box<RawValue> = serde_json::from_str(r#"{"time":1}"#).unwrap();
        assert_eq!(map_event(&raw, &KeycloakSettings::default()).unwrap_err()[0].field, "type");
        let raw: Box<RawValue> = serde_json::from_str(r#"[1]"#).unwrap();
        assert_eq!(map_event(&raw, &KeycloakSettings::default()).unwrap_err()[0].field, "event");
    }

    #[test]
    fn every_current_keycloak_type_is_in_the_catalogue() {
        for t in USER_EVENT_TYPES {
            assert!(known(t), "{t}");
            assert!(known(&format!("{t}_ERROR")), "{t}_ERROR");
        }
        for r in RESOURCE_TYPES {
            for op in ["CREATE", "UPDATE", "DELETE", "ACTION"] {
                assert!(known(&format!("ADMIN_{r}_{op}")), "ADMIN_{r}_{op}");
            }
        }
    }
}
