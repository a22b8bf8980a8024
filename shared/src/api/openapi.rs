//! The OpenAPI document, generated from the handlers' annotations as they are mounted, and
//! committed as `docs/openapi.json`: that file is what `GET /v1/openapi.json` serves (so the
//! `query` function links no handler it does not run) and what the console's types are generated
//! from. `openapi_document_is_current` fails when the handlers and the file differ; run
//! `make openapi` to write the file again.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContactBuilder, InfoBuilder, OpenApi, ServerBuilder};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// The whole API's document as served.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::api::{AppState, api, routes};
    use crate::config::Config;

    /// The document as the handlers describe it, pretty-printed as the committed file is.
    async fn generated() -> String {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::from_config(&Config::embedded(dir.path())).await.unwrap();
        let mut text = serde_json::to_string_pretty(&document(api::<routes::All>(state))).unwrap();
        text.push('\n');
        text
    }

    #[tokio::test]
    async fn openapi_document_is_current() {
        let now = generated().await;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        if std::env::var_os("AUDITRAIL_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &now).unwrap();
            return;
        }
        assert!(
            now == DOCUMENT,
            "docs/openapi.json differs from what the handlers describe: run `make openapi` and commit the file"
        );
    }
}
