//! Checks of single fields: the locale, identifiers, required texts.

use crate::error::AppError;

/// Longest `language` accepted, in characters (RFC 5646's recommended buffer).
pub const LANGUAGE_MAX_CHARS: usize = 35;
/// The locale used when a request names none.
pub const DEFAULT_LANGUAGE: &str = "en-US";

/// A locale as Azure's short-audio API takes it: a language and at least a region (`en-US`,
/// `en-GB`, `zh-Hans-CN`); the default when absent or empty. Azure answers a bare `en` or a
/// one-letter subtag with 400, which would reach the learner as a 502: it is refused here as the
/// client's mistake it is. A tag with spaces around it is a client bug worth a 422, not
/// something to guess about. BCP 47 tags are case-insensitive, so the tag is given its
/// conventional case (`EN-us` is `en-US`, `zh-hans-cn` is `zh-Hans-CN`): one cache entry for
/// one locale, and the casing Azure documents.
pub fn language(raw: Option<&str>, default: &str) -> Result<String, AppError> {
    let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
        return Ok(default.to_string());
    };
    let mut subtags = raw.split('-');
    let primary_ok =
        subtags.next().is_some_and(|tag| (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphabetic()));
    let mut rest = subtags.peekable();
    let rest_ok = rest.peek().is_some()
        && rest.all(|tag| (2..=8).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && raw.len() <= LANGUAGE_MAX_CHARS {
        Ok(canonical_case(raw))
    } else {
        Err(AppError::Validation(format!("language must be a locale such as en-US or zh-Hans-CN (got {raw:?})")))
    }
}

/// RFC 5646 2.1.1's conventions: the language lower case, a four-letter script title case, a
/// two-letter region upper case, anything else lower case.
fn canonical_case(tag: &str) -> String {
    tag.split('-')
        .enumerate()
        .map(|(index, subtag)| match (index, subtag.len()) {
            (0, _) => subtag.to_ascii_lowercase(),
            (_, 2) => subtag.to_ascii_uppercase(),
            (_, 4) => {
                let lower = subtag.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => subtag.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Characters that show nothing: whitespace, and the format characters (zero-width spaces and
/// joiners, direction marks and isolates, the word joiner, the byte order mark, soft hyphens)
/// that a text made of them alone would hand Gemini as nothing to analyse.
pub fn is_invisible(character: char) -> bool {
    character.is_whitespace()
        || matches!(
            character,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

/// Check an optional identifier (`user_id`, `session_id`): bounded, printable.
pub fn identifier(name: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(value) if value.chars().count() > 128 || value.chars().any(char::is_control) => {
            Err(AppError::Validation(format!("{name} must be at most 128 printable characters")))
        }
        _ => Ok(()),
    }
}

/// Check a required text field: at most `max_chars` characters as sent, not only whitespace.
pub fn text_field<'a>(name: &str, value: Option<&'a str>, max_chars: usize) -> Result<&'a str, AppError> {
    let value = value.ok_or_else(|| AppError::Validation(format!("{name} is required")))?;
    if value.chars().all(is_invisible) {
        return Err(AppError::Validation(format!("{name} must not be empty or only invisible characters")));
    }
    // Counted before trimming, so that the document's `maxLength` is the whole rule.
    let count = value.chars().count();
    if count > max_chars {
        return Err(AppError::Validation(format!("{name} must be at most {max_chars} characters (got {count})")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_bcp47_or_refused() {
        assert_eq!(language(None, "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("en-GB"), "en-US").ok().as_deref(), Some("en-GB"));
        assert_eq!(language(Some(""), "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("zh-Hans-CN"), "en-US").ok().as_deref(), Some("zh-Hans-CN"));
        // Case-insensitive, as BCP 47 tags are: one locale, one spelling.
        assert_eq!(language(Some("EN-us"), "en-US").ok().as_deref(), Some("en-US"));
        assert_eq!(language(Some("zh-hans-cn"), "en-US").ok().as_deref(), Some("zh-Hans-CN"));
        for bad in [
            "english",
            "en_US",
            "e",
            "en-US&format=simple",
            "en-US/../x",
            "🙂",
            " en-GB",
            "en-GB\n",
            "   ",
            "en",
            "fAi",
            "en-U",
            "en-",
        ] {
            assert!(language(Some(bad), "en-US").is_err(), "{bad}");
        }
    }

    #[test]
    fn text_fields_count_characters_not_bytes() {
        let accented = "é".repeat(5000);
        assert!(text_field("text", Some(&accented), 5000).is_ok());
        assert!(text_field("text", Some(&"é".repeat(5001)), 5000).is_err());
        assert!(text_field("text", Some("   "), 5000).is_err());
        assert!(text_field("text", None, 5000).is_err());
        assert!(text_field("text", Some("\u{200B}\u{200B}\u{FEFF} \u{2060}"), 5000).is_err(), "only invisible");
        assert!(text_field("text", Some("\u{200B}hi"), 5000).is_ok());
        // The limit counts what was sent, whitespace included, as `maxLength` does.
        assert!(text_field("text", Some(&format!(" {}", "a".repeat(5000))), 5000).is_err());
    }
}
