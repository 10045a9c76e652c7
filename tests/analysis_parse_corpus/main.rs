//! Recovery corpus: every valid sample analysis is corrupted in each way Gemini's text has been
//! seen to go wrong, and the parser must give back the original, field by field.
//!
//! Run with `cargo test --test analysis_parse_corpus -- --nocapture` to see the summary table.

#[path = "../support/analysis_samples.rs"]
mod samples;
mod tally;
mod writer;

use std::collections::BTreeMap;

use backend_ai::analysis::parse::{FALLBACK_FEEDBACK, MAX_INPUT_BYTES};
use backend_ai::analysis::{Analysis, ParseQuality, parse_analysis};
use serde_json::json;

use crate::tally::Corpus;
use crate::writer::{Quotes, Style, drifted, write};

/// Top-level keys in the contract's order (how Gemini writes them with a response schema).
const CONTRACT_ORDER: [&str; 6] =
    ["errors", "feedback", "strengths", "improvement_areas", "recommended_tasks", "cefr_assessment"];
/// The other order seen in the wild: the assessment first.
const ASSESSMENT_FIRST: [&str; 6] =
    ["cefr_assessment", "feedback", "strengths", "improvement_areas", "errors", "recommended_tasks"];

fn quality_if_strict_else_repaired(text: &str) -> ParseQuality {
    match serde_json::from_str::<Analysis>(text) {
        Ok(_) => ParseQuality::Clean,
        Err(_) => ParseQuality::Repaired,
    }
}

fn cut_points(text: &str) -> impl Iterator<Item = usize> + '_ {
    (1..text.len()).step_by(7).filter_map(|i| (i..text.len()).find(|&j| text.is_char_boundary(j)))
}

