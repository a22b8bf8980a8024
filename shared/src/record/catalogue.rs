//! The action catalogue: every event type of the seed products, compiled into the binary.
//!
//! Unknown actions are rejected with the nearest known names. Integrations that need their own
//! events use the custom namespace: `custom:` followed by 1–64 of `A-Z a-z 0-9 _ . -`
//! (e.g. `custom:WRAP_UP_CODE_SET`); custom actions are stored under `audit` unless the record
//! names another category.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

pub use super::Category;
use super::catalogue_data::ACTIONS;

pub const CATALOGUE_CUSTOM_PREFIX: &str = "custom:";
const CUSTOM_NAME_MAX: usize = 64;

/// Which product an action comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Chatvisor,
    HuaweiAicc,
    EleveoQm,
    EleveoUm,
    Keycloak,
    PersonalData,
    Auditrail,
}

/// Synchronous actions log one record with a result; asynchronous ones a start and an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Sync,
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionDef {
    pub name: &'static str,
    pub category: Category,
    /// Further categories this action may be stored under (e.g. Keycloak `LOGIN` as audit).
    pub also: &'static [Category],
    pub source: Source,
    pub module: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub data_fields: &'static [&'static str],
    pub mode: Mode,
}

impl ActionDef {
    pub fn allows(&self, category: Category) -> bool {
        self.category == category || self.also.contains(&category)
    }

    /// Whether only Auditrail itself writes this action (its own use, denials, DPO and export
    /// jobs); ingest refuses it so a client cannot forge the service's records.
    pub fn server_only(&self) -> bool {
        self.source == Source::Auditrail || SERVER_WRITTEN_SEED_ACTIONS.contains(&self.name)
    }
}

/// Seed actions (Eleveo QM's audit and export screens) that Auditrail writes about its own use;
/// every action of `Source::Auditrail` is server-only too. A test in `api` checks that every
/// action the code writes is server-only.
const SERVER_WRITTEN_SEED_ACTIONS: &[&str] = &[
    "AUDIT_SEARCH",
    "DATA_EXPORT_CREATE",
    "DATA_EXPORT_DELETE",
    "DATA_EXPORT_CHANGED",
    "DATA_EXPORT_DOWNLOAD",
    "DATA_EXPORT_RUN_SCHEDULED",
];

static INDEX: LazyLock<HashMap<&'static str, &'static ActionDef>> =
    LazyLock::new(|| ACTIONS.iter().map(|a| (a.name, a)).collect());

/// Every known action, in catalogue order.
pub fn all() -> &'static [ActionDef] {
    ACTIONS
}

pub fn lookup(name: &str) -> Option<&'static ActionDef> {
    INDEX.get(name).copied()
}

static SIGN_IN_ACTIONS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| ACTIONS.iter().filter(|a| a.allows(Category::SignIn)).map(|a| a.name).collect());

/// The sign-in log's actions: every catalogue action that may be a sign-in (Huawei AICC,
/// Keycloak, Eleveo QM, Chatvisor), whatever category a client stored it under.
pub fn sign_in_actions() -> &'static [&'static str] {
    &SIGN_IN_ACTIONS
}

pub fn is_sign_in(action: &str) -> bool {
    lookup(action).is_some_and(|a| a.allows(Category::SignIn))
}

/// Why an action name is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionProblem {
    Unknown {
        suggestions: Vec<&'static str>,
    },
    BadCustom(&'static str),
    /// Only Auditrail writes it.
    ServerOnly(&'static str),
}

impl std::fmt::Display for ActionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown { suggestions } if suggestions.is_empty() => write!(
                f,
                "unknown action; see GET /v1/catalogue, or use the custom namespace `{CATALOGUE_CUSTOM_PREFIX}NAME`"
            ),
            Self::Unknown { suggestions } => write!(
                f,
                "unknown action; did you mean {}? (custom actions use `{CATALOGUE_CUSTOM_PREFIX}NAME`)",
                suggestions.join(", ")
            ),
            Self::BadCustom(why) => f.write_str(why),
            Self::ServerOnly(name) => write!(
                f,
                "{name} is written only by Auditrail itself (server-only in GET /v1/catalogue) and cannot be ingested"
            ),
        }
    }
}

