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
    let reason = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
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
    FieldError::new(field, reason)
}

/// Parses a JSON body into `T`: malformed JSON is a malformed body, a wrong or missing field an
/// invalid request naming that field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], root: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().classify() == serde_json::error::Category::Data {
            ApiError::Invalid(vec![json_field_error(e, root)])
        } else {
            ApiError::MalformedBody(format!("malformed JSON: {}", e.into_inner()))
        }
    })
}

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
            Self::MalformedBody(d)
            | Self::PayloadTooLarge(d)
            | Self::UnsupportedMediaType(d)
            | Self::Unauthenticated(d)
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
