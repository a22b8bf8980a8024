//! Who is calling: bearer tokens → one `Principal`, and the roles each operation needs.
//!
//! Locally the server verifies HS256 tokens signed with a key from the data directory (or
//! `AUDITRAIL_JWT_SECRET`), or (the `oidc` mode, `oidc.rs`) an OpenID Connect issuer's RS256/ES256
//! access tokens against its JWKS; behind API Gateway the HTTP API's JWT authorizer has already
//! verified the token and the handlers read its claims from the request context. The tenant
//! always comes from the `tenant_id` claim, never from a request body or path.

#[cfg(feature = "oidc")]
pub mod oidc;

use std::collections::HashMap;

#[cfg(feature = "local-auth")]
use chrono::Utc;
#[cfg(feature = "local-auth")]
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

pub const LOCAL_ISSUER: &str = "auditrail-local";
pub const AUDIENCE: &str = "auditrail";

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Service clients: write records, upload error reports.
    Ingest,
    /// Agent desktops: upload error reports.
    Agent,
    CcManager,
    ComplianceAnalyst,
    /// Everything a compliance reader can do, plus settings.
    TenantAdmin,
    /// Data-protection officer: DPO search, report, erasure.
    Dpo,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: &'static [Role] = <Self as strum::VariantArray>::VARIANTS;

    /// The role's wire name (serde's).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The role of a wire name (exact case).
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Roles that may read audit data and work with exports (seed 004: CC Manager, Compliance Analyst).
pub const READERS: &[Role] = &[Role::CcManager, Role::ComplianceAnalyst, Role::TenantAdmin];

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub user_id: String,
    pub username: Option<String>,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }

    /// The actor block for records Auditrail writes about this caller.
    pub fn actor(&self) -> crate::record::Actor {
        crate::record::Actor {
            user_id: Some(self.user_id.clone()),
            username: self.username.clone(),
            role: self.roles.first().map(|r| r.as_str().to_owned()),
            kind: Some(crate::record::ActorKind::User),
            ..Default::default()
        }
    }
}

/// Claims of an Auditrail token.
#[cfg(feature = "local-auth")]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a request is not authenticated. `tenant` is set only when the token's signature was
/// valid (e.g. it merely expired), so a denial can be recorded for that tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub reason: String,
    pub tenant: Option<Principal>,
}

impl AuthFailure {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), tenant: None }
    }
}

/// Tenant ids end up in keys and paths, so they are restricted like ids.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && t != "."
        && t != ".."
}

fn principal_from(
    sub: String,
    tenant_id: String,
    username: Option<String>,
    roles: &[String],
) -> Result<Principal, AuthFailure> {
    if !valid_tenant(&tenant_id) {
        return Err(AuthFailure::new("the token's tenant_id claim is not a valid tenant id"));
    }
    if sub.is_empty() {
        return Err(AuthFailure::new("the token has no subject (sub)"));
    }
    Ok(Principal { tenant_id, user_id: sub, username, roles: roles.iter().filter_map(|r| Role::parse(r)).collect() })
}

/// How this deployment authenticates.
pub enum Authenticator {
    /// HS256 tokens signed with a local key (`auditrail serve`, `cargo lambda watch`).
    #[cfg(feature = "local-auth")]
    Local { encoding: EncodingKey, decoding: DecodingKey },
    /// Claims already verified by the API Gateway JWT authorizer.
    ApiGateway,
    /// An OpenID Connect issuer's access tokens (`auditrail serve --auth oidc`).
    #[cfg(feature = "oidc")]
    Oidc(Box<oidc::OidcVerifier>),
}

/// The token of an `Authorization: Bearer …` header value.
#[cfg(any(feature = "local-auth", feature = "oidc"))]
fn bearer(header: Option<&str>) -> Result<&str, AuthFailure> {
    let header = header.ok_or_else(|| AuthFailure::new("missing Authorization: Bearer token"))?;
    Ok(header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| AuthFailure::new("the Authorization header must be `Bearer <token>`"))?
        .trim())
}

impl Authenticator {
    #[cfg(feature = "local-auth")]
    pub fn local(secret: &[u8]) -> Self {
        Self::Local { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    #[cfg(feature = "local-auth")]
    fn validation() -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[LOCAL_ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 30;
        v
    }

    /// Verifies an `Authorization` header value in the modes that verify tokens themselves
    /// (`local`, `oidc`); the `oidc` mode may fetch the issuer's keys, hence async.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        match self {
            #[cfg(feature = "oidc")]
            Self::Oidc(v) => v.verify(bearer(header)?).await,
            #[cfg(feature = "local-auth")]
            Self::Local { .. } => self.verify_bearer(header),
            Self::ApiGateway => {
                let _ = header;
                Err(AuthFailure::new("no API Gateway authorizer context on this request"))
            }
        }
    }

