//! The action catalogue: every event type of the seed products, compiled into the binary.
//!
//! The actions are data: `catalogue.toml` beside this file, grouped by source and module, one
//! line per action, embedded and parsed once on first use. Parsing rejects an unknown key,
//! source, category or mode, a malformed or duplicate name and an empty group, naming the
//! line; the tests below parse the embedded file, so a bad line fails `cargo test`.
//!
//! Unknown actions are rejected with the nearest known names. Integrations that need their own
//! events use the custom namespace: `custom:` followed by 1–64 of `A-Z a-z 0-9 _ . -`
//! (e.g. `custom:WRAP_UP_CODE_SET`); custom actions are stored under `audit` unless the record
//! names another category.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

pub use super::Category;

pub const CATALOGUE_CUSTOM_PREFIX: &str = "custom:";
const CUSTOM_NAME_MAX: usize = 64;

/// Which product an action comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// `catalogue.toml`: sources, each with its modules, each with its actions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    source: Vec<SourceGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceGroup {
    name: Source,
    module: Vec<ModuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleGroup {
    name: String,
    actions: Vec<toml::Spanned<ActionLine>>,
}

/// One line of `catalogue.toml`; `also`, `data_fields` and `mode` may be left out (empty, empty,
/// `sync`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionLine {
    name: String,
    category: Category,
    #[serde(default)]
    also: Vec<Category>,
    label: String,
    description: String,
    #[serde(default)]
    data_fields: Vec<String>,
    #[serde(default = "sync")]
    mode: Mode,
}

fn sync() -> Mode {
    Mode::Sync
}

