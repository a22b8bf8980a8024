//! Personal-data search (seed 002): e-mail, phone (digits only, the last N ≥ 3 digits), first +
//! last name together, a time span (applied in the index lookup); criteria are OR-ed. Over 1000
//! hits the seed suggests narrowing the search: the answer says how many and asks; the DPO may go
//! on with `accept_large`, up to a hard ceiling of 10,000 hits that bounds the memory a search
//! holds. Never part of the hits. Results come in the seed's four groups plus the audit
//! records and error reports that name the subject.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::subject::{self, MIN_DIGITS};
use crate::error::{ApiError, FieldError};
use crate::record::{Category, Record};
use crate::store::{ReadStats, StoreError, SubjectStore};

/// More hits than this: the DPO is advised to narrow the search (and may go on, `accept_large`).
pub const MAX_HITS: usize = 1000;

/// More hits than this are never returned: narrow the search. Bounds what one search holds.
pub const HARD_MAX_HITS: usize = 10_000;

/// `POST /v1/dpo/searches`.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub email: Option<String>,
    /// Digits count; separators (spaces, `-`, `(`, `)`, `.`, `/`) and `+` are ignored.
    pub phone: Option<String>,
    /// How many digits from the end of `phone` to match (≥ 3; default: all given).
    pub phone_digits: Option<usize>,
    /// Only together with `last_name`.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Go on past the advice to narrow a search of more than 1000 hits (up to 10,000).
    #[serde(default)]
    pub accept_large: bool,
}

impl std::fmt::Debug for SearchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchRequest(<personal data redacted>)")
    }
}

/// A checked search: index keys to look up, and the window.
pub struct Criteria {
    pub lookups: Vec<(String, bool)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Normalised values by criterion, only ever stored as salted hashes.
    pub normalised: BTreeMap<&'static str, String>,
    pub phone_digits: Option<usize>,
    /// The most hits to return: `MAX_HITS`, or `HARD_MAX_HITS` when the DPO accepted more.
    pub limit: usize,
}

pub fn criteria(req: &SearchRequest) -> Result<Criteria, ApiError> {
    let mut errs = Vec::new();
    let mut lookups = Vec::new();
    let mut normalised = BTreeMap::new();
    if let Some(e) = &req.email {
        match subject::email_key(e) {
            Some(k) => {
                normalised.insert("email", k[2..].to_owned());
                lookups.push((k, false));
            }
            None => errs.push(FieldError::new("email", "not an e-mail address")),
        }
    }
    let mut used_digits = None;
    match (&req.phone, req.phone_digits) {
        (None, Some(_)) => errs.push(FieldError::new("phone_digits", "needs `phone`")),
        (None, None) => {}
        (Some(p), n) => {
            let digits = subject::phone_digits(p);
            if p.chars().any(|c| !(c.is_ascii_digit() || " +-()./".contains(c))) {
                errs.push(FieldError::new("phone", "only digits and the separators + - ( ) . / and spaces"));
            } else if digits.len() < MIN_DIGITS {
                errs.push(FieldError::new(
                    "phone",
                    format!("has {} digit(s); a phone search needs at least {MIN_DIGITS}", digits.len()),
                ));
            } else {
                let n = n.unwrap_or(digits.len());
                if n < MIN_DIGITS || n > digits.len() {
                    errs.push(FieldError::new(
                        "phone_digits",
                        format!("must be from {MIN_DIGITS} to the {} digits given", digits.len()),
                    ));
                } else {
                    let tail = &digits[digits.len() - n..];
                    normalised.insert("phone", tail.to_owned());
                    used_digits = Some(n);
                    lookups.push((format!("p:{}", tail.chars().rev().collect::<String>()), true));
                }
            }
        }
    }
    match (&req.first_name, &req.last_name) {
        (None, None) => {}
        (Some(f), Some(l)) => match subject::name_key(f, l) {
            Some(k) => {
                normalised.insert("name", k[2..].to_owned());
                lookups.push((k, false));
            }
            None => errs.push(FieldError::new("first_name", "first and last name must not be empty")),
        },
        (Some(_), None) => errs.push(FieldError::new("last_name", "a name search needs both first_name and last_name")),
        (None, Some(_)) => {
            errs.push(FieldError::new("first_name", "a name search needs both first_name and last_name"))
        }
    }
    if let (Some(f), Some(t)) = (req.from, req.to)
        && f >= t
    {
        errs.push(FieldError::new("to", "must be after `from`"));
    }
    if errs.is_empty() && lookups.is_empty() {
        errs.push(FieldError::new("body", "give at least one of email, phone, or first_name with last_name"));
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    let limit = if req.accept_large { HARD_MAX_HITS } else { MAX_HITS };
    Ok(Criteria { lookups, from: req.from, to: req.to, normalised, phone_digits: used_digits, limit })
}

/// The seed's result groups, plus audit records and error reports.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Group {
    Contacts,
    DirectoryEntries,
    CampaignCustomers,
    Consents,
    AuditRecords,
    ErrorReports,
}