/// What an accepted action resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Resolved {
    Known(&'static ActionDef),
    Custom,
}

pub fn resolve(name: &str) -> Result<Resolved, ActionProblem> {
    if let Some(def) = lookup(name) {
        return Ok(Resolved::Known(def));
    }
    if let Some(rest) = name.strip_prefix(CATALOGUE_CUSTOM_PREFIX) {
        if rest.is_empty() || rest.len() > CUSTOM_NAME_MAX {
            return Err(ActionProblem::BadCustom("a custom action name needs 1 to 64 characters after `custom:`"));
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(ActionProblem::BadCustom(
                "a custom action name may only use letters, digits, `_`, `.` and `-` after `custom:`",
            ));
        }
        return Ok(Resolved::Custom);
    }
    Err(ActionProblem::Unknown { suggestions: nearest(name, 3) })
}

/// The `n` known names closest to `name` (case-insensitive, Jaro-Winkler), good enough to be useful.
pub fn nearest(name: &str, n: usize) -> Vec<&'static str> {
    let wanted = name.to_ascii_uppercase().replace(['-', ' '], "_");
    let mut scored: Vec<(f64, &'static str)> = ACTIONS
        .iter()
        .map(|a| (strsim::jaro_winkler(&wanted, &a.name.replace('-', "_")), a.name))
        .filter(|(score, _)| *score >= 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        assert_eq!(INDEX.len(), ACTIONS.len());
    }

    #[test]
    fn every_seed_family_is_present() {
        for name in [
            "START_CALL",
            "CONFERENCE_RECORDING",
            "PAGE-CHANGE",
            "CUSTOM_EVENT",
            "SIGN_IN",
            "FORCIBLE_SIGN_OUT",
            "CONVERSATION_EVENT_ANONYMIZE_ADD",
            "AUDIT_SEARCH",
            "DATA_EXPORT_RUN_SCHEDULED",
            "USER_PROFILE_CHANGE_DELEGATE",
            "UPDATE_USER_EXTENSION",
            "AUTHREQID_TO_TOKEN",
            "VERIFY_PROFILE_ERROR",
            "CONTACT",
            "CONSENT",
        ] {
            assert!(lookup(name).is_some(), "{name} missing from the catalogue");
        }
    }

    #[test]
    fn keycloak_logins_are_sign_ins() {
        for name in ["LOGIN", "LOGIN_ERROR", "LOGOUT"] {
            assert!(lookup(name).unwrap().allows(Category::SignIn), "{name}");
        }
        assert_eq!(lookup("FORCIBLE_SIGN_IN").unwrap().category, Category::SignIn);
        assert_eq!(lookup("CLICK").unwrap().category, Category::Cobrowse);
    }

    #[test]
    fn typo_suggests_the_nearest_names() {
        match resolve("LOGN_ERROR") {
            Err(ActionProblem::Unknown { suggestions }) => assert_eq!(suggestions[0], "LOGIN_ERROR"),
            other => panic!("{other:?}"),
        }
        match resolve("page_change") {
            Err(ActionProblem::Unknown { suggestions }) => assert!(suggestions.contains(&"PAGE-CHANGE")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auditrails_own_actions_are_server_only_and_the_seed_products_are_not() {
        for def in all() {
            if def.source == Source::Auditrail {
                assert!(def.server_only(), "{}", def.name);
            }
        }
        for name in SERVER_WRITTEN_SEED_ACTIONS {
            assert!(lookup(name).is_some_and(|d| d.server_only()), "{name} is not in the catalogue");
        }
        for name in ["LOGIN", "SIGN_IN", "CLICK", "DATA_EXPORT_RUN_MANUAL", "CONTACT"] {
            assert!(!lookup(name).unwrap().server_only(), "{name}");
        }
    }

    #[test]
    fn custom_namespace_is_checked() {
        assert!(matches!(resolve("custom:WRAP_UP.set-1"), Ok(Resolved::Custom)));
        assert!(matches!(resolve("custom:"), Err(ActionProblem::BadCustom(_))));
        assert!(matches!(resolve("custom:has space"), Err(ActionProblem::BadCustom(_))));
        assert!(resolve(&format!("custom:{}", "A".repeat(65))).is_err());
    }
}
