//! The Keycloak puller, for deployments that cannot add an event listener to Keycloak: it reads
//! a realm's user events and admin events from Keycloak's admin REST API
//! (`GET /admin/realms/{realm}/events` and `/admin-events`) with a service-account client
//! (client-credentials grant) and stores them as `POST /v1/sources/keycloak/events` would.
//!
//! - **Never duplicates:** a record's id is Keycloak's event id, so an event read twice is a
//!   duplicate.
//! - **Never skips:** each run starts `overlap` before the newest event the last run stored (an
//!   event Keycloak commits late, with an earlier time, is still read), and pages newest first
//!   with `first`/`max` until it passes that point: events arriving meanwhile push older ones to
//!   later pages — read twice, never missed. The position (`keycloak_pull` setting of the
//!   tenant) moves only after every page of the run is stored.
//! - **Credentials:** the client secret comes from the environment or SSM and is never logged or
//!   put in an error; a token the server refuses (401, expired) is replaced once per request.
//! - Plain `http://` only to a loopback address (tests, a sidecar); anything else needs HTTPS.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::keycloak::{self, UnknownTypes};
use crate::record::ValidationLimits;
use crate::store::{AppendOutcome, RecordStore, SettingsStore, StoreError};

/// Where the puller keeps its position, per tenant.
pub const POSITION_SETTING: &str = "keycloak_pull";
/// Events per page (Keycloak's `max`).
pub const PAGE: usize = 100;
/// Re-read this much before the newest event already stored.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(10 * 60);
/// On the first run, how far back to start.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

/// A secret that prints as `***` (so it never reaches a log or an error).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One Keycloak realm pulled into one Auditrail tenant.
#[derive(Debug, Clone)]
pub struct PullSource {
    /// Keycloak's base URL (e.g. `https://sso.example.com`, no `/admin`).
    pub base_url: String,
    pub realm: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub overlap: Duration,
    pub since: Duration,
}

impl PullSource {
    /// Checks the URL (HTTPS, or HTTP to a loopback address) and the names.
    pub fn new(
        base_url: &str,
        realm: &str,
        tenant: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> Result<Self, String> {
        let base = base_url.trim_end_matches('/');
        let uri: http::Uri = base.parse().map_err(|e| format!("AUDITRAIL_KEYCLOAK_URL: {e}"))?;
        let host = uri.host().unwrap_or("");
        let loopback = host == "localhost"
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err("AUDITRAIL_KEYCLOAK_URL must be https:// (http:// only to a loopback address)".to_owned()),
        }
        let name_ok = |s: &str| !s.is_empty() && s.len() <= 255 && !s.chars().any(|c| c.is_control() || c == '/');
        if !name_ok(realm) {
            return Err("AUDITRAIL_KEYCLOAK_REALM must be a realm name".to_owned());
        }
        if !name_ok(tenant) || !name_ok(client_id) {
            return Err("AUDITRAIL_KEYCLOAK_TENANT and AUDITRAIL_KEYCLOAK_CLIENT_ID must be set".to_owned());
        }
        Ok(Self {
            base_url: base.to_owned(),
            realm: realm.to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            overlap: DEFAULT_OVERLAP,
            since: DEFAULT_SINCE,
        })
    }
}

/// Why a pull stopped (the position stays where it was; the next run repeats the work).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("Keycloak at {url}: {reason}")]
    Keycloak { url: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run stored.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct PullReport {
    pub read: usize,
    pub created: usize,
    pub duplicates: usize,
    /// Events the record validation refused (logged with their field; skipped, so one bad
    /// event cannot hold the puller back forever).
    pub rejected: usize,
    pub unknown_types: UnknownTypes,
}

/// The two event lists of a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    User,
    Admin,
}

impl Feed {
    fn path(self) -> &'static str {
        match self {
            Self::User => "events",
            Self::Admin => "admin-events",
        }
    }
}

