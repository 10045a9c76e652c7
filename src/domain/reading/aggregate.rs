//! The pieces' assessments as one result for the whole reading, computed as Microsoft's
//! continuous-assessment samples compute it over segments (UPSTREAMS.md 5.3), never as an
//! average of the pieces' overall scores:
//!
//! 1. every recognised word in order, moved onto the whole recording's timeline; scripted, they
//!    are laid against the whole reference text: extra words `Insertion`, skipped ones added as
//!    `Omission` (accuracy 0, no timing);
//! 2. accuracy: the mean word accuracy, insertions left out (omissions count, as 0);
//! 3. prosody: the mean of the pieces' prosody scores;
//! 4. fluency: the time spent in correctly said words (each plus 10 ms) over the time from the
//!    first recognised word's start to the last's end (plus 10 ms);
//! 5. completeness (scripted only): correctly said words over the reference's words;
//! 6. the overall score by the documented weights of what exists (see [`overall`]).

use super::align::{self, Step};
use crate::domain::speech::{Mode, Pronunciation, Segment, WordScore};

pub const NONE: &str = "None";
pub const OMISSION: &str = "Omission";
pub const INSERTION: &str = "Insertion";

/// The samples add 100000 ticks (10 ms) to every word's duration and to the reading's end.
const WORD_PAD_MS: f64 = 10.0;

/// One piece's assessment, its word offsets relative to the piece.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    /// Where the piece starts in the whole recording.
    pub offset_ms: u64,
    pub duration_ms: u64,
    pub result: Pronunciation,
}

/// The overall score from the scores there are (Azure's documented formula): sorted low to high
/// as s0, s1, ..., four scores weigh 0.4/0.2/0.2/0.2, three 0.6/0.2/0.2, two 0.6/0.4. Reading
/// with prosody has four, reading without it or speaking (no completeness) with it three,
/// speaking without prosody two.
pub fn overall(accuracy: f64, fluency: f64, completeness: Option<f64>, prosody: Option<f64>) -> f64 {
    let mut scores = vec![accuracy, fluency];
    scores.extend(completeness);
    scores.extend(prosody);
    scores.sort_by(f64::total_cmp);
    let weights: &[f64] = match scores.len() {
        4 => &[0.4, 0.2, 0.2, 0.2],
        3 => &[0.6, 0.2, 0.2],
        _ => &[0.6, 0.4],
    };
    scores.iter().zip(weights).map(|(score, weight)| score * weight).sum()
}

/// One decimal, as Azure reports its own scores.
fn rounded(score: f64) -> f64 {
    (score * 10.0).round() / 10.0
}

/// A piece as `data.segments` lists it.
pub fn segment(piece: &Assessed, mode: Mode) -> Segment {
    let result = &piece.result;
    Segment {
        offset_ms: piece.offset_ms,
        duration_ms: piece.duration_ms,
        accuracy_score: result.accuracy_score,
        fluency_score: result.fluency_score,
        completeness_score: if mode == Mode::Scripted { result.completeness_score } else { None },
        prosody_score: result.prosody_score,
        pronunciation_score: piece_overall(result, mode),
    }
}

/// A piece's overall score: Azure's when scripted; unscripted, the speaking formula over its
/// scores (Azure's own counted completeness against our transcript).
fn piece_overall(result: &Pronunciation, mode: Mode) -> f64 {
    match mode {
        Mode::Scripted => result.pronunciation_score,
        Mode::Unscripted => rounded(overall(result.accuracy_score, result.fluency_score, None, result.prosody_score)),
    }
}

/// A recording assessed in one piece: Azure's scores stand; only the new fields are added (and,
/// unscripted, completeness removed and the overall score made without it).
pub fn single(piece: Assessed, mode: Mode) -> Pronunciation {
    let segment = segment(&piece, mode);
    let mut result = piece.result;
    result.mode = mode;
    result.pronunciation_score = segment.pronunciation_score;
    if mode == Mode::Unscripted {
        result.completeness_score = None;
        result.reference_text = None;
        result.words = unscripted_words(result.words);
    }
    result.segments = vec![segment];
    result
}

/// Unscripted, the "reference" was only our transcript: a word it has that the assessment did
/// not hear is no omission of the learner's, and nothing said is extra.
fn unscripted_words(words: Vec<WordScore>) -> Vec<WordScore> {
    words
        .into_iter()
        .filter(|word| word.error_type != OMISSION)
        .map(
            |word| if word.error_type == INSERTION { WordScore { error_type: NONE.to_string(), ..word } } else { word },
        )
        .collect()
}

