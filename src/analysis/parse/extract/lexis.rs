//! What the text around a token says about it: where a string ends, whether a token is bare.

pub(super) fn is_bare_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ',' | ':' | '{' | '}' | '[' | ']' | '"' | '“' | '#'))
}

pub(super) fn starts_comment(text: &str, i: usize) -> bool {
    text[i..].starts_with("//") || text[i..].starts_with("/*")
}

/// Whether a quote ending at `after` closes its string: what follows must look like structure.
/// At the end of a cut-off text, a `'` right after a letter is taken as an apostrophe
/// (`'You'` cut from `'You're`): dropping a complete value is safer than keeping half of one.
pub(super) fn closes_string(text: &str, after: usize, apostrophe_like: bool) -> bool {
    let rest = &text[after..];
    let trimmed = rest.trim_start();
    let skipped_newline = rest[..rest.len() - trimmed.len()].contains('\n');
    match trimmed.chars().next() {
        None => !apostrophe_like,
        // `{` and `[` right after a quote: a key missing its colon, not prose.
        Some('}' | ']' | ':' | '#' | '{' | '[') => true,
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
            let word_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let word = &rest[..word_len];
            matches!(word, "true" | "false" | "null" | "True" | "False" | "None")
                || rest[word_len..].trim_start().starts_with(':')
        }
        _ => false,
    }
}
