//! Finds the first balanced object in text that may be prose, fenced, commented, lenient or cut
//! short, and returns it as one self-contained piece of (possibly still lenient) JSON.
//!
//! A single forward pass over chars with an explicit stack (no recursion, so no depth hazard):
//! - strings are `"…"`, `'…'` or `“…”`; a backslash escapes the next char; `//`, `/* */` and `#`
//!   comments outside strings are skipped, so braces inside either never count;
//! - a `"` or `'` inside a string only closes it when what follows looks like JSON structure
//!   (`,` then a new key or value, `:`, `}`, `]`, a comment or the end). Any other quote is
//!   content and is escaped in the output. This closes jsonrepair-rs's largest gap: it splits
//!   `"Use "went", not "go"."` into invented keys;
//! - truncated text (the end comes while something is still open) is cut back to the last
//!   complete value and closed. An array keeps only its complete elements, an object keeps its
//!   complete members, so a half-written error or a half-sentence never reaches a learner.

mod edits;
mod lexis;

use self::edits::{Edit, with_edits};
use self::lexis::{closes_string, is_bare_char, starts_comment};

/// Deeper than any analysis (3 levels); beyond this the text is not an analysis and scanning
/// further would only build a huge closing suffix.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Key,
    Value,
    AfterValue,
}

struct Frame {
    is_array: bool,
    /// Byte offset just past the last complete element (array) or member (object).
    last_complete: usize,
    expect: Expect,
}

impl Frame {
    fn next_is_key(&self) -> bool {
        !self.is_array && self.expect != Expect::Value
    }
}

enum Mode {
    Code,
    Bare { key: bool },
    Str { close: char, key: bool },
    LineComment,
    BlockComment,
}

/// The object starting at `text[start..]` (which must begin with `{`), inner quotes escaped and,
/// when cut short, closed. `None` when it is not worth repairing (too deep).
pub(super) fn first_object(text: &str, start: usize) -> Option<String> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut edits: Vec<(usize, Edit)> = Vec::new();
    let mut mode = Mode::Code;
    let mut chars = text[start..].char_indices().map(|(i, c)| (i + start, c)).peekable();

    while let Some((i, c)) = chars.next() {
        if let Mode::Bare { key } = mode {
            if is_bare_char(c) && !starts_comment(text, i) {
                continue;
            }
            mode = Mode::Code;
            end_token(&mut stack, key, i);
        }
        match mode {
            Mode::LineComment => {
                if c == '\n' {
                    mode = Mode::Code;
                }
            }
            Mode::BlockComment => {
                if c == '*' && text[i + 1..].starts_with('/') {
                    chars.next();
                    mode = Mode::Code;
                }
            }
            Mode::Str { close, key } => {
                if c == '\\' {
                    chars.next();
                } else if u32::from(c) < 0x20 {
                    // jsonrepair-rs escapes raw newlines and tabs but rejects other control
                    // chars; escaped here, the object often needs no repair at all.
                    edits.push((i, Edit::Control(c)));
                } else if c == close {
                    let after = i + c.len_utf8();
                    let apostrophe = close == '\'' && text[..i].chars().next_back().is_some_and(char::is_alphanumeric);
                    if close == '”' || closes_string(text, after, apostrophe) {
                        mode = Mode::Code;
                        end_token(&mut stack, key, after);
                    } else {
                        edits.push((i, Edit::Escape));
                    }
                }
            }
            Mode::Bare { .. } | Mode::Code => {
                let key = stack.last().is_some_and(Frame::next_is_key);
                match c {
                    '{' | '[' => {
                        if stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        stack.push(Frame { is_array: c == '[', last_complete: i + 1, expect: Expect::Key });
                    }
                    '}' | ']' if stack.last().is_some_and(|top| top.is_array != (c == ']')) => {
                        // `{"type":]"x"`: a stray closer would end the object early; a missing
                        // one is added at the end like for a truncated reply.
                        edits.push((i, Edit::Drop));
                    }
                    '}' | ']' => {
                        stack.pop();
                        if stack.is_empty() {
                            return Some(with_edits(text, start, i + 1, &edits));
                        }
                        end_token(&mut stack, false, i + 1);
                    }
                    ',' => {
                        if let Some(top) = stack.last_mut() {
                            top.expect = Expect::Key;
                        }
                    }
                    ':' => {
                        if let Some(top) = stack.last_mut() {
                            top.expect = Expect::Value;
                        }
                    }
                    '"' | '\'' => mode = Mode::Str { close: c, key },
                    '“' => mode = Mode::Str { close: '”', key },
                    '#' => mode = Mode::LineComment,
                    '/' if text[i + 1..].starts_with('/') => mode = Mode::LineComment,
                    '/' if text[i + 1..].starts_with('*') => {
                        chars.next();
                        mode = Mode::BlockComment;
                    }
                    c if c.is_whitespace() => {}
                    _ => mode = Mode::Bare { key },
                }
            }
        }
    }
    Some(close_truncated(text, start, &stack, &edits))
}

