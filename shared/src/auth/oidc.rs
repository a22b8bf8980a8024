//! The `oidc` auth mode of `auditrail serve`: RS256/ES256 access tokens of one OpenID Connect
//! issuer (a Keycloak realm, any provider), verified here against the issuer's JWKS.
//!
//! The JWKS is found by discovery (`<issuer>/.well-known/openid-configuration` → `jwks_uri`) on
//! first use, cached, refreshed after [`MAX_KEY_AGE`], and fetched again when a token names a
//! key id it does not hold (a rotated key) — at most once per `min_refresh`, so tokens with
//! made-up key ids cannot make the server hammer the issuer. Issuer and audience are checked (or,
//! with `azp_fallback`, `azp` stands in for a missing audience, as in Keycloak's access tokens);
//! tenant and roles come from configurable claims (dotted paths such as `realm_access.roles`),
//! roles outside Auditrail's set ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::Value;
use tokio::sync::Mutex;

use super::{AuthFailure, Principal, principal_from};

/// A cached key set is fetched again after this long, so a withdrawn key stops working.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);
/// The most a discovery document or key set may weigh.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// What the deployment trusts.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// The audience tokens must carry in `aud`.
    pub audience: String,
    /// Accept a token without that `aud` when its `azp` (authorized party) is the audience.
    pub azp_fallback: bool,
    /// Dotted path of the claim holding the tenant id.
    pub tenant_claim: String,
    /// Dotted path of the claim holding the roles (an array, or a space/comma separated string).
    pub roles_claim: String,
    /// The least time between two key-set fetches caused by unknown key ids.
    pub min_refresh: Duration,
}

pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";
pub const DEFAULT_ROLES_CLAIM: &str = "realm_access.roles";

/// The issuer's keys by key id, with each key's algorithm.
#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Instant>,
    jwks_uri: Option<String>,
}

