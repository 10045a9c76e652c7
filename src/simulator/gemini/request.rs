//! The request as Google's proto3-JSON parser reads it, and the checks the real API makes.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Request {
    #[serde(default)]
    pub(super) contents: Vec<Content>,
    #[serde(default, rename = "systemInstruction", alias = "system_instruction")]
    pub(super) system_instruction: Option<Content>,
    #[serde(default, rename = "generationConfig", alias = "generation_config")]
    pub(super) generation_config: GenerationConfig,
    #[serde(default, rename = "safetySettings", alias = "safety_settings")]
    pub(super) _safety_settings: Option<IgnoredAny>,
    #[serde(default, rename = "tools")]
    pub(super) _tools: Option<IgnoredAny>,
    #[serde(default, rename = "toolConfig", alias = "tool_config")]
    pub(super) _tool_config: Option<IgnoredAny>,
    #[serde(default, rename = "cachedContent", alias = "cached_content")]
    pub(super) _cached_content: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Content {
    #[serde(default)]
    pub(super) role: Option<String>,
    #[serde(default)]
    pub(super) parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Part {
    #[serde(default)]
    pub(super) text: Option<String>,
}

/// Every documented `generationConfig` field; the ones the simulator does not act on are only
/// accepted, so that sending them is not mistaken for a typo. Accepted values, the response
/// schema included, are skipped rather than built into a `Value` tree: that tree was most of
/// the simulator's CPU per call, and load tests share the machine with it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens", alias = "max_output_tokens")]
    pub(super) max_output_tokens: Option<u32>,
    #[serde(default, rename = "responseMimeType", alias = "response_mime_type")]
    pub(super) response_mime_type: Option<String>,
    #[serde(default, rename = "responseSchema", alias = "response_schema")]
    pub(super) response_schema: Option<IgnoredAny>,
    #[serde(default, rename = "responseJsonSchema", alias = "response_json_schema")]
    pub(super) response_json_schema: Option<IgnoredAny>,
    #[serde(default, rename = "thinkingConfig", alias = "thinking_config")]
    pub(super) thinking_config: Option<ThinkingConfig>,
    #[serde(default)]
    pub(super) temperature: Option<f64>,
    #[serde(default, rename = "topP", alias = "top_p")]
    pub(super) _top_p: Option<f64>,
    #[serde(default, rename = "topK", alias = "top_k")]
    pub(super) _top_k: Option<IgnoredAny>,
    #[serde(default, rename = "candidateCount", alias = "candidate_count")]
    pub(super) _candidate_count: Option<IgnoredAny>,
    #[serde(default, rename = "stopSequences", alias = "stop_sequences")]
    pub(super) _stop_sequences: Option<IgnoredAny>,
    #[serde(default, rename = "seed")]
    pub(super) _seed: Option<IgnoredAny>,
    #[serde(default, rename = "presencePenalty", alias = "presence_penalty")]
    pub(super) _presence_penalty: Option<IgnoredAny>,
    #[serde(default, rename = "frequencyPenalty", alias = "frequency_penalty")]
    pub(super) _frequency_penalty: Option<IgnoredAny>,
    #[serde(default, rename = "responseLogprobs", alias = "response_logprobs")]
    pub(super) _response_logprobs: Option<IgnoredAny>,
    #[serde(default, rename = "logprobs")]
    pub(super) _logprobs: Option<IgnoredAny>,
    #[serde(default, rename = "responseModalities", alias = "response_modalities")]
    pub(super) _response_modalities: Option<IgnoredAny>,
    #[serde(default, rename = "mediaResolution", alias = "media_resolution")]
    pub(super) _media_resolution: Option<IgnoredAny>,
    #[serde(default, rename = "speechConfig", alias = "speech_config")]
    pub(super) _speech_config: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThinkingConfig {
    #[serde(default, rename = "thinkingBudget", alias = "thinking_budget")]
    pub(super) thinking_budget: Option<i64>,
    #[serde(default, rename = "includeThoughts", alias = "include_thoughts")]
    pub(super) include_thoughts: Option<bool>,
    #[serde(default, rename = "thinkingLevel", alias = "thinking_level")]
    pub(super) thinking_level: Option<String>,
}

/// The checks the real API makes that our client could plausibly get wrong.
pub(super) fn validate(request: &Request) -> Result<(), String> {
    if request.contents.is_empty() {
        return Err("* GenerateContentRequest.contents: contents is not specified\n".to_string());
    }
    if let Some(role) = request
        .contents
        .iter()
        .filter_map(|content| content.role.as_deref())
        .find(|role| !matches!(*role, "user" | "model"))
    {
        return Err(format!("Please use a valid role: user, model. (got {role:?})"));
    }
    let config = &request.generation_config;
    if config.response_schema.is_some() && config.response_json_schema.is_some() {
        return Err("responseSchema and responseJsonSchema cannot both be set".to_string());
    }
    let wants_schema = config.response_schema.is_some() || config.response_json_schema.is_some();
    if wants_schema && config.response_mime_type.as_deref() != Some("application/json") {
        return Err("* GenerateContentRequest.generation_config.response_mime_type: \
                    a response schema is only supported with response_mime_type application/json\n"
            .to_string());
    }
    if config.temperature.is_some_and(|temperature| !(0.0..=2.0).contains(&temperature)) {
        return Err("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]\n".to_string());
    }
    if let Some(thinking) = &config.thinking_config {
        if thinking.thinking_budget.is_some() && thinking.thinking_level.is_some() {
            return Err("thinking_budget and thinking_level are not supported together".to_string());
        }
        if thinking.thinking_budget.is_some_and(|budget| budget != -1 && !(0..=24576).contains(&budget)) {
            return Err("The thinking budget is out of range (0 to 24576, or -1 for dynamic).".to_string());
        }
    }
    Ok(())
}
