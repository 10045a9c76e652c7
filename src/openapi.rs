//! The OpenAPI 3 document served at `/openapi.json`, generated from the handlers' own request
//! and response types, so it cannot drift from what the service does.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::analysis::Analysis;
use crate::domain::speech::{Pronunciation, Transcription};
use crate::error::ErrorEnvelope;
use crate::routes::envelope::Success;

#[derive(OpenApi)]
#[openapi(
    info(title = "backend-ai", description = "Englivo's speech and writing analysis service"),
    paths(
        crate::routes::speech::transcribe,
        crate::routes::speech::pronunciation,
        crate::routes::analyze::analyze,
        crate::routes::usage::usage,
        crate::routes::health::live,
        crate::routes::health::ready,
        crate::routes::health::cache,
        crate::routes::health::upstreams,
        crate::routes::health::metrics,
    ),
    tags(
        (name = "speech", description = "A learner's recording: transcription and pronunciation assessment (Azure Speech)"),
        (name = "analysis", description = "A learner's text: grammar analysis and CEFR level (Gemini)"),
        (name = "usage", description = "What each learner costs: requests, audio seconds and tokens per UTC day"),
        (name = "operations", description = "Health, readiness and metrics; no API key"),
    ),
    components(schemas(ErrorEnvelope, Success<Transcription>, Success<Pronunciation>, Success<Analysis>)),
    modifiers(&ErrorResponses, &ApiKeyScheme, &MultipartPartNames)
)]
pub struct ApiDoc;

/// The contract's error rows, added to every `/api/*` operation from one table rather than
/// repeated on each handler.
struct ErrorResponses;

impl ErrorResponses {
    const ROWS: [(&'static str, &'static str); 10] = [
        ("401", "Missing or wrong X-API-Key"),
        ("408", "The request body stalled for longer than REQUEST_BODY_TIMEOUT_SECONDS"),
        ("413", "Body or audio over its limit"),
        (
            "415",
            "Not a recording this service decodes: an unknown format or codec, or one that would decode to more audio than AUDIO_MAX_SECONDS of stereo 48 kHz",
        ),
        ("422", "Malformed JSON, missing or invalid field, bad or forbidden audio_url"),
        (
            "429",
            "Per-user rate limit (rate_limited; see Retry-After and RateLimit-* headers), or the user's daily audio or token budget is spent (budget_exceeded; Retry-After until the next UTC midnight)",
        ),
        ("500", "A fault of this service's own (internal_error); the request id finds its log line"),
        ("502", "The upstream answered with an error retrying will not fix"),
        (
            "503",
            "The upstream is unavailable or its circuit is open, or this instance is at MAX_IN_FLIGHT; see Retry-After",
        ),
        ("504", "UPSTREAM_TIMEOUT_SECONDS ran out"),
    ];
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(operation) = item.post.as_mut().filter(|_| path.starts_with("/api/")) else {
                continue;
            };
            let takes_audio = path != "/api/analyze";
            for (status, description) in Self::ROWS {
                if status == "415" && !takes_audio {
                    continue;
                }
                let response = utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope"))),
                    )
                    .build();
                operation.responses.responses.entry(status.to_string()).or_insert(response.into());
            }
        }
    }
}

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

/// `GET /openapi.json`.
pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_operation_documents_the_contracts_error_rows() {
        let document: serde_json::Value = serde_json::from_str(document()).expect("the document is JSON");
        for path in ["/api/transcribe", "/api/pronunciation", "/api/analyze"] {
            let responses = &document["paths"][path]["post"]["responses"];
            for status in ["200", "401", "413", "422", "429", "502", "503", "504"] {
                assert!(responses.get(status).is_some(), "{path} lacks {status}: {responses}");
            }
            assert_eq!(responses.get("415").is_some(), path != "/api/analyze", "{path}: 415 only where audio is taken");
            assert_eq!(
                responses["503"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorEnvelope"
            );
        }
    }

    #[test]
    fn the_docs_group_every_operation_under_a_declared_tag_not_a_module_path() {
        let document: serde_json::Value = serde_json::from_str(document()).expect("the document is JSON");
        let declared: Vec<&str> =
            document["tags"].as_array().expect("tags").iter().filter_map(|tag| tag["name"].as_str()).collect();
        assert_eq!(declared, ["speech", "analysis", "usage", "operations"]);
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let tags = operation["tags"].as_array().expect("tags");
                assert!(
                    tags.len() == 1 && declared.contains(&tags[0].as_str().unwrap_or("")),
                    "{method} {path}: {tags:?}"
                );
            }
        }
    }

    #[test]
    fn errors_tasks_and_the_assessment_may_carry_fields_beyond_the_contracts() {
        let document: serde_json::Value = serde_json::from_str(document()).expect("the document is JSON");
        let schemas = &document["components"]["schemas"];
        for (name, required) in [
            ("GrammarError", &["type", "text", "correction", "explanation"][..]),
            ("RecommendedTask", &["type", "title"][..]),
            ("CefrAssessment", &["level", "rationale"][..]),
        ] {
            let schema = &schemas[name];
            assert!(schema["additionalProperties"].is_object(), "{name}: {schema}");
            assert_eq!(schema["required"], serde_json::json!(required), "{name}");
        }
        assert!(schemas["RecommendedTask"]["properties"]["description"].is_object());
    }

    #[test]
    fn meta_documents_the_model_and_the_provider_that_made_an_answer() {
        let document: serde_json::Value = serde_json::from_str(document()).expect("the document is JSON");
        let schemas = &document["components"]["schemas"];
        let meta = &schemas["Meta"]["properties"];
        assert!(meta["model"].is_object(), "{meta}");
        let provider = meta["provider"].to_string();
        let resolved = match provider.contains("Provider") {
            true => schemas["Provider"].to_string(),
            false => provider,
        };
        for value in ["gemini", "openai_compatible"] {
            assert!(resolved.contains(value), "{resolved}");
        }
    }
}
