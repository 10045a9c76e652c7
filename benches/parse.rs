//! Parsing cost of a typical ~2 KB analysis reply, clean and through each repair path.
//! `cargo bench --bench parse`; no timing is asserted anywhere.

#[path = "../tests/support/analysis_samples.rs"]
mod samples;

use std::hint::black_box;

use backend_ai::analysis::parse::MAX_INPUT_BYTES;
use backend_ai::analysis::{ParseQuality, parse_analysis};
use criterion::{Criterion, criterion_group, criterion_main};

fn replies() -> Vec<(&'static str, String)> {
    let clean = samples::reply(&samples::typical());
    let cut = (clean.len() * 7 / 10..clean.len()).find(|&i| clean.is_char_boundary(i)).unwrap_or(clean.len());
    let lenient = lenient(&samples::typical());
    vec![
        ("clean", clean.clone()),
        ("repaired: fenced with prose", format!("Here is the analysis:\n```json\n{clean}\n```\nHope it helps!")),
        ("repaired: truncated at 70%", clean[..cut].to_owned()),
        ("repaired: comments, trailing commas, bare keys (jsonrepair-rs)", lenient),
        ("repaired: inner quotes unescaped", clean.replace("\\\"", "\"")),
    ]
}

/// Pretty JSON as a model writing JavaScript would: `//` comments, trailing commas, bare keys.
fn lenient(analysis: &backend_ai::analysis::Analysis) -> String {
    let pretty = serde_json::to_string_pretty(analysis).unwrap_or_default();
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let mut line = (*line).to_owned();
        for key in ["errors", "feedback", "strengths", "level", "confidence", "rationale"] {
            line = line.replace(&format!("\"{key}\":"), &format!("{key}:"));
        }
        out.push_str(&line);
        let closes_next = lines.get(i + 1).is_some_and(|next| next.trim_start().starts_with(['}', ']']));
        if closes_next && !line.ends_with(['{', '[']) {
            out.push(',');
        }
        if line.ends_with(',') {
            out.push_str(" // checked");
        }
        out.push('\n');
    }
    out
}

/// Near the byte cap and built to defeat every step: each `{` opens an object that never
/// balances and that jsonrepair-rs rejects, so every candidate and salvage runs in full.
fn hostile() -> String {
    let filler = "1 2 \"x\u{1}\" :: , ";
    let block = format!("{{\"errors\"::{}", filler.repeat(MAX_INPUT_BYTES / 10 / filler.len()));
    block.repeat(10)
}

fn bench_worst_case(c: &mut Criterion) {
    let text = hostile();
    let mut group = c.benchmark_group("parse_analysis worst case");
    group.sample_size(10);
    group.bench_function(format!("hostile ({} B)", text.len()), |b| b.iter(|| parse_analysis(black_box(&text))));
    group.finish();
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_analysis");
    for (name, text) in replies() {
        // Measure the path named, not a fallback: every reply but the cut one recovers fully.
        let outcome = parse_analysis(&text);
        assert_eq!(name == "clean", outcome.parse == ParseQuality::Clean, "{name}");
        assert!(name.contains("truncated") || outcome.analysis == samples::typical(), "{name}");
        group.bench_function(format!("{name} ({} B)", text.len()), |b| b.iter(|| parse_analysis(black_box(&text))));
    }
    group.finish();
}

criterion_group!(benches, bench, bench_worst_case);
criterion_main!(benches);
