//! One error type for the HTTP layer and its single mapping to RFC 9457 problem documents.
//!
//! Client errors keep their status and say which field is wrong and why; internal errors are
//! logged with a request id and answered with a generic 500 that never echoes the cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One wrong field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// Names the field a JSON deserialisation error is about: its path, or — for a missing or
/// unknown field, which serde reports at the parent — the field itself.
pub fn json_field_error(e: serde_path_to_error::Error<serde_json::Error>, root: &str) -> FieldError {
    // A blank key leaves a trailing separator (`actor.`): the field is the object it is in.
    let path = e.path().to_string();
    let path = match path.trim_end_matches('.') {
        "" => ".".to_owned(),
        p => p.to_owned(),
    };
    let inner = e.into_inner().to_string();
    let serde_reason = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    let plain = plain_reason(&serde_reason);
    let reason = serde_reason.as_str();
    // A blank key cannot name a field: the error then names the object it is in.
    let named = reason
        .split('`')
        .nth(1)
        .filter(|n| !n.trim().is_empty())
        .filter(|_| reason.starts_with("missing field") || reason.starts_with("unknown field"));
    let field = match (path.as_str(), named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => root.to_owned(),
        (p, Some(name)) if p != name && !p.ends_with(&format!(".{name}")) => format!("{p}.{name}"),
        (p, _) => p.to_owned(),
    };
    let field = if field.trim().is_empty() { root.to_owned() } else { field };
    FieldError::new(field, plain)
}

/// serde's words for a wrong value (`invalid type: string "x", expected u32`) in a client's
/// words (`must be a whole number (0 or more), not "x"`); a value echoed back
/// is cut to 40 characters.
fn plain_reason(serde: &str) -> String {
    fn expected(what: &str) -> String {
        // The type's own range would mislead: a field's range (1–3650 days) is checked after.
        match what.trim() {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
            "f32" | "f64" => "a number".into(),
            "a sequence" => "an array".into(),
            "a map" => "an object".into(),
            "a borrowed string" => "a string".into(),
            w if w.starts_with("struct ") || w.starts_with("a map ") => "an object".into(),
            w if w.starts_with("a sequence") => "an array".into(),
            w => w.to_owned(),
        }
    }
    fn cut(value: &str) -> String {
        let mut out: String = value.chars().take(40).collect();
        if out.len() < value.len() {
            out.push('…');
        }
        out
    }
    fn given(what: &str) -> String {
        match what {
            "sequence" => "an array".into(),
            "map" => "an object".into(),
            "unit value" | "null" => "null".into(),
            w => {
                let w = ["integer ", "floating point ", "boolean ", "string ", "negative integer "]
                    .iter()
                    .find_map(|p| w.strip_prefix(p))
                    .unwrap_or(w);
                cut(w.trim_matches('`'))
            }
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((got, want)) = serde.strip_prefix(prefix).and_then(|rest| rest.rsplit_once(", expected ")) {
            return format!("must be {}, not {}", expected(want), given(got));
        }
    }
    if let Some((n, want)) = serde.strip_prefix("invalid length ").and_then(|rest| rest.split_once(", expected ")) {
        return format!("must be {} (got {n})", want.replace("a sequence", "an array"));
    }
    // chrono's words for a time it cannot read (a `DateTime` field).
    let time = |why: &str| format!("not an RFC 3339 time with offset (e.g. 2026-11-24T09:30:00Z): {why}");
    match serde {
        "premature end of input" => return time("it ends too early"),
        "trailing input" => return time("characters follow the time"),
        "input is out of range" => {
            return time("a part is out of range (month 01–12, day of the month, hour 00–23, …)");
        }
        "input contains invalid characters" => return time("a character is not where one is expected"),
        "input is not enough for unique date and time" | "no possible date and time matching input" => {
            return time("it is incomplete or impossible");
        }
        _ => {}
    }
    if serde.starts_with("missing field") {
        return "is required".into();
    }
    // The client's value comes first and may hold anything, ", expected " too: split at the last.
    if let Some((given, allowed)) = serde.strip_prefix("unknown variant ").and_then(|r| r.rsplit_once(", expected ")) {
        return format!("must be one of {}, not {}", allowed.trim_start_matches("one of "), cut(given));
    }
    if let Some(rest) = serde.strip_prefix("unknown field ") {
        let allowed = rest.rsplit_once(", expected ").map(|(_, a)| a.trim_start_matches("one of ")).unwrap_or("");
        return if allowed.is_empty() || allowed.starts_with("nothing") {
            "unknown field; no fields are accepted here".into()
        } else {
            format!("unknown field; the fields are {allowed}")
        };
    }
    if let Some(rest) = serde.strip_prefix("duplicate field ") {
        return format!("{rest} is given twice");
    }
    serde.to_owned()
}

/// An id from the request, quoted for a problem's detail: cut to 64 characters, so a 404 for a
/// 5,000-character id does not send it back.
pub fn quoted(id: &str) -> String {
    let mut out: String = id.chars().take(64).collect();
    if out.len() < id.len() {
        out.push('…');
    }
    format!("`{out}`")
}

/// Parses a JSON body into `T`: malformed JSON is a malformed body, a wrong or missing field an
/// invalid request naming that field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], root: &str) -> Result<T, ApiError> {
    // RFC 8259 lets a parser ignore a byte order mark; Windows tools write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // serde reads a struct from an array too (`[true]` would be `{"first field": true}`): every
    // body parsed here is one object.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(ApiError::field(root, "is empty; send a JSON object")),
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(ApiError::field(root, "must be a JSON object"));
        }
        Some(_) => {}
    }
    let malformed = |e: serde_json::Error| ApiError::MalformedBody(format!("malformed JSON: {e}"));
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        // Nothing may follow the object (`{…} {…}` or `{…}x` is not one object).
        Ok(t) => return de.end().map(|()| t).map_err(malformed),
        Err(e) if e.inner().classify() != serde_json::error::Category::Data => return Err(malformed(e.into_inner())),
        Err(e) => json_field_error(e, root),
    };
    // serde stops at the first wrong field: the first top-level fields are read again one at a
    // time, so the answer names each at fault. Read alone, a field also reports every other
    // required field missing: only its own errors (`k`, `k.…`, `k[…]`) count. Bounded, as a
    // body may hold a quarter of a million keys.
    let mut errs = vec![first];
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(bytes) {
        for (k, v) in fields.into_iter().take(MAX_FIELDS_REREAD) {
            let own = |f: &str| f == k || f.strip_prefix(k.as_str()).is_some_and(|t| t.starts_with(['.', '[']));
            let alone = serde_json::Value::Object([(k.clone(), v)].into_iter().collect());
            if let Err(e) = serde_path_to_error::deserialize::<_, T>(alone) {
                let e = json_field_error(e, root);
                if own(&e.field) && !errs.iter().any(|f| f.field == e.field) {
                    errs.push(e);
                }
            }
            if errs.len() >= MAX_FIELD_ERRORS {
                break;
            }
        }
    }
    Err(ApiError::Invalid(errs))
}

