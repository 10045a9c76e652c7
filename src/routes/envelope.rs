//! The success envelope: `{"success": true, "data": ..., "meta": {...}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::analysis::ParseQuality;
use crate::domain::provider::Provider;
use crate::middleware::request_id::RequestId;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Meta {
    pub cached: bool,
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// Only for analyses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse: Option<ParseQuality>,
    /// Analyses: the configured model id that made the analysis (Gemini's own `modelVersion`
    /// is logged), on cached answers too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "gemini-2.5-flash")]
    pub model: Option<String>,
    /// Who made the answer: `gemini` or `openai_compatible` for analyses, `azure` or
    /// `openai_compatible` for transcriptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success<T> {
    pub success: bool,
    pub data: T,
    pub meta: Meta,
}

impl<T: Serialize> Success<T> {
    pub fn new(data: T, meta: Meta) -> Self {
        Self { success: true, data, meta }
    }
}

/// Room for a typical answer (an analysis is one to three KiB) from the start: grown from
/// axum's 128 bytes, every analysis was copied four times on its way out.
const BODY_CAPACITY: usize = 4096;

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        match serde_json::to_writer(&mut body, &self) {
            Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
            // As `axum::Json` answers an encoding failure; our types always encode.
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        }
    }
}
