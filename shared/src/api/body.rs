//! The body of a route that takes one JSON object (settings, exports, DPO searches and
//! erasures, schedules, the console's sign-in): its headers are checked before a byte is parsed.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;

/// The raw bytes of a JSON request body whose `Content-Type` (when sent) is JSON and whose
/// `Content-Encoding` (when sent) is `identity`; parse it with [`crate::error::parse_json`].
///
/// A body without a `Content-Type` is taken as JSON (what `fetch` and most clients send without
/// one is JSON here); `application/x-www-form-urlencoded` — what `curl -d` sends unless told —
/// or any other type is a 415 naming the header, as is a compressed body: these routes read
/// small objects, so nothing is gained by compressing them and a gzip body parsed as JSON would
/// only be reported as malformed.
pub struct JsonBody(pub Bytes);

/// axum's default body limit, which these routes keep.
pub const MAX_JSON_BODY_BYTES: usize = 2 * 1024 * 1024;

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_headers(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("a JSON body here may be at most {MAX_JSON_BODY_BYTES} bytes"))
            } else {
                ApiError::MalformedBody(e.body_text())
            }
        })?;
        Ok(Self(bytes))
    }
}

/// 415 for a body that is not JSON or is compressed.
pub fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let json = mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !json {
            let shown: String = mime.chars().take(64).collect();
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type `{shown}` is not accepted; send the body as application/json"
            )));
        }
    }
    for enc in headers.get_all(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        if !enc.split(',').all(|e| matches!(e.trim(), "identity" | "")) {
            let shown: String = enc.chars().take(32).collect();
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding `{shown}` is not accepted here; send the JSON uncompressed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn json_types_pass_and_others_are_refused_naming_the_header() {
        for ok in
            ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
        {
            assert!(check_headers(&headers(&[(header::CONTENT_TYPE, ok)])).is_ok(), "{ok}");
        }
        assert!(check_headers(&HeaderMap::new()).is_ok(), "no Content-Type: taken as JSON");
        for bad in ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", "text/json+x"]
        {
            let e = check_headers(&headers(&[(header::CONTENT_TYPE, bad)])).unwrap_err();
            assert!(matches!(&e, ApiError::UnsupportedMediaType(m) if m.starts_with("Content-Type")), "{bad}: {e}");
        }
        assert!(check_headers(&headers(&[(header::CONTENT_ENCODING, "identity")])).is_ok());
        for bad in ["gzip", "br", "identity, gzip"] {
            let e = check_headers(&headers(&[(header::CONTENT_ENCODING, bad)])).unwrap_err();
            assert!(matches!(&e, ApiError::UnsupportedMediaType(m) if m.starts_with("Content-Encoding")), "{bad}: {e}");
        }
    }
}
