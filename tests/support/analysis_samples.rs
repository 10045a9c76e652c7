//! Realistic analyses as Gemini returns them, shared by the parse corpus, the property tests and
//! the benchmark. Their strings hold what makes repair hard: apostrophes, inner double quotes,
//! newlines, tabs, non-ASCII and braces; some carry fields beyond the contract's, or lack a
//! task description, as Gemini's objects can.
#![allow(dead_code)]

use backend_ai::analysis::model::Extra;
use backend_ai::analysis::{Analysis, CefrAssessment, CefrLevel, GrammarError, RecommendedTask};
use serde_json::{Value, json};

fn error(kind: &str, text: &str, correction: &str, explanation: &str) -> GrammarError {
    GrammarError {
        kind: kind.into(),
        text: text.into(),
        correction: correction.into(),
        explanation: explanation.into(),
        extra: Default::default(),
    }
}

fn task(kind: &str, title: &str, description: &str) -> RecommendedTask {
    RecommendedTask {
        kind: kind.into(),
        title: title.into(),
        description: Some(description.into()),
        extra: Default::default(),
    }
}

fn extra(fields: Value) -> Extra {
    match fields {
        Value::Object(map) => map,
        _ => Extra::new(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// About 2 KB of JSON: the typical reply the benchmark measures.
pub fn typical() -> Analysis {
    Analysis {
        errors: vec![
            error(
                "grammar",
                "I go to the store yesterday",
                "I went to the store yesterday",
                "Use the past simple for finished actions: \"went\", not \"go\".",
            ),
            error("grammar", "She don't like", "She doesn't like", "With he/she/it we say \"doesn't\"."),
            error("spelling", "recieve", "receive", "Remember: i before e, except after c."),
            error(
                "vocabulary",
                "make a photo",
                "take a photo",
                "In English we \"take\" photos; \"make\" sounds unnatural here.",
            ),
            error("punctuation", "However I", "However, I", "Put a comma after linking words like 'however'."),
            error(
                "grammar",
                "If I will have time",
                "If I have time",
                "After \"if\" in the first conditional, use the present simple, not \"will\".",
            ),
            error("word_order", "I always am late", "I am always late", "Frequency adverbs go after \"be\"."),
        ],
        feedback: "Your text is easy to follow and your ideas are clear.\nFocus on verb tenses: \
                   most mistakes are in the past simple. You're making good progress!"
            .into(),
        strengths: strings(&["Clear structure", "Good range of everyday vocabulary", "Friendly, natural tone"]),
        improvement_areas: strings(&[
            "Past simple of irregular verbs",
            "Third person -s",
            "Commas after linking words",
        ]),
        recommended_tasks: vec![
            task("grammar", "Irregular verbs drill", "Write 10 sentences about last weekend using go, see, take."),
            task("writing", "Diary entry", "Write 120 words about yesterday; check every verb's tense."),
            task("reading", "Short story", "Read a graded B1 story and underline every past simple verb."),
        ],
        cefr_assessment: CefrAssessment {
            level: CefrLevel::B1,
            confidence: Some(0.8),
            rationale: "Connected text on familiar topics with frequent tense errors.".into(),
            extra: Default::default(),
        },
    }
}

pub fn analyses() -> Vec<Analysis> {
    vec![
        typical(),
        Analysis {
            errors: vec![error(
                "word_order",
                "I like very much coffee",
                "I like coffee very much",
                "Adverbs like \"very much\" go after the object.",
            )],
            feedback: "Très bien! A short text, but mostly correct.\tKeep writing longer answers.".into(),
            strengths: strings(&["Correct articles", "Good use of \"because\""]),
            improvement_areas: strings(&["Word order", "Longer sentences"]),
            // Gemini gave no description here, only how long the task takes.
            recommended_tasks: vec![RecommendedTask {
                description: None,
                extra: extra(json!({"minutes": 10})),
                ..task("reading", "Café menu", "")
            }],
            cefr_assessment: CefrAssessment {
                level: CefrLevel::A2,
                confidence: None,
                rationale: "Simple sentences; the learners' range is still limited.".into(),
                extra: Default::default(),
            },
        },
        Analysis {
            errors: Vec::new(),
            feedback: "Excellent, nuanced writing with no errors. Use {placeholders} sparingly.".into(),
            strengths: strings(&["Complex sentences", "Idiomatic phrasing", "Precise vocabulary"]),
            improvement_areas: strings(&["Vary paragraph openings"]),
            recommended_tasks: Vec::new(),
            cefr_assessment: CefrAssessment {
                level: CefrLevel::C2,
                confidence: Some(0.95),
                rationale: "Near-native control of grammar and register.".into(),
                extra: Default::default(),
            },
        },
        Analysis {
            errors: vec![
                error("grammar", "He have 20 years", "He is 20 years old", "Age uses \"be\", not \"have\"."),
                error("grammar", "I am agree", "I agree", "\"Agree\" is a verb; don't use \"am\" with it."),
                error("spelling", "becouse", "because", ""),
            ],
            feedback: "Good effort — try to check verbs twice. 😊".into(),
            strengths: strings(&["Willing to write longer texts"]),
            improvement_areas: strings(&["Verb forms", "Spelling of common words"]),
            recommended_tasks: vec![
                task("speaking", "Introduce yourself", "Say your age, job and hobbies in 5 sentences."),
                task("grammar", "be vs have", "Complete 15 gap-fill sentences with be or have."),
                task("vocabulary", "Spelling list", "Learn: because, receive, friend, which."),
            ],
            cefr_assessment: CefrAssessment {
                level: CefrLevel::A1,
                confidence: Some(0.6),
                rationale: "Basic phrases with frequent errors in verb forms.".into(),
                extra: Default::default(),
            },
        },
        // With the fields beyond the contract's that Gemini has been seen to add.
        Analysis {
            errors: vec![GrammarError {
                extra: extra(json!({"severity": "minor"})),
                ..error(
                    "vocabulary",
                    "I am boring in class",
                    "I am bored in class",
                    "\"Boring\" describes the thing; \"bored\" describes how you feel.",
                )
            }],
            feedback: "Solid upper-intermediate writing: varied tenses, good linking.".into(),
            strengths: strings(&["Linking words", "Conditionals"]),
            improvement_areas: strings(&["-ed/-ing adjectives"]),
            recommended_tasks: vec![RecommendedTask {
                extra: extra(json!({"minutes": 15, "url": "https://example.org/adjectives-ed-ing"})),
                ..task("vocabulary", "Feelings adjectives", "Sort 20 adjectives into -ed and -ing and use each once.")
            }],
            cefr_assessment: CefrAssessment {
                level: CefrLevel::B2,
                confidence: Some(0.7),
                rationale: "Clear, detailed text with a few lexical slips.".into(),
                extra: extra(json!({"sub_scores": {"grammar": 0.75, "vocabulary": 0.5, "coherence": 0.8}})),
            },
        },
    ]
}

/// The reply text as Gemini sends it with a JSON response schema: compact, contract field names.
pub fn reply(analysis: &Analysis) -> String {
    serde_json::to_string(analysis).expect("an analysis always serialises")
}
