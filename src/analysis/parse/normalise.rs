//! A JSON value, in whatever shape the model chose, into the contract's [`Analysis`].
//!
//! Tolerant of schema drift: keys are matched case- and style-insensitively (`improvementAreas`,
//! `Improvement-Areas`) against alias lists, types are coerced where the meaning is clear and
//! missing fields defaulted. Unknown keys of an error, a task or the assessment are passed on as
//! its `extra`, unless they name one of its contract fields (then they were read, or lost to a
//! better-ranked alias, and must not reach the frontend a second time); unknown top-level keys
//! are ignored.

use serde_json::{Map, Value};

use super::level::parse_level;
use crate::analysis::model::Extra;
use crate::analysis::{Analysis, CefrAssessment, GrammarError, RecommendedTask};

const ERRORS: &[&str] = &["errors", "grammar_errors", "mistakes", "corrections", "issues", "error_list"];
const FEEDBACK: &[&str] = &["feedback", "overall_feedback", "summary", "general_feedback", "comment", "comments"];
const STRENGTHS: &[&str] = &["strengths", "strong_points", "positives"];
const IMPROVEMENT_AREAS: &[&str] =
    &["improvement_areas", "areas_for_improvement", "areas_to_improve", "improvements", "weaknesses"];
const TASKS: &[&str] =
    &["recommended_tasks", "tasks", "recommendations", "suggested_tasks", "practice_tasks", "exercises"];
const CEFR: &[&str] =
    &["cefr_assessment", "cefr", "cefr_level", "level", "assessment", "proficiency", "proficiency_level"];

const KIND: &[&str] = &["type", "category", "kind", "error_type", "task_type"];
const ERROR_TEXT: &[&str] = &["text", "original", "incorrect", "original_text", "error", "mistake", "wrong"];
const CORRECTION: &[&str] = &["correction", "suggestion", "corrected", "correct", "corrected_text", "fix"];
const EXPLANATION: &[&str] = &["explanation", "reason", "rule", "why", "description"];
const TITLE: &[&str] = &["title", "name", "task"];
const DESCRIPTION: &[&str] = &["description", "details", "instructions", "desc"];
const LEVEL: &[&str] = &["level", "cefr_level", "cefr", "band", "value"];
const CONFIDENCE: &[&str] = &["confidence", "certainty", "confidence_score"];
const RATIONALE: &[&str] = &["rationale", "reasoning", "reason", "justification", "explanation"];
/// Where the text of a list item hides when the model sent an object instead of a string.
const ITEM_TEXT: &[&str] = &["text", "title", "description", "area", "strength", "name", "value"];

/// An object of the analysis, by the alias lists of its contract fields.
#[derive(Clone, Copy)]
pub(super) enum Object {
    Analysis,
    Error,
    Task,
    Assessment,
}

impl Object {
    fn fields(self) -> &'static [&'static [&'static str]] {
        match self {
            Self::Analysis => &[ERRORS, FEEDBACK, STRENGTHS, IMPROVEMENT_AREAS, TASKS, CEFR],
            Self::Error => &[KIND, ERROR_TEXT, CORRECTION, EXPLANATION],
            Self::Task => &[KIND, TITLE, DESCRIPTION],
            Self::Assessment => &[LEVEL, CONFIDENCE, RATIONALE],
        }
    }

    /// Whether normalisation reads `key` (in any case or style) as one of this object's fields.
    pub(super) fn names_a_field(self, key: &str) -> bool {
        self.names_canonical(&canonical_key(key))
    }

    fn names_canonical(self, canonical: &str) -> bool {
        self.fields().iter().any(|aliases| aliases.contains(&canonical))
    }
}

/// `None` when the value holds none of the analysis fields: nothing was recovered.
pub(super) fn normalise(value: &Value) -> Option<Analysis> {
    let map = value.as_object()?;
    analysis_from(map).or_else(|| {
        // One wrapper level (`{"analysis": {...}}`, `{"result": {...}}`) is common drift.
        match map.values().next() {
            Some(Value::Object(inner)) if map.len() == 1 => analysis_from(inner),
            _ => None,
        }
    })
}

