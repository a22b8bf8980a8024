//! Batch ingest: split a JSON array or NDJSON body into items, validate each on its own and
//! build the stored form. One bad item never sinks the batch; it is reported with its field.
//!
//! Limits: at most `MAX_BATCH_RECORDS` records and `MAX_BATCH_BYTES` bytes per request.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{ApiError, FieldError, json_field_error};
use crate::record::{IncomingRecord, Record, ValidationLimits};
use crate::store::AppendOutcome;

pub const MAX_BATCH_RECORDS: usize = 1000;
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    JsonArray,
    NdJson,
    /// One JSON object on its own (a Keycloak event as a listener posts it).
    Single,
}

impl Framing {
    /// From the Content-Type; without one, sniffed from the first non-blank byte.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        match mime.as_deref() {
            Some("application/json") => Ok(Self::JsonArray),
            Some("application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines") => {
                Ok(Self::NdJson)
            }
            None | Some("") => Ok(match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'[') => Self::JsonArray,
                _ => Self::NdJson,
            }),
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "`{other}` is not accepted; send application/json (an array) or application/x-ndjson"
            ))),
        }
    }

    /// As [`Framing::detect`], but a JSON body that is one object rather than an array is that
    /// one item (for sources that post events one at a time).
    pub fn detect_one_or_many(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let framing = Self::detect(content_type, body)?;
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let single = first == Some(&b'{') && {
            let mut items = serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
            items.next().is_some_and(|i| i.is_ok()) && items.next().is_none()
        };
        Ok(if framing == Self::JsonArray && first == Some(&b'{') || framing == Self::NdJson && single {
            Self::Single
        } else {
            framing
        })
    }
}

/// One item's fate, as reported to the client.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Created,
    Duplicate,
    Rejected,
    /// Valid but not stored, or stored without its request pair noted (storage kept failing; the
    /// reason says which); safe to resend.
    Failed,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchResult {
    pub created: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub failed: usize,
    pub items: Vec<ItemResult>,
}

impl BatchResult {
    pub fn all_stored(&self) -> bool {
        self.rejected == 0 && self.failed == 0
    }
}

/// A parsed and validated batch: the records to store and the results so far.
pub struct Prepared {
    pub records: Vec<Record>,
    /// Index into `items` of each record.
    slots: Vec<usize>,
    items: Vec<ItemResult>,
}

/// Splits the body into raw items. A malformed JSON array fails as a whole (it cannot be split
/// reliably); a malformed NDJSON line only fails that line.
fn split(body: &[u8], framing: Framing) -> Result<Vec<Result<&RawValue, String>>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::MalformedBody(format!("the body is not UTF-8: {e}")))?;
    let items: Vec<Result<&RawValue, String>> = match framing {
        Framing::JsonArray => {
            let arr: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                ApiError::MalformedBody(if e.classify() == serde_json::error::Category::Data {
                    "expected a JSON array of records (or NDJSON with Content-Type application/x-ndjson)".to_owned()
                } else {
                    format!("malformed JSON: {e}")
                })
            })?;
            arr.into_iter().map(Ok).collect()
        }
        Framing::Single => vec![
            serde_json::from_str::<&RawValue>(text)
                .map_err(|e| ApiError::MalformedBody(format!("malformed JSON: {e}")))?,
        ]
        .into_iter()
        .map(Ok)
        .collect(),
        Framing::NdJson => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<&RawValue>(l).map_err(|e| format!("malformed JSON line: {e}")))
            .collect(),
    };
    if items.is_empty() {
        return Err(ApiError::field("body", "the batch is empty"));
    }
    if items.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_BATCH_RECORDS} records per batch; this one has {}",
            items.len()
        )));
    }
    Ok(items)
}

/// Deserialises one item; only on failure is it parsed again to find the failing field's path.
fn deserialize_item(raw: &RawValue) -> Result<IncomingRecord, FieldError> {
    serde_json::from_str::<IncomingRecord>(raw.get()).map_err(|first| {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match serde_path_to_error::deserialize::<_, IncomingRecord>(&mut de) {
            Err(e) => json_field_error(e, "record"),
            Ok(_) => FieldError::new("record", first.to_string()),
        }
    })
}

/// Parses and validates a batch of Auditrail records for `tenant`.
pub fn prepare(
    body: &[u8],
    framing: Framing,
    tenant: &str,
    now: DateTime<Utc>,
    limits: &ValidationLimits,
) -> Result<Prepared, ApiError> {
    prepare_with(body, framing, limits, |raw| {
        let inc = deserialize_item(raw).map_err(|e| {
            if e.field == "tenant_id" {
                vec![FieldError::new("tenant_id", "the tenant comes from your token; remove tenant_id from the record")]
            } else {
                vec![e]
            }
        })?;
        inc.into_record(tenant, now, limits)
    })
}