/// A key, or a value that completes the current element/member.
fn end_token(stack: &mut [Frame], key: bool, end: usize) {
    let Some(top) = stack.last_mut() else { return };
    if key {
        top.expect = Expect::Value;
    } else {
        top.last_complete = end;
        top.expect = Expect::AfterValue;
    }
}

fn close_truncated(text: &str, start: usize, stack: &[Frame], edits: &[(usize, Edit)]) -> String {
    let Some(innermost) = stack.len().checked_sub(1) else {
        return String::new();
    };
    // The outermost array below the root decides the cut: everything inside its unfinished
    // element goes. Without one, the innermost container keeps its complete members.
    let cut_frame = stack.iter().skip(1).position(|f| f.is_array).map_or(innermost, |p| p + 1);
    let mut out = with_edits(text, start, stack[cut_frame].last_complete, edits);
    for frame in stack[..=cut_frame].iter().rev() {
        out.push(if frame.is_array { ']' } else { '}' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> String {
        let start = text.find('{').expect("test input has an object");
        first_object(text, start).expect("not too deep")
    }

    #[test]
    fn the_first_balanced_object_ends_where_its_braces_balance_ignoring_strings_and_comments() {
        let text = r#"Sure: {"a": "}{", /* } */ "b": [1, {"c": 2}] # }
        } and then {"x": 1}"#;
        let body = scan(text);
        assert!(body.starts_with(r#"{"a": "}{""#));
        assert!(body.ends_with('}'));
        assert!(!body.contains("\"x\""));
    }

    #[test]
    fn inner_quotes_that_are_not_followed_by_structure_are_escaped() {
        let body = scan(r#"{"e": "Use "went", not "go".", "b": 1}"#);
        assert_eq!(body, r#"{"e": "Use \"went\", not \"go\".", "b": 1}"#);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid after escaping");
        assert_eq!(v["e"], "Use \"went\", not \"go\".");
    }

    #[test]
    fn apostrophes_inside_single_quoted_strings_are_escaped() {
        let body = scan("{'f': 'don't stop', 'g': 'x'}");
        assert_eq!(body, r"{'f': 'don\'t stop', 'g': 'x'}");
    }

    #[test]
    fn truncation_keeps_complete_members_and_drops_the_partial_one() {
        let body = scan(r#"{"a": "done", "b": "half"#);
        assert_eq!(body, r#"{"a": "done"}"#);
    }

    #[test]
    fn truncation_inside_an_array_element_drops_the_whole_element() {
        let body = scan(r#"{"errors": [{"t": "x"}, {"t": "y", "c": "par"#);
        assert_eq!(body, r#"{"errors": [{"t": "x"}]}"#);
    }

    #[test]
    fn truncation_inside_a_nested_object_keeps_its_complete_members() {
        let body = scan(r#"{"f": "x", "cefr": {"level": "B1", "confidence": 0.8"#);
        assert_eq!(body, r#"{"f": "x", "cefr": {"level": "B1"}}"#);
    }

    #[test]
    fn raw_control_chars_inside_strings_are_escaped() {
        let body = scan("{\"a\": \"x\u{1}y\nz\"}");
        assert_eq!(body, r#"{"a": "x\u0001y\u000az"}"#);
    }

    #[test]
    fn a_stray_closer_that_does_not_match_is_left_out() {
        let body = scan(r#"{"t": [{"type":]"x"}], "b": 1}"#);
        assert_eq!(body, r#"{"t": [{"type":"x"}], "b": 1}"#);
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        let text = "{\"a\":".repeat(MAX_DEPTH + 1);
        assert!(first_object(&text, 0).is_none());
    }
}