fn analysis_from(map: &Map<String, Value>) -> Option<Analysis> {
    let fields = Fields::new(map);
    let errors = fields.get(ERRORS);
    let feedback = fields.get(FEEDBACK);
    let strengths = fields.get(STRENGTHS);
    let improvement_areas = fields.get(IMPROVEMENT_AREAS);
    let tasks = fields.get(TASKS);
    let cefr = fields.get(CEFR);
    let found = [errors, feedback, strengths, improvement_areas, tasks, cefr];
    if found.iter().all(Option::is_none) {
        return None;
    }
    Some(Analysis {
        errors: errors.map(|v| list(v, grammar_error)).unwrap_or_default(),
        feedback: feedback.and_then(text).unwrap_or_default(),
        strengths: strengths.map(string_list).unwrap_or_default(),
        improvement_areas: improvement_areas.map(string_list).unwrap_or_default(),
        recommended_tasks: tasks.map(|v| list(v, task)).unwrap_or_default(),
        cefr_assessment: assessment(cefr, &fields),
    })
}

/// An object's keys in canonical snake_case, so alias lookup ignores case and style, beside the
/// keys as sent.
struct Fields<'a> {
    entries: Vec<(String, &'a str, &'a Value)>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Self { entries: map.iter().map(|(k, v)| (canonical_key(k), k.as_str(), v)).collect() }
    }

    /// The members that are none of `object`'s fields, as sent.
    fn extra(&self, object: Object) -> Extra {
        self.entries
            .iter()
            .filter(|(canonical, ..)| !object.names_canonical(canonical))
            .map(|&(_, key, value)| (key.to_owned(), value.clone()))
            .collect()
    }

    /// The first alias present with a non-null value, in alias priority order.
    fn get(&self, aliases: &[&str]) -> Option<&'a Value> {
        aliases.iter().find_map(|alias| {
            self.entries.iter().find(|(key, _, value)| key == alias && !value.is_null()).map(|&(.., value)| value)
        })
    }

    fn text(&self, aliases: &[&str]) -> String {
        self.get(aliases).and_then(text).unwrap_or_default()
    }
}

fn canonical_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.trim().chars() {
        if c.is_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        match c {
            '-' | ' ' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// A list field: a list as is, a lone object or string as a one-item list.
fn list<T>(value: &Value, item: fn(&Value) -> Option<T>) -> Vec<T> {
    match value {
        Value::Array(items) => items.iter().filter_map(item).collect(),
        Value::Null => Vec::new(),
        single => item(single).into_iter().collect(),
    }
}

fn string_list(value: &Value) -> Vec<String> {
    list(value, |item| match item {
        Value::Object(map) => Fields::new(map).get(ITEM_TEXT).and_then(text),
        other => text(other),
    })
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .collect()
}

/// Scalars as text; a list of strings joined (a paragraph sent as sentences).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(text).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        Value::Null | Value::Object(_) => None,
    }
}

fn grammar_error(value: &Value) -> Option<GrammarError> {
    let error = match value {
        Value::Object(map) => {
            let fields = Fields::new(map);
            GrammarError {
                kind: fields.text(KIND),
                text: fields.text(ERROR_TEXT),
                correction: fields.text(CORRECTION),
                explanation: fields.text(EXPLANATION),
                extra: fields.extra(Object::Error),
            }
        }
        other => GrammarError { explanation: text(other)?, ..GrammarError::default() },
    };
    (error != GrammarError::default()).then_some(error)
}

fn task(value: &Value) -> Option<RecommendedTask> {
    let task = match value {
        Value::Object(map) => {
            let fields = Fields::new(map);
            RecommendedTask {
                kind: fields.text(KIND),
                title: fields.text(TITLE),
                description: fields.get(DESCRIPTION).and_then(text),
                extra: fields.extra(Object::Task),
            }
        }
        other => RecommendedTask { title: text(other)?, ..RecommendedTask::default() },
    };
    (task != RecommendedTask::default()).then_some(task)
}

/// The assessment object, or a bare level string with confidence/rationale maybe beside it at
/// the top level. An unreadable level stays at the default (A1).
fn assessment(value: Option<&Value>, top: &Fields<'_>) -> CefrAssessment {
    let (level, confidence, rationale, extra) = match value {
        Some(Value::Object(map)) => {
            let fields = Fields::new(map);
            let extra = fields.extra(Object::Assessment);
            (fields.get(LEVEL).and_then(text), fields.get(CONFIDENCE), fields.text(RATIONALE), extra)
        }
        other => (other.and_then(text), top.get(CONFIDENCE), top.text(RATIONALE), Extra::new()),
    };
    CefrAssessment {
        level: level.as_deref().and_then(parse_level).unwrap_or_default(),
        confidence: confidence.and_then(confidence_of),
        rationale,
        extra,
    }
}

