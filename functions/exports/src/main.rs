//! The `exports` Lambda function: export tasks and schedules (create, list, status, download
//! link, delete) behind API Gateway. The archives are written by `export-worker`.

use auditrail_shared::api::{AppState, lambda::with_gateway_claims, router, routes};
use auditrail_shared::config::{Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = AppState::from_config(&Config::from_env()?).await?;
    lambda_http::run(with_gateway_claims(router::<routes::Exports>(state))).await
}
