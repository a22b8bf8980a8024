//! `AUDITRAIL_KEYCLOAK_*`: the Keycloak puller's settings, and the puller built from them.

use anyhow::{Context, bail};

/// `AUDITRAIL_KEYCLOAK_*`: one realm pulled into one tenant.
#[derive(Clone)]
pub struct KeycloakPullConfig {
    pub url: String,
    pub realm: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_parameter: Option<String>,
}

impl std::fmt::Debug for KeycloakPullConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakPullConfig")
            .field("url", &self.url)
            .field("realm", &self.realm)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret_parameter", &self.client_secret_parameter)
            .finish_non_exhaustive()
    }
}

impl KeycloakPullConfig {
    /// From `AUDITRAIL_KEYCLOAK_*`; none when `AUDITRAIL_KEYCLOAK_URL` is unset.
    pub(super) fn from_env(nonempty: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let Some(url) = nonempty("AUDITRAIL_KEYCLOAK_URL") else { return Ok(None) };
        let need = |k: &str| nonempty(k).with_context(|| format!("{k} must be set with AUDITRAIL_KEYCLOAK_URL"));
        let c = Self {
            url,
            realm: need("AUDITRAIL_KEYCLOAK_REALM")?,
            tenant: need("AUDITRAIL_KEYCLOAK_TENANT")?,
            client_id: need("AUDITRAIL_KEYCLOAK_CLIENT_ID")?,
            client_secret: nonempty("AUDITRAIL_KEYCLOAK_CLIENT_SECRET"),
            client_secret_parameter: nonempty("AUDITRAIL_KEYCLOAK_CLIENT_SECRET_PARAMETER"),
        };
        if c.client_secret.is_none() && c.client_secret_parameter.is_none() {
            bail!("AUDITRAIL_KEYCLOAK_CLIENT_SECRET or AUDITRAIL_KEYCLOAK_CLIENT_SECRET_PARAMETER must be set");
        }
        if !cfg!(feature = "keycloak-pull") {
            bail!("AUDITRAIL_KEYCLOAK_URL is set, but only the scheduler function and `auditrail serve` pull Keycloak");
        }
        Ok(Some(c))
    }

    /// The puller, with the secret given or read from SSM (`from_ssm`).
    #[cfg(feature = "keycloak-pull")]
    pub(super) fn puller(&self, from_ssm: Option<&[u8]>) -> anyhow::Result<crate::keycloak_pull::Puller> {
        use crate::keycloak_pull::{PullSource, Puller, Secret};
        let secret = match (&self.client_secret, from_ssm) {
            (Some(s), _) => Secret::new(s.clone()),
            (None, Some(b)) => Secret::new(
                String::from_utf8(b.to_vec()).context("AUDITRAIL_KEYCLOAK_CLIENT_SECRET_PARAMETER is not UTF-8")?,
            ),
            (None, None) => bail!(
                "AUDITRAIL_KEYCLOAK_CLIENT_SECRET_PARAMETER is read from SSM on AWS only; set AUDITRAIL_KEYCLOAK_CLIENT_SECRET"
            ),
        };
        let source = PullSource::new(&self.url, &self.realm, &self.tenant, &self.client_id, secret)
            .map_err(anyhow::Error::msg)?;
        Puller::new(source).map_err(anyhow::Error::msg)
    }
}
