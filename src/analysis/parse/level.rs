//! CEFR level from whatever the model wrote: `B1`, `b1`, `B1+`, `Intermediate (B1)`,
//! `upper-intermediate`, `C2 (Proficient)`.

use crate::analysis::CefrLevel;

/// Descriptor names, longest-prefix first: `upper-intermediate` and `pre-intermediate` must be
/// tried before `intermediate`, which they contain.
const DESCRIPTORS: [(&str, CefrLevel); 12] = [
    ("upperintermediate", CefrLevel::B2),
    ("preintermediate", CefrLevel::A2),
    ("intermediate", CefrLevel::B1),
    ("beginner", CefrLevel::A1),
    ("breakthrough", CefrLevel::A1),
    ("elementary", CefrLevel::A2),
    ("waystage", CefrLevel::A2),
    ("threshold", CefrLevel::B1),
    ("vantage", CefrLevel::B2),
    ("advanced", CefrLevel::C1),
    ("proficien", CefrLevel::C2),
    ("mastery", CefrLevel::C2),
];

/// The first explicit band (`A1`..`C2`, not inside a longer word) wins over any descriptor, so
/// `Intermediate (B2)` is B2 even though `intermediate` alone would be B1.
pub(super) fn parse_level(raw: &str) -> Option<CefrLevel> {
    explicit_band(raw).or_else(|| descriptor(raw))
}

fn explicit_band(raw: &str) -> Option<CefrLevel> {
    let bytes = raw.as_bytes();
    for i in 0..bytes.len().saturating_sub(1) {
        let letter = bytes[i].to_ascii_uppercase();
        let digit = bytes[i + 1];
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let ends_word = bytes.get(i + 2).is_none_or(|b| !b.is_ascii_digit());
        if !(starts_word && ends_word) {
            continue;
        }
        let level = match (letter, digit) {
            (b'A', b'1') => CefrLevel::A1,
            (b'A', b'2') => CefrLevel::A2,
            (b'B', b'1') => CefrLevel::B1,
            (b'B', b'2') => CefrLevel::B2,
            (b'C', b'1') => CefrLevel::C1,
            (b'C', b'2') => CefrLevel::C2,
            _ => continue,
        };
        return Some(level);
    }
    None
}

fn descriptor(raw: &str) -> Option<CefrLevel> {
    let squashed: String = raw.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    DESCRIPTORS.iter().find(|(name, _)| squashed.contains(name)).map(|&(_, level)| level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CefrLevel::*;

    #[test]
    fn bands_are_read_in_any_case_with_decorations() {
        for (raw, want) in [
            ("B1", B1),
            ("b1", B1),
            ("B1+", B1),
            (" c1 ", C1),
            ("Intermediate (B1)", B1),
            ("C2 (Proficient)", C2),
            ("CEFR: A2", A2),
            ("B1/B2", B1),
            ("level-B2", B2),
        ] {
            assert_eq!(parse_level(raw), Some(want), "{raw}");
        }
    }

    #[test]
    fn descriptors_map_to_their_band() {
        for (raw, want) in [
            ("upper-intermediate", B2),
            ("Upper Intermediate", B2),
            ("pre-intermediate", A2),
            ("intermediate", B1),
            ("Advanced", C1),
            ("proficient", C2),
            ("Beginner", A1),
            ("elementary", A2),
        ] {
            assert_eq!(parse_level(raw), Some(want), "{raw}");
        }
    }

    #[test]
    fn band_like_fragments_inside_words_or_numbers_are_not_levels() {
        for raw in ["", "B12", "AB1C", "level 3", "C3", "unknown"] {
            assert_eq!(parse_level(raw), None, "{raw}");
        }
    }
}
