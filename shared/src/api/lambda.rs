//! Lambda adapter: moves the API Gateway JWT authorizer's claims into the request so the
//! routers read them the same way whatever runs them.

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;

use super::GatewayClaims;

async fn claims(mut req: Request, next: Next) -> Response {
    let claims = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| j.claims.clone())
        }
        _ => None,
    };
    if let Some(c) = claims {
        req.extensions_mut().insert(GatewayClaims(c.into_iter().collect()));
    }
    next.run(req).await
}

/// Wraps a router for `lambda_http::run`.
pub fn with_gateway_claims(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(claims))
}