/// Whether `name` may be a catalogue action: 1 to 64 of `A-Z 0-9 _ -`, starting with a letter
/// (Chatvisor's `PAGE-CHANGE` has a hyphen); so never in the custom namespace.
fn is_action_name(name: &str) -> bool {
    name.len() <= CUSTOM_NAME_MAX
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Parses and checks a catalogue file; the error names the line (and the action) at fault.
fn parse(text: &str) -> Result<Vec<ActionDef>, String> {
    let file: CatalogueFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    if file.source.is_empty() {
        return Err("no source".to_owned());
    }
    for group in file.source {
        if group.module.is_empty() {
            return Err(format!("source {:?} has no module", group.name));
        }
        for module in group.module {
            if module.name.trim().is_empty() || module.actions.is_empty() {
                return Err(format!("module {:?} of source {:?} has no name or no action", module.name, group.name));
            }
            let module_name = leak(module.name);
            for a in module.actions {
                let line = line_of(text, a.span().start);
                let a = a.into_inner();
                let at = |why: &str| format!("line {line}, action {}: {why}", a.name);
                if !is_action_name(&a.name) {
                    return Err(at("a name is 1 to 64 of `A-Z 0-9 _ -`, starting with a letter"));
                }
                if !seen.insert(a.name.clone()) {
                    return Err(at("duplicate name"));
                }
                if a.label.trim().is_empty() || a.description.trim().is_empty() {
                    return Err(at("empty label or description"));
                }
                if a.also.iter().enumerate().any(|(i, c)| *c == a.category || a.also[..i].contains(c)) {
                    return Err(at("`also` repeats a category"));
                }
                if a.data_fields.iter().any(|f| f.trim().is_empty()) {
                    return Err(at("empty data field"));
                }
                out.push(ActionDef {
                    name: leak(a.name),
                    category: a.category,
                    also: Vec::leak(a.also),
                    source: group.name,
                    module: module_name,
                    label: leak(a.label),
                    description: leak(a.description),
                    data_fields: Vec::leak(a.data_fields.into_iter().map(leak).collect()),
                    mode: a.mode,
                });
            }
        }
    }
    Ok(out)
}

/// Every action, in the order of `catalogue.toml`; its strings live as long as the process.
static ACTIONS: LazyLock<Vec<ActionDef>> = LazyLock::new(|| {
    parse(include_str!("catalogue.toml")).unwrap_or_else(|e| panic!("shared/src/record/catalogue.toml: {e}"))
});

static INDEX: LazyLock<HashMap<&'static str, &'static ActionDef>> =
    LazyLock::new(|| ACTIONS.iter().map(|a| (a.name, a)).collect());

/// Every known action, in catalogue order.
pub fn all() -> &'static [ActionDef] {
    &ACTIONS
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
    fn every_name_follows_the_action_name_rule() {
        for def in all() {
            assert!(is_action_name(def.name), "{}", def.name);
            assert!(matches!(resolve(def.name), Ok(Resolved::Known(d)) if d == def), "{}", def.name);
        }
        for bad in ["", "lower", "1ST", "A B", "custom:X", "ÄCTION", &"A".repeat(65)] {
            assert!(!is_action_name(bad), "{bad}");
        }
    }

    /// The catalogue as converted from the seeds; adding or removing an action changes a count here.
    #[test]
    fn every_source_has_its_actions_in_order() {
        let want = [
            (Source::Chatvisor, 21),
            (Source::HuaweiAicc, 4),
            (Source::EleveoQm, 87),
            (Source::EleveoUm, 16),
            (Source::Keycloak, 272),
            (Source::PersonalData, 4),
            (Source::Auditrail, 26),
        ];
        let mut got: Vec<(Source, usize)> = Vec::new();
        for def in all() {
            match got.last_mut() {
                Some((source, n)) if *source == def.source => *n += 1,
                _ => {
                    assert!(got.iter().all(|(s, _)| *s != def.source), "{:?} is not in one group", def.source);
                    got.push((def.source, 1));
                }
            }
        }
        assert_eq!(got, want);
        assert_eq!(all().len(), 430);
    }

    #[test]
    fn every_category_is_used_and_only_qm_interactions_and_administration_are_async() {
        for &category in Category::ALL {
            assert!(all().iter().any(|d| d.category == category), "{category:?}");
        }
        for def in all() {
            let qm_async = def.source == Source::EleveoQm && matches!(def.module, "Interactions" | "Administration");
            assert_eq!(def.mode == Mode::Async, qm_async, "{}", def.name);
            assert!(!def.also.contains(&def.category), "{}", def.name);
        }
        assert_eq!(all().iter().filter(|d| d.mode == Mode::Async).count(), 29);
    }

    #[test]
    fn defaults_apply_to_a_short_line_and_the_order_is_kept() {
        let text = r#"
[[source]]
name = "keycloak"

[[source.module]]
name = "Built-in"
actions = [
    { name = "B_SECOND", category = "sign_in", also = ["audit"], label = "L", description = "D", data_fields = ["x", "y"], mode = "async" },
    { name = "A_FIRST", category = "audit", label = "L2", description = "D2" },
]
"#;
        let defs = parse(text).unwrap();
        assert_eq!(defs.iter().map(|d| d.name).collect::<Vec<_>>(), ["B_SECOND", "A_FIRST"]);
        assert_eq!(defs[0].also, [Category::Audit]);
        assert_eq!(defs[0].data_fields, ["x", "y"]);
        assert_eq!(defs[0].mode, Mode::Async);
        assert_eq!((defs[1].also, defs[1].data_fields, defs[1].mode), (&[][..], &[][..], Mode::Sync));
        assert_eq!((defs[1].source, defs[1].module, defs[1].label), (Source::Keycloak, "Built-in", "L2"));
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_the_line_and_the_action() {
        let file = |line: &str| {
            format!(
                "[[source]]\nname = \"chatvisor\"\n\n[[source.module]]\nname = \"General\"\nactions = [\n    \
                 {{ name = \"FINE\", category = \"audit\", label = \"L\", description = \"D\" }},\n    {line}\n]\n"
            )
        };
        let good = r#"{ name = "GOOD", category = "audit", label = "L", description = "D" },"#;
        assert_eq!(parse(&file(good)).unwrap().len(), 2);
        for (line, why) in [
            (r#"{ name = "BAD_CAT", category = "sign-in", label = "L", description = "D" },"#, "sign-in"),
            (r#"{ name = "BAD_ALSO", category = "audit", also = ["nope"], label = "L", description = "D" },"#, "nope"),
            (r#"{ name = "BAD_MODE", category = "audit", label = "L", description = "D", mode = "later" },"#, "later"),
            (r#"{ name = "BAD_KEY", category = "audit", label = "L", description = "D", modes = "sync" },"#, "modes"),
            (r#"{ name = "NO_LABEL", category = "audit", description = "D" },"#, "label"),
            (r#"{ name = "FINE", category = "audit", label = "L", description = "D" },"#, "duplicate"),
            (r#"{ name = "bad name", category = "audit", label = "L", description = "D" },"#, "A-Z"),
            (r#"{ name = "EMPTY", category = "audit", label = " ", description = "D" },"#, "empty"),
            (r#"{ name = "TWICE", category = "audit", also = ["audit"], label = "L", description = "D" },"#, "repeats"),
        ] {
            let err = parse(&file(line)).expect_err(line);
            let name = line.split('"').nth(1).unwrap();
            assert!(err.contains("line 8") && err.contains(name) && err.contains(why), "{line}: {err}");
        }
        let bad_source = file(good).replace("\"chatvisor\"", "\"genesys\"");
        let err = parse(&bad_source).unwrap_err();
        assert!(err.contains("line 2") && err.contains("genesys"), "{err}");
        let err = parse("[[source]]\nname = \"chatvisor\"\n[[source.module]]\nname = \"General\"\nactions = []\n")
            .unwrap_err();
        assert!(err.contains("General") && err.contains("no action"), "{err}");
        assert!(parse("[[source]]\nname = \"chatvisor\"\nmodule = []\n").unwrap_err().contains("no module"));
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
