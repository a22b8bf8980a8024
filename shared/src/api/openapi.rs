//! The OpenAPI document, generated from the handlers' annotations as they are mounted.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContactBuilder, InfoBuilder, OpenApi, ServerBuilder};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// Titles, the bearer scheme (applied to every operation that does not opt out) and the paths.
pub fn document(api: OpenApiRouter<AppState>) -> OpenApi {
    let (_, mut doc) = api.split_for_parts();
    doc.info = InfoBuilder::new()
        .title("Auditrail")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Audit trail and compliance back end for contact-centre software. Errors are RFC 9457 \
             application/problem+json documents naming the field and the reason.",
        ))
        .contact(Some(ContactBuilder::new().name(Some("Auditrail")).build()))
        .build();
    doc.servers = Some(vec![ServerBuilder::new().url("/").build()]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    doc
}
