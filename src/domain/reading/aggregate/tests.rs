use super::*;
use crate::domain::speech::PhonemeScore;

fn word(text: &str, accuracy: f64, error: &str, offset_ms: u64, duration_ms: u64) -> WordScore {
    WordScore {
        word: text.to_string(),
        accuracy_score: accuracy,
        error_type: error.to_string(),
        offset_ms: Some(offset_ms),
        duration_ms: Some(duration_ms),
        phonemes: vec![PhonemeScore {
            phoneme: Some("x".to_string()),
            accuracy_score: accuracy,
            offset_ms: Some(offset_ms),
            duration_ms: Some(duration_ms),
            ..PhonemeScore::default()
        }],
        prosody: None,
    }
}

fn piece(offset_ms: u64, duration_ms: u64, words: Vec<WordScore>, prosody: Option<f64>) -> Assessed {
    let text = words.iter().map(|word| word.word.clone()).collect::<Vec<_>>().join(" ");
    Assessed {
        offset_ms,
        duration_ms,
        result: Pronunciation {
            recognized_text: text,
            accuracy_score: 90.0,
            fluency_score: 80.0,
            completeness_score: Some(100.0),
            prosody_score: prosody,
            pronunciation_score: 85.0,
            words,
            status: "Success".to_string(),
            ..Pronunciation::default()
        },
    }
}

#[test]
fn the_overall_score_follows_the_documented_weights() {
    // Reading with prosody: sorted 60, 70, 80, 90.
    assert!(
        (overall(90.0, 70.0, Some(80.0), Some(60.0)) - (0.4 * 60.0 + 0.2 * 70.0 + 0.2 * 80.0 + 0.2 * 90.0)).abs()
            < 1e-9
    );
    // Reading without prosody.
    assert!((overall(90.0, 70.0, Some(80.0), None) - (0.6 * 70.0 + 0.2 * 80.0 + 0.2 * 90.0)).abs() < 1e-9);
    // Speaking with prosody.
    assert!((overall(90.0, 70.0, None, Some(60.0)) - (0.6 * 60.0 + 0.2 * 70.0 + 0.2 * 90.0)).abs() < 1e-9);
    // Speaking without prosody.
    assert!((overall(90.0, 70.0, None, None) - (0.6 * 70.0 + 0.4 * 90.0)).abs() < 1e-9);
}

#[test]
fn words_move_onto_the_whole_recordings_timeline() {
    let pieces = [
        piece(0, 3000, vec![word("one", 100.0, NONE, 100, 400)], None),
        piece(3000, 3000, vec![word("two", 100.0, NONE, 200, 400)], None),
    ];
    let whole = combine(Mode::Scripted, Some("One two."), &pieces);
    let offsets: Vec<_> = whole.words.iter().map(|word| word.offset_ms).collect();
    assert_eq!(offsets, vec![Some(100), Some(3200)]);
    assert_eq!(whole.words[1].phonemes[0].offset_ms, Some(3200));
    assert_eq!(whole.segments.len(), 2);
    assert_eq!((whole.segments[1].offset_ms, whole.segments[1].duration_ms), (3000, 3000));
    assert_eq!(whole.recognized_text, "one two");
}

