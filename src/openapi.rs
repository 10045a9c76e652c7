//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers' own request
//! and response types, so it cannot drift from what the service does.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
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
    modifiers(&ApiKeyScheme, &MultipartPartNames)
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

/// Multipart bodies: unknown parts are drained and ignored, but a part's name travels in its
/// `Content-Disposition` header, and a header cannot hold control characters (other than tab):
/// such a body is malformed and refused with 422. `propertyNames` says so (utoipa's derive has no
/// attribute for it).
struct MultipartPartNames;

impl Modify for MultipartPartNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        for name in ["TranscribeUpload", "PronunciationUpload"] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                let header_text = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[^\u0000-\u0008\u000a-\u001f\u007f]*(?![\s\S])"))
                    .build();
                object.property_names = Some(Box::new(Schema::Object(header_text)));
            }
        }
    }
}

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_string()))
}
