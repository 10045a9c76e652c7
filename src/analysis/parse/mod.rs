//! Turning Gemini's reply text into the contract's analysis, whatever state the text is in.
//!
//! Flow (each step runs only when the previous one recovered nothing):
//! 1. Cap the text at [`MAX_INPUT_BYTES`] and drop a BOM; empty text is a fallback.
//! 2. Strict JSON (`serde_json`). `Clean` only if the object deserialises straight into the
//!    contract's [`Analysis`] and normalising it changes nothing (exact field names, types and
//!    ranges); anything that needed an alias, a coercion, a clamp or the BOM is `Repaired`.
//!    A reply in exactly the contract's shape, the usual case, is read without the detour
//!    through a `Value` tree ([`exact`]).
//! 3. Double-encoded reply (a JSON string holding the object, maybe fenced): decode, then parse
//!    the inside again from step 2's lenient counterpart, at most [`MAX_ENCODING_LAYERS`] deep.
//! 4. Extraction: from each of the first [`MAX_CANDIDATES`] `{` in the text, the first balanced
//!    object (fences and prose around it and any second object are left out; strings, escapes
//!    and comments respected; inner quotes escaped; a bare `...` for left-out items dropped;
//!    truncated text cut back to the last complete value of each open container and closed),
//!    then strict JSON or jsonrepair-rs on that object; where jsonrepair-rs gives up, a stray
//!    char at that spot is dropped, or what precedes it is kept and closed the same way as a
//!    truncation.
//! 5. jsonrepair-rs on the whole text, for anything extraction could not delimit, unless the
//!    text was cut off (it would close the cut by keeping half a value).
//! 6. Normalisation ([`normalise`]) into the contract shape: a value with none of the analysis
//!    fields counts as nothing recovered, so the result is the [`fallback_analysis`].

mod exact;
mod extract;
mod level;
mod normalise;
mod repair;

use serde::Deserialize;
use serde_json::Value;

use self::exact::exact_analysis;
use self::normalise::normalise;
use self::repair::{cap, lenient_object, lenient_value, strip_bom, unfenced};
use super::{Analysis, AnalysisOutcome, ParseQuality};

pub use self::repair::MAX_INPUT_BYTES;

/// Text the learner sees when nothing could be recovered from the model's reply.
pub const FALLBACK_FEEDBACK: &str =
    "Sorry, detailed feedback is not available right now. Please try again in a moment.";

/// How many `{` positions are tried as the start of the analysis: prose like `{name}` before the
/// real object is common, an unbounded search on hostile text is not worth its cost.
const MAX_CANDIDATES: usize = 8;

/// `"{\"errors\": ...}"` is one layer; more than two is not a reply, it is a loop.
const MAX_ENCODING_LAYERS: usize = 2;

/// Never fails and never panics: unusable text gives [`fallback_analysis`] marked `Fallback`.
pub fn parse_analysis(text: &str) -> AnalysisOutcome {
    let (capped, was_cut) = cap(text);
    let (text, had_bom) = strip_bom(capped);
    if text.trim().is_empty() {
        return fallback();
    }
    if let Some(analysis) = exact_analysis(text) {
        let parse = if had_bom || was_cut { ParseQuality::Repaired } else { ParseQuality::Clean };
        return AnalysisOutcome { analysis, parse, tokens: Default::default(), made_by: None };
    }
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && let Some(analysis) = from_value(&value, MAX_ENCODING_LAYERS)
    {
        let exact = !had_bom && !was_cut && is_exact(&value, &analysis);
        let parse = if exact { ParseQuality::Clean } else { ParseQuality::Repaired };
        return AnalysisOutcome { analysis, parse, tokens: Default::default(), made_by: None };
    }
    match recover(text, MAX_ENCODING_LAYERS) {
        Some(analysis) => {
            AnalysisOutcome { analysis, parse: ParseQuality::Repaired, tokens: Default::default(), made_by: None }
        }
        None => fallback(),
    }
}

/// The analysis served when nothing was recovered: every field present (the frontend reads
/// them unchecked), no errors, the CEFR level at its default A1 with no confidence, and
/// [`FALLBACK_FEEDBACK`].
pub fn fallback_analysis() -> Analysis {
    Analysis { feedback: FALLBACK_FEEDBACK.to_owned(), ..Analysis::default() }
}

fn fallback() -> AnalysisOutcome {
    AnalysisOutcome {
        analysis: fallback_analysis(),
        parse: ParseQuality::Fallback,
        tokens: Default::default(),
        made_by: None,
    }
}

fn is_exact(value: &Value, analysis: &Analysis) -> bool {
    Analysis::deserialize(value).is_ok_and(|typed| typed == *analysis)
}

fn recover(text: &str, layers: usize) -> Option<Analysis> {
    let inner = unfenced(text);
    if inner.starts_with('"')
        && let Some(analysis) = lenient_value(inner).and_then(|v| from_value(&v, layers))
    {
        return Some(analysis);
    }
    let mut cut_short = false;
    let from_objects = text
        .match_indices('{')
        .take(MAX_CANDIDATES)
        .filter_map(|(start, _)| extract::first_object_or_cut(text, start))
        .find_map(|(object, cut)| {
            cut_short |= cut;
            lenient_object(&object, |v| from_value(v, layers))
        });
    // jsonrepair-rs closes a cut-off text by keeping its last half-written value; what the
    // extraction could not find in a cut-off reply it must not invent from half of one.
    from_objects.or_else(|| (!cut_short).then(|| lenient_value(text).and_then(|v| from_value(&v, layers))).flatten())
}

/// An object as the analysis; a string as a double-encoded reply; an array (two objects back to
/// back, NDJSON) by its first element that is an analysis.
fn from_value(value: &Value, layers: usize) -> Option<Analysis> {
    match value {
        Value::Object(_) => normalise(value),
        Value::String(inner) => recover(inner, layers.checked_sub(1)?),
        Value::Array(items) => items.iter().filter(|v| v.is_object()).find_map(normalise),
        _ => None,
    }
}
