//! What one answered request cost, and the counters it adds to its user's day.
//!
//! Counts are integers so that `HINCRBY` adds them exactly on every instance: audio in
//! milliseconds, tokens as reported. A day's hash holds totals (read by the budget check in one
//! `HMGET`) beside the same counts by operation and by model (read by `GET /api/usage` to price
//! them).

use std::collections::BTreeMap;

use crate::metrics::labels::Operation;

/// Tokens an LLM upstream reported for one call, whatever its wire: Gemini's `usageMetadata`
/// (`promptTokenCount`, `candidatesTokenCount`, `thoughtsTokenCount`) or an OpenAI-compatible
/// `usage` (`prompt_tokens`, `completion_tokens`, and `completion_tokens_details.reasoning_tokens`
/// where a server reports it). A count the upstream left out is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Billed at the output rate by Gemini; counted apart so that the bill can be explained.
    pub thinking: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output).saturating_add(self.thinking)
    }

    /// OpenAI's `completion_tokens` include reasoning tokens; ours keep them apart.
    pub fn from_openai(prompt_tokens: u64, completion_tokens: u64, reasoning_tokens: u64) -> Self {
        let thinking = reasoning_tokens.min(completion_tokens);
        Self { input: prompt_tokens, output: completion_tokens - thinking, thinking }
    }
}

/// Tokens one model spent on a call: `provider` is the `provider` label (`gemini`,
/// `openai_compatible`), `model` the configured model id that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTokens {
    pub provider: &'static str,
    pub model: String,
    pub usage: TokenUsage,
}

/// What making a result cost, carried beside it out of its stack. Not part of what the result
/// says: results compare equal whatever they cost, and the cache stores none of it (a copy
/// served from there cost nothing).
#[derive(Debug, Clone, Default)]
pub struct Billed(pub Option<ModelTokens>);

impl PartialEq for Billed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Audio a result sent to Azure to be made: every call's recording or piece (a long reading
/// sends each piece twice, to be transcribed and then assessed). Like [`Billed`], never stored
/// and equal whatever it holds: a cached or shared copy sent nothing for its request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SentAudio(pub std::time::Duration);

impl PartialEq for SentAudio {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What an answered request cost: carried from the handler to the usage layer in the response's
/// extensions, and recorded only for a 2xx.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    pub operation: Operation,
    /// Answered from storage (`meta.cached`): no upstream call for this request.
    pub cache_hit: bool,
    /// Audio sent to Azure for this request, in milliseconds; each piece of a long reading adds
    /// its own (`add_audio`).
    pub audio_ms: u64,
    pub tokens: Vec<ModelTokens>,
}

impl Spend {
    pub fn new(operation: Operation, cache_hit: bool) -> Self {
        Self { operation, cache_hit, audio_ms: 0, tokens: Vec::new() }
    }

    /// Audio seconds sent upstream for this request (a whole recording, or one piece of it).
    pub fn add_audio(&mut self, seconds: f64) {
        let ms = (seconds.max(0.0) * 1000.0).round() as u64;
        self.audio_ms = self.audio_ms.saturating_add(ms);
    }

    pub fn add_tokens(&mut self, tokens: ModelTokens) {
        self.tokens.push(tokens);
    }

    /// The counters this request adds to its user's day.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        let op = self.operation.as_str();
        let hit = i64::from(self.cache_hit);
        let audio = saturate(self.audio_ms);
        counts.add(field::REQUESTS, 1);
        counts.add(&field::op(op, field::REQUESTS), 1);
        counts.add(field::CACHE_HITS, hit);
        counts.add(&field::op(op, field::CACHE_HITS), hit);
        counts.add(field::AUDIO_MS, audio);
        counts.add(&field::op(op, field::AUDIO_MS), audio);
        for spent in &self.tokens {
            for (kind, total, value) in [
                ("input", field::TOKENS_INPUT, spent.usage.input),
                ("output", field::TOKENS_OUTPUT, spent.usage.output),
                ("thinking", field::TOKENS_THINKING, spent.usage.thinking),
            ] {
                counts.add(total, saturate(value));
                counts.add(&field::model(&spent.model, kind), saturate(value));
            }
        }
        counts
    }
}

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Field names of a user's day hash.
pub mod field {
    pub const REQUESTS: &str = "requests";
    pub const CACHE_HITS: &str = "cache_hits";
    pub const AUDIO_MS: &str = "audio_ms";
    pub const TOKENS_INPUT: &str = "tokens_input";
    pub const TOKENS_OUTPUT: &str = "tokens_output";
    pub const TOKENS_THINKING: &str = "tokens_thinking";

