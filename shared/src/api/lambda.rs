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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::api::{router, routes};
    use crate::auth::Authenticator;
    use crate::config::Config;

    /// An API Gateway HTTP API (payload 2.0) event whose JWT authorizer already verified `claims`.
    fn event(path: &str, claims: serde_json::Value) -> lambda_http::Request {
        let e = json!({
            "version": "2.0", "routeKey": format!("GET {path}"), "rawPath": path, "rawQueryString": "",
            "headers": {"host": "api.example.com"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
                "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "t"},
                "requestId": "r1", "routeKey": format!("GET {path}"), "stage": "$default", "time": "24/Nov/2026:10:00:00 +0000",
                "timeEpoch": 1_795_000_000_000u64,
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&e.to_string()).expect("a valid API Gateway v2 event")
    }

    #[tokio::test]
    async fn gateway_claims_authenticate_through_the_same_router() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = crate::api::AppState::from_config(&Config::embedded(dir.path())).await.unwrap();
        state.auth = Arc::new(Authenticator::ApiGateway);
        let app = with_gateway_claims(router::<routes::Query>(state));
        let call = |claims| {
            let app = app.clone();
            async move {
                let req = event("/v1/events", claims).map(|b| Body::from(b.to_vec()));
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value =
                    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
                (status, body)
            }
        };
        let (status, body) = call(json!({"sub": "u1", "tenant_id": "acme", "roles": "[compliance_analyst]"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], 0);
        let (status, _) = call(json!({"sub": "u1", "tenant_id": "acme", "roles": "[agent]"})).await;
        assert_eq!(status, 403);
        let (status, _) = call(json!({"sub": "u1", "roles": "[compliance_analyst]"})).await;
        assert_eq!(status, 401, "no tenant claim, no access");
    }
}
