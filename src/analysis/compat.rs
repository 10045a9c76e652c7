//! One analysis by an OpenAI-compatible model: the same prompt and schema the Gemini link
//! sends, in chat form, and the same robust parser on the reply (servers without strict schema
//! support answer fenced, prose-wrapped or string-encoded JSON; the parser reads them all).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::analysis::model::{MadeBy, Provider};
use crate::analysis::{AnalysisOutcome, ParseQuality, parse_analysis, prompt};
use crate::domain::jobs::AnalyzeJob;
use crate::metrics::Metrics;
use crate::upstream::openai_compat::{ChatRequest, OpenAiCompatClient, json_schema};
use crate::upstream::{Upstream, UpstreamError};
use crate::usage::record::{Billed, ModelTokens, TokenUsage};

/// As for Gemini: an assessment should vary as little as it must.
const TEMPERATURE: f32 = 0.2;
/// As for Gemini: a guard against runaway output, not a budget.
const MAX_TOKENS: u32 = 8192;

/// Built once, like the Gemini schema.
static RESPONSE_FORMAT: LazyLock<Arc<Value>> =
    LazyLock::new(|| Arc::new(json_schema("learner_text_analysis", &prompt::response_schema())));

#[derive(Clone)]
pub struct CompatAnalyzer {
    client: OpenAiCompatClient,
    model: Arc<str>,
    metrics: Metrics,
}

impl CompatAnalyzer {
    pub fn new(client: OpenAiCompatClient, model: &str, metrics: Metrics) -> Self {
        Self { client, model: model.into(), metrics }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The request sent for a job; exposed so its shape can be checked without a call.
    pub fn request_for(&self, job: &AnalyzeJob) -> ChatRequest {
        ChatRequest {
            model: self.model.to_string(),
            system: Cow::Borrowed(prompt::system_instruction()),
            user: prompt::user_prompt(&job.text),
            response_format: RESPONSE_FORMAT.clone(),
            temperature: TEMPERATURE,
            max_tokens: MAX_TOKENS,
        }
    }

    pub async fn analyze(&self, job: &AnalyzeJob) -> Result<AnalysisOutcome, UpstreamError> {
        let reply = self.client.chat(&self.request_for(job)).await?;
        tracing::debug!(
            model = %self.model,
            model_version = reply.model.as_deref().unwrap_or(""),
            finish_reason = reply.finish_reason.as_deref().unwrap_or(""),
            prompt_tokens = reply.usage.prompt,
            completion_tokens = reply.usage.completion,
            reasoning_tokens = reply.usage.reasoning,
            "openai-compatible model replied"
        );
        // `completion_tokens` includes the reasoning tokens (OpenAI's reasoning models).
        let tokens = TokenUsage {
            input: reply.usage.prompt,
            output: reply.usage.completion.saturating_sub(reply.usage.reasoning),
            thinking: reply.usage.reasoning,
        };
        let provider = Upstream::OpenAiCompatible.as_str();
        for (kind, count) in [("input", tokens.input), ("output", tokens.output), ("thinking", tokens.thinking)] {
            self.metrics.ai_tokens_total.with_label_values(&[provider, &self.model, kind]).inc_by(count);
        }
        let mut outcome = parse_analysis(&reply.text);
        outcome.made_by = Some(MadeBy { model: self.model.to_string(), provider: Provider::OpenaiCompatible });
        outcome.tokens = Billed(Some(ModelTokens { provider, model: self.model.to_string(), usage: tokens }));
        self.metrics.analysis_parse_total.with_label_values(&[outcome.parse.as_str()]).inc();
        if outcome.parse == ParseQuality::Fallback {
            let source = Upstream::OpenAiCompatible.as_str();
            self.metrics.json_parse_failures_total.with_label_values(&[source]).inc();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ParseQuality;
    use crate::upstream::connections::ConnectionSettings;
    use crate::upstream::openai_compat::OpenAiCompatConfig;

    fn analyzer() -> CompatAnalyzer {
        let client = OpenAiCompatClient::new(OpenAiCompatConfig {
            base_url: url::Url::parse("http://127.0.0.1:9/v1").expect("url"),
            api_key: None,
            connections: ConnectionSettings::default(),
        });
        CompatAnalyzer::new(client, "qwen2.5-7b-instruct", Metrics::new())
    }

    #[test]
    fn the_request_carries_the_prompt_and_a_json_schema_response_format() {
        let request = analyzer().request_for(&AnalyzeJob::new("I go home yesterday.", "gemini-2.5-flash"));
        assert_eq!(request.model, "qwen2.5-7b-instruct");
        assert_eq!(request.response_format["type"], "json_schema");
        assert!(request.user.contains("I go home yesterday."));
    }

    #[test]
    fn a_reply_encoded_once_more_as_a_json_string_is_decoded() {
        // What a server without strict schema support may send: the object as a JSON string,
        // sometimes inside a fence.
        let object = r#"{"errors":[],"feedback":"Good.","strengths":["clear"],"improvement_areas":[],"recommended_tasks":[],"cefr_assessment":{"level":"B1","confidence":0.7,"rationale":"ok"}}"#;
        let encoded = serde_json::Value::String(object.to_string()).to_string();
        for reply in [encoded.clone(), format!("```json\n{encoded}\n```")] {
            let outcome = parse_analysis(&reply);
            assert_eq!(outcome.parse, ParseQuality::Repaired, "{reply}");
            assert_eq!(outcome.analysis.feedback, "Good.");
        }
    }
}