/// `deserialize_with` for a struct nested in a body: only a JSON object is read. serde reads a
/// struct from an array too (`"search": ["a@b.c"]` would be its first field), which
/// [`parse_json`] refuses for the body itself and this refuses for the fields within it.
pub fn object<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct Only<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Only(std::marker::PhantomData))
}

/// [`object`] read through `Option` and `Vec`.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Object)
    }
}

/// [`object`] for an optional struct: `null` or absent is `None`.
pub fn optional_object<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(<Option<Object<T>> as serde::Deserialize>::deserialize(d)?.map(|o| o.0))
}

/// [`object`] for each element of an array of structs.
pub fn objects<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(<Vec<Object<T>> as serde::Deserialize>::deserialize(d)?.into_iter().map(|o| o.0).collect())
}

/// How many top-level fields of a body that failed are read again on their own.
const MAX_FIELDS_REREAD: usize = 32;
/// The most field errors one body is answered with.
const MAX_FIELD_ERRORS: usize = 20;

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every failure a route can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("malformed body: {0}")]
    MalformedBody(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("gone: {0}")]
    Gone(String),
    /// Too many results to answer usefully; the caller should narrow the request.
    #[error("too many results: {0}")]
    TooMany(String),
    #[error("storage busy, retry")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, reason)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::TooMany(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid-request",
            Self::MalformedBody(_) => "malformed-body",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::Gone(_) => "gone",
            Self::TooMany(_) => "narrow-your-search",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The problem document; internal causes never reach it.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            Self::Invalid(errs) => {
                let detail = errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                (detail, errs.clone())
            }
            // The body or header at fault is named like any wrong field.
            Self::MalformedBody(d) | Self::PayloadTooLarge(d) => (d.clone(), vec![FieldError::new("body", d.clone())]),
            Self::UnsupportedMediaType(d) => {
                let header = if d.starts_with("Content-Encoding") { "content-encoding" } else { "content-type" };
                (d.clone(), vec![FieldError::new(header, d.clone())])
            }
            Self::Unauthenticated(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::Gone(d)
            | Self::TooMany(d) => (d.clone(), Vec::new()),
            Self::Unavailable => ("the store is throttling requests; retry with backoff".into(), Vec::new()),
            Self::Internal(_) => ("an internal error occurred; it has been logged".into(), Vec::new()),
        };
        Problem {
            kind: format!("https://auditrail.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

/// RFC 9457 `application/problem+json` body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Self::Unavailable => tracing::warn!("store throttled the request"),
            _ => tracing::debug!(status = status.as_u16(), error = %self, "client error"),
        }
        let mut resp = self.problem().into_response_with(status);
        if matches!(self, Self::Unavailable) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::Unauthenticated(_)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"auditrail\""));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_words_become_a_clients_words() {
        let cases = [
            ("invalid type: string \"ninety\", expected u32", "must be a whole number (0 or more), not \"ninety\""),
            ("invalid value: integer `-1`, expected u16", "must be a whole number (0 or more), not -1"),
            ("invalid type: sequence, expected struct Filter", "must be an object, not an array"),
            ("invalid type: map, expected a string", "must be a string, not an object"),
            ("invalid type: null, expected a boolean", "must be a boolean, not null"),
            ("invalid length 3, expected a sequence of 2 elements", "must be an array of 2 elements (got 3)"),
            ("unknown variant `a, expected x`, expected one of `csv`", "must be one of `csv`, not `a, expected x`"),
            (
                "premature end of input",
                "not an RFC 3339 time with offset (e.g. 2026-11-24T09:30:00Z): it ends too early",
            ),
            ("unknown variant `xml`, expected one of `csv`, `jsonl`", "must be one of `csv`, `jsonl`, not `xml`"),
            (
                "unknown field `hold`, expected one of `days`, `legal_hold`",
                "unknown field; the fields are `days`, `legal_hold`",
            ),
            ("unknown field `x`, there are no fields", "unknown field; no fields are accepted here"),
            ("duplicate field `tz`", "`tz` is given twice"),
            ("missing field `name`", "is required"),
            ("something serde has not said before", "something serde has not said before"),
        ];
        for (serde, plain) in cases {
            assert_eq!(plain_reason(serde), plain, "{serde}");
        }
        let long = format!("invalid type: string \"{}\", expected u32", "a".repeat(500));
        assert!(plain_reason(&long).len() < 120, "a long value is cut: {}", plain_reason(&long));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Vec<Inner>,
        n: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        number: String,
    }

    fn fields(body: &str) -> Vec<String> {
        match parse_json::<Outer>(body.as_bytes(), "body") {
            Err(ApiError::Invalid(errs)) => errs.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_wrong_field_is_named_but_only_its_own_errors_and_boundedly() {
        // A field read alone names what is wrong inside it, not the other fields it lacks.
        assert_eq!(fields(r#"{"n": "x", "inner": [{}], "name": "a"}"#), vec!["n", "inner[0].number"]);
        assert_eq!(fields(r#"{"n": "x"}"#), vec!["n"], "`name` is missing too, but serde stops at `n`");
        assert_eq!(fields(r#"{"n": 1}"#), vec!["name"]);
        // A quarter of a million unknown keys is answered with a handful of errors.
        let many: Vec<String> = (0..250_000).map(|i| format!("\"k{i}\": 0")).collect();
        let named = fields(&format!("{{{}}}", many.join(",")));
        assert!((2..=MAX_FIELD_ERRORS).contains(&named.len()), "{}", named.len());
    }

    #[test]
    fn ids_in_details_are_cut_to_64_characters() {
        assert_eq!(quoted("abc"), "`abc`");
        let q = quoted(&"é".repeat(300));
        assert_eq!(q.chars().filter(|&c| c == 'é').count(), 64);
        assert!(q.ends_with("…`"));
    }
}