/// 0..1, accepting percentages (`80`, `"80%"`) and numbers sent as strings (`"0.8"`).
fn confidence_of(value: &Value) -> Option<f64> {
    let (raw, percent) = match value {
        Value::Number(n) => (n.as_f64()?, false),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(number) => (number.trim().parse::<f64>().ok()?, true),
                None => (s.parse::<f64>().ok()?, false),
            }
        }
        _ => return None,
    };
    if !raw.is_finite() {
        return None;
    }
    let fraction = if percent || raw > 1.0 { raw / 100.0 } else { raw };
    Some(fraction.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::CefrLevel;
    use serde_json::json;

    #[test]
    fn aliased_fields_land_in_the_contract_fields() {
        let a = normalise(&json!({
            "grammar_errors": [{"category": "grammar", "original": "I go", "suggestion": "I went", "reason": "past"}],
            "overall_feedback": "Good.",
            "areasForImprovement": ["tenses"],
            "cefr_level": "Intermediate (B1)",
            "confidence": "80%",
        }))
        .expect("has fields");
        assert_eq!(a.errors[0].kind, "grammar");
        assert_eq!(a.errors[0].text, "I go");
        assert_eq!(a.errors[0].correction, "I went");
        assert_eq!(a.errors[0].explanation, "past");
        assert_eq!(a.feedback, "Good.");
        assert_eq!(a.improvement_areas, vec!["tenses"]);
        assert_eq!(a.cefr_assessment.level, CefrLevel::B1);
        assert_eq!(a.cefr_assessment.confidence, Some(0.8));
    }

    #[test]
    fn types_are_coerced_where_the_meaning_is_clear() {
        let a = normalise(&json!({
            "strengths": "vocabulary",
            "errors": {"type": "spelling", "text": "recieve", "correction": "receive", "explanation": "i before e"},
            "recommended_tasks": ["Past simple drill"],
            "cefr_assessment": {"level": "b2", "confidence": "0.8"},
        }))
        .expect("has fields");
        assert_eq!(a.strengths, vec!["vocabulary"]);
        assert_eq!(a.errors.len(), 1);
        assert_eq!(a.recommended_tasks[0].title, "Past simple drill");
        assert_eq!(a.cefr_assessment.level, CefrLevel::B2);
        assert_eq!(a.cefr_assessment.confidence, Some(0.8));
    }

    #[test]
    fn confidence_is_clamped_to_a_fraction() {
        for (raw, want) in
            [(json!(85), Some(0.85)), (json!(-1), Some(0.0)), (json!(250), Some(1.0)), (json!("high"), None)]
        {
            assert_eq!(confidence_of(&raw), want, "{raw}");
        }
    }

    #[test]
    fn an_object_without_analysis_fields_is_nothing() {
        assert!(normalise(&json!({"answer": 42, "note": "hi"})).is_none());
        assert!(normalise(&json!(["errors"])).is_none());
    }

    #[test]
    fn fields_beyond_the_contract_are_passed_on_as_sent_but_aliases_never_beside_their_field() {
        let a = normalise(&json!({
            "errors": [{"category": "grammar", "type": "tense", "text": "I go", "correction": "I went",
                        "explanation": "past", "Reason": "also past", "severity": "high", "subScores": null}],
            "recommended_tasks": [{"name": "Drill", "desc": "Ten verbs.", "minutes": 10, "url": "https://example.org"}],
            "cefr": {"band": "B1", "confidence_score": 0.7, "sub_scores": {"grammar": 0.5}},
            "notes": "top-level keys have nowhere to go",
        }))
        .expect("has fields");
        assert_eq!(a.errors[0].kind, "tense", "the exact name outranks its alias");
        let extra = |map: &Extra| map.keys().cloned().collect::<Vec<_>>();
        assert_eq!(extra(&a.errors[0].extra), ["severity", "subScores"]);
        assert_eq!(a.recommended_tasks[0].title, "Drill");
        assert_eq!(a.recommended_tasks[0].description.as_deref(), Some("Ten verbs."));
        assert_eq!(extra(&a.recommended_tasks[0].extra), ["minutes", "url"]);
        assert_eq!(a.cefr_assessment.level, CefrLevel::B1);
        assert_eq!(a.cefr_assessment.extra["sub_scores"], json!({"grammar": 0.5}));
        assert_eq!(extra(&a.cefr_assessment.extra), ["sub_scores"]);
    }

    #[test]
    fn a_task_without_a_description_is_given_none() {
        let a = normalise(&json!({"recommended_tasks": [{"type": "reading", "title": "Short story"}, "Diary"]}))
            .expect("has fields");
        assert!(a.recommended_tasks.iter().all(|task| task.description.is_none()), "{:?}", a.recommended_tasks);
    }

    #[test]
    fn one_wrapper_level_is_looked_through() {
        let a = normalise(&json!({"analysis": {"feedback": "Nice."}})).expect("wrapped");
        assert_eq!(a.feedback, "Nice.");
    }
}
