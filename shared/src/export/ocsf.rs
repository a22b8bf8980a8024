//! Records as OCSF 1.1.0 events (the version Amazon Security Lake takes from custom sources),
//! for SIEMs: one JSON object per line in an export with `format: "ocsf"`. The mapping is
//! documented in docs/ocsf.md; the tests validate every catalogue action's event against the
//! OCSF schema.

use serde_json::{Map, Value, json};

use crate::record::catalogue::{self, Source};
use crate::record::{Category, Record, ResultCode};

/// The OCSF version the events declare and are validated against.
pub const OCSF_VERSION: &str = "1.1.0";

/// The OCSF classes records map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 3002, Identity & Access Management: sign-ins and sign-outs.
    Authentication,
    /// 3001: an account created, changed, disabled, deleted; its password or factors changed.
    AccountChange,
    /// 3005: privileges (roles, role mappings, group memberships) assigned or revoked.
    UserAccessManagement,
    /// 6001, Application Activity: what a co-browsing session did on a web page.
    WebResourcesActivity,
    /// 6003: every other action, an operation on the contact-centre product's API or UI.
    ApiActivity,
}

impl Class {
    pub fn uid(self) -> u32 {
        match self {
            Self::Authentication => 3002,
            Self::AccountChange => 3001,
            Self::UserAccessManagement => 3005,
            Self::WebResourcesActivity => 6001,
            Self::ApiActivity => 6003,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Authentication => "Authentication",
            Self::AccountChange => "Account Change",
            Self::UserAccessManagement => "User Access Management",
            Self::WebResourcesActivity => "Web Resources Activity",
            Self::ApiActivity => "API Activity",
        }
    }

    fn category(self) -> (u32, &'static str) {
        match self {
            Self::Authentication | Self::AccountChange | Self::UserAccessManagement => {
                (3, "Identity & Access Management")
            }
            Self::WebResourcesActivity | Self::ApiActivity => (6, "Application Activity"),
        }
    }
}

fn has_word(action: &str, words: &[&str]) -> bool {
    action.split(['_', '-', '.', ':']).any(|w| words.iter().any(|x| w.eq_ignore_ascii_case(x)))
}

/// The class and activity (`activity_id`, `activity_name`) of an action.
pub fn classify(action: &str, category: Category) -> (Class, u32, &'static str) {
    let a = action.to_ascii_uppercase();
    if catalogue::is_sign_in(action) || category == Category::SignIn {
        let out = has_word(&a, &["LOGOUT", "OUT"]) || a.contains("LOGGED_OUT");
        return if out { (Class::Authentication, 2, "Logoff") } else { (Class::Authentication, 1, "Logon") };
    }
    if category == Category::Cobrowse {
        return (Class::WebResourcesActivity, 2, "Read");
    }
    // Privileges: role mappings and group or supervisor memberships.
    if (a.contains("ROLE_MAPPING") || a.contains("MEMBERSHIP") || a.contains("SCOPE_MAPPING"))
        && !a.ends_with("_ACTION")
    {
        return if has_word(&a, &["DELETE", "REMOVE", "REVOKE"]) {
            (Class::UserAccessManagement, 2, "Revoke Privileges")
        } else {
            (Class::UserAccessManagement, 1, "Assign Privileges")
        };
    }
    // Accounts: Keycloak's user events about the account itself, and admin events on users.
    let account = match a.trim_end_matches("_ERROR") {
        "REGISTER" | "ADMIN_USER_CREATE" | "CLIENT_REGISTER" => Some((1, "Create")),
        "UPDATE_PASSWORD" | "UPDATE_CREDENTIAL" => Some((3, "Password Change")),
        "RESET_PASSWORD" | "SEND_RESET_PASSWORD" => Some((4, "Password Reset")),
        "USER_DISABLED_BY_PERMANENT_LOCKOUT" | "USER_DISABLED_BY_TEMPORARY_LOCKOUT" => Some((9, "Lock")),
        "DELETE_ACCOUNT" | "ADMIN_USER_DELETE" | "DELETE_IMPORTED_USERS" => Some((6, "Delete")),
        "UPDATE_EMAIL"
        | "UPDATE_PROFILE"
        | "VERIFY_EMAIL"
        | "VERIFY_PROFILE"
        | "UPDATE_TOTP"
        | "REMOVE_TOTP"
        | "REMOVE_CREDENTIAL"
        | "ADMIN_USER_UPDATE"
        | "ADMIN_USER_ACTION"
        | "UPDATE_USER_EXTENSION"
        | "FEDERATED_IDENTITY_LINK"
        | "REMOVE_FEDERATED_IDENTITY"
        | "FEDERATED_IDENTITY_OVERRIDE_LINK" => Some((99, "Other")),
        _ => None,
    };
    if let Some((id, name)) = account {
        return (Class::AccountChange, id, name);
    }
    let (id, name) = if has_word(&a, &["CREATE", "ADD", "REGISTER", "UPLOAD", "IMPORT", "INSERT", "NEW"]) {
        (1, "Create")
    } else if has_word(&a, &["DELETE", "REMOVE", "PURGE", "ERASE", "ERASURE", "REVOKE", "UNREGISTER"]) {
        (4, "Delete")
    } else if has_word(&a, &["UPDATE", "CHANGE", "CHANGED", "EDIT", "SET", "MODIFY", "SAVE", "ENABLE", "DISABLE"]) {
        (3, "Update")
    } else if has_word(&a, &["VIEW", "SEARCH", "READ", "GET", "DOWNLOAD", "LIST", "OPEN", "PLAY", "EXPORT", "INFO"]) {
        (2, "Read")
    } else {
        (99, "Other")
    };
    (Class::ApiActivity, id, name)
}

