//! Gemini's JSON on the wire (UPSTREAMS.md section 2), private to the client. Requests are
//! written in lowerCamel as the SDK does; responses are read leniently: proto3 JSON omits
//! default values, so every field is optional and unknown fields are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentRequest<'a> {
    pub contents: [Content<'a>; 1],
    pub system_instruction: Content<'a>,
    pub generation_config: GenerationConfig<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
pub(super) struct TextPart<'a> {
    pub text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationConfig<'a> {
    pub temperature: f32,
    pub max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThinkingConfig {
    pub thinking_budget: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct GenerateContentResponse {
    pub candidates: Option<Vec<Candidate>>,
    pub prompt_feedback: Option<PromptFeedback>,
    pub usage_metadata: Option<UsageMetadata>,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Candidate {
    pub content: Option<CandidateContent>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CandidateContent {
    pub parts: Option<Vec<Part>>,
}

/// A part may be a function call, inline data... anything without `text` contributes nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Part {
    pub text: Option<String>,
    pub thought: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct PromptFeedback {
    pub block_reason: Option<String>,
    pub block_reason_message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct UsageMetadata {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    pub thoughts_token_count: Option<u64>,
    pub total_token_count: Option<u64>,
}

/// `{"error": google.rpc.Status}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    pub error: Status,
}

/// `details` stay raw values: each is typed by its own `@type`, and an unknown or odd detail
/// must not make the whole error unreadable.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Status {
    pub message: Option<String>,
    pub status: Option<String>,
    pub details: Option<Vec<Value>>,
}
