//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers' own request
//! and response types, so it cannot drift from what the service does.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::analysis::Analysis;
use crate::error::ErrorEnvelope;
use crate::routes::envelope::Success;
use crate::speech::{Pronunciation, Transcription};

#[derive(OpenApi)]
#[openapi(
    info(title = "backend-ai", description = "Englivo's speech and writing analysis service"),
    paths(
        crate::routes::speech::transcribe,
        crate::routes::speech::pronunciation,
        crate::routes::analyze::analyze,
        crate::routes::health::live,
        crate::routes::health::ready,
        crate::routes::health::cache,
        crate::routes::health::upstreams,
        crate::routes::health::metrics,
    ),
    components(schemas(ErrorEnvelope, Success<Transcription>, Success<Pronunciation>, Success<Analysis>)),
    modifiers(&ApiKeyScheme)
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_string()))
}
