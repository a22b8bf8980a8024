//! The `console` Lambda function: the web console's embedded files at `/` and its public routes
//! (`/v1/console/*`), behind API Gateway without the JWT authorizer. It reads no table, bucket
//! or key.

use std::sync::Arc;

use auditrail_console_assets::{Console, with_api};
use auditrail_shared::api::console::{ConsoleConfig, ConsoleState};
use auditrail_shared::api::console_router;
use auditrail_shared::config::{Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing(true);
    let config = Config::from_env()?;
    let auth = config.authenticator()?;
    let settings = ConsoleConfig::from_config(&config, &auth);
    let console = Console::new(settings.issuer.as_deref());
    let state = ConsoleState::new(Arc::new(auth), settings);
    lambda_http::run(with_api(console_router(state), console)).await
}
