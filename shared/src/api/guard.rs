//! Authentication and role checks as a route layer. Each route names its `Operation`; the layer
//! authenticates the caller, checks the roles, and records every denial as an `UNAUTHORIZED`
//! record of the caller's tenant (when the tenant is trustworthy: a valid signature).

use std::collections::HashMap;

use axum::extract::{Request, State};
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
    /// `PUT /v1/settings/keycloak`.
    ChangeKeycloakSettings,
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
    /// `GET /v1/events/{id}`.
    ViewRecord,
    /// Proofs, seals and their digests (`/v1/events/{id}/proof`, `/v1/integrity/*`).
    ViewIntegrity,
}

impl Operation {
    pub const ALL: [Operation; 22] = [
        Self::IngestEvents,
        Self::SearchEvents,
        Self::SearchSignIns,
        Self::ViewSession,
        Self::ViewRequests,
        Self::UploadErrorReport,
        Self::ListErrorReports,
        Self::DownloadErrorReport,
        Self::ChangeSettings,
        Self::ChangeKeycloakSettings,
        Self::CreateExport,
        Self::ViewExports,
        Self::DownloadExport,
        Self::DeleteExport,
        Self::ManageExportSchedules,
        Self::DpoSearch,
        Self::DpoReport,
        Self::DpoErasure,
        Self::DpoDownload,
        Self::UploadAttachment,
        Self::ViewRecord,
        Self::ViewIntegrity,
    ];

    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::IngestEvents => &[Role::Ingest],
            Self::UploadErrorReport => &[Role::Agent, Role::Ingest],
            // Reports are not pseudonymised: only admins and managers read them (seed 000).
            Self::ListErrorReports | Self::DownloadErrorReport => &[Role::TenantAdmin, Role::CcManager],
            Self::ViewSettings | Self::ChangeSettings | Self::ChangeAccess | Self::ChangeKeycloakSettings => {
                &[Role::TenantAdmin]
            }
            Self::ViewExportSchedules | Self::ManageExportSchedules => &[Role::TenantAdmin],
            Self::DpoSearch | Self::DpoReport | Self::DpoErasure | Self::DpoErasureStatus | Self::DpoDownload => {
                &[Role::Dpo]
            }
            Self::UploadAttachment => &[Role::Agent, Role::Ingest],
            Self::CreateExport | Self::ViewExports | Self::DownloadExport | Self::DeleteExport => READERS,
            Self::SearchEvents | Self::SearchSignIns | Self::ViewSession | Self::ViewRequests => READERS,
            // An auditor checking the trail is a compliance analyst, a manager or an admin.
            Self::ViewRecord | Self::ViewIntegrity => READERS,
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
            Self::ChangeKeycloakSettings => "KEYCLOAK_SETTINGS_CHANGE",
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
            Self::ViewRecord => "RECORD_VIEW",
            Self::ViewIntegrity => "INTEGRITY_VIEW",
        }
    }
}

fn authenticate<'a>(
    auth: &'a Authenticator,
    req: &Request,
) -> impl std::future::Future<Output = Result<Principal, crate::auth::AuthFailure>> + Send + 'a {
    let gateway = req.extensions().get::<GatewayClaims>().cloned().unwrap_or_default();
    let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|h| h.to_str().ok()).map(str::to_owned);
    async move {
        if matches!(auth, Authenticator::ApiGateway) {
            return Authenticator::from_gateway_claims(&gateway.0);
        }
        // Local and OIDC tokens are verified here (OIDC may fetch the issuer's keys).
        auth.verify_header(header.as_deref()).await
    }
}

pub async fn check(State((state, op)): State<(AppState, Operation)>, mut req: Request, next: Next) -> Response {
    let principal = match authenticate(&state.auth, &req).await {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Operation;
    use crate::record::catalogue;

    /// The call text from `start` (just after an opening parenthesis) to its closing one.
    fn call_text(src: &str, start: usize) -> &str {
        let mut depth = 1;
        let mut in_str = false;
        let bytes = src.as_bytes();
        let mut i = start;
        while i < bytes.len() && depth > 0 {
            match bytes[i] {
                b'\\' if in_str => i += 1,
                b'"' => in_str = !in_str,
                b'(' if !in_str => depth += 1,
                b')' if !in_str => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        &src[start..i.min(src.len())]
    }

    /// Action-shaped string literals (`AUDIT_SEARCH`) in a piece of code.
    fn action_literals(code: &str) -> Vec<String> {
        code.split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                s.len() > 2
                    && s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            })
            .map(str::to_owned)
            .collect()
    }

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Only production code: tests build records of any action.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
                out.push((path.display().to_string(), code));
            }
        }
    }

    /// Every action the server writes about itself must be server-only, or a client could forge
    /// it. Finds the actions in the code (the writers' calls and every route's denial action), so
    /// a new one cannot be forgotten in the catalogue.
    #[test]
    fn every_action_the_server_writes_is_server_only() {
        let mut written: Vec<(String, String)> = Vec::new();
        for op in Operation::ALL {
            written.push((format!("{op:?}"), op.audit_action().to_owned()));
        }
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        for (path, code) in &files {
            // The demo data set, the test kit and test files store client records directly. (By
            // the path inside `src`: the checkout's own path may contain anything.)
            let inside = path.rsplit_once("/src/").map_or(path.as_str(), |(_, p)| p);
            if inside == "demo.rs"
                || inside.ends_with("catalogue.rs")
                || inside.starts_with("testkit/")
                || inside.ends_with("_tests.rs")
            {
                continue;
            }
            for writer in ["Record::system(", "record_use(", "audit(", "run(&state"] {
                for (at, _) in code.match_indices(writer) {
                    for name in action_literals(call_text(code, at + writer.len())) {
                        written.push((path.clone(), name));
                    }
                }
            }
        }
        for must in ["DPO_ERASURE_COMPLETED", "RETENTION_PURGE", "DATA_EXPORT_RUN_SCHEDULED", "ERROR_REPORT"] {
            assert!(written.iter().any(|(_, n)| n == must), "the scan no longer finds {must}: {written:?}");
        }
        for (place, name) in written {
            let def = catalogue::lookup(&name).unwrap_or_else(|| panic!("{place} writes {name}, not in the catalogue"));
            assert!(def.server_only(), "{place} writes {name}, which clients may also send: mark it server-only");
        }
    }
}