/// Parses a batch and turns each item into a record with `to_record` (which validates it); an
/// item over the size limit or that `to_record` refuses is rejected on its own.
pub fn prepare_with(
    body: &[u8],
    framing: Framing,
    limits: &ValidationLimits,
    mut to_record: impl FnMut(&RawValue) -> Result<Record, Vec<FieldError>>,
) -> Result<Prepared, ApiError> {
    let raw_items = split(body, framing)?;
    let mut records = Vec::with_capacity(raw_items.len());
    let mut slots = Vec::with_capacity(raw_items.len());
    let mut items = Vec::with_capacity(raw_items.len());
    for (index, raw) in raw_items.into_iter().enumerate() {
        let outcome = raw.map_err(|e| vec![FieldError::new("record", e)]).and_then(|raw| {
            if raw.get().len() > limits.record_max {
                return Err(vec![FieldError::new("record", format!("at most {} bytes per record", limits.record_max))]);
            }
            to_record(raw)
        });
        match outcome {
            Ok(r) => {
                slots.push(items.len());
                items.push(ItemResult {
                    index,
                    id: Some(r.id.clone()),
                    status: ItemStatus::Created,
                    errors: Vec::new(),
                });
                records.push(r);
            }
            Err(errors) => items.push(ItemResult { index, id: None, status: ItemStatus::Rejected, errors }),
        }
    }
    Ok(Prepared { records, slots, items })
}

impl Prepared {
    /// Folds the store's per-record outcomes into the item results.
    pub fn finish(mut self, outcomes: &[AppendOutcome]) -> BatchResult {
        for (slot, outcome) in self.slots.iter().zip(outcomes) {
            let item = &mut self.items[*slot];
            match outcome {
                AppendOutcome::Created => item.status = ItemStatus::Created,
                AppendOutcome::Duplicate => item.status = ItemStatus::Duplicate,
                AppendOutcome::Failed { reason } => {
                    item.status = ItemStatus::Failed;
                    item.errors.push(FieldError::new("record", reason.clone()));
                }
            }
        }
        let count = |s| self.items.iter().filter(|i| i.status == s).count();
        BatchResult {
            created: count(ItemStatus::Created),
            duplicates: count(ItemStatus::Duplicate),
            rejected: count(ItemStatus::Rejected),
            failed: count(ItemStatus::Failed),
            items: self.items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(body: &str, framing: Framing) -> Result<Prepared, ApiError> {
        prepare(body.as_bytes(), framing, "acme", Utc::now(), &ValidationLimits::default())
    }

    #[test]
    fn ndjson_bad_line_only_rejects_that_line() {
        let body = "{\"occurred_at\":\"2026-11-20T10:00:00Z\",\"action\":\"LOGIN\",\"actor\":{\"username\":\"a\"},\"result\":\"OK\"}\n{oops\n\n{\"occurred_at\":\"2026-11-20T10:00:00Z\",\"action\":\"LOGIN\",\"result\":7}";
        let p = prep(body, Framing::NdJson).unwrap();
        assert_eq!(p.records.len(), 1);
        let r = p.finish(&[AppendOutcome::Created]);
        assert_eq!((r.created, r.rejected), (1, 2));
        assert_eq!(r.items[2].errors[0].field, "result");
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field() {
        let p = prep(
            r#"[{"occurred_at":"2026-11-20T10:00:00Z","action":"LOGIN","actor":{"kind":"robot"},"result":"OK"},
                        {"action":"LOGIN","result":"OK"},
                        {"tenant_id":"globex","occurred_at":"2026-11-20T10:00:00Z","action":"LOGIN","result":"OK"}]"#,
            Framing::JsonArray,
        )
        .unwrap();
        let r = p.finish(&[]);
        let fields: Vec<_> = r.items.iter().map(|i| i.errors[0].field.as_str()).collect();
        assert_eq!(fields, vec!["actor.kind", "occurred_at", "tenant_id"]);
    }

    #[test]
    fn whole_body_errors() {
        assert!(matches!(prep("[{", Framing::JsonArray), Err(ApiError::MalformedBody(_))));
        assert!(matches!(prep("{\"a\":1}", Framing::JsonArray), Err(ApiError::MalformedBody(_))));
        assert!(matches!(prep("[]", Framing::JsonArray), Err(ApiError::Invalid(_))));
        let many = format!("[{}]", vec!["{}"; 1001].join(","));
        assert!(matches!(prep(&many, Framing::JsonArray), Err(ApiError::PayloadTooLarge(_))));
        assert!(matches!(Framing::detect(Some("text/csv"), b""), Err(ApiError::UnsupportedMediaType(_))));
        assert_eq!(Framing::detect(None, b"  [").unwrap(), Framing::JsonArray);
    }
}