fn user(r: &Record) -> Value {
    let mut u = Map::new();
    if let Some(n) = &r.actor.username {
        u.insert("name".into(), json!(n));
    }
    if let Some(id) = &r.actor.user_id {
        u.insert("uid".into(), json!(id));
    }
    if let Some(f) = &r.actor.full_name {
        u.insert("full_name".into(), json!(f));
    }
    if let Some(e) = &r.actor.employee_id {
        u.insert("employee_uid".into(), json!(e));
    }
    Value::Object(u)
}

fn product(r: &Record) -> Value {
    let feature = catalogue::lookup(&r.action).map(|d| {
        let source = match d.source {
            Source::Chatvisor => "Chatvisor",
            Source::HuaweiAicc => "Huawei AICC",
            Source::EleveoQm => "Eleveo QM",
            Source::EleveoUm => "Eleveo UM",
            Source::Keycloak => "Keycloak",
            Source::PersonalData => "Personal data",
            Source::Auditrail => "Auditrail",
        };
        json!({"name": format!("{source}: {}", d.module)})
    });
    let mut p = json!({"name": "Auditrail", "vendor_name": "Auditrail", "version": env!("CARGO_PKG_VERSION")});
    if let Some(f) = feature {
        p["feature"] = f;
    }
    p
}

/// The product and module an action comes from (e.g. `Keycloak: Built-in`), else `Custom`.
fn service(r: &Record) -> String {
    product(r).pointer("/feature/name").and_then(Value::as_str).unwrap_or("Custom").to_owned()
}