#[test]
fn skipped_and_extra_words_of_the_whole_text_are_marked() {
    let pieces = [
        piece(0, 5000, vec![word("the", 90.0, NONE, 0, 200), word("cat", 80.0, NONE, 300, 300)], Some(70.0)),
        piece(
            5000,
            5000,
            // Azure called "really" an insertion against the piece's own part of the text; the
            // whole text agrees. "sat" it heard as part of its text: the whole text has it too.
            vec![word("really", 60.0, INSERTION, 0, 300), word("sat", 70.0, NONE, 400, 300)],
            Some(90.0),
        ),
    ];
    let whole = combine(Mode::Scripted, Some("The black cat sat."), &pieces);
    let tagged: Vec<_> = whole.words.iter().map(|word| (word.word.as_str(), word.error_type.as_str())).collect();
    assert_eq!(tagged, vec![("the", NONE), ("black", OMISSION), ("cat", NONE), ("really", INSERTION), ("sat", NONE)]);
    let skipped = &whole.words[1];
    assert_eq!((skipped.accuracy_score, skipped.offset_ms, skipped.duration_ms), (0.0, None, None));
    assert!(skipped.phonemes.is_empty());

    // Accuracy over the, black, cat, sat (the insertion left out).
    let accuracy = (90.0 + 0.0 + 80.0 + 70.0) / 4.0;
    // Completeness: 3 of the 4 reference words said.
    let completeness = 75.0;
    // Fluency: correct words' time (+10 ms each) over first start to last end (+10 ms).
    let fluency = ((200.0 + 10.0) + (300.0 + 10.0) + (300.0 + 10.0)) / (5700.0 + 10.0 - 0.0) * 100.0;
    let prosody = 80.0;
    let expected = overall(accuracy, fluency, Some(completeness), Some(prosody));
    assert_eq!(whole.accuracy_score, rounded(accuracy));
    assert_eq!(whole.completeness_score, Some(completeness));
    assert_eq!(whole.fluency_score, rounded(fluency));
    assert_eq!(whole.prosody_score, Some(prosody));
    assert_eq!(whole.pronunciation_score, rounded(expected));
    assert_ne!(whole.pronunciation_score, 85.0, "not the pieces' average");
}

#[test]
fn a_mispronounced_extra_word_keeps_its_error() {
    let pieces =
        [piece(0, 5000, vec![word("a", 90.0, NONE, 0, 100), word("zebra", 30.0, "Mispronunciation", 200, 300)], None)];
    let whole = combine(Mode::Scripted, Some("a"), &pieces);
    assert_eq!(whole.words[1].error_type, "Mispronunciation");
}

#[test]
fn free_speech_has_no_completeness_and_no_miscues() {
    let pieces = [
        piece(0, 4000, vec![word("hello", 90.0, NONE, 0, 500), word("there", 0.0, OMISSION, 0, 0)], None),
        piece(4000, 4000, vec![word("friend", 70.0, INSERTION, 100, 500)], None),
    ];
    let whole = combine(Mode::Unscripted, None, &pieces);
    assert_eq!(whole.mode, Mode::Unscripted);
    assert_eq!(whole.completeness_score, None);
    assert_eq!(whole.reference_text, None);
    let tagged: Vec<_> = whole.words.iter().map(|word| (word.word.as_str(), word.error_type.as_str())).collect();
    assert_eq!(tagged, vec![("hello", NONE), ("friend", NONE)]);
    let accuracy = 80.0;
    let fluency = (510.0 + 510.0) / (4600.0 + 10.0) * 100.0;
    assert_eq!(whole.pronunciation_score, rounded(overall(accuracy, fluency, None, None)));
    assert!(whole.segments.iter().all(|segment| segment.completeness_score.is_none()));
}

#[test]
fn one_piece_keeps_azures_scores_and_gains_its_segment() {
    let only = piece(0, 8000, vec![word("hi", 95.0, NONE, 0, 300)], Some(88.0));
    let expected = only.result.clone();
    let result = single(only, Mode::Scripted);
    assert_eq!(result.pronunciation_score, expected.pronunciation_score);
    assert_eq!(result.completeness_score, expected.completeness_score);
    assert_eq!(result.segments.len(), 1);
    assert_eq!((result.segments[0].offset_ms, result.segments[0].duration_ms), (0, 8000));
}

#[test]
fn one_unscripted_piece_is_scored_without_completeness() {
    let only = piece(0, 8000, vec![word("hi", 95.0, NONE, 0, 300)], None);
    let result = single(only, Mode::Unscripted);
    assert_eq!(result.completeness_score, None);
    assert_eq!(result.pronunciation_score, rounded(overall(90.0, 80.0, None, None)));
}

#[test]
fn a_reading_where_nothing_was_heard_scores_zero() {
    let silent = Assessed {
        offset_ms: 0,
        duration_ms: 30_000,
        result: Pronunciation { status: "NoMatch".to_string(), ..Pronunciation::default() },
    };
    let whole = combine(Mode::Scripted, Some("one two"), &[silent.clone(), Assessed { offset_ms: 30_000, ..silent }]);
    assert_eq!(whole.status, "NoMatch");
    assert_eq!(whole.words.len(), 2);
    assert_eq!((whole.accuracy_score, whole.fluency_score, whole.completeness_score), (0.0, 0.0, Some(0.0)));
}
