//! The changes the scan decides on, applied when the object is cut out of the text.

#[derive(Clone, Copy)]
pub(super) enum Edit {
    /// Put a backslash before the quote here.
    Escape,
    /// Write `with` instead of the `len` bytes here (a stray closer, an ellipsis, a spare comma).
    Replace { len: usize, with: &'static str },
    /// Write this raw (one-byte) control char as a `\u00XX` escape.
    Control(char),
}

pub(super) fn with_edits(text: &str, start: usize, end: usize, edits: &[(usize, Edit)]) -> String {
    let mut out = String::with_capacity(end - start + edits.len() + 8);
    let mut from = start;
    for &(at, edit) in edits.iter().take_while(|(at, _)| *at < end) {
        out.push_str(&text[from..at]);
        match edit {
            Edit::Escape => {
                out.push('\\');
                from = at;
            }
            Edit::Replace { len, with } => {
                out.push_str(with);
                from = (at + len).min(end);
            }
            Edit::Control(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
                from = at + 1;
            }
        }
    }
    out.push_str(&text[from..end]);
    out
}
