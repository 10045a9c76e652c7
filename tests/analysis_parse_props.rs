//! Whatever text arrives, `parse_analysis` returns a complete analysis and never panics.

#[path = "support/analysis_samples.rs"]
mod samples;

use backend_ai::analysis::parse::fallback_analysis;
use backend_ai::analysis::{AnalysisOutcome, ParseQuality, parse_analysis};
use proptest::prelude::*;
use serde_json::Value;

/// Characters that steer the parser into its repair paths.
const SYNTAX: &[char] = &[
    '{', '}', '[', ']', '"', '\'', ',', ':', '\\', '/', '*', '#', '\n', '\t', '“', '”', '`', ' ', 'T', 'N', '0',
    '\u{feff}', '\u{0}', 'é',
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), prop::sample::select(SYNTAX)).prop_map(|(at, c)| Mutation::Insert(at, c)),
        (any::<usize>(), 1..40usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 1..200usize).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Works on chars so every mutation keeps the text valid UTF-8.
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let len = chars.len().max(1);
        match *m {
            Mutation::Insert(at, c) => chars.insert(at % (chars.len() + 1), c),
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Mutation::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                let copy: Vec<char> = chars[at.min(end)..end].to_vec();
                chars.splice(end..end, copy);
            }
            Mutation::Truncate(at) => chars.truncate(at % len),
        }
    }
    chars.into_iter().collect()
}

const CONTRACT_FIELDS: [&str; 6] =
    ["errors", "feedback", "strengths", "improvement_areas", "recommended_tasks", "cefr_assessment"];

/// What the frontend relies on: every field there, with the right types and ranges.
fn assert_complete(outcome: &AnalysisOutcome) -> Result<(), TestCaseError> {
    let value = serde_json::to_value(&outcome.analysis).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for field in CONTRACT_FIELDS {
        prop_assert!(value.get(field).is_some(), "missing {}", field);
    }
    for error in value["errors"].as_array().into_iter().flatten() {
        for field in ["type", "text", "correction", "explanation"] {
            prop_assert!(error[field].is_string(), "error without {}", field);
        }
    }
    for task in value["recommended_tasks"].as_array().into_iter().flatten() {
        for field in ["type", "title"] {
            prop_assert!(task[field].is_string(), "task without {}", field);
        }
        // Only when Gemini wrote one, and then as text.
        prop_assert!(task.get("description").is_none_or(Value::is_string), "description {:?}", task["description"]);
    }
    let cefr = &value["cefr_assessment"];
    let level = cefr["level"].as_str().unwrap_or_default();
    prop_assert!(["A1", "A2", "B1", "B2", "C1", "C2"].contains(&level), "level {:?}", level);
    match &cefr["confidence"] {
        Value::Null => {}
        Value::Number(n) => {
            let c = n.as_f64().unwrap_or(-1.0);
            prop_assert!((0.0..=1.0).contains(&c), "confidence {}", c);
        }
        other => prop_assert!(false, "confidence {:?}", other),
    }
    prop_assert!(cefr["rationale"].is_string());
    if outcome.parse == ParseQuality::Fallback {
        prop_assert_eq!(&outcome.analysis, &fallback_analysis());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_string_gives_a_complete_analysis(text in any::<String>()) {
        assert_complete(&parse_analysis(&text))?;
    }

    #[test]
    fn json_shaped_noise_gives_a_complete_analysis(
        chars in prop::collection::vec(prop::sample::select(SYNTAX), 0..400),
        words in prop::collection::vec(prop::sample::select(&["errors", "level", "B1", "True", "None", "confidence", "80%", "tasks"][..]), 0..10),
    ) {
        let mut text: String = chars.into_iter().collect();
        for (i, w) in words.iter().enumerate() {
            let at = (i * 37) % (text.chars().count() + 1);
            let byte = text.char_indices().nth(at).map_or(text.len(), |(b, _)| b);
            text.insert_str(byte, w);
        }
        assert_complete(&parse_analysis(&text))?;
    }

    #[test]
    fn mutated_valid_replies_give_a_complete_analysis(
        sample in 0..5usize,
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let analyses = samples::analyses();
        let reply = samples::reply(&analyses[sample % analyses.len()]);
        assert_complete(&parse_analysis(&mutate(&reply, &mutations)))?;
    }

    #[test]
    fn a_reply_with_one_stray_character_is_only_called_clean_while_it_is_still_contract_json(
        sample in 0..5usize,
        at in any::<usize>(),
        c in prop::sample::select(SYNTAX),
    ) {
        let analyses = samples::analyses();
        let original = &analyses[sample % analyses.len()];
        let text = mutate(&samples::reply(original), &[Mutation::Insert(at, c)]);
        let outcome = parse_analysis(&text);
        assert_complete(&outcome)?;
        // Clean means the text itself is the contract's JSON, taken exactly as written.
        if outcome.parse == ParseQuality::Clean {
            let strict = serde_json::from_str::<backend_ai::analysis::Analysis>(&text);
            prop_assert_eq!(Some(&outcome.analysis), strict.as_ref().ok());
        }
    }
}
