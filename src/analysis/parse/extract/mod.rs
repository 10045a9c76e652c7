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
//! - `...` or `…` standing bare for items or members the model left out is not a value: it is
//!   dropped, and the commas around it mended, so the items beside it still read as a list;
//! - truncated text (the end comes while something is still open) is cut back to the last
//!   complete value and closed. Every open container keeps its complete members: an error item
//!   cut in its explanation keeps its type, text and correction, but a string, number or keyword
//!   cut mid-way is not a value and goes, so half a sentence never reaches a learner.

mod edits;
mod lexis;

use self::edits::{Edit, with_edits};
use self::lexis::{EndDoubt, closes_string, is_bare_char, is_ellipsis, starts_comment};

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
    /// Byte offset just past the opening bracket.
    opened: usize,
    /// Byte offset just past the last complete element (array) or member (object).
    last_complete: usize,
    expect: Expect,
    /// Where the comma that made this frame expect its next key or element is.
    comma_at: Option<usize>,
}

impl Frame {
    fn next_is_key(&self) -> bool {
        !self.is_array && self.expect != Expect::Value
    }
}

enum Mode {
    Code,
    /// A token without quotes (a keyword, number, unquoted key or `...`) that began at `start`.
    Bare {
        key: bool,
        start: usize,
    },
    /// A string closed by `close`, with `inner` quotes inside it taken as content so far.
    Str {
        close: char,
        key: bool,
        inner: usize,
    },
    LineComment,
    BlockComment,
}

/// The object starting at `text[start..]` (which must begin with `{`), inner quotes escaped and,
/// when cut short, closed. `None` when it is not worth repairing (too deep).
pub(super) fn first_object(text: &str, start: usize) -> Option<String> {
    first_object_or_cut(text, start).map(|(object, _)| object)
}

/// [`first_object`], and whether the text ended before the object did.
pub(super) fn first_object_or_cut(text: &str, start: usize) -> Option<(String, bool)> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut edits: Vec<(usize, Edit)> = Vec::new();
    let mut mode = Mode::Code;
    let mut chars = text[start..].char_indices().map(|(i, c)| (i + start, c)).peekable();

    while let Some((i, c)) = chars.next() {
        if let Mode::Bare { key, start: token } = mode {
            if is_bare_char(c) && !starts_comment(text, i) {
                continue;
            }
            mode = Mode::Code;
            if is_ellipsis(&text[token..i]) {
                omission(&mut stack, &mut edits, text, token, i);
            } else {
                end_token(&mut stack, key, i);
            }
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
            Mode::Str { close, key, inner } => {
                if c == '\\' {
                    chars.next();
                } else if u32::from(c) < 0x20 {
                    // jsonrepair-rs escapes raw newlines and tabs but rejects other control
                    // chars; escaped here, the object often needs no repair at all.
                    edits.push((i, Edit::Control(c)));
                } else if c == close {
                    let after = i + c.len_utf8();
                    let before = text[..i].chars().next_back();
                    // At the very end of a cut-off text a quote may as well open or close an
                    // inner quotation: `'You'` may be cut from `'You're`, `"… finished: "` and
                    // `"… "went"` from `"… finished: "went", not…`. Dropping a complete value
                    // then is safer than keeping half of one.
                    let opens_inner = before.is_some_and(char::is_whitespace);
                    let doubt = if close == '\'' {
                        let apostrophe = before.is_some_and(char::is_alphanumeric);
                        EndDoubt { bare: apostrophe || opens_inner, before_comma: opens_inner }
                    } else {
                        // Inner quotes come in pairs; apostrophes (in `'…'`) do not.
                        let doubtful = inner % 2 == 1 || opens_inner;
                        EndDoubt { bare: doubtful, before_comma: doubtful }
                    };
                    if close == '”' || closes_string(text, after, doubt) {
                        mode = Mode::Code;
                        end_token(&mut stack, key, after);
                    } else {
                        edits.push((i, Edit::Escape));
                        mode = Mode::Str { close, key, inner: inner + 1 };
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
                        let opened = i + 1;
                        stack.push(Frame {
                            is_array: c == '[',
                            opened,
                            last_complete: opened,
                            expect: Expect::Key,
                            comma_at: None,
                        });
                    }
                    '}' | ']' if stack.last().is_some_and(|top| top.is_array != (c == ']')) => {
                        // `{"type":]"x"`: a stray closer would end the object early; a missing
                        // one is added at the end like for a truncated reply.
                        edits.push((i, Edit::Replace { len: 1, with: "" }));
                    }
                    '}' | ']' => {
                        stack.pop();
                        if stack.is_empty() {
                            return Some((with_edits(text, start, i + 1, &edits), false));
                        }
                        end_token(&mut stack, false, i + 1);
                    }
                    ',' => {
                        if let Some(top) = stack.last_mut() {
                            top.expect = Expect::Key;
                            top.comma_at = Some(i);
                        }
                    }
                    ':' => {
                        if let Some(top) = stack.last_mut() {
                            top.expect = Expect::Value;
                        }
                    }
                    '"' | '\'' => mode = Mode::Str { close: c, key, inner: 0 },
                    '“' => mode = Mode::Str { close: '”', key, inner: 0 },
                    '#' => mode = Mode::LineComment,
                    '/' if text[i + 1..].starts_with('/') => mode = Mode::LineComment,
                    '/' if text[i + 1..].starts_with('*') => {
                        chars.next();
                        mode = Mode::BlockComment;
                    }
                    c if c.is_whitespace() => {}
                    _ => mode = Mode::Bare { key, start: i },
                }
            }
        }
    }
    Some((close_truncated(text, start, &stack, &edits), true))
}

