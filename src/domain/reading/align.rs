//! Words of a text against words recognised, as Microsoft's continuous-assessment samples compare
//! them (`difflib.SequenceMatcher` there, `similar` here): which part of the reference text each
//! piece of a long reading holds, and which words the learner skipped or added.

use std::ops::Range;

use similar::{Algorithm, DiffOp, capture_diff_slices};

/// How words compare: case, punctuation around them and typographic apostrophes do not count
/// ("Hello," is "hello"; "don’t" is "don't").
pub fn word_key(word: &str) -> String {
    let mapped: String = word
        .chars()
        .map(|c| if matches!(c, '\u{2019}' | '\u{2018}' | '`') { '\'' } else { c })
        .flat_map(char::to_lowercase)
        .collect();
    mapped.trim_matches(|c: char| !c.is_alphanumeric()).to_string()
}

/// A text's words as written, without the tokens that are only punctuation (a dash, "...").
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().filter(|word| !word_key(word).is_empty()).collect()
}

fn keys<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words.iter().map(|word| word_key(word.as_ref())).collect()
}

/// What happened to each word when the recognised words are laid against the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reference word `reference` was said as recognised word `recognized`.
    Said { reference: usize, recognized: usize },
    /// Recognised word `recognized` stands where reference words were replaced (a different
    /// word said in their place).
    Replaced { reference: Option<usize>, recognized: usize },
    /// Recognised word `recognized` is in no place of the reference.
    Inserted { recognized: usize },
    /// Reference word `reference` was not said.
    Omitted { reference: usize },
}

/// The diff of `recognized` against `reference`, in reading order. In a replaced stretch the
/// recognised words come first, then the reference words left over, as the samples order them.
pub fn diff<R: AsRef<str>, S: AsRef<str>>(reference: &[R], recognized: &[S]) -> Vec<Step> {
    let (reference, recognized) = (keys(reference), keys(recognized));
    let mut steps = Vec::with_capacity(reference.len().max(recognized.len()));
    for op in capture_diff_slices(Algorithm::Myers, &reference, &recognized) {
        match op {
            DiffOp::Equal { old_index, new_index, len } => {
                steps.extend((0..len).map(|at| Step::Said { reference: old_index + at, recognized: new_index + at }))
            }
            DiffOp::Delete { old_index, old_len, .. } => {
                steps.extend((old_index..old_index + old_len).map(|reference| Step::Omitted { reference }));
            }
            DiffOp::Insert { new_index, new_len, .. } => {
                steps.extend((new_index..new_index + new_len).map(|recognized| Step::Inserted { recognized }));
            }
            DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                steps.extend((0..new_len).map(|at| Step::Replaced {
                    reference: (at < old_len).then_some(old_index + at),
                    recognized: new_index + at,
                }));
                steps.extend(
                    (old_index + new_len.min(old_len)..old_index + old_len)
                        .map(|reference| Step::Omitted { reference }),
                );
            }
        }
    }
    steps
}

/// The part of the reference each piece holds, as ranges of `reference`'s word indices: the
/// pieces' transcripts, in order, are laid against the reference, and a reference word goes to
/// the piece whose transcript said it (or said something in its place). Words nobody said go
/// with the piece before them (the first piece for those before any). The ranges are
/// consecutive and cover every reference word; a piece in which nothing of the reference was
/// found gets an empty range.
pub fn assign<R: AsRef<str>, S: AsRef<str>>(reference: &[R], transcripts: &[Vec<S>]) -> Vec<Range<usize>> {
    if transcripts.is_empty() {
        return Vec::new();
    }
    let spoken: Vec<&str> = transcripts.iter().flatten().map(AsRef::as_ref).collect();
    let owner: Vec<usize> =
        transcripts.iter().enumerate().flat_map(|(piece, words)| std::iter::repeat_n(piece, words.len())).collect();
    // The piece each reference word was heard in; `diff` keeps both sequences in order, so these
    // never decrease.
    let mut heard_in = vec![None; reference.len()];
    for step in diff(reference, &spoken) {
        match step {
            Step::Said { reference, recognized } | Step::Replaced { reference: Some(reference), recognized } => {
                heard_in[reference] = Some(owner[recognized]);
            }
            _ => {}
        }
    }
    // First reference word of each piece; a piece where nothing was heard starts where the
    // next begins.
    let mut starts = vec![None; transcripts.len()];
    for (word, piece) in heard_in.iter().enumerate() {
        if let Some(piece) = *piece {
            starts[piece].get_or_insert(word);
        }
    }
    let mut ranges = vec![0..0; transcripts.len()];
    let mut end = reference.len();
    for piece in (0..transcripts.len()).rev() {
        let start = if piece == 0 { 0 } else { starts[piece].unwrap_or(end).min(end) };
        ranges[piece] = start..end;
        end = start;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        words(text)
    }

    #[test]
    fn words_compare_without_case_punctuation_or_curly_apostrophes() {
        assert_eq!(word_key("Hello,"), "hello");
        assert_eq!(word_key("“Don’t”"), "don't");
        assert_eq!(word_key("—"), "");
        assert_eq!(words("Well — it's (nearly) done..."), vec!["Well", "it's", "(nearly)", "done..."]);
    }

    #[test]
    fn a_skipped_word_is_omitted_and_an_extra_one_inserted() {
        let reference = split("the quick brown fox jumps");
        let recognized = split("the quick fox really jumps");
        assert_eq!(
            diff(&reference, &recognized),
            vec![
                Step::Said { reference: 0, recognized: 0 },
                Step::Said { reference: 1, recognized: 1 },
                Step::Omitted { reference: 2 },
                Step::Said { reference: 3, recognized: 2 },
                Step::Inserted { recognized: 3 },
                Step::Said { reference: 4, recognized: 4 },
            ]
        );
    }

    #[test]
    fn a_word_said_differently_replaces_the_reference_word() {
        let steps = diff(&split("I read the weather report"), &split("I read the whether report"));
        assert!(steps.contains(&Step::Replaced { reference: Some(3), recognized: 3 }), "{steps:?}");
    }

    #[test]
    fn each_piece_gets_the_part_of_the_text_it_holds() {
        let reference = split("One two three. Four five six. Seven eight nine.");
        let transcripts = vec![split("one two three four"), split("five six"), split("seven eight nine")];
        assert_eq!(assign(&reference, &transcripts), vec![0..4, 4..6, 6..9]);
    }

    #[test]
    fn skipped_words_at_a_boundary_go_with_the_piece_before() {
        let reference = split("one two three four five six");
        let transcripts = vec![split("one two"), split("five six")];
        assert_eq!(assign(&reference, &transcripts), vec![0..4, 4..6]);
    }

    #[test]
    fn a_piece_with_nothing_of_the_text_gets_an_empty_part() {
        let reference = split("one two three four");
        let transcripts = vec![split("one two"), split("um er"), split("three four")];
        assert_eq!(assign(&reference, &transcripts), vec![0..2, 2..2, 2..4]);
        let silent_start = vec![Vec::<&str>::new(), split("one two three four")];
        assert_eq!(assign(&reference, &silent_start), vec![0..0, 0..4]);
    }

    #[test]
    fn misheard_words_still_place_the_text() {
        let reference = split("she sells sea shells by the sea shore");
        let transcripts = vec![split("she sell see shells"), split("buy the sea sure")];
        assert_eq!(assign(&reference, &transcripts), vec![0..4, 4..8]);
    }
}
