//! The record: one envelope for everything Auditrail stores, its catalogue and its validation.

pub mod catalogue;
pub mod integrity;
pub mod subject;
pub mod validate;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalogue::{ActionDef, CATALOGUE_CUSTOM_PREFIX, Mode, Source, lookup};
pub use validate::{IncomingRecord, ValidationLimits};

/// What kind of thing a record is; decides its view, retention and DPO group.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Category {
    Audit,
    SignIn,
    Cobrowse,
    Contact,
    Consent,
    DirectoryEntry,
    CampaignCustomer,
    ErrorReport,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: &'static [Category] = <Self as strum::VariantArray>::VARIANTS;

    /// The category's wire name (serde's).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The category of a wire name (exact case).
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// `OK` / `FAIL` / `UNAUTHORIZED` as in the Eleveo audit log; sign-ins show OK as Successful.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
    Ok,
    Fail,
    Unauthorized,
}

impl ResultCode {
    /// The result's wire name (serde's): `OK`, `FAIL`, `UNAUTHORIZED`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The result of a wire name (exact case).
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Phase of an asynchronous action: the start has no result, the end has one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Phase {
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    Agent,
    Customer,
    System,
    Importer,
}

/// Who did it. Importer and system events carry no user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The sign-in account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActorKind>,
}

impl Actor {
    pub fn is_empty(&self) -> bool {
        *self == Actor::default()
    }
}

/// The person a record is about, for DPO search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// A reference to a stored blob (recording, e-mail attachment, photo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// Blob id within the tenant, as returned by the upload.
    pub blob: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// e.g. `attachment`, `recording`, `voicemail`, `photo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Attachment {
    /// An error report's own file (`kind: "error_report"`, written by Auditrail alone), not an
    /// upload a client made (`POST /v1/attachments`).
    pub fn is_error_report(&self) -> bool {
        self.kind.as_deref() == Some("error_report")
    }
}

/// The stored form. `tenant_id` always comes from the caller's token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    pub tenant_id: String,
    pub id: String,
    #[serde(serialize_with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    pub category: Category,
    pub action: String,
    #[serde(default, skip_serializing_if = "Actor::is_empty")]
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
    /// Free text or a JSON document, as the Eleveo description column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Tamper evidence, set by the store (never by a client): the append batch and the salt key
    /// of the record's personal values (docs/integrity.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<integrity::Integrity>,
}

/// A time as chrono serialises it (RFC 3339, fractional seconds as needed, `Z`), formatted first
/// and handed to the serializer whole: chrono's own `Serialize` writes it through `collect_str`,
/// which serde_json escapes piece by piece (a tenth of serialising a record).
fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Case folding, defined once: every case-insensitive comparison (the user filter, text search,
/// on SQLite, on DynamoDB and in `EventFilter::matches`) compares folded text, so `čez` finds
/// `ČEZ` and `иван` finds `Иван` on every back end alike. Unicode lowercase, not ASCII-only.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// A description as searchable text: a string as it is, a JSON description serialised.
pub fn description_text(d: &Value) -> String {
    match d {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

impl Record {
    /// A sign-in: stored under `sign_in`, or a sign-in action of the catalogue stored under another
    /// category (Eleveo `USER_LOGIN` defaults to `audit`). Only sign-ins are found by employee id
    /// (seed 003's filter, offered by the sign-in view alone), so only theirs are indexed.
    pub fn is_sign_in(&self) -> bool {
        self.category == Category::SignIn || catalogue::is_sign_in(&self.action)
    }

    /// Description as searchable text (a JSON description is searched in its serialised form).
    pub fn description_text(&self) -> Option<String> {
        self.description.as_ref().map(description_text)
    }

    /// A record Auditrail writes about its own use (searches, denials, exports, DPO actions).
    pub fn system(tenant_id: &str, action: &str, actor: Actor, result: Option<ResultCode>, description: Value) -> Self {
        let now = Utc::now();
        let category = lookup(action).map(|d| d.category).unwrap_or(Category::Audit);
        Self {
            tenant_id: tenant_id.to_owned(),
            id: ulid::Ulid::generate().to_string(),
            occurred_at: now,
            received_at: now,
            category,
            action: action.to_owned(),
            actor,
            result,
            phase: None,
            correlation_id: None,
            source_ip: None,
            session_id: None,
            failure_reason_code: None,
            description: Some(description),
            data: None,
            subject: None,
            attachments: Vec::new(),
            integrity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_written_as_chrono_writes_them() {
        // Stored bodies written before and after `rfc3339` must not differ: a record's integrity
        // commitment and every reader compare these strings.
        struct Ours(DateTime<Utc>);
        impl serde::Serialize for Ours {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                rfc3339(&self.0, s)
            }
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000);
        let times = [0, 1, 999, 1_000, 1_000_000, 123_456_789, 120_000_000, 999_999_999]
            .into_iter()
            .map(|ns| DateTime::from_timestamp(1_764_000_000, ns).unwrap())
            .chain([DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::UNIX_EPOCH])
            .chain(DateTime::from_timestamp(-62_000_000_000, 5))
            .chain(leap.map(|l| l.and_utc()));
        for t in times {
            assert_eq!(serde_json::to_string(&Ours(t)).unwrap(), serde_json::to_string(&t).unwrap(), "{t:?}");
        }
    }

    #[test]
    fn every_category_and_result_round_trips_with_serdes_name() {
        for &c in Category::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(serde_json::from_value::<Category>(c.as_str().into()).unwrap(), c);
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::ALL.len(), 8);
        assert_eq!(Category::parse("SIGN_IN"), None, "exact case, as serde");
        for &r in <ResultCode as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(serde_json::from_value::<ResultCode>(r.as_str().into()).unwrap(), r);
            assert_eq!(ResultCode::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            <ResultCode as strum::VariantArray>::VARIANTS.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            ["OK", "FAIL", "UNAUTHORIZED"]
        );
        assert_eq!(ResultCode::parse("ok"), None);
        for &p in <Phase as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_value(p).unwrap(), <&str>::from(p));
        }
    }
}
