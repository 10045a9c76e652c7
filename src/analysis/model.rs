//! The analysis the contract promises in `data` of `POST /api/analyze`.
//!
//! Every contract field always exists on the wire, even for a fallback analysis: the frontend
//! reads them without checks. Parsing of Gemini's text into this shape lives in `analysis::parse`.
//!
//! An error, a task and the CEFR assessment also carry whatever else Gemini put in them
//! (`severity`, `minutes`, `url`, `sub_scores`...) in `extra`, passed on as it came: the Python
//! service this one replaces returned Gemini's objects whole, and the frontend reads some of
//! those fields. `extra` never holds a contract field (see [`Extra`]).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub use crate::domain::provider::Provider;

/// Members Gemini added to an object beyond the contract's, by the names it gave them.
///
/// The parser leaves out every key it would read as one of the object's contract fields (the
/// name itself or an alias, in any case or style), so nothing is sent twice or shadows a typed
/// field; on the wire, the contract's exact names are skipped here as a second guard, since a
/// JSON object with a key twice means whatever its reader decides.
pub type Extra = Map<String, Value>;

/// One grammar/vocabulary problem found in the learner's text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrammarError {
    /// Category, e.g. `grammar`, `vocabulary`, `spelling`, `punctuation`, `word_order`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending span as the learner wrote it.
    pub text: String,
    /// What it should be.
    pub correction: String,
    /// Why, in learner-friendly words.
    pub explanation: String,
    /// Anything else Gemini sent for this error, e.g. `severity`.
    #[serde(flatten, serialize_with = "error_extra")]
    pub extra: Map<String, Value>,
}

/// A practice task suggested to the learner. The contract promises only "an object"; `type` and
/// `title` are always there (empty when Gemini gave none), `description` only when Gemini wrote
/// one: an empty one made up here would read as "no instructions" rather than "none sent".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendedTask {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// What to do, in a sentence or two; absent when Gemini gave no description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// Anything else Gemini sent for this task, e.g. `minutes`, `url`.
    #[serde(flatten, serialize_with = "task_extra")]
    pub extra: Map<String, Value>,
}

/// CEFR level, always one of the six bands on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum CefrLevel {
    #[default]
    A1,
    A2,
    B1,
    B2,
    C1,
    C2,
}

impl CefrLevel {
    pub const ALL: [CefrLevel; 6] = [Self::A1, Self::A2, Self::B1, Self::B2, Self::C1, Self::C2];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A1 => "A1",
            Self::A2 => "A2",
            Self::B1 => "B1",
            Self::B2 => "B2",
            Self::C1 => "C1",
            Self::C2 => "C2",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CefrAssessment {
    pub level: CefrLevel,
    /// The model's confidence in the level, 0..1, when it gave one.
    pub confidence: Option<f64>,
    /// Why this level, in one or two sentences.
    pub rationale: String,
    /// Anything else Gemini sent with the assessment, e.g. `sub_scores`.
    #[serde(flatten, serialize_with = "assessment_extra")]
    pub extra: Map<String, Value>,
}

fn error_extra<S: Serializer>(extra: &Extra, serializer: S) -> Result<S::Ok, S::Error> {
    without(extra, &["type", "text", "correction", "explanation"], serializer)
}

fn task_extra<S: Serializer>(extra: &Extra, serializer: S) -> Result<S::Ok, S::Error> {
    without(extra, &["type", "title", "description"], serializer)
}

fn assessment_extra<S: Serializer>(extra: &Extra, serializer: S) -> Result<S::Ok, S::Error> {
    without(extra, &["level", "confidence", "rationale"], serializer)
}

fn without<S: Serializer>(extra: &Extra, contract: &[&str], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(extra.iter().filter(|(key, _)| !contract.contains(&key.as_str())))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    pub errors: Vec<GrammarError>,
    pub feedback: String,
    pub strengths: Vec<String>,
    pub improvement_areas: Vec<String>,
    pub recommended_tasks: Vec<RecommendedTask>,
    pub cefr_assessment: CefrAssessment,
}

/// How the analysis was obtained from the model's text; `meta.parse` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParseQuality {
    /// Valid JSON as sent.
    Clean,
    /// Recovered: fences/prose stripped, syntax repaired, truncation closed, fields coerced.
    Repaired,
    /// Nothing usable: defaults only. Never cached.
    Fallback,
}

impl ParseQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Repaired => "repaired",
            Self::Fallback => "fallback",
        }
    }
}

/// What the analysis service produces for one text: the analysis plus how it was parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisOutcome {
    pub analysis: Analysis,
    pub parse: ParseQuality,
    /// The link of the analysis chain that made it; `None` in entries cached before chains
    /// existed (all made by `GEMINI_MODEL`, whose key they sit under).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_by: Option<MadeBy>,
    /// What making it cost; never stored, so a cached copy costs nothing.
    #[serde(skip)]
    pub tokens: crate::usage::record::Billed,
}

/// `meta.model` and `meta.provider`: stored with the analysis, so a cached answer says who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeBy {
    /// The model id as configured (`GEMINI_MODEL`, a `GEMINI_FALLBACK_MODELS` entry, `OPENAI_MODEL`).
    pub model: String,
    pub provider: Provider,
}

impl MadeBy {
    /// The model segment of this maker's cache keys. A Gemini model's is its id, as it always
    /// was; another provider's is prefixed, so the same id served elsewhere (LiteLLM can serve
    /// `gemini-2.5-flash`) never shares Gemini's entries.
    pub fn key_model(&self) -> std::borrow::Cow<'_, str> {
        match self.provider {
            Provider::Gemini => std::borrow::Cow::Borrowed(&self.model),
            other => std::borrow::Cow::Owned(format!("{}:{}", other.as_str(), self.model)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_extra_named_like_a_contract_field_is_never_written_beside_it() {
        let mut error = GrammarError { kind: "grammar".into(), ..GrammarError::default() };
        error.extra.insert("type".into(), json!("shadow"));
        error.extra.insert("severity".into(), json!("high"));
        let text = serde_json::to_string(&error).expect("serialises");
        assert_eq!(text.matches("\"type\"").count(), 1, "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json")["type"], "grammar");
        assert!(text.contains("\"severity\":\"high\""), "{text}");
    }

    #[test]
    fn extras_and_an_absent_description_survive_a_round_trip_through_json() {
        let mut task = RecommendedTask { kind: "reading".into(), title: "Short story".into(), ..Default::default() };
        task.extra.insert("minutes".into(), json!(15));
        let text = serde_json::to_string(&task).expect("serialises");
        assert!(!text.contains("description"), "{text}");
        assert_eq!(serde_json::from_str::<RecommendedTask>(&text).expect("reads back"), task);
    }
}
