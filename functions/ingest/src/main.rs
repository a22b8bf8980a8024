//! The `ingest` Lambda function: the ingest routes of the shared router behind API Gateway.

use auditrail_shared::api::{AppState, lambda::with_gateway_claims, router, routes};
use auditrail_shared::config::{Config, init_tracing};

/// As `auditrail serve`: parsing a batch allocates and frees a few thousand strings, and glibc's
/// malloc took a third of that CPU time (`auditrail_shared::allocator`).
#[global_allocator]
static ALLOCATOR: auditrail_shared::allocator::Allocator = auditrail_shared::allocator::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let state = AppState::from_config(&Config::from_env()?).await?;
    lambda_http::run(with_gateway_claims(router::<routes::Ingest>(state))).await
}