/// The pieces of a long reading, in order, as one result (see the module's flow).
/// `reference_text` is the whole text when scripted.
pub fn combine(mode: Mode, reference_text: Option<&str>, pieces: &[Assessed]) -> Pronunciation {
    let recognized: Vec<WordScore> = pieces
        .iter()
        .flat_map(|piece| {
            piece.result.words.iter().filter(|word| word.error_type != OMISSION).map(move |word| {
                let mut word = shifted(word, piece.offset_ms);
                // A piece's own miscue call knew only its part of the text; the whole text decides.
                if word.error_type == INSERTION {
                    word.error_type = NONE.to_string();
                }
                word
            })
        })
        .collect();
    let words = match (mode, reference_text) {
        (Mode::Scripted, Some(reference)) => miscues(reference, recognized),
        _ => recognized,
    };

    let assessed: Vec<&WordScore> = words.iter().filter(|word| word.error_type != INSERTION).collect();
    let accuracy = if assessed.is_empty() {
        0.0
    } else {
        assessed.iter().map(|word| word.accuracy_score).sum::<f64>() / assessed.len() as f64
    };
    let prosody_scores: Vec<f64> = pieces.iter().filter_map(|piece| piece.result.prosody_score).collect();
    let prosody =
        (!prosody_scores.is_empty()).then(|| prosody_scores.iter().sum::<f64>() / prosody_scores.len() as f64);
    let fluency = fluency(&words);
    let completeness = (mode == Mode::Scripted).then(|| {
        let correct = assessed.iter().filter(|word| word.error_type == NONE).count();
        if assessed.is_empty() { 0.0 } else { (correct as f64 / assessed.len() as f64 * 100.0).min(100.0) }
    });
    let pronunciation = overall(accuracy, fluency, completeness, prosody);

    let status = pieces
        .iter()
        .map(|piece| piece.result.status.as_str())
        .find(|status| *status == "Success")
        .or_else(|| pieces.first().map(|piece| piece.result.status.as_str()))
        .unwrap_or("NoMatch")
        .to_string();
    let recognized_text = pieces
        .iter()
        .map(|piece| piece.result.recognized_text.trim())
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Pronunciation {
        mode,
        recognized_text,
        reference_text: if mode == Mode::Scripted { reference_text.map(str::to_string) } else { None },
        accuracy_score: rounded(accuracy),
        fluency_score: rounded(fluency),
        completeness_score: completeness.map(rounded),
        prosody_score: prosody.map(rounded),
        pronunciation_score: rounded(pronunciation),
        words,
        segments: pieces.iter().map(|piece| segment(piece, mode)).collect(),
        status,
        sent: Default::default(),
    }
}

/// Correctly said time over the time from the first recognised word to the last, as a score.
fn fluency(words: &[WordScore]) -> f64 {
    let timed = || words.iter().filter(|word| word.offset_ms.is_some() && word.error_type != OMISSION);
    let (Some(first), Some(last)) = (timed().next(), timed().next_back()) else {
        return 0.0;
    };
    let start = first.offset_ms.unwrap_or(0) as f64;
    let end = (last.offset_ms.unwrap_or(0) + last.duration_ms.unwrap_or(0)) as f64 + WORD_PAD_MS;
    let spoken: f64 = timed()
        .filter(|word| word.error_type == NONE)
        .map(|word| word.duration_ms.unwrap_or(0) as f64 + WORD_PAD_MS)
        .sum();
    if end <= start { 0.0 } else { (spoken / (end - start) * 100.0).min(100.0) }
}

/// The recognised words laid against the whole reference: extra words `Insertion` (unless Azure
/// already found them mispronounced), skipped ones added as `Omission`.
fn miscues(reference: &str, recognized: Vec<WordScore>) -> Vec<WordScore> {
    let reference_words = align::words(reference);
    let spoken: Vec<&str> = recognized.iter().map(|word| word.word.as_str()).collect();
    let steps = align::diff(&reference_words, &spoken);
    let mut slots: Vec<Option<WordScore>> = recognized.into_iter().map(Some).collect();
    let mut words = Vec::with_capacity(steps.len());
    for step in steps {
        match step {
            Step::Said { recognized, .. } => words.extend(slots[recognized].take()),
            Step::Inserted { recognized } | Step::Replaced { recognized, .. } => {
                if let Some(mut word) = slots[recognized].take() {
                    if word.error_type == NONE {
                        word.error_type = INSERTION.to_string();
                    }
                    words.push(word);
                }
            }
            Step::Omitted { reference } => words.push(WordScore {
                word: align::word_key(reference_words[reference]),
                accuracy_score: 0.0,
                error_type: OMISSION.to_string(),
                ..WordScore::default()
            }),
        }
    }
    words
}

/// A word (and its sounds) moved `by_ms` later.
pub fn shifted(word: &WordScore, by_ms: u64) -> WordScore {
    let mut word = word.clone();
    word.offset_ms = word.offset_ms.map(|offset| offset + by_ms);
    for phoneme in &mut word.phonemes {
        phoneme.offset_ms = phoneme.offset_ms.map(|offset| offset + by_ms);
    }
    word
}

#[cfg(test)]
mod tests;
