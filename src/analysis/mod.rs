//! Grammar analysis of a learner's text: the contract's shape, the prompt sent to Gemini and the
//! robust parsing of Gemini's reply.

pub mod analyzer;
pub mod compat;
pub mod model;
pub mod parse;
pub mod prompt;

pub use model::{Analysis, AnalysisOutcome, CefrAssessment, CefrLevel, GrammarError, ParseQuality, RecommendedTask};
pub use parse::parse_analysis;
