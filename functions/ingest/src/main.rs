//! The `ingest` Lambda function: the ingest routes of the shared router behind API Gateway.

use auditrail_shared::api::{AppState, lambda::with_gateway_claims, router, routes};
use auditrail_shared::config::{Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = AppState::from_config(&Config::from_env()?).await?;
    lambda_http::run(with_gateway_claims(router::<routes::Ingest>(state))).await
}
