//! The web console, served same-origin with the API: the files of `console/dist` (built by `make
//! console`) embedded in the binary at compile time. Only `auditrail` and the `console` Lambda
//! function link this crate, so the other functions do not carry the files.
//!
//! - `index.html` (at `/`, and for every path that looks like an app route: no file extension)
//!   is `Cache-Control: no-cache`, so a new release is picked up at once;
//! - hashed assets (`/assets/…`) are `public, max-age=31536000, immutable`; an unknown one is a
//!   404, never the page;
//! - every answer carries a strict Content-Security-Policy (no inline script or style),
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`;
//! - `/v1/…` is the API's ([`with_api`]).
//!
//! A build without `console/dist` compiles (with a `cargo:warning`), and `/` then answers a page
//! saying to run `make console`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tower::ServiceExt;

#[derive(rust_embed::RustEmbed)]
#[folder = "../console/dist/"]
#[allow_missing = true]
struct Dist;

/// `Cache-Control` of the hashed files under `/assets/`.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of `index.html` and the other unhashed files.
pub const NO_CACHE: &str = "no-cache";

/// What `/` answers when the console was not built into this binary.
const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Auditrail: console not built</title></head><body>\
<h1>The Auditrail web console is not built into this binary</h1>\
<p>Build it and then this binary: run <code>make console</code> (that is <code>npm --prefix console ci \
&amp;&amp; npm --prefix console run build</code>), then <code>cargo build -p auditrail</code>; or simply \
<code>make run</code>, which does both.</p>\
<p>The API is served as usual: <a href=\"/v1/openapi.json\">/v1/openapi.json</a>.</p></body></html>\n";

/// Whether the console's files are in this binary.
pub fn built() -> bool {
    Dist::get("index.html").is_some()
}

/// The embedded files' paths (`index.html`, `assets/index-3f2a.js`, …).
pub fn files() -> Vec<String> {
    Dist::iter().map(|p| p.into_owned()).collect()
}

/// Serves the embedded console.
#[derive(Debug, Clone)]
pub struct Console {
    csp: HeaderValue,
}

impl Console {
    /// The console of a deployment whose users sign in at `issuer` (an OpenID Connect issuer
    /// URL, `None` in the local mode): the browser may talk to that origin and post forms to it,
    /// and to nothing else but this one.
    pub fn new(issuer: Option<&str>) -> Self {
        let origin = issuer.and_then(origin_of).map(|o| format!(" {o}")).unwrap_or_default();
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'{origin}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'{origin}"
        );
        Self { csp: HeaderValue::from_str(&csp).expect("an origin of plain URL characters") }
    }

    /// The Content-Security-Policy every console answer carries.
    pub fn csp(&self) -> &str {
        self.csp.to_str().unwrap_or_default()
    }

    /// The answer to a request for a console path (anything outside `/v1`).
    pub fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        let mut resp = self.file(method, path, headers);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        resp
    }

    fn file(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "the console's files are read with GET\n");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let name = path.trim_start_matches('/');
        let name = if name.is_empty() { "index.html" } else { name };
        if let Some(file) = Dist::get(name) {
            let cache = if name.starts_with("assets/") { IMMUTABLE } else { NO_CACHE };
            return serve(method, headers, name, file, cache);
        }
        let last = name.rsplit('/').next().unwrap_or_default();
        if name != "index.html" && (name.starts_with("assets/") || last.contains('.')) {
            return text(StatusCode::NOT_FOUND, "no such file in the console\n");
        }
        // An app route (`/activity`, `/records/01J…`): the page, whose router shows it.
        match Dist::get("index.html") {
            Some(index) => serve(method, headers, "index.html", index, NO_CACHE),
            None => {
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, NOT_BUILT).into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
                r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
        }
    }
}

/// One embedded file, with its type, caching and a strong ETag (its SHA-256); a matching
/// `If-None-Match` is a 304.
fn serve(
    method: &Method,
    headers: &HeaderMap,
    name: &str,
    file: rust_embed::EmbeddedFile,
    cache: &'static str,
) -> Response {
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hash[..16].iter().map(|b| format!("{b:02x}")).collect::<String>());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(file.data.len()));
        r
    } else {
        (StatusCode::OK, Body::from(file.data.into_owned())).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The content type of a built file, by its extension (what Vite emits).
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// `scheme://host[:port]` of an `http(s)` URL, if it is one made of plain URL characters (so it
/// cannot break out of the policy).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!authority.is_empty() && authority.chars().all(plain))
        .then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Whether a path is the API's.
pub fn is_api(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// One router: `/v1/…` to `api` (its own not-found problems included), everything else to the
/// console.
pub fn with_api(api: Router, console: Console) -> Router {
    let console = Arc::new(console);
    Router::new().fallback(move |req: Request| {
        let (api, console) = (api.clone(), console.clone());
        async move {
            if is_api(req.uri().path()) {
                match api.oneshot(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                }
            } else {
                console.respond(req.method(), req.uri().path(), req.headers())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_plain() {
        assert_eq!(
            origin_of("https://ID.example.com:8443/realms/acme").as_deref(),
            Some("https://id.example.com:8443")
        );
        assert_eq!(origin_of("http://127.0.0.1:9000").as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(origin_of("https://x.com; script-src *"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert!(
            Console::new(Some("https://id.example.com/realms/a"))
                .csp()
                .contains("connect-src 'self' https://id.example.com;")
        );
        assert!(Console::new(None).csp().contains("form-action 'self'"));
    }

    /// `/` is the page when the console is built, else the page saying how to build it.
    #[test]
    fn the_root_is_the_page_or_says_how_to_build_it() {
        let console = Console::new(None);
        for path in ["/", "/index.html", "/activity"] {
            let r = console.respond(&Method::GET, path, &HeaderMap::new());
            if built() {
                assert_eq!(r.status(), StatusCode::OK, "{path}");
            } else {
                assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
                assert!(NOT_BUILT.contains("make console"));
            }
            assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8", "{path}");
            assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        }
    }

    #[test]
    fn api_paths() {
        assert!(is_api("/v1/health") && is_api("/v1"));
        assert!(!is_api("/v10") && !is_api("/") && !is_api("/activity"));
    }
}
