//! The requests that travel down each upstream stack
//! (single-flight -> cache -> breaker -> retry -> client). They carry everything that decides
//! the answer, and nothing else: a cache key is derived from a job alone.

use crate::audio::Audio;

/// Transcribe one recording (`POST /api/transcribe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscribeJob {
    pub audio: Audio,
    /// BCP-47, e.g. `en-US`.
    pub language: String,
}

/// Score one recording against the text the learner was asked to read (`POST /api/pronunciation`),
/// or, without a text, as free speech.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PronunciationJob {
    pub audio: Audio,
    pub language: String,
    /// `None`: unscripted, assessed against its own transcript.
    pub reference_text: Option<String>,
}

/// Analyse one text (`POST /api/analyze`). `text` is already normalised (trimmed, whitespace
/// collapsed), so equivalent inputs share one cache entry and one upstream call. Built by
/// `AnalyzeJob::new`, defined beside the prompt (`analysis::prompt`) whose version it carries,
/// so this floor depends on nothing above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeJob {
    pub text: String,
    /// Gemini model id: a different model gives a different analysis.
    pub model: String,
    /// `analysis::prompt::PROMPT_VERSION` at the time of the request.
    pub prompt_version: &'static str,
    /// The key models (`MadeBy::key_model`) of the analysis chain's later links, in order:
    /// their cached answers are looked up after `model`'s, before any call. Empty without a
    /// chain, and in the job each link receives.
    pub fallbacks: std::sync::Arc<[String]>,
}

/// Trim and collapse every run of Unicode whitespace to one space.
pub fn normalise_text(raw: &str) -> String {
    // One allocation, sized once: every analysis request, hits included, normalises its text.
    let mut text = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_differing_only_in_whitespace_normalise_alike() {
        assert_eq!(normalise_text("  I go\tto the\n\nstore  "), "I go to the store");
        assert_eq!(normalise_text("I go to the store"), "I go to the store");
    }
}
