//! The instructions and response schema sent to Gemini for an analysis.

/// Part of every analysis cache key: change it whenever the prompt or schema changes meaning,
/// so old entries are never served for the new prompt.
pub const PROMPT_VERSION: &str = "analysis-v1";