/// A key, or a value that completes the current element/member.
fn end_token(stack: &mut [Frame], key: bool, end: usize) {
    let Some(top) = stack.last_mut() else { return };
    top.comma_at = None;
    if key {
        top.expect = Expect::Value;
    } else {
        top.last_complete = end;
        top.expect = Expect::AfterValue;
    }
}

/// `...` or `…` (from `token` to `end`) where the model left items or members out. It is not a
/// value, so it goes; the commas beside it are mended so that what is left is still a list:
/// `a, ..., b` and `a ... b` become `a, b`, `[..., a]` and `a, ...]` lose the spare comma, and
/// `"key": ...` (a value left out) becomes `null`, which normalisation reads as absent.
fn omission(stack: &mut [Frame], edits: &mut Vec<(usize, Edit)>, text: &str, token: usize, end: usize) {
    let Some(top) = stack.last_mut() else { return };
    let rest = text[end..].trim_start();
    let next_at = text.len() - rest.len();
    let closes = rest.is_empty() || rest.starts_with(['}', ']']);
    let mut replace = |with: &'static str| edits.push((token, Edit::Replace { len: end - token, with }));
    match top.expect {
        Expect::Value => {
            replace("null");
            top.last_complete = end;
            top.expect = Expect::AfterValue;
        }
        Expect::AfterValue if closes || rest.starts_with(',') => replace(""),
        Expect::AfterValue => {
            replace(",");
            top.expect = Expect::Key;
        }
        Expect::Key if rest.starts_with(',') => {
            replace("");
            edits.push((next_at, Edit::Replace { len: 1, with: "" }));
        }
        Expect::Key => {
            replace("");
            if let Some(comma) = top.comma_at.filter(|_| closes) {
                let at = edits.partition_point(|&(at, _)| at < comma);
                edits.insert(at, (comma, Edit::Replace { len: 1, with: "" }));
            }
        }
    }
}

fn close_truncated(text: &str, start: usize, stack: &[Frame], edits: &[(usize, Edit)]) -> String {
    // Every open container keeps its complete members; one that has none yet is left out
    // itself, back to the innermost that has some (`{"a": 1, "errors": [{"ty` is `{"a": 1}`).
    let keep = stack.iter().rposition(|frame| frame.last_complete > frame.opened).unwrap_or(0);
    let Some(kept) = stack.get(keep) else {
        return String::new();
    };
    let mut out = with_edits(text, start, kept.last_complete, edits);
    for frame in stack[..=keep].iter().rev() {
        out.push(if frame.is_array { ']' } else { '}' });
    }
    out
}

#[cfg(test)]
mod tests;
