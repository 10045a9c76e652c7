//! The fast path for the common case: a reply that is already exactly the contract's shape.
//!
//! Gemini with a response schema nearly always sends exactly that. Reading it through a
//! `serde_json::Value` tree, normalising the tree and deserialising it again to tell it was
//! clean cost ~100 allocations per analysis, a quarter of a cache miss's. Deserialised straight
//! into [`Analysis`] it costs what the analysis itself holds.
//!
//! It must give what the general path gives, or nothing: a key that normalisation would read as
//! one of its object's contract fields, though it is not that field's exact name (`Feedback`,
//! `category`, `confidence_score`), is refused at any depth, because there the general path
//! might pick it over the exact name, and never passes it on; so is a repeated contract key (serde
//! refuses those itself), and a value normalisation would change (a blank list entry, an error
//! or task that is empty, a confidence outside 0..1). Whatever this refuses, the general
//! path reads. Any other key is passed on in its object's `extra` (ignored at the top level),
//! exactly as the general path does.

use serde::Deserialize;

use super::normalise::Object;
use crate::analysis::model::Extra;
use crate::analysis::{Analysis, CefrAssessment, GrammarError, RecommendedTask};

/// The analysis, when `text` is one JSON object in exactly the contract's shape and normal form.
pub(super) fn exact_analysis(text: &str) -> Option<Analysis> {
    let exact = serde_json::from_str::<Exact>(text).ok()?;
    if !exact.only_plain_extras() {
        return None;
    }
    let Exact { errors, feedback, strengths, improvement_areas, recommended_tasks, cefr_assessment, extra: _ } = exact;
    let analysis = Analysis { errors, feedback, strengths, improvement_areas, recommended_tasks, cefr_assessment };
    is_normal(&analysis).then_some(analysis)
}

/// The contract's [`Analysis`], with the top level's unknown keys kept to be checked (the
/// contract's type drops them unseen). Below the top level the contract's own types read the
/// reply: what they accept is, by definition, the contract's shape.
#[derive(Deserialize)]
struct Exact {
    errors: Vec<GrammarError>,
    feedback: String,
    strengths: Vec<String>,
    improvement_areas: Vec<String>,
    recommended_tasks: Vec<RecommendedTask>,
    cefr_assessment: CefrAssessment,
    #[serde(flatten)]
    extra: Extra,
}

impl Exact {
    /// No unknown key that normalisation would read as a contract field.
    fn only_plain_extras(&self) -> bool {
        let plain = |extra: &Extra, object: Object| extra.keys().all(|key| !object.names_a_field(key));
        plain(&self.extra, Object::Analysis)
            && self.errors.iter().all(|error| plain(&error.extra, Object::Error))
            && self.recommended_tasks.iter().all(|task| plain(&task.extra, Object::Task))
            && plain(&self.cefr_assessment.extra, Object::Assessment)
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
    use crate::analysis::CefrLevel;

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
    fn fields_beyond_the_contract_take_the_fast_path_and_are_kept_where_the_general_path_keeps_them() {
        let mut reply = exact_reply();
        reply["errors"][0]["severity"] = json!("high");
        reply["recommended_tasks"][0]["minutes"] = json!(10);
        reply["recommended_tasks"][0]["url"] = json!("https://example.org/past-simple");
        reply["cefr_assessment"]["sub_scores"] = json!({"grammar": 0.6, "vocabulary": 0.8});
        reply["model_notes"] = json!("ignored: the top level has no extras");
        let text = reply.to_string();
        let fast = exact_analysis(&text).expect("plain extra fields do not leave the fast path");
        assert_eq!(fast.errors[0].extra["severity"], "high");
        assert_eq!(fast.recommended_tasks[0].extra["minutes"], 10);
        assert_eq!(fast.cefr_assessment.extra["sub_scores"]["vocabulary"], 0.8);
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
            with("/recommended_tasks/0", "desc", json!("Ten more.")),
            with("/errors/0", "category", json!("tense")),
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

    /// Extra members: plain ones, and ones the normaliser reads as a contract field (an alias, a
    /// case variant, the contract's own name) that the fast path must leave to the general one.
    fn extra() -> impl Strategy<Value = Extra> {
        let key = prop::sample::select(
            &["severity", "minutes", "url", "sub_scores", "category", "Type", "reason", "desc", "band", "text"][..],
        );
        let value = prop_oneof![
            text().prop_map(serde_json::Value::from),
            (0..100u32).prop_map(serde_json::Value::from),
            Just(json!({"grammar": 0.5})),
            Just(serde_json::Value::Null),
        ];
        prop::collection::btree_map(key, value, 0..3)
            .prop_map(|map| map.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
    }

    fn analysis() -> impl Strategy<Value = Analysis> {
        let error =
            (text(), text(), text(), text(), extra()).prop_map(|(kind, text, correction, explanation, extra)| {
                GrammarError { kind, text, correction, explanation, extra }
            });
        let task = (text(), text(), prop::option::of(text()), extra())
            .prop_map(|(kind, title, description, extra)| RecommendedTask { kind, title, description, extra });
        let confidence = prop_oneof![Just(None), (-0.5f64..1.5).prop_map(Some)];
        let assessment = (0..6usize, confidence, text(), extra()).prop_map(|(level, confidence, rationale, extra)| {
            CefrAssessment { level: CefrLevel::ALL[level], confidence, rationale, extra }
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
