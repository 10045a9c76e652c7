//! Counts, per kind of damage, the leaf fields the parser gave back against the leaf fields the
//! damaged text still held.
//!
//! A leaf is a scalar of the analysis (a string, number, boolean or null) at its JSON pointer:
//! `/errors/2/correction`, `/strengths/0`, `/cefr_assessment/sub_scores/grammar`. The text
//! holds a leaf when its value is there complete (see `Leaf::held_by`); a leaf comes back when
//! the parsed analysis has the same value at the same pointer. A value the analysis has that the
//! text did not hold is wrong (half a string, a made-up item), unless it is the contract's
//! default (`""`, `null`, level `A1`), which every analysis must carry.

use std::collections::BTreeMap;

use backend_ai::analysis::{Analysis, ParseQuality, parse_analysis};
use serde_json::Value;

const FAILURES_SHOWN_PER_KIND: usize = 4;

#[derive(Default)]
pub struct Tally {
    pub cases: usize,
    pub held: usize,
    pub recovered: usize,
    pub wrong: usize,
    /// Cases that held a leaf yet fell back to the fallback analysis.
    pub fallbacks: usize,
    /// Cases parsed with another quality than they should have been.
    pub misjudged: usize,
    /// Part of the goal (asserted), or only measured.
    pub in_goal: bool,
}

impl Tally {
    pub fn recovery(&self) -> f64 {
        if self.held == 0 { 1.0 } else { self.recovered as f64 / self.held as f64 }
    }
}

/// What the quality of a parse must be.
#[derive(Clone, Copy)]
pub enum Quality {
    Exactly(ParseQuality),
    /// A damaged reply is never `clean`.
    NotClean,
}

#[derive(Default)]
pub struct Corpus {
    pub tallies: BTreeMap<&'static str, Tally>,
    /// The first few problems of each kind, to show.
    pub failures: BTreeMap<&'static str, Vec<String>>,
}

impl Corpus {
    /// A reply that still holds all of `original`.
    pub fn whole(&mut self, kind: &'static str, text: &str, original: &Analysis, want: ParseQuality) {
        let leaves = leaves_of(&serde_json::to_value(original).expect("an analysis serialises"));
        let held: Vec<(&str, &Value)> = leaves.iter().map(|(pointer, value)| (pointer.as_str(), value)).collect();
        self.judge(kind, text, &held, &leaves, Quality::Exactly(want));
    }

    /// A reply holding `held`, out of `written` (every leaf written, held or not).
    pub fn partial(
        &mut self,
        kind: &'static str,
        text: &str,
        held: &[(&str, &Value)],
        written: &BTreeMap<String, Value>,
        quality: Quality,
    ) {
        self.judge(kind, text, held, written, quality);
    }

    /// Not part of the goal: only whether the reply fell back is counted.
    pub fn measured_only(&mut self, kind: &'static str, text: &str) {
        let tally = self.tallies.entry(kind).or_default();
        tally.cases += 1;
        if parse_analysis(text).parse == ParseQuality::Fallback {
            tally.fallbacks += 1;
        }
    }

    fn judge(
        &mut self,
        kind: &'static str,
        text: &str,
        held: &[(&str, &Value)],
        written: &BTreeMap<String, Value>,
        quality: Quality,
    ) {
        let outcome = parse_analysis(text);
        let tally = self.tallies.entry(kind).or_default();
        tally.in_goal = true;
        tally.cases += 1;
        tally.held += held.len();
        let mut problems = Vec::new();
        if outcome.parse == ParseQuality::Fallback {
            if !held.is_empty() {
                tally.fallbacks += 1;
                problems.push(format!("fallback although {} leaves were held", held.len()));
            }
        } else {
            let right_quality = match quality {
                Quality::Exactly(want) => outcome.parse == want,
                Quality::NotClean => outcome.parse != ParseQuality::Clean,
            };
            if !right_quality {
                tally.misjudged += 1;
                problems.push(format!("parsed as {:?}", outcome.parse));
            }
            let got = leaves_of(&serde_json::to_value(&outcome.analysis).expect("an analysis serialises"));
            let mut lost = Vec::new();
            for &(pointer, value) in held {
                if got.get(pointer) == Some(value) {
                    tally.recovered += 1;
                } else {
                    lost.push(pointer);
                }
            }
            let wrong: Vec<String> = got
                .iter()
                .filter(|(pointer, value)| !is_default(pointer, value) && written.get(pointer.as_str()) != Some(value))
                .map(|(pointer, value)| format!("{pointer}={value}"))
                .collect();
            tally.wrong += wrong.len();
            if !lost.is_empty() {
                problems.push(format!("lost {}", lost.join(" ")));
            }
            if !wrong.is_empty() {
                problems.push(format!("wrong {}", wrong.join(" ")));
            }
        }
        if !problems.is_empty() {
            let tail: String = text.chars().rev().take(100).collect::<Vec<_>>().into_iter().rev().collect();
            let shown = self.failures.entry(kind).or_default();
            if shown.len() < FAILURES_SHOWN_PER_KIND {
                shown.push(format!("[{kind}] {} bytes: {}\n    ends with: {tail:?}", text.len(), problems.join("; ")));
            }
        }
    }

    /// Adds another corpus's counts (of other kinds) to this one.
    pub fn absorb(&mut self, other: Corpus) {
        for (kind, tally) in other.tallies {
            let mine = self.tallies.entry(kind).or_default();
            mine.cases += tally.cases;
            mine.held += tally.held;
            mine.recovered += tally.recovered;
            mine.wrong += tally.wrong;
            mine.fallbacks += tally.fallbacks;
            mine.misjudged += tally.misjudged;
            mine.in_goal |= tally.in_goal;
        }
        for (kind, failures) in other.failures {
            self.failures.entry(kind).or_default().extend(failures);
        }
    }

    /// The per-kind table, and the kinds in the goal that recover less than `floor`.
    pub fn report(&self, floor: f64) -> Vec<String> {
        println!(
            "\n{:<34} {:>6} {:>7} {:>9} {:>8} {:>6} {:>9} {:>9}",
            "damage", "cases", "held", "recovered", "rate", "wrong", "fallback", "misjudged"
        );
        let mut below = Vec::new();
        for (kind, t) in &self.tallies {
            let name = if t.in_goal { kind.to_string() } else { format!("{kind} (measured only)") };
            let rate = if t.in_goal { format!("{:.2}%", 100.0 * t.recovery()) } else { "-".to_owned() };
            println!(
                "{name:<34} {:>6} {:>7} {:>9} {rate:>8} {:>6} {:>9} {:>9}",
                t.cases, t.held, t.recovered, t.wrong, t.fallbacks, t.misjudged
            );
            if t.in_goal && t.recovery() < floor {
                below.push(format!("{kind}: {:.2}%", 100.0 * t.recovery()));
            }
        }
        below
    }
}

/// Every scalar in `value` by its JSON pointer. Empty arrays and objects hold no field: an
/// analysis without errors and one whose errors were lost cannot be told apart by them.
pub fn leaves_of(value: &Value) -> BTreeMap<String, Value> {
    fn walk(value: &Value, pointer: &mut String, out: &mut BTreeMap<String, Value>) {
        let at = pointer.len();
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer, out);
                    pointer.truncate(at);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    walk(item, pointer, out);
                    pointer.truncate(at);
                }
            }
            scalar => {
                out.insert(pointer.clone(), scalar.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, &mut String::new(), &mut out);
    out
}

/// What an analysis carries where nothing was recovered.
fn is_default(pointer: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty() || (pointer == "/cefr_assessment/level" && s == "A1"),
        _ => false,
    }
}
