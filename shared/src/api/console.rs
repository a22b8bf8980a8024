//! The web console's two public routes: how to sign in (`GET /v1/console/config`) and, in the
//! `local` auth mode only, the development sign-in (`POST /v1/console/dev-sign-in`).
//!
//! They need no store: their state is the authenticator and the console settings only, so the
//! `console` Lambda function serves them (and the console's files) without table, bucket or keys.

use std::sync::Arc;

use super::body::JsonBody;
use axum::Json;
use axum::extract::{FromRef, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::problems::{BadRequest, NotFound, TooLarge, UnsupportedType};
use crate::auth::{Authenticator, Role, valid_tenant};
use crate::error::{ApiError, ApiResult, FieldError, parse_json};

/// Lifetime of a development sign-in token.
pub const DEV_TOKEN_TTL_SECS: i64 = 3600;

/// How this deployment authenticates, as the console needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleAuthMode {
    /// `auditrail serve` with its own HS256 key: the console offers the development sign-in.
    Local,
    /// `auditrail serve` trusting an OpenID Connect issuer's RS256/ES256 access tokens.
    Oidc,
    /// Behind API Gateway's JWT authorizer (AWS): the console signs in at the issuer.
    Apigw,
}

/// What the console needs before sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsoleConfig {
    pub auth_mode: ConsoleAuthMode,
    /// The OpenID Connect issuer to sign in at (authorization code + PKCE); null in `local` mode.
    pub issuer: Option<String>,
    /// The console's OAuth client id at that issuer; null in `local` mode.
    pub client_id: Option<String>,
    /// Space-separated scopes the console asks for.
    pub scopes: String,
    /// Whether `POST /v1/console/dev-sign-in` exists (the `local` auth mode only).
    pub dev_sign_in: bool,
}

/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPES: &str = "openid profile email";

impl ConsoleConfig {
    /// The configuration for an authenticator with no issuer configured.
    pub fn for_auth(auth: &Authenticator) -> Self {
        let auth_mode = match auth {
            #[cfg(feature = "local-auth")]
            Authenticator::Local { .. } => ConsoleAuthMode::Local,
            Authenticator::ApiGateway => ConsoleAuthMode::Apigw,
            #[cfg(feature = "oidc")]
            Authenticator::Oidc(_) => ConsoleAuthMode::Oidc,
        };
        Self {
            auth_mode,
            issuer: None,
            client_id: None,
            scopes: DEFAULT_SCOPES.to_owned(),
            dev_sign_in: auth_mode == ConsoleAuthMode::Local,
        }
    }

    /// The configuration of a deployment: its authenticator and the issuer, client id and scopes
    /// it names (`AUDITRAIL_OIDC_ISSUER`, `AUDITRAIL_OIDC_CLIENT_ID`, `AUDITRAIL_OIDC_SCOPES`).
    pub fn from_config(config: &crate::config::Config, auth: &Authenticator) -> Self {
        let mut c = Self::for_auth(auth);
        if c.auth_mode != ConsoleAuthMode::Local {
            c.issuer = config.oidc.issuer.clone();
            c.client_id = config.oidc.client_id.clone().or_else(|| config.oidc.audience.clone());
        }
        if let Some(s) = &config.oidc.scopes {
            c.scopes = s.clone();
        }
        c
    }
}

/// The state of the console routes: no store, only the authenticator and the settings.
#[derive(Clone)]
pub struct ConsoleState {
    pub auth: Arc<Authenticator>,
    pub config: Arc<ConsoleConfig>,
}

impl ConsoleState {
    pub fn new(auth: Arc<Authenticator>, config: ConsoleConfig) -> Self {
        Self { auth, config: Arc::new(config) }
    }
}

impl FromRef<AppState> for ConsoleState {
    fn from_ref(s: &AppState) -> Self {
        Self { auth: s.auth.clone(), config: s.console.clone() }
    }
}

/// How to sign in to the console: the auth mode, the OpenID Connect issuer and client id, the
/// scopes, and whether the development sign-in exists. Public: the console reads it before
/// anyone has signed in.
#[utoipa::path(get, path = "/v1/console/config", tag = "console", security(()),
    responses((status = 200, body = ConsoleConfig)))]
pub async fn config(State(state): State<ConsoleState>) -> Json<ConsoleConfig> {
    Json((*state.config).clone())
}

/// A development sign-in: who to be.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevSignInRequest {
    /// The tenant to sign in to: 1-64 letters, digits, `_`, `-`, `.`.
    #[schema(example = "acme-contact", pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub tenant: String,
    /// One role.
    #[schema(schema_with = role_schema)]
    pub role: String,
    /// The user id (the token's `sub` and username): 1-128 characters, no control characters.
    #[schema(example = "jdoe", min_length = 1, max_length = 128)]
    pub user: String,
}

/// The role names, in the document as an enumeration (checked in the handler with a reason).
fn role_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Role::ALL.iter().map(|r| r.as_str())))
        .examples([serde_json::json!("compliance_analyst")])
        .build()
}

/// A bearer token for the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: i64,
}

/// DEVELOPMENT SIGN-IN, not for production: mints a one-hour token for any tenant, role and
/// user, signed with this server's local key. Exists only in the `local` auth mode (`auditrail
/// serve` without an identity provider); in the `oidc` and `apigw` modes the route answers 404
/// and users sign in at the OpenID Connect issuer. Anyone who can reach a `local` server can
/// sign in as anyone: bind it to a loopback address.
#[utoipa::path(post, path = "/v1/console/dev-sign-in", tag = "console", security(()),
    request_body(content = DevSignInRequest, content_type = "application/json"),
    responses(
        (status = 200, body = TokenResponse),
        BadRequest, NotFound, TooLarge, UnsupportedType,
    ))]
pub async fn dev_sign_in(
    State(state): State<ConsoleState>,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Json<TokenResponse>> {
    let not_here = || {
        ApiError::NotFound(
            "the development sign-in exists only in the `local` auth mode; sign in at the OpenID Connect issuer".into(),
        )
    };
    #[cfg(feature = "local-auth")]
    let local = matches!(*state.auth, Authenticator::Local { .. });
    #[cfg(not(feature = "local-auth"))]
    let local = false;
    if !state.config.dev_sign_in || !local {
        return Err(not_here());
    }
    // Where the route does not exist, its body's headers are not judged either.
    let JsonBody(body) = body?;
    let req: DevSignInRequest = parse_json(&body, "body")?;
    let mut errors = Vec::new();
    if !valid_tenant(&req.tenant) {
        errors.push(FieldError::new("tenant", "use 1-64 letters, digits, `_`, `-` or `.`"));
    }
    let role = Role::parse(&req.role);
    if role.is_none() {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        errors.push(FieldError::new("role", format!("must be one of {}", names.join(", "))));
    }
    let user = req.user.trim();
    if user.is_empty() || user.chars().count() > 128 || user.chars().any(char::is_control) {
        errors.push(FieldError::new("user", "use 1-128 characters, no control characters"));
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    #[cfg(feature = "local-auth")]
    {
        let access_token =
            state.auth.mint(&req.tenant, user, Some(user), &[role], DEV_TOKEN_TTL_SECS).map_err(ApiError::internal)?;
        Ok(Json(TokenResponse { access_token, token_type: "Bearer", expires_in: DEV_TOKEN_TTL_SECS }))
    }
    #[cfg(not(feature = "local-auth"))]
    {
        let _ = (role, user);
        Err(not_here())
    }
}