/// The newest event time (ms) stored from each feed.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Position {
    #[serde(default)]
    user_ms: Option<i64>,
    #[serde(default)]
    admin_ms: Option<i64>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The puller: an HTTPS client (rustls on ring, the system's roots) and the current token.
pub struct Puller {
    source: PullSource,
    client: Client<Https, Full<Bytes>>,
    token: tokio::sync::Mutex<Option<String>>,
}

impl Puller {
    pub fn new(source: PullSource) -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("no trusted roots for Keycloak's certificate: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { source, client, token: tokio::sync::Mutex::new(None) })
    }

    pub fn source(&self) -> &PullSource {
        &self.source
    }

    async fn send(&self, req: http::Request<Full<Bytes>>) -> Result<(http::StatusCode, Bytes), String> {
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| format!("reading the answer: {e}"))?.to_bytes();
        Ok((status, body))
    }

    fn keycloak_error(&self, url: &str, reason: impl Into<String>) -> PullError {
        PullError::Keycloak { url: url.to_owned(), reason: reason.into() }
    }

    /// A new token by the client-credentials grant.
    async fn fresh_token(&self) -> Result<String, PullError> {
        let url = format!("{}/realms/{}/protocol/openid-connect/token", self.source.base_url, enc(&self.source.realm));
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_id", self.source.client_id.as_str()),
            ("client_secret", self.source.client_secret.0.as_str()),
        ])
        .map_err(|e| self.keycloak_error(&url, e.to_string()))?;
        let req = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| self.keycloak_error(&url, e.to_string()))?;
        let (status, body) = self.send(req).await.map_err(|e| self.keycloak_error(&url, e))?;
        if !status.is_success() {
            // Keycloak's OAuth error code only (never the request, which holds the secret).
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(self.keycloak_error(
                &url,
                format!("the client-credentials grant was refused ({status} {code}); check the service-account client"),
            ));
        }
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| self.keycloak_error(&url, format!("no access token: {e}")))?;
        Ok(t.access_token)
    }

    /// GET with the current token; on 401 (expired or revoked) one new token and one retry.
    async fn get(&self, url: &str) -> Result<Bytes, PullError> {
        for attempt in 0..2 {
            let token = {
                let mut held = self.token.lock().await;
                if held.is_none() || attempt > 0 {
                    *held = Some(self.fresh_token().await?);
                }
                held.clone().unwrap_or_default()
            };
            let req = http::Request::get(url)
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(http::header::ACCEPT, "application/json")
                .body(Full::new(Bytes::new()))
                .map_err(|e| self.keycloak_error(url, e.to_string()))?;
            let (status, body) = self.send(req).await.map_err(|e| self.keycloak_error(url, e))?;
            match status.as_u16() {
                200 => return Ok(body),
                401 if attempt == 0 => continue,
                401 => return Err(self.keycloak_error(url, "401 with a fresh token")),
                403 => {
                    return Err(
                        self.keycloak_error(url, "403: the service account needs realm-management's view-events role")
                    );
                }
                s => return Err(self.keycloak_error(url, format!("HTTP {s}"))),
            }
        }
        unreachable!("the loop returns")
    }

    /// Reads both feeds from the stored position and stores what is new.
    pub async fn run(
        &self,
        records: &dyn RecordStore,
        settings: &dyn SettingsStore,
        limits: &ValidationLimits,
        now: DateTime<Utc>,
    ) -> Result<PullReport, PullError> {
        let tenant = &self.source.tenant;
        let mut position: Position = match settings.get_setting(tenant, POSITION_SETTING).await? {
            None => Position::default(),
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("keycloak_pull: {e}")))?,
        };
        let kc_settings = keycloak::load(settings, tenant).await?;
        let mut report = PullReport::default();
        for feed in [Feed::User, Feed::Admin] {
            let last = match feed {
                Feed::User => position.user_ms,
                Feed::Admin => position.admin_ms,
            };
            let to = Target { records, settings: &kc_settings, limits, now };
            let newest = self.pull_feed(feed, last, &to, &mut report).await?;
            match feed {
                Feed::User => position.user_ms = newest.max(position.user_ms),
                Feed::Admin => position.admin_ms = newest.max(position.admin_ms),
            }
            let v = serde_json::to_value(position).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            settings.put_setting(tenant, POSITION_SETTING, &v).await?;
        }
        if report.created > 0 {
            settings.register_tenant(tenant).await?;
        }
        Ok(report)
    }

    /// One feed, newest first, from `overlap` before `last` (or `since` ago); returns the newest
    /// event time stored.
    async fn pull_feed(
        &self,
        feed: Feed,
        last: Option<i64>,
        to: &Target<'_>,
        report: &mut PullReport,
    ) -> Result<Option<i64>, PullError> {
        let from_ms = match last {
            Some(ms) => ms - self.source.overlap.as_millis() as i64,
            None => to.now.timestamp_millis() - self.source.since.as_millis() as i64,
        };
        // `dateFrom` is a day in Keycloak's own time zone: a day earlier bounds its work safely;
        // the exact cut is the time check below.
        let date_from = DateTime::<Utc>::from_timestamp_millis(from_ms - 86_400_000)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
            .format("%Y-%m-%d")
            .to_string();
        let mut newest = None;
        let mut first = 0;
        loop {
            let query = serde_urlencoded::to_string([
                ("dateFrom", date_from.clone()),
                ("first", first.to_string()),
                ("max", PAGE.to_string()),
            ])
            .unwrap_or_default();
            let url =
                format!("{}/admin/realms/{}/{}?{query}", self.source.base_url, enc(&self.source.realm), feed.path());
            let body = self.get(&url).await?;
            let page: Vec<Box<RawValue>> = serde_json::from_slice(&body)
                .map_err(|e| self.keycloak_error(&url, format!("not a list of events: {e}")))?;
            let mut batch = Vec::new();
            let mut passed = false;
            for raw in &page {
                let time = serde_json::from_str::<EventTime>(raw.get()).map(|t| t.time).unwrap_or(i64::MAX);
                if time < from_ms {
                    passed = true;
                    continue;
                }
                report.read += 1;
                let mapped = keycloak::map_event(raw, to.settings).and_then(|m| {
                    let unknown = m.unknown_type;
                    m.record.into_record(&self.source.tenant, to.now, to.limits).map(|r| (r, unknown))
                });
                match mapped {
                    Ok((record, unknown)) => {
                        if let Some(t) = unknown {
                            *report.unknown_types.entry(t).or_insert(0) += 1;
                        }
                        newest = newest.max(Some(time));
                        batch.push(record);
                    }
                    Err(errors) => {
                        report.rejected += 1;
                        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                        tracing::warn!(tenant = %self.source.tenant, feed = feed.path(), ?fields, "keycloak event refused");
                    }
                }
            }
            if !batch.is_empty() {
                for outcome in to.records.append(&self.source.tenant, &batch).await? {
                    match outcome {
                        AppendOutcome::Created => report.created += 1,
                        AppendOutcome::Duplicate => report.duplicates += 1,
                        AppendOutcome::Failed { reason } => {
                            // Stored nothing of it: stop before moving the position.
                            return Err(PullError::Store(StoreError::backend(anyhow::anyhow!(reason))));
                        }
                    }
                }
            }
            if passed || page.len() < PAGE {
                return Ok(newest);
            }
            first += page.len();
        }
    }
}

/// Where a feed's events go, and how they are checked.
struct Target<'a> {
    records: &'a dyn RecordStore,
    settings: &'a keycloak::KeycloakSettings,
    limits: &'a ValidationLimits,
    now: DateTime<Utc>,
}

#[derive(Deserialize)]
struct EventTime {
    time: i64,
}

/// A realm name as one path segment.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
