//! Recovery corpus: every sample analysis is damaged in each way Gemini's text has been seen to
//! go wrong, and the parser must give back the fields the damaged text still holds, counted leaf
//! by leaf (`tally.rs` says what is counted): at least 99% for every kind of damage, nothing
//! made up, and almost never the fallback.
//!
//! `cargo test --test analysis_parse_corpus -- --nocapture` prints the per-kind tables.

#[path = "../support/analysis_samples.rs"]
mod samples;
mod tally;
mod writer;

use std::collections::BTreeMap;

use backend_ai::analysis::parse::{FALLBACK_FEEDBACK, MAX_INPUT_BYTES};
use backend_ai::analysis::{Analysis, ParseQuality, parse_analysis};
use serde_json::{Value, json};

use crate::tally::{Corpus, Quality};
use crate::writer::{Ellipsis, Quotes, Style, Written, drifted, write};

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

/// The floor every kind of damage in the goal is held to, in recovered leaves over held leaves.
const FLOOR: f64 = 0.99;

/// Every kind in the goal recovers at least [`FLOOR`] of what its replies hold, invents nothing,
/// marks every reply as it should, and almost never falls back.
fn assert_goal(corpus: &Corpus) {
    let below = corpus.report(FLOOR);
    for failure in corpus.failures.values().flatten() {
        println!("{failure}");
    }
    let in_goal = || corpus.tallies.values().filter(|t| t.in_goal);
    let (cases, fallbacks) = (in_goal().map(|t| t.cases).sum::<usize>(), in_goal().map(|t| t.fallbacks).sum::<usize>());
    println!("fell back although holding a field: {fallbacks} of {cases} replies\n");
    assert!(below.is_empty(), "kinds below the {:.0}% floor: {below:?}", FLOOR * 100.0);
    assert_eq!(in_goal().map(|t| t.wrong).sum::<usize>(), 0, "values the replies did not hold were made up");
    assert_eq!(in_goal().map(|t| t.misjudged).sum::<usize>(), 0, "replies marked with the wrong quality");
    assert!(fallbacks * 1000 < cases.max(1), "{fallbacks} of {cases} replies fell back");
}

/// Every leaf written, by pointer.
fn all_leaves(written: &Written) -> BTreeMap<String, Value> {
    written.leaves.iter().map(|leaf| (leaf.pointer.clone(), leaf.value.clone())).collect()
}

fn ellipses() -> impl Iterator<Item = (&'static str, Ellipsis)> {
    [true, false].into_iter().flat_map(|middle| {
        let kind = if middle { "ellipsis in the middle" } else { "ellipsis at the end" };
        ["...", "…"].into_iter().flat_map(move |token| {
            [true, false].into_iter().flat_map(move |commas| {
                [true, false].into_iter().map(move |in_objects| (kind, Ellipsis { token, middle, commas, in_objects }))
            })
        })
    })
}

#[test]
fn damaged_replies_give_back_what_they_still_hold() {
    let mut corpus = Corpus::default();
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
                ellipsis: None,
            };
            w.whole(
                "mixed lenient",
                &format!("Sure!\n```js\n{}\n```", with(everything)),
                original,
                ParseQuality::Repaired,
            );

            // Items and members left out for `...`: what is written is what the reply holds.
            for (kind, ellipsis) in ellipses() {
                for base in [Style::default(), pretty] {
                    let written = write(&value, order, Style { ellipsis: Some(ellipsis), ..base });
                    let leaves = all_leaves(&written);
                    let held: Vec<(&str, &Value)> = leaves.iter().map(|(p, v)| (p.as_str(), v)).collect();
                    w.partial(kind, &written.text, &held, &leaves, Quality::Exactly(ParseQuality::Repaired));
                }
            }
            let everything_with_ellipsis = Style {
                pretty: true,
                quotes: Quotes::Single,
                trailing_commas: true,
                ellipsis: Some(Ellipsis { token: "…", middle: true, commas: true, in_objects: false }),
                ..Style::default()
            };
            let written = write(&value, order, everything_with_ellipsis).with_prefix("Here's what I found:\n```json\n");
            let leaves = all_leaves(&written);
            let held: Vec<(&str, &Value)> = leaves.iter().map(|(p, v)| (p.as_str(), v)).collect();
            let text = format!("{}\n```\nHope this helps!", written.text);
            w.partial("mixed with ellipsis", &text, &held, &leaves, Quality::Exactly(ParseQuality::Repaired));
        }

        // Not part of the goal (a random stray byte is not how models fail), measured to know.
        let compact = samples::reply(original);
        for at in (0..compact.len()).step_by(11).filter(|&at| compact.is_char_boundary(at)) {
            for stray in ['{', '}', '[', ']', '"', ',', ':', '\\'] {
                let mut text = compact.clone();
                text.insert(at, stray);
                corpus.measured_only("stray char", &text);
            }
        }
    }
    assert_goal(&corpus);
}

