//! What the text around a token says about it: where a string ends, whether a token is bare.

pub(super) fn is_bare_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ',' | ':' | '{' | '}' | '[' | ']' | '"' | '“' | '#'))
}

/// `...` (two dots or more) or `…`, the ways a model writes "and so on".
pub(super) fn is_ellipsis(token: &str) -> bool {
    token.chars().all(|c| matches!(c, '.' | '…')) && (token.contains('…') || token.len() >= 2)
}

/// Whether `rest` begins with an ellipsis token, or with dots that the end of the text cut.
fn starts_ellipsis(rest: &str) -> bool {
    match rest.find(|c: char| !is_bare_char(c)) {
        Some(end) => is_ellipsis(&rest[..end]),
        None => rest.chars().all(|c| matches!(c, '.' | '…')),
    }
}

pub(super) fn starts_comment(text: &str, i: usize) -> bool {
    text[i..].starts_with("//") || text[i..].starts_with("/*")
}

/// Whether a quote at the end of a cut-off text is in doubt: with nothing after it (`bare`), or
/// only a comma (`before_comma`).
#[derive(Clone, Copy)]
pub(super) struct EndDoubt {
    pub bare: bool,
    pub before_comma: bool,
}

/// Whether a quote ending at `after` closes its string: what follows must look like structure,
/// and where the text ends right after it, the quote must not be in doubt (see `EndDoubt`).
pub(super) fn closes_string(text: &str, after: usize, doubt: EndDoubt) -> bool {
    let rest = &text[after..];
    let trimmed = rest.trim_start();
    let skipped_newline = rest[..rest.len() - trimmed.len()].contains('\n');
    match trimmed.chars().next() {
        None => !doubt.bare,
        // `{` and `[` right after a quote: a key missing its colon, not prose.
        Some('}' | ']' | ':' | '#' | '{' | '[') => true,
        // A lone `/` at the end is a comment cut after its first char.
        Some('/') => starts_comment(trimmed, 0) || trimmed == "/",
        Some(',') if trimmed[1..].trim().is_empty() => !doubt.before_comma,
        Some(',') => starts_value_or_key(&trimmed[1..]),
        // Back-to-back strings only when a newline separates them (a missing comma in
        // pretty-printed output); on one line `"a "b" c"` is prose.
        Some('"') => skipped_newline,
        // `"a" ... "b"`: items left out, written without commas; dots up to the end may be one
        // cut short, or a sentence's full stop after an inner quotation.
        Some('.' | '…') if trimmed.chars().all(|c| matches!(c, '.' | '…')) => !doubt.bare,
        Some('.' | '…') => starts_ellipsis(trimmed),
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
        // A lone `/` at the end is a comment cut after its first char.
        '/' => starts_comment(rest, 0) || rest == "/",
        '.' | '…' => starts_ellipsis(rest),
        c if c.is_ascii_digit() => true,
        c if c.is_alphabetic() || c == '_' => {
            let word_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let word = &rest[..word_len];
            matches!(word, "true" | "false" | "null" | "True" | "False" | "None")
                || rest[word_len..].trim_start().starts_with(':')
        }
        _ => false,
    }
}
