//! One analysis: prompt Gemini about a job's text, count what it cost, parse what it said.
//!
//! Errors (including content blocks) pass through untouched for the layers above; a reply that
//! cannot be parsed is not an error but a `Fallback` outcome, which the cache never stores.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::analysis::model::{MadeBy, Provider};
use crate::analysis::{AnalysisOutcome, ParseQuality, parse_analysis, prompt};
use crate::domain::jobs::AnalyzeJob;
use crate::metrics::Metrics;
use crate::upstream::gemini::{GeminiClient, GenerateRequest, Usage};
use crate::upstream::{Upstream, UpstreamError};
use crate::usage::record::{Billed, ModelTokens, TokenUsage};

/// Low: an assessment should not change between two identical requests more than it must.
const TEMPERATURE: f32 = 0.2;
/// A 5000-character text with many mistakes needs a few thousand tokens of JSON; the cap is a
/// guard against runaway output, not a budget the usual answer comes near.
const MAX_OUTPUT_TOKENS: u32 = 8192;

/// Built once: as a fresh `Value` tree per call it was ~15 KB of small allocations held for the
/// whole upstream call, the largest per-request item of the service's own making.
static RESPONSE_SCHEMA: LazyLock<Arc<Value>> = LazyLock::new(|| Arc::new(prompt::response_schema()));

/// A reply containing this makes the analysis panic where the parser runs: how the service's
/// own tests reach the path a parser bug would take. Compiled into test builds only.
#[cfg(test)]
pub(crate) const PANIC_IN_PARSER: &str = "\u{1}test hook: panic in the parser\u{1}";

#[derive(Clone)]
pub struct Analyzer {
    client: GeminiClient,
    metrics: Metrics,
    /// The last `modelVersion` Gemini named, logged when it changes: a model id can be routed
    /// to another model when Google retires it, billed at that model's rates.
    seen_version: Arc<std::sync::Mutex<String>>,
}

impl Analyzer {
    pub fn new(client: GeminiClient, metrics: Metrics) -> Self {
        Self { client, metrics, seen_version: Arc::default() }
    }

    fn note_version(&self, version: Option<&str>) {
        let Some(version) = version else { return };
        // Held for a compare and a copy, never across an await.
        let mut seen = self.seen_version.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *seen == version {
            return;
        }
        version.clone_into(&mut seen);
        drop(seen);
        let model = self.client.model();
        if version.starts_with(model) {
            tracing::info!(model, model_version = version, "Gemini answers as this model version");
        } else {
            tracing::warn!(model, model_version = version, "Gemini answers for this model id with another model");
        }
    }

    /// The request sent for a job; exposed so its shape can be checked without a call.
    pub fn request_for(&self, job: &AnalyzeJob) -> GenerateRequest {
        GenerateRequest {
            system_instruction: Cow::Borrowed(prompt::system_instruction()),
            user_text: prompt::user_prompt(&job.text),
            response_schema: Some(RESPONSE_SCHEMA.clone()),
            temperature: TEMPERATURE,
            max_output_tokens: MAX_OUTPUT_TOKENS,
            thinking_budget: thinking_budget(self.client.model()),
        }
    }

    pub async fn analyze(&self, job: &AnalyzeJob) -> Result<AnalysisOutcome, UpstreamError> {
        if job.model != self.client.model() {
            // The job's model is part of its cache key; answering it with another model would
            // cache one model's analysis under the other's name.
            tracing::warn!(job_model = %job.model, client_model = %self.client.model(), "analysis job names another model");
        }
        let reply = self.client.generate(&self.request_for(job)).await?;
        tracing::debug!(
            response_id = reply.response_id.as_deref().unwrap_or(""),
            model_version = reply.model_version.as_deref().unwrap_or(""),
            finish_reason = reply.finish_reason.as_str(),
            prompt_tokens = reply.usage.prompt,
            candidates_tokens = reply.usage.candidates,
            thoughts_tokens = reply.usage.thoughts,
            "gemini replied"
        );
        self.note_version(reply.model_version.as_deref());
        self.count_tokens(reply.usage);
        let tokens =
            TokenUsage { input: reply.usage.prompt, output: reply.usage.candidates, thinking: reply.usage.thoughts };
        self.count_ai_tokens(tokens);
        #[cfg(test)]
        assert!(!reply.text.contains(PANIC_IN_PARSER), "test hook: the parser panics on this reply");
        let mut outcome = parse_analysis(&reply.text);
        outcome.made_by = Some(MadeBy { model: self.client.model().to_string(), provider: Provider::Gemini });
        outcome.tokens = Billed(Some(ModelTokens {
            provider: Upstream::Gemini.as_str(),
            model: self.client.model().to_owned(),
            usage: tokens,
        }));
        self.metrics.analysis_parse_total.with_label_values(&[outcome.parse.as_str()]).inc();
        if outcome.parse == ParseQuality::Fallback {
            self.metrics.json_parse_failures_total.with_label_values(&[Upstream::Gemini.as_str()]).inc();
        }
        Ok(outcome)
    }

    /// `ai_tokens_total`, the provider-neutral series (no user label).
    fn count_ai_tokens(&self, usage: TokenUsage) {
        let (provider, model) = (Upstream::Gemini.as_str(), self.client.model());
        for (kind, count) in [("input", usage.input), ("output", usage.output), ("thinking", usage.thinking)] {
            self.metrics.ai_tokens_total.with_label_values(&[provider, model, kind]).inc_by(count);
        }
    }

    fn count_tokens(&self, usage: Usage) {
        for (kind, count) in [
            ("prompt", usage.prompt),
            ("candidates", usage.candidates),
            ("thoughts", usage.thoughts),
            ("total", usage.total),
        ] {
            self.metrics.gemini_tokens_total.with_label_values(&[kind]).inc_by(count);
        }
    }
}

/// Thinking only adds latency and eats `maxOutputTokens` for a schema-bound assessment, so it is
/// off where it can be: 2.5 Flash and Flash-Lite accept a 0 budget; 2.5 Pro rejects 0 and
/// Gemini 3 is steered by `thinkingLevel`, so those keep their default.
fn thinking_budget(model: &str) -> Option<i32> {
    (model.starts_with("gemini-2.5-flash")).then_some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_is_disabled_only_where_the_model_allows_it() {
        assert_eq!(thinking_budget("gemini-2.5-flash"), Some(0));
        assert_eq!(thinking_budget("gemini-2.5-flash-lite"), Some(0));
        assert_eq!(thinking_budget("gemini-2.5-pro"), None);
        assert_eq!(thinking_budget("gemini-3-flash"), None);
    }
}
