//! Counts, per kind of damage, what the parser gave back against what the text still held.

use std::collections::BTreeMap;

use backend_ai::analysis::{Analysis, CefrAssessment, ParseQuality, parse_analysis};

use crate::writer::Written;

#[derive(Default)]
pub struct Tally {
    pub total: usize,
    pub exact: usize,
    pub recoverable: usize,
    pub fallback_recoverable: usize,
    pub informational_fallbacks: usize,
}

pub struct Corpus {
    pub tallies: BTreeMap<&'static str, Tally>,
    pub failures: Vec<String>,
}

impl Corpus {
    fn fail(&mut self, kind: &str, why: String, text: &str) {
        let excerpt: String = text.chars().take(160).collect();
        self.failures.push(format!("[{kind}] {why}\n    input starts: {excerpt:?}"));
    }

    /// A syntax corruption: the whole analysis must come back, marked as `want`.
    pub fn whole(&mut self, kind: &'static str, text: &str, original: &Analysis, want: ParseQuality) {
        let outcome = parse_analysis(text);
        let tally = self.tallies.entry(kind).or_default();
        tally.total += 1;
        tally.recoverable += 1;
        if outcome.parse == ParseQuality::Fallback {
            tally.fallback_recoverable += 1;
        }
        if outcome.analysis == *original && outcome.parse == want {
            tally.exact += 1;
        } else {
            let why = format!("got {:?}: {:?}", outcome.parse, outcome.analysis);
            self.fail(kind, why, text);
        }
    }

    /// A reply cut at `cut`: members complete before the cut come back equal, the member being
    /// written is at most a prefix of the original, members after it are defaults.
    pub fn truncated(&mut self, kind: &'static str, written: &Written, offset: usize, cut: usize, original: &Analysis) {
        let text = &written.text[..cut];
        let outcome = parse_analysis(text);
        let complete: Vec<&str> =
            written.member_ends.iter().filter(|(_, end)| end + offset <= cut).map(|(k, _)| *k).collect();
        let recoverable = !complete.is_empty();
        let tally = self.tallies.entry(kind).or_default();
        tally.total += 1;
        if recoverable {
            tally.recoverable += 1;
            if outcome.parse == ParseQuality::Fallback {
                tally.fallback_recoverable += 1;
            }
        }
        let got = &outcome.analysis;
        let mut problems = Vec::new();
        if outcome.parse == ParseQuality::Clean {
            problems.push("a truncated reply was marked clean".to_owned());
        }
        if outcome.parse == ParseQuality::Fallback {
            if recoverable {
                problems.push("fallback although a field was complete".to_owned());
            }
        } else {
            check_field(&mut problems, "errors", complete.contains(&"errors"), &got.errors, &original.errors);
            check_field(
                &mut problems,
                "strengths",
                complete.contains(&"strengths"),
                &got.strengths,
                &original.strengths,
            );
            check_field(
                &mut problems,
                "improvement_areas",
                complete.contains(&"improvement_areas"),
                &got.improvement_areas,
                &original.improvement_areas,
            );
            check_field(
                &mut problems,
                "recommended_tasks",
                complete.contains(&"recommended_tasks"),
                &got.recommended_tasks,
                &original.recommended_tasks,
            );
            let feedback_ok = if complete.contains(&"feedback") {
                got.feedback == original.feedback
            } else {
                got.feedback.is_empty()
            };
            if !feedback_ok {
                problems.push(format!("feedback {:?}", got.feedback));
            }
            let (a, o) = (&got.cefr_assessment, &original.cefr_assessment);
            let cefr_ok = if complete.contains(&"cefr_assessment") {
                a == o
            } else {
                let d = CefrAssessment::default();
                (a.level == o.level || a.level == d.level)
                    && (a.confidence == o.confidence || a.confidence.is_none())
                    && (a.rationale == o.rationale || a.rationale.is_empty())
            };
            if !cefr_ok {
                problems.push(format!("cefr_assessment {a:?}"));
            }
        }
        if problems.is_empty() {
            if let Some(t) = self.tallies.get_mut(kind) {
                t.exact += 1;
            }
        } else {
            self.fail(kind, format!("cut at {cut}: {}", problems.join("; ")), &text[tail_start(text, 120)..]);
        }
    }
}

/// Complete before the cut: equal. Otherwise a prefix (only whole elements survive a cut).
fn check_field<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    name: &str,
    complete: bool,
    got: &[T],
    original: &[T],
) {
    let ok = if complete { got == original } else { original.starts_with(got) };
    if !ok {
        problems.push(format!("{name} {got:?}"));
    }
}

/// Byte offset of the last `chars` chars, for showing where a cut landed.
fn tail_start(text: &str, chars: usize) -> usize {
    text.char_indices().rev().nth(chars).map_or(0, |(at, _)| at)
}
