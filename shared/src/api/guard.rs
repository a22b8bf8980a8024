//! Authentication and role checks as a route layer. Each route names its `Operation`; the layer
//! authenticates the caller, checks the roles, and records every denial as an `UNAUTHORIZED`
//! record of the caller's tenant (when the tenant is trustworthy: a valid signature).

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::access::{self, AgentGrant};
use crate::auth::{Authenticator, Principal, READERS, Role};
use crate::error::ApiError;
use crate::record::{Record, ResultCode};

/// Claims verified by API Gateway's JWT authorizer, put into the request by the Lambda adapter.
#[derive(Debug, Clone, Default)]
pub struct GatewayClaims(pub HashMap<String, String>);

/// What a route does: who may do it, and the action a denial is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    IngestEvents,
    SearchEvents,
    SearchSignIns,
    ViewSession,
    ViewRequests,
    UploadErrorReport,
    ListErrorReports,
    DownloadErrorReport,
    /// `GET` of a settings document (retention, access).
    ViewSettings,
    /// `PUT /v1/settings/retention`.
    ChangeSettings,
    /// `PUT /v1/settings/access`.
    ChangeAccess,
    CreateExport,
    ViewExports,
    DownloadExport,
    DeleteExport,
    ViewExportSchedules,
    ManageExportSchedules,
    DpoSearch,
    DpoReport,
    DpoErasure,
    DpoErasureStatus,
    DpoDownload,
    UploadAttachment,
}

impl Operation {
    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::IngestEvents => &[Role::Ingest],
            Self::UploadErrorReport => &[Role::Agent, Role::Ingest],
            // Reports are not pseudonymised: only admins and managers read them (seed 000).
            Self::ListErrorReports | Self::DownloadErrorReport => &[Role::TenantAdmin, Role::CcManager],
            Self::ViewSettings | Self::ChangeSettings | Self::ChangeAccess => &[Role::TenantAdmin],
            Self::ViewExportSchedules | Self::ManageExportSchedules => &[Role::TenantAdmin],
            Self::DpoSearch | Self::DpoReport | Self::DpoErasure | Self::DpoErasureStatus | Self::DpoDownload => {
                &[Role::Dpo]
            }
            Self::UploadAttachment => &[Role::Agent, Role::Ingest],
            Self::CreateExport | Self::ViewExports | Self::DownloadExport | Self::DeleteExport => READERS,
            Self::SearchEvents | Self::SearchSignIns | Self::ViewSession | Self::ViewRequests => READERS,
        }
    }

    /// What a tenant admin may open to agents on top of `roles` (`PUT /v1/settings/access`).
    pub fn agent_grant(self) -> Option<AgentGrant> {
        match self {
            Self::SearchSignIns => Some(AgentGrant::ReadSignIns),
            Self::CreateExport | Self::ViewExports | Self::DownloadExport | Self::DeleteExport => {
                Some(AgentGrant::ExportSignIns)
            }
            _ => None,
        }
    }

    /// The action this route's use is recorded under, and so its denial: always an `audit`
    /// action naming what was attempted (a read is never recorded as a change).
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::IngestEvents => "EVENTS_INGEST",
            Self::SearchEvents => "AUDIT_SEARCH",
            Self::SearchSignIns => "SIGN_IN_SEARCH",
            Self::ViewSession => "SESSION_VIEW",
            Self::ViewRequests => "REQUEST_TRACE_VIEW",
            // Not `ERROR_REPORT`: that is a stored report's own record (category error_report).
            Self::UploadErrorReport => "ERROR_REPORT_UPLOAD",
            Self::ListErrorReports => "AUDIT_SEARCH",
            Self::DownloadErrorReport => "ERROR_REPORT_DOWNLOAD",
            Self::ViewSettings => "SETTINGS_VIEW",
            Self::ChangeSettings => "RETENTION_CHANGE",
            Self::ChangeAccess => "ACCESS_SETTINGS_CHANGE",
            Self::CreateExport => "DATA_EXPORT_CREATE",
            Self::ViewExports => "EXPORT_TASK_VIEW",
            Self::DownloadExport => "DATA_EXPORT_DOWNLOAD",
            Self::DeleteExport => "DATA_EXPORT_DELETE",
            Self::ViewExportSchedules => "EXPORT_SCHEDULE_VIEW",
            Self::ManageExportSchedules => "DATA_EXPORT_CHANGED",
            Self::DpoSearch => "DPO_SEARCH",
            Self::DpoReport => "DPO_REPORT",
            Self::DpoErasure => "DPO_ERASURE",
            Self::DpoErasureStatus => "DPO_ERASURE_VIEW",
            Self::DpoDownload => "DPO_DOWNLOAD",
            Self::UploadAttachment => "ATTACHMENT_UPLOAD",
        }
    }
}

fn authenticate(auth: &Authenticator, req: &Request) -> Result<Principal, crate::auth::AuthFailure> {
    match auth {
        Authenticator::ApiGateway => {
            let claims = req.extensions().get::<GatewayClaims>().cloned().unwrap_or_default();
            Authenticator::from_gateway_claims(&claims.0)
        }
        Authenticator::Local { .. } => {
            let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
            auth.verify_bearer(header)
        }
    }
}

pub async fn check(State((state, op)): State<(AppState, Operation)>, mut req: Request, next: Next) -> Response {
    let principal = match authenticate(&state.auth, &req) {
        Ok(p) => p,
        Err(failure) => {
            if let Some(p) = &failure.tenant {
                record_denial(&state, p, op, req.method().as_str(), req.uri().path(), &failure.reason).await;
            }
            return ApiError::Unauthenticated(failure.reason).into_response();
        }
    };
    if !principal.has_any(op.roles()) {
        match granted_to_agent(&state, &principal, op).await {
            Ok(true) => {}
            Ok(false) => {
                let need = op.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or ");
                let mut reason = format!("this needs the role {need}");
                if op.agent_grant().is_some() {
                    reason.push_str(", or agent once a tenant admin grants agents the sign-in log");
                }
                record_denial(&state, &principal, op, req.method().as_str(), req.uri().path(), &reason).await;
                return ApiError::Forbidden(reason).into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Whether an agent may use `op` because the tenant's access settings grant it.
async fn granted_to_agent(state: &AppState, p: &Principal, op: Operation) -> Result<bool, crate::store::StoreError> {
    match op.agent_grant() {
        Some(g) if p.has_any(&[Role::Agent]) => Ok(access::load(&*state.settings, &p.tenant_id).await?.allows(g)),
        _ => Ok(false),
    }
}

/// Whether the caller is in only through an agent grant: then they see the sign-in view and
/// their own export tasks, nothing else.
pub fn agent_scoped(p: &Principal) -> bool {
    !p.has_any(READERS)
}

/// Records a refused call as an `UNAUTHORIZED` record. A failure to record is logged, never
/// turned into a different answer for the caller.
pub async fn record_denial(state: &AppState, p: &Principal, op: Operation, method: &str, path: &str, reason: &str) {
    let rec = Record::system(
        &p.tenant_id,
        op.audit_action(),
        p.actor(),
        Some(ResultCode::Unauthorized),
        json!({"method": method, "path": path, "reason": reason}),
    );
    if let Err(e) = state.records.append(&p.tenant_id, &[rec]).await {
        tracing::error!(error = %e, tenant = %p.tenant_id, "could not record a denied call");
    }
}