    /// Verifies an `Authorization` header value (local mode).
    #[cfg(feature = "local-auth")]
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        let Self::Local { decoding, .. } = self else {
            return Err(AuthFailure::new("no API Gateway authorizer context on this request"));
        };
        let token = bearer(header)?;
        match jsonwebtoken::decode::<Claims>(token, decoding, &Self::validation()) {
            Ok(data) => {
                let c = data.claims;
                principal_from(c.sub, c.tenant_id, c.username, &c.roles)
            }
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                // The signature is good, so the tenant is trustworthy enough to record the denial.
                let mut v = Self::validation();
                v.validate_exp = false;
                let tenant = jsonwebtoken::decode::<Claims>(token, decoding, &v).ok().and_then(|d| {
                    principal_from(d.claims.sub, d.claims.tenant_id, d.claims.username, &d.claims.roles).ok()
                });
                Err(AuthFailure { reason: "the token has expired".into(), tenant })
            }
            Err(e) => Err(AuthFailure::new(match e.kind() {
                ErrorKind::InvalidSignature => "the token's signature is not valid",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "only HS256-signed tokens are accepted"
                }
                ErrorKind::InvalidIssuer => "the token was not issued by this Auditrail",
                ErrorKind::InvalidAudience => "the token is not meant for Auditrail",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (sub, iss, aud, exp)",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                _ => "the bearer token is not a valid HS256 JWT",
            })),
        }
    }

    /// Reads claims that API Gateway's JWT authorizer verified. Array claims arrive flattened
    /// as `[a b]`, so roles accept that form, a JSON array, or a comma/space-separated list.
    pub fn from_gateway_claims(claims: &HashMap<String, String>) -> Result<Principal, AuthFailure> {
        let get = |k: &str| claims.get(k).cloned();
        let tenant = get("tenant_id").ok_or_else(|| AuthFailure::new("the token has no tenant_id claim"))?;
        let sub = get("sub").unwrap_or_default();
        let roles = get("roles").map(|r| parse_roles_claim(&r)).unwrap_or_default();
        principal_from(sub, tenant, get("username").or_else(|| get("preferred_username")), &roles)
    }

    /// Mints a local token (`auditrail token`, tests).
    #[cfg(feature = "local-auth")]
    pub fn mint(
        &self,
        tenant: &str,
        user: &str,
        username: Option<&str>,
        roles: &[Role],
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let Self::Local { encoding, .. } = self else {
            anyhow::bail!("tokens are minted by your identity provider in the oidc and apigw auth modes");
        };
        anyhow::ensure!(valid_tenant(tenant), "tenant ids use 1-64 letters, digits, `_`, `-`, `.`");
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_owned(),
            tenant_id: tenant.to_owned(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            username: username.map(str::to_owned),
            iss: LOCAL_ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now.saturating_add(ttl_secs),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding)?)
    }
}

fn parse_roles_claim(raw: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(raw) {
        return v;
    }
    raw.trim_matches(|c| c == '[' || c == ']')
        .split([',', ' '])
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_role_round_trips_with_serdes_name() {
        for &r in super::Role::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(serde_json::from_value::<super::Role>(r.as_str().into()).unwrap(), r);
            assert_eq!(super::Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(super::Role::ALL.len(), 6);
        assert_eq!(super::Role::parse("Tenant_Admin"), None, "exact case, as serde");
    }

    use super::*;
    use base64::Engine;

    fn auth() -> Authenticator {
        Authenticator::local(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn minted_tokens_verify() {
        let a = auth();
        let t = a.mint("acme", "u1", Some("jdoe"), &[Role::ComplianceAnalyst], 60).unwrap();
        let p = a.verify_bearer(Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!(p.tenant_id, "acme");
        assert_eq!(p.roles, vec![Role::ComplianceAnalyst]);
    }

    #[test]
    fn expired_tokens_fail_but_keep_the_tenant() {
        let a = auth();
        let t = a.mint("acme", "u1", None, &[Role::Dpo], -3600).unwrap();
        let f = a.verify_bearer(Some(&format!("Bearer {t}"))).unwrap_err();
        assert_eq!(f.reason, "the token has expired");
        assert_eq!(f.tenant.unwrap().tenant_id, "acme");
    }

    #[test]
    fn forged_and_alg_none_tokens_fail_without_a_tenant() {
        let t = Authenticator::local(b"another-key-another-key-another!!")
            .mint("acme", "u1", None, &[Role::Dpo], 60)
            .unwrap();
        let f = auth().verify_bearer(Some(&format!("Bearer {t}"))).unwrap_err();
        assert!(f.tenant.is_none());
        assert_eq!(f.reason, "the token's signature is not valid");

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = Utc::now().timestamp();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(
                r#"{{"sub":"u","tenant_id":"acme","roles":["dpo"],"iss":"{LOCAL_ISSUER}","aud":"{AUDIENCE}","iat":{now},"exp":{}}}"#,
                now + 60
            ))
        );
        let f = auth().verify_bearer(Some(&format!("Bearer {none}"))).unwrap_err();
        assert!(f.tenant.is_none(), "{f:?}");
    }

    #[test]
    fn gateway_claims_accept_flattened_arrays() {
        let claims: HashMap<String, String> = [
            ("sub".to_string(), "u1".to_string()),
            ("tenant_id".to_string(), "acme".to_string()),
            ("roles".to_string(), "[cc_manager dpo]".to_string()),
        ]
        .into();
        let p = Authenticator::from_gateway_claims(&claims).unwrap();
        assert_eq!(p.roles, vec![Role::CcManager, Role::Dpo]);
        assert_eq!(parse_roles_claim(r#"["ingest","agent"]"#), vec!["ingest", "agent"]);
    }
}
