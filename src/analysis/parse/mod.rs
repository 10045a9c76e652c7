//! Turning Gemini's reply text into the contract's analysis, whatever state the text is in.

use super::{Analysis, AnalysisOutcome, ParseQuality};

/// Never fails and never panics: unusable text gives a default analysis marked `Fallback`.
pub fn parse_analysis(text: &str) -> AnalysisOutcome {
    match serde_json::from_str::<Analysis>(text) {
        Ok(analysis) => AnalysisOutcome { analysis, parse: ParseQuality::Clean },
        Err(_) => AnalysisOutcome { analysis: Analysis::default(), parse: ParseQuality::Fallback },
    }
}
