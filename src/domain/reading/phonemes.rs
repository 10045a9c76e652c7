//! Feedback down to the sound: what to ask Azure for in a language, and how its phoneme
//! candidates and prosody confidences become something a learner can act on.

use crate::domain::speech::{PhonemeCandidate, ProsodyFeedback};

/// Candidates asked for each sound, as Microsoft's samples ask.
pub const PHONEME_CANDIDATES: u8 = 5;
/// Azure sends break and monotone confidences but no verdicts; Microsoft suggests this bar.
pub const PROSODY_THRESHOLD: f64 = 0.75;

/// The parts of an assessment that depend on the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `PhonemeAlphabet`: IPA where Azure names the sounds (en-US); elsewhere it gives scores
    /// without names, and asking would only be refused or ignored.
    pub phoneme_alphabet: Option<&'static str>,
    /// `NBestPhonemeCount`: only where sounds have names to offer as candidates.
    pub phoneme_candidates: Option<u8>,
    /// `EnableProsodyAssessment`: en-US only.
    pub prosody: bool,
}

pub fn options(language: &str) -> Options {
    let us_english = language.eq_ignore_ascii_case("en-US");
    Options {
        phoneme_alphabet: us_english.then_some("IPA"),
        phoneme_candidates: us_english.then_some(PHONEME_CANDIDATES),
        prosody: us_english,
    }
}

/// The sound most likely said, when it is not the one expected. Candidates are ranked by
/// score, whatever order they came in.
pub fn said_instead(expected: Option<&str>, candidates: &[PhonemeCandidate]) -> Option<String> {
    let best = candidates.iter().max_by(|a, b| a.score.total_cmp(&b.score))?;
    (Some(best.phoneme.as_str()) != expected).then(|| best.phoneme.clone())
}

/// What Azure said of a word's prosody, with the issues named. `None` when it said nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProsodySignals {
    /// `Break.ErrorTypes` and `Intonation.ErrorTypes` as sent (`None` entries included).
    pub error_types: Vec<String>,
    pub unexpected_break: Option<f64>,
    pub missing_break: Option<f64>,
    pub monotone: Option<f64>,
    pub break_length_ms: Option<u64>,
}

pub fn feedback(signals: ProsodySignals) -> ProsodyFeedback {
    let mut issues: Vec<String> =
        signals.error_types.iter().filter(|error| error.as_str() != "None").cloned().collect();
    for (confidence, issue) in [
        (signals.unexpected_break, "UnexpectedBreak"),
        (signals.missing_break, "MissingBreak"),
        (signals.monotone, "Monotone"),
    ] {
        if confidence.is_some_and(|confidence| confidence >= PROSODY_THRESHOLD) && !issues.iter().any(|i| i == issue) {
            issues.push(issue.to_string());
        }
    }
    ProsodyFeedback {
        issues,
        unexpected_break_confidence: signals.unexpected_break,
        missing_break_confidence: signals.missing_break,
        monotone_confidence: signals.monotone,
        break_length_ms: signals.break_length_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(phoneme: &str, score: f64) -> PhonemeCandidate {
        PhonemeCandidate { phoneme: phoneme.to_string(), score }
    }

    #[test]
    fn only_us_english_gets_ipa_candidates_and_prosody() {
        assert_eq!(
            options("en-us"),
            Options { phoneme_alphabet: Some("IPA"), phoneme_candidates: Some(5), prosody: true }
        );
        assert_eq!(options("de-DE"), Options { phoneme_alphabet: None, phoneme_candidates: None, prosody: false });
    }

    #[test]
    fn the_best_candidate_is_what_was_said_when_it_differs() {
        let candidates = [candidate("ɛ", 40.0), candidate("ə", 90.0)];
        assert_eq!(said_instead(Some("ɛ"), &candidates).as_deref(), Some("ə"));
        assert_eq!(said_instead(Some("ə"), &candidates), None);
        assert_eq!(said_instead(Some("ə"), &[]), None);
    }

    #[test]
    fn confident_signals_become_issues_once() {
        let signals = ProsodySignals {
            error_types: vec!["None".to_string(), "Monotone".to_string()],
            unexpected_break: Some(0.2),
            missing_break: Some(1.0),
            monotone: Some(0.9),
            break_length_ms: Some(0),
        };
        assert_eq!(feedback(signals).issues, vec!["Monotone", "MissingBreak"]);
    }
}
