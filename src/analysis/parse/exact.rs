//! The fast path for the common case: a reply that is already exactly the contract's shape.
//!
//! Gemini with a response schema nearly always sends exactly that. Reading it through a
//! `serde_json::Value` tree, normalising the tree and deserialising it again to tell it was
//! clean cost ~100 allocations per analysis, a quarter of a cache miss's. Deserialised straight
//! into [`Analysis`] it costs what the analysis itself holds.
//!
//! It must give what the general path gives, or nothing: a key the contract does not name (at any
//! depth) is refused, because normalisation might read it as an alias; so is a repeated key
//! (serde refuses those itself), and a value normalisation would change (a blank list entry, an
//! empty error or task, a confidence outside 0..1). Whatever this refuses, the general path reads.
//!
//! The types below mirror the contract's with `deny_unknown_fields`, which the contract's own
//! types must not have: cached analyses are read back with them, and an instance of an older
//! version must still read an entry a newer one wrote with a field added.

use serde::Deserialize;

use crate::analysis::{Analysis, CefrAssessment, CefrLevel, GrammarError, RecommendedTask};

/// The analysis, when `text` is one JSON object in exactly the contract's shape and normal form.
pub(super) fn exact_analysis(text: &str) -> Option<Analysis> {
    let analysis = Analysis::from(serde_json::from_str::<Exact>(text).ok()?);
    is_normal(&analysis).then_some(analysis)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exact {
    errors: Vec<ExactError>,
    feedback: String,
    strengths: Vec<String>,
    improvement_areas: Vec<String>,
    recommended_tasks: Vec<ExactTask>,
    cefr_assessment: ExactAssessment,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactError {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    correction: String,
    explanation: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactTask {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactAssessment {
    level: CefrLevel,
    // Absent or null, as the contract's `Option` reads it.
    #[serde(default)]
    confidence: Option<f64>,
    rationale: String,
}

impl From<Exact> for Analysis {
    fn from(exact: Exact) -> Self {
        let Exact { errors, feedback, strengths, improvement_areas, recommended_tasks, cefr_assessment } = exact;
        let ExactAssessment { level, confidence, rationale } = cefr_assessment;
        Analysis {
            errors: errors
                .into_iter()
                .map(|ExactError { kind, text, correction, explanation }| GrammarError {
                    kind,
                    text,
                    correction,
                    explanation,
                })
                .collect(),
            feedback,
            strengths,
            improvement_areas,
            recommended_tasks: recommended_tasks
                .into_iter()
                .map(|ExactTask { kind, title, description }| RecommendedTask { kind, title, description })
                .collect(),
            cefr_assessment: CefrAssessment { level, confidence, rationale },
        }
    }
}

/// Whether normalisation would leave the analysis as it is.
fn is_normal(analysis: &Analysis) -> bool {
    let no_blank = |items: &[String]| items.iter().all(|item| !item.trim().is_empty());
    no_blank(&analysis.strengths)
        && no_blank(&analysis.improvement_areas)
        && analysis.errors.iter().all(|error| *error != GrammarError::default())
        && analysis.recommended_tasks.iter().all(|task| *task != RecommendedTask::default())
        && analysis.cefr_assessment.confidence.is_none_or(|c| (0.0..=1.0).contains(&c))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// What the general path (Value, normalise) makes of the same text.
    fn general(text: &str) -> Option<Analysis> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        super::super::normalise::normalise(&value)
    }

    fn exact_reply() -> serde_json::Value {
        json!({
            "errors": [{"type": "grammar", "text": "I go", "correction": "I went", "explanation": "past"}],
            "feedback": "Good.",
            "strengths": ["vocabulary"],
            "improvement_areas": ["tenses"],
            "recommended_tasks": [{"type": "drill", "title": "Past simple", "description": "Ten verbs."}],
            "cefr_assessment": {"level": "B1", "confidence": 0.8, "rationale": "Simple sentences."}
        })
    }

    #[test]
    fn an_exact_reply_is_read_as_the_general_path_reads_it() {
        let text = exact_reply().to_string();
        let fast = exact_analysis(&text).expect("an exact reply takes the fast path");
        assert_eq!(Some(fast), general(&text));
    }

    #[test]
    fn anything_the_general_path_might_read_differently_is_left_to_it() {
        let with = |pointer: &str, key: &str, value: serde_json::Value| {
            let mut reply = exact_reply();
            reply.pointer_mut(pointer).and_then(|v| v.as_object_mut()).expect("object").insert(key.into(), value);
            reply.to_string()
        };
        let refused = [
            // An unknown key, top level and nested: normalisation reads some as aliases.
            with("", "Feedback", json!("Other.")),
            with("/errors/0", "Explanation", json!("other")),
            with("/cefr_assessment", "confidence_score", json!(0.1)),
            // Values normalisation changes.
            with("", "strengths", json!(["vocabulary", "  "])),
            with("", "errors", json!([{"type": "", "text": "", "correction": "", "explanation": ""}])),
            with("/cefr_assessment", "confidence", json!(80)),
            with("/cefr_assessment", "level", json!("b1")),
            // A repeated key, and a second value after the object.
            exact_reply().to_string().replacen("\"feedback\":", "\"feedback\":\"x\",\"feedback\":", 1),
            format!("{} {{}}", exact_reply()),
        ];
        for text in refused {
            assert_eq!(exact_analysis(&text), None, "{text}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), Just("  ".to_string()), "[a-z ]{1,12}"]
    }

    fn analysis() -> impl Strategy<Value = Analysis> {
        let error = (text(), text(), text(), text()).prop_map(|(kind, text, correction, explanation)| GrammarError {
            kind,
            text,
            correction,
            explanation,
        });
        let task = (text(), text(), text()).prop_map(|(kind, title, description)| RecommendedTask {
            kind,
            title,
            description,
        });
        let confidence = prop_oneof![Just(None), (-0.5f64..1.5).prop_map(Some)];
        let assessment = (0..6usize, confidence, text()).prop_map(|(level, confidence, rationale)| CefrAssessment {
            level: CefrLevel::ALL[level],
            confidence,
            rationale,
        });
        (
            prop::collection::vec(error, 0..3),
            text(),
            prop::collection::vec(text(), 0..3),
            prop::collection::vec(text(), 0..3),
            prop::collection::vec(task, 0..3),
            assessment,
        )
            .prop_map(
                |(errors, feedback, strengths, improvement_areas, recommended_tasks, cefr_assessment)| Analysis {
                    errors,
                    feedback,
                    strengths,
                    improvement_areas,
                    recommended_tasks,
                    cefr_assessment,
                },
            )
    }

    proptest! {
        /// The fast path never disagrees with the general one: it answers the same or not at all.
        #[test]
        fn the_fast_path_agrees_with_normalisation(analysis in analysis()) {
            let text = serde_json::to_string(&analysis).expect("serialises");
            if let Some(fast) = exact_analysis(&text) {
                prop_assert_eq!(Some(fast), general(&text));
            } else {
                prop_assert_ne!(general(&text), Some(analysis));
            }
        }
    }
}