/// A reply cut at every byte: what it holds is every leaf complete before the cut (see
/// `Leaf::held_by`), and it must give back those and nothing half-written. A cut inside a
/// multi-byte char is read the way the Gemini client reads bytes, lossily.
#[test]
fn a_reply_cut_at_any_byte_gives_back_every_field_completed_before_the_cut() {
    let pretty = Style { pretty: true, ..Style::default() };
    let mixed =
        Style { pretty: true, quotes: Quotes::Single, trailing_commas: true, comment: Some("// note"), ..pretty };
    let ellipsis = Ellipsis { token: "...", middle: true, commas: true, in_objects: true };
    let writings = [
        ("cut compact", &CONTRACT_ORDER, Style::default(), ""),
        ("cut pretty", &CONTRACT_ORDER, pretty, ""),
        ("cut assessment first", &ASSESSMENT_FIRST, pretty, ""),
        ("cut in an unclosed fence", &CONTRACT_ORDER, pretty, "```json\n"),
        ("cut single quotes", &CONTRACT_ORDER, Style { quotes: Quotes::Single, ..pretty }, ""),
        ("cut inner quotes", &CONTRACT_ORDER, Style { inner_quotes_raw: true, ..Style::default() }, ""),
        ("cut with ellipsis", &CONTRACT_ORDER, Style { ellipsis: Some(ellipsis), ..pretty }, ""),
        // Several kinds at once: prose before a fence, single quotes, trailing commas,
        // comments, and the cut (so no closing fence and no prose after).
        ("cut mixed lenient in a fence", &CONTRACT_ORDER, mixed, "Sure! Here's the analysis:\n\n```json\n"),
    ];
    // Some 40 000 parses: one thread per writing keeps the test to a few seconds.
    let corpora = std::thread::scope(|scope| {
        let threads: Vec<_> = writings
            .into_iter()
            .map(|(kind, order, style, prefix)| scope.spawn(move || cut_everywhere(kind, order, style, prefix)))
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("a corpus thread panicked")).collect::<Vec<_>>()
    });
    let mut corpus = Corpus::default();
    corpora.into_iter().for_each(|part| corpus.absorb(part));
    assert_goal(&corpus);
}

/// Every sample written one way, cut at every byte.
fn cut_everywhere(kind: &'static str, order: &[&'static str], style: Style, prefix: &str) -> Corpus {
    let mut corpus = Corpus::default();
    for original in samples::analyses() {
        let value = serde_json::to_value(&original).expect("serialises");
        let written = write(&value, order, style).with_prefix(prefix);
        let leaves = all_leaves(&written);
        let bytes = written.text.as_bytes();
        for cut in 1..bytes.len() {
            let text = String::from_utf8_lossy(&bytes[..cut]);
            let held: Vec<(&str, &Value)> = written
                .leaves
                .iter()
                .filter(|leaf| leaf.held_by(cut))
                .map(|leaf| (leaf.pointer.as_str(), &leaf.value))
                .collect();
            corpus.partial(kind, &text, &held, &leaves, Quality::NotClean);
        }
    }
    corpus
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
