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

/// Deeper than any analysis (3 levels); beyond this the text is not an analysis and scanning
/// further would only build a huge closing suffix.
const MAX_DEPTH: usize = 64;

pub(super) struct Scanned {
    /// The object, with inner quotes escaped and, when truncated, closed.
    pub text: String,
    pub truncated: bool,
}

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

/// `text[start..]` must begin with `{`. `None` when it is not worth repairing (too deep).
pub(super) fn first_object(text: &str, start: usize) -> Option<Scanned> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut escapes: Vec<usize> = Vec::new();
    let mut mode = Mode::Code;
    let mut chars = text[start..]
        .char_indices()
        .map(|(i, c)| (i + start, c))
        .peekable();

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
                } else if c == close {
                    let after = i + c.len_utf8();
                    if close == '”' || closes_string(text, after) {
                        mode = Mode::Code;
                        end_token(&mut stack, key, after);
                    } else {
                        escapes.push(i);
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
                        stack.push(Frame {
                            is_array: c == '[',
                            last_complete: i + 1,
                            expect: Expect::Key,
                        });
                    }
                    '}' | ']' => {
                        stack.pop();
                        if stack.is_empty() {
                            return Some(Scanned {
                                text: with_escapes(text, start, i + 1, &escapes),
                                truncated: false,
                            });
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
    Some(close_truncated(text, start, &stack, &escapes))
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

fn close_truncated(text: &str, start: usize, stack: &[Frame], escapes: &[usize]) -> Scanned {
    let Some(innermost) = stack.len().checked_sub(1) else {
        return Scanned {
            text: String::new(),
            truncated: true,
        };
    };
    // The outermost array below the root decides the cut: everything inside its unfinished
    // element goes. Without one, the innermost container keeps its complete members.
    let cut_frame = stack
        .iter()
        .skip(1)
        .position(|f| f.is_array)
        .map_or(innermost, |p| p + 1);
    let mut out = with_escapes(text, start, stack[cut_frame].last_complete, escapes);
    for frame in stack[..=cut_frame].iter().rev() {
        out.push(if frame.is_array { ']' } else { '}' });
    }
    Scanned {
        text: out,
        truncated: true,
    }
}

fn with_escapes(text: &str, start: usize, end: usize, escapes: &[usize]) -> String {
    let mut out = String::with_capacity(end - start + escapes.len() + 8);
    let mut from = start;
    for &at in escapes.iter().take_while(|&&at| at < end) {
        out.push_str(&text[from..at]);
        out.push('\\');
        from = at;
    }
    out.push_str(&text[from..end]);
    out
}

fn is_bare_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ',' | ':' | '{' | '}' | '[' | ']' | '"' | '“' | '#'))
}

fn starts_comment(text: &str, i: usize) -> bool {
    text[i..].starts_with("//") || text[i..].starts_with("/*")
}

/// Whether a quote ending at `after` closes its string: what follows must look like structure.
fn closes_string(text: &str, after: usize) -> bool {
    let rest = &text[after..];
    let trimmed = rest.trim_start();
    let skipped_newline = rest[..rest.len() - trimmed.len()].contains('\n');
    match trimmed.chars().next() {
        None | Some('}' | ']' | ':' | '#') => true,
        Some('/') => starts_comment(trimmed, 0),
        Some(',') => starts_value_or_key(&trimmed[1..]),
        // Back-to-back strings only when a newline separates them (a missing comma in
        // pretty-printed output); on one line `"a "b" c"` is prose.
        Some('"') => skipped_newline,
        Some(_) => false,
    }
}

fn starts_value_or_key(rest: &str) -> bool {
    let rest = rest.trim_start();
    let Some(first) = rest.chars().next() else {
        return true;
    };
    match first {
        '"' | '\'' | '“' | '{' | '[' | '}' | ']' | '#' | '-' => true,
        '/' => starts_comment(rest, 0),
        c if c.is_ascii_digit() => true,
        c if c.is_alphabetic() || c == '_' => {
            let word_len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..word_len];
            matches!(word, "true" | "false" | "null" | "True" | "False" | "None")
                || rest[word_len..].trim_start().starts_with(':')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> (String, bool) {
        let start = text.find('{').expect("test input has an object");
        let s = first_object(text, start).expect("not too deep");
        (s.text, s.truncated)
    }

    #[test]
    fn the_first_balanced_object_ends_where_its_braces_balance_ignoring_strings_and_comments() {
        let text = r#"Sure: {"a": "}{", /* } */ "b": [1, {"c": 2}] # }
        } and then {"x": 1}"#;
        let (body, truncated) = scan(text);
        assert!(!truncated);
        assert!(body.starts_with(r#"{"a": "}{""#));
        assert!(body.ends_with('}'));
        assert!(!body.contains("\"x\""));
    }

    #[test]
    fn inner_quotes_that_are_not_followed_by_structure_are_escaped() {
        let (body, _) = scan(r#"{"e": "Use "went", not "go".", "b": 1}"#);
        assert_eq!(body, r#"{"e": "Use \"went\", not \"go\".", "b": 1}"#);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid after escaping");
        assert_eq!(v["e"], "Use \"went\", not \"go\".");
    }

    #[test]
    fn apostrophes_inside_single_quoted_strings_are_escaped() {
        let (body, _) = scan("{'f': 'don't stop', 'g': 'x'}");
        assert_eq!(body, r"{'f': 'don\'t stop', 'g': 'x'}");
    }

    #[test]
    fn truncation_keeps_complete_members_and_drops_the_partial_one() {
        let (body, truncated) = scan(r#"{"a": "done", "b": "half"#);
        assert!(truncated);
        assert_eq!(body, r#"{"a": "done"}"#);
    }

    #[test]
    fn truncation_inside_an_array_element_drops_the_whole_element() {
        let (body, _) = scan(r#"{"errors": [{"t": "x"}, {"t": "y", "c": "par"#);
        assert_eq!(body, r#"{"errors": [{"t": "x"}]}"#);
    }

    #[test]
    fn truncation_inside_a_nested_object_keeps_its_complete_members() {
        let (body, _) = scan(r#"{"f": "x", "cefr": {"level": "B1", "confidence": 0.8"#);
        assert_eq!(body, r#"{"f": "x", "cefr": {"level": "B1"}}"#);
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        let text = "{\"a\":".repeat(MAX_DEPTH + 1);
        assert!(first_object(&text, 0).is_none());
    }
}