/// One record as an OCSF event.
pub fn event(r: &Record) -> Value {
    let (class, activity_id, activity_name) = classify(&r.action, r.category);
    let (category_uid, category_name) = class.category();
    let (status_id, status) = match r.result {
        Some(ResultCode::Ok) => (1, "Success"),
        Some(ResultCode::Fail | ResultCode::Unauthorized) => (2, "Failure"),
        None => (0, "Unknown"),
    };
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": product(r),
        "uid": r.id,
        "logged_time": r.received_at.timestamp_millis(),
        "tenant_uid": r.tenant_id,
    });
    if let Some(c) = &r.correlation_id {
        metadata["correlation_uid"] = json!(c);
    }
    let mut e = json!({
        "class_uid": class.uid(),
        "class_name": class.name(),
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class.uid() * 100 + activity_id,
        "type_name": format!("{}: {activity_name}", class.name()),
        "time": r.occurred_at.timestamp_millis(),
        "severity_id": if status_id == 2 { 3 } else { 1 },
        "severity": if status_id == 2 { "Medium" } else { "Informational" },
        "status_id": status_id,
        "status": status,
        "metadata": metadata,
    });
    if let Some(code) = &r.failure_reason_code {
        e["status_code"] = json!(code);
        e["status_detail"] = json!(code);
    }
    if let Some(text) = r.description_text() {
        e["message"] = json!(text);
    }
    // OCSF's network endpoint needs an identifying field; a record without its source IP (e.g.
    // Auditrail's own) names the source unknown where the class requires one.
    let endpoint = match &r.source_ip {
        Some(ip) => json!({"ip": ip}),
        None => json!({"name": "unknown"}),
    };
    let actor = json!({"user": user(r)});
    // Classes whose `actor` OCSF 1.1.0 has only in its host profile keep it in `unmapped`.
    let actor_unmapped = matches!(class, Class::UserAccessManagement | Class::WebResourcesActivity);
    match class {
        Class::Authentication => {
            e["user"] = user(r);
            e["src_endpoint"] = endpoint.clone();
            // The service signed in to (OCSF asks for it or a destination endpoint).
            e["service"] = json!({"name": service(r)});
            if let Some(s) = &r.session_id {
                e["session"] = json!({"uid": s});
            }
        }
        Class::AccountChange => {
            // The account changed: Keycloak's user events are the user's own; an admin event's
            // account is its resource path.
            let target = r
                .data
                .as_ref()
                .and_then(|d| d.pointer("/keycloak/resource_path"))
                .and_then(Value::as_str)
                .map(|p| json!({"uid": p.rsplit('/').next().unwrap_or(p)}));
            e["user"] = target.unwrap_or_else(|| user(r));
            e["actor"] = actor;
            e["src_endpoint"] = endpoint.clone();
        }
        Class::UserAccessManagement => {
            let what = r
                .data
                .as_ref()
                .and_then(|d| d.pointer("/keycloak/resource_path"))
                .and_then(Value::as_str)
                .unwrap_or(&r.action);
            e["privileges"] = json!([what]);
            e["user"] = user(r);
        }
        Class::WebResourcesActivity => {
            let url = r.data.as_ref().and_then(|d| d.get("url")).and_then(Value::as_str);
            let mut res = json!({"name": r.action, "type": "web page"});
            if let Some(u) = url {
                res["url_string"] = json!(u);
            }
            if let Some(s) = &r.session_id {
                res["uid"] = json!(s);
            }
            e["web_resources"] = json!([res]);
            e["src_endpoint"] = endpoint.clone();
        }
        Class::ApiActivity => {
            e["api"] = json!({"operation": r.action, "service": {"name": service(r)}});
            e["actor"] = actor;
            e["src_endpoint"] = endpoint.clone();
        }
    }
    // What OCSF has no field for, so nothing is lost.
    let mut unmapped = Map::new();
    unmapped.insert("action".into(), json!(r.action));
    unmapped.insert("category".into(), json!(r.category.as_str()));
    if let Some(p) = r.phase {
        unmapped.insert("phase".into(), json!(<&str>::from(p)));
    }
    if let Some(s) = &r.session_id {
        unmapped.insert("session_id".into(), json!(s));
    }
    if let Some(k) = r.actor.kind {
        unmapped.insert("actor_kind".into(), serde_json::to_value(k).unwrap_or(Value::Null));
    }
    if actor_unmapped {
        unmapped.insert("actor".into(), json!({"user": user(r)}));
    }
    if let Some(role) = &r.actor.role {
        unmapped.insert("actor_role".into(), json!(role));
    }
    if let Some(d @ Value::Object(_)) = &r.description {
        unmapped.insert("description".into(), d.clone());
    }
    if let Some(d) = &r.data {
        unmapped.insert("data".into(), d.clone());
    }
    if let Some(s) = &r.subject {
        unmapped.insert("subject".into(), serde_json::to_value(s).unwrap_or(Value::Null));
    }
    if !r.attachments.is_empty() {
        unmapped.insert("attachments".into(), serde_json::to_value(&r.attachments).unwrap_or(Value::Null));
    }
    e["unmapped"] = Value::Object(unmapped);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_accounts_privileges_pages_and_the_rest_have_their_class() {
        let c = |a: &str, cat| {
            let (class, id, _) = classify(a, cat);
            (class.uid(), id)
        };
        assert_eq!(c("SIGN_IN", Category::SignIn), (3002, 1));
        assert_eq!(c("LOGOUT", Category::Audit), (3002, 2));
        assert_eq!(c("FORCIBLE_SIGN_OUT", Category::SignIn), (3002, 2));
        assert_eq!(c("UPDATE_PASSWORD", Category::Audit), (3001, 3));
        assert_eq!(c("ADMIN_USER_DELETE", Category::Audit), (3001, 6));
        assert_eq!(c("ADMIN_REALM_ROLE_MAPPING_CREATE", Category::Audit), (3005, 1));
        assert_eq!(c("DELETE_CUSTOM_ROLE_MAPPING", Category::Audit), (3005, 2));
        assert_eq!(c("PAGE-CHANGE", Category::Cobrowse), (6001, 2));
        assert_eq!(c("AUDIT_SEARCH", Category::Audit), (6003, 2));
        assert_eq!(c("ADMIN_CLIENT_DELETE", Category::Audit), (6003, 4));
    }
}
