//! Byte cap, BOM, and the lenient syntax repair delegated to jsonrepair-rs.
//!
//! jsonrepair-rs does comments, trailing commas, single quotes, unquoted keys, Python literals,
//! smart quotes, raw control characters in strings and escaped (`{\"a\": 1}`) objects well, with
//! no dependencies and a nesting cap of 128. It does not look for JSON inside prose, refuses text
//! after the root, keeps half-written strings when closing truncated input and splits strings at
//! unescaped inner quotes; `extract` handles those before it is called.

use jsonrepair_rs::jsonrepair;
use serde_json::Value;

use super::extract::first_object;

/// Longest reply we try to repair. A full analysis is 1–4 KB and Gemini's output token limit
/// keeps real replies far below this; anything longer is cut here (on a char boundary) and then
/// handled as truncated, so repair work stays bounded whatever arrives.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// `(text, was_cut)`.
pub(super) fn cap(text: &str) -> (&str, bool) {
    if text.len() <= MAX_INPUT_BYTES {
        return (text, false);
    }
    let mut end = MAX_INPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// `(text, had_bom)`.
pub(super) fn strip_bom(text: &str) -> (&str, bool) {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

/// Strict first (cheap, and exact when the text is already JSON), then jsonrepair-rs.
pub(super) fn lenient_value(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let repaired = jsonrepair(text).ok()?;
    serde_json::from_str(&repaired).ok()
}

/// How often an extracted object is cut back before giving up on it.
const MAX_SALVAGES: usize = 4;

/// [`lenient_value`] for an extracted object. When jsonrepair-rs gives up (a stray `\\` that
/// swallows a closing quote, `"level"::"B2"`), the char at the spot it names is dropped; if that
/// is not enough, everything before the spot is kept and closed like a truncated reply, and if
/// that still fails, the cut moves back one `,` at a time.
/// One bad spot then costs the member it is in, not the whole analysis. `convert` judges each
/// attempt, so a guess that parses but holds no analysis does not stop the next one.
pub(super) fn lenient_object<T>(object: &str, convert: impl Fn(&Value) -> Option<T>) -> Option<T> {
    let mut candidate = object.to_owned();
    let mut limit = object.len();
    for attempt in 0..MAX_SALVAGES {
        if let Ok(value) = serde_json::from_str(&candidate) {
            return convert(&value);
        }
        let failed_at = match jsonrepair(&candidate) {
            Ok(repaired) => {
                return serde_json::from_str(&repaired).ok().and_then(|v| convert(&v));
            }
            Err(error) => error.position,
        };
        limit = if attempt == 0 {
            // The position counts chars, not bytes.
            let at = object.char_indices().nth(failed_at).map_or(object.len(), |(at, _)| at);
            // It names either the stray char or the one it made unexpected right after it.
            let before = object[..at].char_indices().next_back().map(|(i, _)| i);
            if let Some(value) = [Some(at), before]
                .into_iter()
                .flatten()
                .find_map(|stray| without_char_at(object, stray).and_then(|v| convert(&v)))
            {
                return Some(value);
            }
            at
        } else {
            let before_last_char = object[..limit].char_indices().next_back()?.0;
            object[..before_last_char].rfind(',')?
        };
        candidate = first_object(&object[..limit], 0)?;
    }
    None
}

/// A single stray character (`{"errors"{:[`) is usually at or just before where jsonrepair-rs
/// stops.
fn without_char_at(object: &str, at: usize) -> Option<Value> {
    let stray_len = object[at..].chars().next()?.len_utf8();
    let mut without = String::with_capacity(object.len());
    without.push_str(&object[..at]);
    without.push_str(&object[at + stray_len..]);
    // The stray char may have shifted where the object balances: delimit it again.
    lenient_value(&first_object(&without, 0)?)
}

/// The inside of a leading markdown fence (closed or not), for replies that are not objects.
pub(super) fn unfenced(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(after_ticks) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let body = after_ticks.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_cuts_on_a_char_boundary() {
        let text = "é".repeat(MAX_INPUT_BYTES);
        let (capped, cut) = cap(&text);
        assert!(cut);
        assert!(capped.len() <= MAX_INPUT_BYTES);
        assert!(capped.chars().all(|c| c == 'é'));
    }

    #[test]
    fn fenced_text_is_unwrapped_with_or_without_a_closing_fence() {
        assert_eq!(unfenced("```json\n\"x\"\n```"), "\"x\"");
        assert_eq!(unfenced("```\n\"x\""), "\"x\"");
        assert_eq!(unfenced("  \"x\" "), "\"x\"");
    }
}