impl Group {
    /// Every group, in the order the answers list them.
    pub const ALL: &'static [Group] = <Self as strum::VariantArray>::VARIANTS;

    /// The group's wire name (serde's).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn of(c: Category) -> Self {
        match c {
            Category::Contact => Self::Contacts,
            Category::DirectoryEntry => Self::DirectoryEntries,
            Category::CampaignCustomer => Self::CampaignCustomers,
            Category::Consent => Self::Consents,
            Category::ErrorReport => Self::ErrorReports,
            _ => Self::AuditRecords,
        }
    }
}

pub enum Outcome {
    Found {
        records: Vec<Record>,
        stats: ReadStats,
    },
    /// More than the criteria's limit: `count` hits, or more than `HARD_MAX_HITS` (`None`).
    TooMany {
        count: Option<usize>,
    },
}

/// Runs the lookups (OR) in the window; each index entry carries its record. Holds at most
/// `HARD_MAX_HITS + 1` records, also when it only counts for the advice.
pub async fn search(subjects: &dyn SubjectStore, tenant: &str, c: &Criteria) -> Result<Outcome, StoreError> {
    let mut seen = BTreeSet::new();
    let mut stats = ReadStats::default();
    let mut out = Vec::new();
    for (key, prefix) in &c.lookups {
        let (found, s) = subjects.subject_lookup(tenant, key, *prefix, (c.from, c.to), HARD_MAX_HITS).await?;
        stats += s;
        for r in found {
            if seen.insert(r.id.clone()) {
                out.push(r);
            }
        }
        if out.len() > HARD_MAX_HITS {
            return Ok(Outcome::TooMany { count: None });
        }
    }
    if out.len() > c.limit {
        return Ok(Outcome::TooMany { count: Some(out.len()) });
    }
    out.sort_by(|a, b| {
        (Group::of(a.category), b.occurred_at, &a.id).cmp(&(Group::of(b.category), a.occurred_at, &b.id))
    });
    stats.items_returned = out.len() as u64;
    Ok(Outcome::Found { records: out, stats })
}

/// One hit as the DPO sees it: the whole record (the details view) and its downloads.
pub fn hit(r: &Record, tz: Option<chrono_tz::Tz>) -> Value {
    let attachments: Vec<Value> = r
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({"name": a.name, "size": a.size, "kind": a.kind, "content_type": a.content_type,
                   "download": format!("/v1/dpo/attachments/{}/{i}", r.id)})
        })
        .collect();
    json!({
        "id": r.id,
        "group": Group::of(r.category),
        "time": crate::query::render_time(r.occurred_at, tz),
        "record": crate::query::render_record(r, tz),
        "attachments": attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_their_wire_names() {
        for &g in Group::ALL {
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str());
            assert_eq!(serde_json::from_value::<Group>(g.as_str().into()).unwrap(), g);
        }
    }
}
