//! What a tenant admin lets agents do beyond uploading (seed 003: "the agent has the permission
//! to export sign-in logs" and signs in "as an agent or tenant administrator" to query them).
//!
//! One per-tenant setting (`access`), off until granted: `agent_sign_in_log.read` opens
//! `GET /v1/sign-ins` to agents, `agent_sign_in_log.export` opens export tasks of the sign-in
//! view (and only the agent's own tasks). Enforced by the route guard on every back end.

use serde::{Deserialize, Serialize};

use crate::store::{SettingsStore, StoreError, StoreResult};

pub const SETTING: &str = "access";

/// What agents may do with the sign-in log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInLogGrant {
    /// `GET /v1/sign-ins`.
    #[serde(default)]
    pub read: bool,
    /// `POST /v1/exports` with `filter.view = "sign-ins"`, and the agent's own export tasks.
    #[serde(default)]
    pub export: bool,
}

/// A tenant's access settings, as stored, set and returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default, deserialize_with = "crate::error::object")]
    pub agent_sign_in_log: SignInLogGrant,
}

/// Something a tenant admin can grant agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentGrant {
    ReadSignIns,
    ExportSignIns,
}

impl Access {
    pub fn allows(&self, g: AgentGrant) -> bool {
        match g {
            AgentGrant::ReadSignIns => self.agent_sign_in_log.read,
            AgentGrant::ExportSignIns => self.agent_sign_in_log.export,
        }
    }
}

/// The tenant's access settings (nothing granted until a tenant admin sets them).
pub async fn load(settings: &dyn SettingsStore, tenant: &str) -> StoreResult<Access> {
    match settings.get_setting(tenant, SETTING).await? {
        None => Ok(Access::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("access setting: {e}"))),
    }
}