    /// `op:<operation>:<counter>`.
    pub fn op(operation: &str, counter: &str) -> String {
        format!("op:{operation}:{counter}")
    }

    /// `model:<model id>:<input|output|thinking>`; a model id may hold `:` (`llama3:8b`), so
    /// readers split at the last one.
    pub fn model(model: &str, kind: &str) -> String {
        format!("model:{model}:{kind}")
    }
}

/// Increments by field: what one request adds, or several merged while Redis was away.
/// Zero increments are left out (a cache hit writes no audio or token fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<String, i64>);

impl Counts {
    pub fn add(&mut self, field: &str, by: i64) {
        if by == 0 {
            return;
        }
        let slot = self.0.entry(field.to_owned()).or_insert(0);
        *slot = slot.saturating_add(by);
    }

    pub fn merge(&mut self, other: &Counts) {
        for (field, by) in &other.0 {
            self.add(field, *by);
        }
    }

    pub fn get(&self, field: &str) -> i64 {
        self.0.get(field).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(field, by)| (field.as_str(), *by))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the budgets compare: audio milliseconds and all tokens (input, output, thinking).
    pub fn spent(&self) -> Spent {
        Spent {
            audio_ms: self.get(field::AUDIO_MS).max(0) as u64,
            tokens: [field::TOKENS_INPUT, field::TOKENS_OUTPUT, field::TOKENS_THINKING]
                .iter()
                .map(|name| self.get(name).max(0) as u64)
                .fold(0u64, u64::saturating_add),
        }
    }
}

impl FromIterator<(String, i64)> for Counts {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        let mut counts = Counts::default();
        for (field, by) in iter {
            counts.add(&field, by);
        }
        counts
    }
}

/// A user's spending so far today, as the budgets see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub audio_ms: u64,
    pub tokens: u64,
}

impl Spent {
    pub fn plus(self, other: Spent) -> Spent {
        Spent {
            audio_ms: self.audio_ms.saturating_add(other.audio_ms),
            tokens: self.tokens.saturating_add(other.tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_analysis_counts_its_tokens_in_total_and_by_model() {
        let mut spend = Spend::new(Operation::Analyze, false);
        spend.add_tokens(ModelTokens {
            provider: "gemini",
            model: "gemini-2.5-flash".into(),
            usage: TokenUsage { input: 12, output: 87, thinking: 156 },
        });
        let counts = spend.counts();
        assert_eq!(counts.get("requests"), 1);
        assert_eq!(counts.get("op:analyze:requests"), 1);
        assert_eq!(counts.get("cache_hits"), 0);
        assert_eq!(counts.get("tokens_thinking"), 156);
        assert_eq!(counts.get("model:gemini-2.5-flash:output"), 87);
        assert_eq!(counts.spent(), Spent { audio_ms: 0, tokens: 255 });
    }

    #[test]
    fn a_cache_hit_counts_a_request_and_a_hit_and_nothing_else() {
        let counts = Spend::new(Operation::Transcribe, true).counts();
        let fields: Vec<_> = counts.iter().collect();
        assert_eq!(
            fields,
            vec![("cache_hits", 1), ("op:transcribe:cache_hits", 1), ("op:transcribe:requests", 1), ("requests", 1)]
        );
    }

    #[test]
    fn pieces_of_a_reading_add_their_audio() {
        let mut spend = Spend::new(Operation::Pronunciation, false);
        spend.add_audio(29.5);
        spend.add_audio(12.25);
        assert_eq!(spend.counts().get("audio_ms"), 41_750);
        assert_eq!(spend.counts().get("op:pronunciation:audio_ms"), 41_750);
    }

    #[test]
    fn openai_reasoning_tokens_are_taken_out_of_completion_tokens() {
        assert_eq!(TokenUsage::from_openai(10, 50, 20), TokenUsage { input: 10, output: 30, thinking: 20 });
        assert_eq!(TokenUsage::from_openai(10, 5, 20), TokenUsage { input: 10, output: 0, thinking: 5 });
    }

    #[test]
    fn merged_counts_add_up() {
        let mut counts = Spend::new(Operation::Analyze, true).counts();
        counts.merge(&Spend::new(Operation::Analyze, false).counts());
        assert_eq!(counts.get("requests"), 2);
        assert_eq!(counts.get("cache_hits"), 1);
    }
}
