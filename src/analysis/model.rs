//! The analysis the contract promises in `data` of `POST /api/analyze`.
//!
//! Every field always exists on the wire, even for a fallback analysis: the frontend reads them
//! without checks. Parsing of Gemini's text into this shape lives in `analysis::parse`.

use serde::{Deserialize, Serialize};

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
}

/// A practice task suggested to the learner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendedTask {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub description: String,
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
}