/// Verifies one issuer's access tokens.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Whether an issuer or key-set URL may be used: HTTPS, or plain HTTP to this machine.
fn allowed_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host = host.map_or(rest.split('/').next().unwrap_or_default(), |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            allowed_url(&settings.issuer),
            "AUDITRAIL_OIDC_ISSUER must be an https:// URL (plain http only to localhost), not `{}`",
            settings.issuer
        );
        anyhow::ensure!(!settings.audience.trim().is_empty(), "the OIDC audience must not be empty");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { settings, http, keys: Mutex::new(Keys::default()) })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    async fn get_json(&self, url: &str) -> anyhow::Result<Value> {
        anyhow::ensure!(allowed_url(url), "`{url}` is neither https:// nor http://localhost");
        let mut resp = self.http.get(url).header("accept", "application/json").send().await?;
        anyhow::ensure!(resp.status().is_success(), "GET {url}: HTTP {}", resp.status());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk);
            anyhow::ensure!(body.len() <= MAX_DOCUMENT_BYTES, "GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes");
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Discovery (once) and the key set, into `keys`.
    async fn fetch(&self, keys: &mut Keys) -> anyhow::Result<()> {
        keys.fetched = Some(Instant::now());
        let jwks_uri = match &keys.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
                let doc = self.get_json(&url).await?;
                anyhow::ensure!(
                    doc["issuer"].as_str() == Some(self.settings.issuer.as_str()),
                    "the discovery document at {url} names the issuer {}, not {}",
                    doc["issuer"],
                    self.settings.issuer
                );
                let u = doc["jwks_uri"].as_str().ok_or_else(|| anyhow::anyhow!("{url} has no jwks_uri"))?.to_owned();
                keys.jwks_uri = Some(u.clone());
                u
            }
        };
        let set: JwkSet = serde_json::from_value(self.get_json(&jwks_uri).await?)?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                _ => continue, // not a key this server accepts tokens of
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                by_kid.insert(kid, (alg, key));
            }
        }
        tracing::info!(keys = by_kid.len(), jwks_uri = %jwks_uri, "fetched the OIDC issuer's keys");
        keys.by_kid = by_kid;
        Ok(())
    }

    /// The key for `kid`, fetching the key set when it is stale or lacks the key (rate-limited).
    async fn key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), AuthFailure> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|t| t.elapsed() >= MAX_KEY_AGE);
        let unknown = !keys.by_kid.contains_key(kid);
        let may_refetch = keys.fetched.is_none_or(|t| t.elapsed() >= self.settings.min_refresh);
        if (stale || (unknown && may_refetch))
            && let Err(e) = self.fetch(&mut keys).await
        {
            tracing::warn!(error = %e, issuer = %self.settings.issuer, "could not fetch the OIDC issuer's keys");
            if keys.by_kid.is_empty() {
                return Err(AuthFailure::new("the identity provider's keys could not be fetched; try again"));
            }
        }
        keys.by_kid.get(kid).cloned().ok_or_else(|| {
            AuthFailure::new(format!("the token's signing key (kid `{kid}`) is not one of the issuer's keys"))
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        // The audience is checked below, where `azp` may stand in for it.
        v.validate_aud = false;
        v.leeway = 30;
        v
    }

    /// Verifies a bearer token of the issuer.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthFailure::new("the bearer token is not a JWT signed with RS256 or ES256"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthFailure::new("only RS256- or ES256-signed tokens of the issuer are accepted"));
        }
        let kid = header.kid.ok_or_else(|| AuthFailure::new("the token names no signing key (kid)"))?;
        let (alg, key) = self.key(&kid).await?;
        if alg != header.alg {
            return Err(AuthFailure::new(format!("the key `{kid}` signs {alg:?} tokens, not {:?}", header.alg)));
        }
        match jsonwebtoken::decode::<Value>(token, &key, &self.validation(alg)) {
            Ok(data) => self.principal(&data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                // A valid signature: the tenant is trustworthy enough to record the denial.
                let mut v = self.validation(alg);
                v.validate_exp = false;
                let tenant =
                    jsonwebtoken::decode::<Value>(token, &key, &v).ok().and_then(|d| self.principal(&d.claims).ok());
                Err(AuthFailure { reason: "the token has expired".into(), tenant })
            }
            Err(e) => Err(AuthFailure::new(match e.kind() {
                ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
                ErrorKind::InvalidIssuer => format!("the token was not issued by {}", self.settings.issuer),
                ErrorKind::MissingRequiredClaim(c) => format!("the token lacks the `{c}` claim"),
                ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
                _ => "the bearer token is not a valid RS256 or ES256 JWT".to_owned(),
            })),
        }
    }

    /// The caller of verified claims: audience (or `azp`), tenant, roles, names.
    fn principal(&self, claims: &Value) -> Result<Principal, AuthFailure> {
        let audience = self.settings.audience.as_str();
        let in_aud = match &claims["aud"] {
            Value::String(a) => a == audience,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(audience)),
            _ => false,
        };
        let by_azp = self.settings.azp_fallback && claims["azp"].as_str() == Some(audience);
        if !in_aud && !by_azp {
            let also = if self.settings.azp_fallback { " (nor in azp)" } else { "" };
            return Err(AuthFailure::new(format!(
                "the token is not meant for Auditrail: `{audience}` is not in aud{also}"
            )));
        }
        let tenant = claim(claims, &self.settings.tenant_claim).and_then(Value::as_str).ok_or_else(|| {
            AuthFailure::new(format!("the token has no `{}` claim (the tenant)", self.settings.tenant_claim))
        })?;
        let roles: Vec<String> = match claim(claims, &self.settings.roles_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) => s.split([' ', ',']).filter(|r| !r.is_empty()).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
        let username = claims["preferred_username"].as_str().map(str::to_owned);
        principal_from(sub, tenant.to_owned(), username, &roles)
    }
}

/// The claim at a dotted path (`realm_access.roles`); a claim whose own name has a dot
/// (`https://example.com/tenant`) is found by its full name first.
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, part| v.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_by_dotted_path() {
        let c = serde_json::json!({"realm_access": {"roles": ["dpo"]}, "https://x.example/t": "acme"});
        assert_eq!(claim(&c, "realm_access.roles"), Some(&serde_json::json!(["dpo"])));
        assert_eq!(claim(&c, "https://x.example/t"), Some(&serde_json::json!("acme")));
        assert_eq!(claim(&c, "realm_access.nope"), None);
    }

    #[test]
    fn issuers_are_https_or_local() {
        assert!(allowed_url("https://id.example.com/realms/a"));
        assert!(allowed_url("http://127.0.0.1:8081/realms/a"));
        assert!(allowed_url("http://localhost/realms/a"));
        assert!(!allowed_url("http://id.example.com/realms/a"));
        assert!(!allowed_url("http://localhost.evil.com/x"));
        assert!(!allowed_url("ftp://localhost/"));
    }
}