#[test]
fn corrupted_replies_recover_field_by_field_and_almost_never_fall_back() {
    let mut corpus = Corpus { tallies: BTreeMap::new(), failures: Vec::new() };
    let pretty = Style { pretty: true, ..Style::default() };
    let mut others = samples::analyses();
    others.rotate_left(1);

    for (original, other) in samples::analyses().iter().zip(&others) {
        let value = serde_json::to_value(original).expect("serialises");
        for order in [&CONTRACT_ORDER, &ASSESSMENT_FIRST] {
            let compact = write(&value, order, Style::default()).text;
            let pretty_text = write(&value, order, pretty).text;
            let with = |style: Style| write(&value, order, style).text;
            let w = &mut corpus;

            w.whole("clean compact", &compact, original, ParseQuality::Clean);
            w.whole("clean pretty", &pretty_text, original, ParseQuality::Clean);
            w.whole("md fence", &format!("```json\n{pretty_text}\n```"), original, ParseQuality::Repaired);
            w.whole("md fence unclosed", &format!("```json\n{pretty_text}\n"), original, ParseQuality::Repaired);
            w.whole(
                "prose around",
                &format!("Here is the analysis you asked for:\n\n{pretty_text}\n\nLet me know if you need more help!"),
                original,
                ParseQuality::Repaired,
            );
            w.whole(
                "prose with braces before",
                &format!("Analysis of {{text}} [v2]:\n```json\n{compact}\n```"),
                original,
                ParseQuality::Repaired,
            );
            for (kind, comment) in
                [("// comments", "// note"), ("/* */ comments", "/* note */"), ("# comments", "# note")]
            {
                w.whole(kind, &with(Style { comment: Some(comment), ..pretty }), original, ParseQuality::Repaired);
            }
            w.whole(
                "trailing commas",
                &with(Style { trailing_commas: true, ..pretty }),
                original,
                ParseQuality::Repaired,
            );
            w.whole(
                "single quotes",
                &with(Style { quotes: Quotes::Single, ..pretty }),
                original,
                ParseQuality::Repaired,
            );
            w.whole("unquoted keys", &with(Style { unquoted_keys: true, ..pretty }), original, ParseQuality::Repaired);
            let mut with_flags = value.clone();
            with_flags["reviewed"] = json!(true);
            with_flags["draft"] = json!(false);
            let python = write(
                &with_flags,
                &[&CONTRACT_ORDER[..], &["reviewed", "draft"]].concat(),
                Style { quotes: Quotes::Python, ..Style::default() },
            );
            w.whole("python repr", &python.text, original, ParseQuality::Repaired);
            w.whole("smart quotes", &with(Style { quotes: Quotes::Smart, ..pretty }), original, ParseQuality::Repaired);
            // Samples without newlines or inner quotes stay valid JSON under these two: clean then.
            let raw_control = with(Style { raw_control: true, ..Style::default() });
            w.whole("raw control chars", &raw_control, original, quality_if_strict_else_repaired(&raw_control));
            let inner_quotes = with(Style { inner_quotes_raw: true, ..pretty });
            w.whole("inner quotes unescaped", &inner_quotes, original, quality_if_strict_else_repaired(&inner_quotes));
            w.whole("bom", &format!("\u{feff}{compact}"), original, ParseQuality::Repaired);
            w.whole("two objects", &format!("{compact}{}", samples::reply(other)), original, ParseQuality::Repaired);
            w.whole(
                "two objects ndjson",
                &format!("{compact}\n{}\n", samples::reply(other)),
                original,
                ParseQuality::Repaired,
            );
            let double = serde_json::to_string(&compact).expect("string");
            w.whole("double encoded", &double, original, ParseQuality::Repaired);
            w.whole("double encoded fenced", &format!("```json\n{double}\n```"), original, ParseQuality::Repaired);
            w.whole(
                "schema drift",
                &serde_json::to_string(&drifted(&value)).expect("json"),
                original,
                ParseQuality::Repaired,
            );
            let everything = Style {
                pretty: true,
                quotes: Quotes::Single,
                unquoted_keys: true,
                trailing_commas: true,
                comment: Some("// note"),
                raw_control: true,
                inner_quotes_raw: false,
            };
            w.whole(
                "mixed lenient",
                &format!("Sure!\n```js\n{}\n```", with(everything)),
                original,
                ParseQuality::Repaired,
            );
        }

        // Not part of the goal (a random stray byte is not how models fail), measured to know.
        let compact = samples::reply(original);
        for at in (0..compact.len()).step_by(11).filter(|&at| compact.is_char_boundary(at)) {
            for stray in ['{', '}', '[', ']', '"', ',', ':', '\\'] {
                let mut text = compact.clone();
                text.insert(at, stray);
                let outcome = parse_analysis(&text);
                let tally = corpus.tallies.entry("stray char (not in goal)").or_default();
                tally.total += 1;
                if outcome.parse == ParseQuality::Fallback {
                    tally.informational_fallbacks += 1;
                } else {
                    // A stray char inside a string changes it: only "not a fallback" is measured.
                    tally.exact += 1;
                }
            }
        }

        for (kind, order, style, prefix) in [
            ("truncated compact", &CONTRACT_ORDER, Style::default(), ""),
            ("truncated pretty", &CONTRACT_ORDER, pretty, ""),
            ("truncated assessment first", &ASSESSMENT_FIRST, pretty, ""),
            ("truncated in fence", &CONTRACT_ORDER, pretty, "```json\n"),
            ("truncated single quotes", &CONTRACT_ORDER, Style { quotes: Quotes::Single, ..pretty }, ""),
            ("truncated inner quotes", &CONTRACT_ORDER, Style { inner_quotes_raw: true, ..Style::default() }, ""),
        ] {
            let mut written = write(&value, order, style);
            written.text.insert_str(0, prefix);
            for cut in cut_points(&written.text) {
                corpus.truncated(kind, &written, prefix.len(), cut, original);
            }
        }
    }

    let (mut cases, mut recovered, mut recoverable, mut fallbacks) = (0, 0, 0, 0);
    println!("\n{:<28} {:>6} {:>10} {:>12} {:>9}", "corruption", "cases", "recovered", "recoverable", "fallback");
    for (kind, t) in &corpus.tallies {
        let shown_fallbacks = t.fallback_recoverable + t.informational_fallbacks;
        println!("{kind:<28} {:>6} {:>10} {:>12} {shown_fallbacks:>9}", t.total, t.exact, t.recoverable);
        if t.recoverable > 0 {
            cases += t.total;
            recovered += t.exact;
            recoverable += t.recoverable;
            fallbacks += t.fallback_recoverable;
        }
    }
    println!("{:<28} {cases:>6} {recovered:>10} {recoverable:>12} {fallbacks:>9}", "all in the goal");
    println!("fallback rate among recoverable replies: {fallbacks}/{recoverable}\n");

    for failure in corpus.failures.iter().take(15) {
        println!("{failure}");
    }
    assert!(fallbacks * 1000 < recoverable, "{fallbacks} of {recoverable} recoverable replies fell back");
    assert!(corpus.failures.is_empty(), "{} variants were not recovered field by field", corpus.failures.len());
}

