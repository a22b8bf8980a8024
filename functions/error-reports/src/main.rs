//! The `error-reports` Lambda function: client error reports (seed 000) — upload, list,
//! download — behind API Gateway. The only function that touches the error-report blobs on
//! request paths (the DPO worker and the purge delete them).

use auditrail_shared::api::{AppState, lambda::with_gateway_claims, router, routes};
use auditrail_shared::config::{Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = AppState::from_config(&Config::from_env()?).await?;
    lambda_http::run(with_gateway_claims(router::<routes::ErrorReports>(state))).await
}
