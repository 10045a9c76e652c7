//! Google Gemini `generateContent` (REST, UPSTREAMS.md section 2): one call, one reply.
//!
//! The client turns every HTTP or content outcome into either a [`GeminiReply`] or an
//! [`UpstreamError`]; it neither retries nor times out a call: the retry layer above owns the
//! deadline and decides from `UpstreamError::retry()`.

mod body;
mod client;
mod wire;

use std::borrow::Cow;
use std::sync::Arc;

pub use client::{GeminiClient, MAX_REPLY_BYTES};

use crate::upstream::connections::ConnectionSettings;

/// Where and as what the client talks to Gemini.
#[derive(Clone)]
pub struct GeminiConfig {
    /// `https://generativelanguage.googleapis.com` in production; the simulator or a fake in tests.
    pub base_url: url::Url,
    pub api_key: String,
    /// Model id without the `models/` prefix, e.g. `gemini-2.5-flash`.
    pub model: String,
    /// `v1beta` (what the cookbook uses) or `v1`.
    pub api_version: String,
    pub connections: ConnectionSettings,
}

impl std::fmt::Debug for GeminiConfig {
    // The key stays out of every log line and panic message.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GeminiConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("model", &self.model)
            .field("api_version", &self.api_version)
            .field("connections", &self.connections)
            .finish()
    }
}

impl GeminiConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://generativelanguage.googleapis.com";
    pub const DEFAULT_MODEL: &'static str = "gemini-2.5-flash";
    pub const DEFAULT_API_VERSION: &'static str = "v1beta";

    /// The production endpoint with the default model and API version.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            base_url: url::Url::parse(Self::DEFAULT_BASE_URL).expect("the default base URL is valid"),
            api_key: api_key.into(),
            model: Self::DEFAULT_MODEL.to_string(),
            api_version: Self::DEFAULT_API_VERSION.to_string(),
            connections: ConnectionSettings::default(),
        }
    }
}

/// One `generateContent` call: a single user turn under a system instruction.
///
/// A request lives as long as its call (seconds, thousands at once under load), so the parts
/// that are the same for every call are shared rather than copied into each one.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub system_instruction: Cow<'static, str>,
    pub user_text: String,
    /// OpenAPI-subset schema (`generationConfig.responseSchema`). When present the reply is
    /// requested as `application/json`.
    pub response_schema: Option<Arc<serde_json::Value>>,
    pub temperature: f32,
    /// Thought tokens count against this cap too.
    pub max_output_tokens: u32,
    /// `thinkingConfig.thinkingBudget`: 0 disables thinking (2.5 Flash / Flash-Lite only), -1 is
    /// dynamic; `None` leaves the model's default.
    pub thinking_budget: Option<i32>,
}

/// Why the model stopped (`candidates[0].finishReason`), every value google-genai 3.3.0 knows.
/// Gemini adds values over time; an unknown one is kept, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// `FINISH_REASON_UNSPECIFIED`, or no `finishReason` at all.
    Unspecified,
    Stop,
    MaxTokens,
    Safety,
    Recitation,
    Language,
    Other,
    Blocklist,
    ProhibitedContent,
    Spii,
    MalformedFunctionCall,
    ImageSafety,
    ImageProhibitedContent,
    ImageOther,
    NoImage,
    ImageRecitation,
    UnexpectedToolCall,
    TooManyToolCalls,
    MissingThoughtSignature,
    MalformedResponse,
    Escalation,
    PupLimitedDisabled,
    Continuation,
    ModelArmor,
    Unknown(String),
}