#[test]
fn empty_and_blank_replies_fall_back_with_polite_feedback() {
    for text in ["", "   \n\t", "\u{feff}"] {
        let outcome = parse_analysis(text);
        assert_eq!(outcome.parse, ParseQuality::Fallback);
        assert_eq!(outcome.analysis.feedback, FALLBACK_FEEDBACK);
    }
}

#[test]
fn json_without_any_analysis_field_is_a_fallback() {
    for text in [r#"{"answer": 42}"#, "[1, 2, 3]", "\"just a string\"", "I cannot help with that.", "null"] {
        assert_eq!(parse_analysis(text).parse, ParseQuality::Fallback, "{text}");
    }
}

#[test]
fn valid_json_that_needed_coercion_is_marked_repaired_not_clean() {
    let outcome = parse_analysis(r#"{"feedback": "Good", "cefr_assessment": {"level": "b1", "confidence": "0.8"}}"#);
    assert_eq!(outcome.parse, ParseQuality::Repaired);
    assert_eq!(outcome.analysis.cefr_assessment.confidence, Some(0.8));
}

#[test]
fn a_reply_beyond_the_byte_cap_is_handled_as_truncated() {
    let original = samples::typical();
    let mut text = samples::reply(&original);
    text.truncate(text.len() - 1);
    text.push_str(", \"notes\": \"");
    text.push_str(&"x".repeat(MAX_INPUT_BYTES));
    text.push_str("\"}");
    let outcome = parse_analysis(&text);
    assert_eq!(outcome.parse, ParseQuality::Repaired);
    assert_eq!(outcome.analysis, original);
}

#[test]
fn deeply_nested_input_falls_back_instead_of_overflowing_the_stack() {
    for text in
        ["[".repeat(100_000), "{\"a\":".repeat(100_000), format!("{}{}", "{".repeat(50_000), "}".repeat(50_000))]
    {
        assert_eq!(parse_analysis(&text).parse, ParseQuality::Fallback);
    }
}

#[test]
fn raw_control_characters_in_strings_are_kept_as_written() {
    let outcome = parse_analysis("{\"feedback\": \"Well done\u{7}!\nKeep going.\", \"strengths\": [\"a\u{1}b\"]}");
    assert_eq!(outcome.parse, ParseQuality::Repaired);
    assert_eq!(outcome.analysis.feedback, "Well done\u{7}!\nKeep going.");
    assert_eq!(outcome.analysis.strengths, vec!["a\u{1}b"]);
}

#[test]
fn a_reply_wrapped_in_prose_with_a_decoy_object_first_still_finds_the_analysis() {
    let original = samples::typical();
    let text = format!("Using config {{\"model\": \"x\"}} I found:\n{}", samples::reply(&original));
    let outcome = parse_analysis(&text);
    assert_eq!(outcome.parse, ParseQuality::Repaired);
    assert_eq!(outcome.analysis, original);
}
