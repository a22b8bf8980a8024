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
    ChangeSettings,
    CreateExport,
    ViewExports,
    DownloadExport,
    DeleteExport,
    ManageExportSchedules,
    DpoSearch,
    DpoReport,
    DpoErasure,
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
            Self::ChangeSettings | Self::ManageExportSchedules => &[Role::TenantAdmin],
            Self::DpoSearch | Self::DpoReport | Self::DpoErasure | Self::DpoDownload => &[Role::Dpo],
            Self::UploadAttachment => &[Role::Agent, Role::Ingest],
            Self::CreateExport | Self::ViewExports | Self::DownloadExport | Self::DeleteExport => READERS,
            Self::SearchEvents | Self::SearchSignIns | Self::ViewSession | Self::ViewRequests => READERS,
        }
    }

    pub fn audit_action(self) -> &'static str {
        match self {
            Self::IngestEvents => "EVENTS_INGEST",
            Self::SearchEvents => "AUDIT_SEARCH",
            Self::SearchSignIns => "SIGN_IN_SEARCH",
            Self::ViewSession => "SESSION_VIEW",
            Self::ViewRequests => "REQUEST_TRACE_VIEW",
            Self::UploadErrorReport => "ERROR_REPORT",
            Self::ListErrorReports => "AUDIT_SEARCH",
            Self::DownloadErrorReport => "ERROR_REPORT_DOWNLOAD",
            Self::ChangeSettings => "RETENTION_CHANGE",
            Self::CreateExport => "DATA_EXPORT_CREATE",
            Self::ViewExports => "AUDIT_SEARCH",
            Self::DownloadExport => "DATA_EXPORT_DOWNLOAD",
            Self::DeleteExport => "DATA_EXPORT_DELETE",
            Self::ManageExportSchedules => "DATA_EXPORT_CHANGED",
            Self::DpoSearch => "DPO_SEARCH",
            Self::DpoReport => "DPO_REPORT",
            Self::DpoErasure => "DPO_ERASURE",
            Self::DpoDownload => "DPO_DOWNLOAD",
            Self::UploadAttachment => "EVENTS_INGEST",
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
        let need = op.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or ");
        let reason = format!("this needs the role {need}");
        record_denial(&state, &principal, op, req.method().as_str(), req.uri().path(), &reason).await;
        return ApiError::Forbidden(reason).into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
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