impl FinishReason {
    pub fn parse(value: &str) -> Self {
        match value {
            "FINISH_REASON_UNSPECIFIED" => Self::Unspecified,
            "STOP" => Self::Stop,
            "MAX_TOKENS" => Self::MaxTokens,
            "SAFETY" => Self::Safety,
            "RECITATION" => Self::Recitation,
            "LANGUAGE" => Self::Language,
            "OTHER" => Self::Other,
            "BLOCKLIST" => Self::Blocklist,
            "PROHIBITED_CONTENT" => Self::ProhibitedContent,
            "SPII" => Self::Spii,
            "MALFORMED_FUNCTION_CALL" => Self::MalformedFunctionCall,
            "IMAGE_SAFETY" => Self::ImageSafety,
            "IMAGE_PROHIBITED_CONTENT" => Self::ImageProhibitedContent,
            "IMAGE_OTHER" => Self::ImageOther,
            "NO_IMAGE" => Self::NoImage,
            "IMAGE_RECITATION" => Self::ImageRecitation,
            "UNEXPECTED_TOOL_CALL" => Self::UnexpectedToolCall,
            "TOO_MANY_TOOL_CALLS" => Self::TooManyToolCalls,
            "MISSING_THOUGHT_SIGNATURE" => Self::MissingThoughtSignature,
            "MALFORMED_RESPONSE" => Self::MalformedResponse,
            "ESCALATION" => Self::Escalation,
            "PUP_LIMITED_DISABLED" => Self::PupLimitedDisabled,
            "CONTINUATION" => Self::Continuation,
            "MODEL_ARMOR" => Self::ModelArmor,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Unspecified => "FINISH_REASON_UNSPECIFIED",
            Self::Stop => "STOP",
            Self::MaxTokens => "MAX_TOKENS",
            Self::Safety => "SAFETY",
            Self::Recitation => "RECITATION",
            Self::Language => "LANGUAGE",
            Self::Other => "OTHER",
            Self::Blocklist => "BLOCKLIST",
            Self::ProhibitedContent => "PROHIBITED_CONTENT",
            Self::Spii => "SPII",
            Self::MalformedFunctionCall => "MALFORMED_FUNCTION_CALL",
            Self::ImageSafety => "IMAGE_SAFETY",
            Self::ImageProhibitedContent => "IMAGE_PROHIBITED_CONTENT",
            Self::ImageOther => "IMAGE_OTHER",
            Self::NoImage => "NO_IMAGE",
            Self::ImageRecitation => "IMAGE_RECITATION",
            Self::UnexpectedToolCall => "UNEXPECTED_TOOL_CALL",
            Self::TooManyToolCalls => "TOO_MANY_TOOL_CALLS",
            Self::MissingThoughtSignature => "MISSING_THOUGHT_SIGNATURE",
            Self::MalformedResponse => "MALFORMED_RESPONSE",
            Self::Escalation => "ESCALATION",
            Self::PupLimitedDisabled => "PUP_LIMITED_DISABLED",
            Self::Continuation => "CONTINUATION",
            Self::ModelArmor => "MODEL_ARMOR",
            Self::Unknown(value) => value,
        }
    }

    /// The model declined to produce (or withheld) the content. Whatever text came with it is
    /// not an answer, and the same input gets the same decision.
    pub fn is_block(&self) -> bool {
        match self {
            Self::Safety
            | Self::Recitation
            | Self::Language
            | Self::Blocklist
            | Self::ProhibitedContent
            | Self::Spii
            | Self::ImageSafety
            | Self::ImageProhibitedContent
            | Self::ImageOther
            | Self::ImageRecitation
            | Self::ModelArmor => true,
            Self::Unspecified
            | Self::Stop
            | Self::MaxTokens
            | Self::Other
            | Self::MalformedFunctionCall
            | Self::NoImage
            | Self::UnexpectedToolCall
            | Self::TooManyToolCalls
            | Self::MissingThoughtSignature
            | Self::MalformedResponse
            | Self::Escalation
            | Self::PupLimitedDisabled
            | Self::Continuation
            | Self::Unknown(_) => false,
        }
    }
}

/// `usageMetadata`; a count Gemini leaves out (proto3 omits zeros) is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub candidates: u64,
    pub thoughts: u64,
    pub total: u64,
}

/// A usable reply: the model's text and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiReply {
    /// Every non-thought text part of the first candidate, concatenated: a JSON reply can be
    /// split over several parts. May be empty or truncated when `finish_reason` is `MaxTokens`.
    pub text: String,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_finish_reason_reads_back_as_itself() {
        for name in [
            "FINISH_REASON_UNSPECIFIED",
            "STOP",
            "MAX_TOKENS",
            "SAFETY",
            "RECITATION",
            "LANGUAGE",
            "OTHER",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "MALFORMED_FUNCTION_CALL",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_OTHER",
            "NO_IMAGE",
            "IMAGE_RECITATION",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
            "MISSING_THOUGHT_SIGNATURE",
            "MALFORMED_RESPONSE",
            "ESCALATION",
            "PUP_LIMITED_DISABLED",
            "CONTINUATION",
            "MODEL_ARMOR",
        ] {
            let reason = FinishReason::parse(name);
            assert!(!matches!(reason, FinishReason::Unknown(_)), "{name} is documented");
            assert_eq!(reason.as_str(), name);
        }
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let config = GeminiConfig::new("AIzaSecret");
        assert!(!format!("{config:?}").contains("AIzaSecret"));
        assert!(!format!("{:?}", GeminiClient::new(config)).contains("AIzaSecret"));
    }

    #[test]
    fn an_undocumented_finish_reason_is_kept_not_rejected() {
        let reason = FinishReason::parse("SOMETHING_NEW");
        assert_eq!(reason, FinishReason::Unknown("SOMETHING_NEW".into()));
        assert!(!reason.is_block());
    }
}
