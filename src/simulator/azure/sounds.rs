//! Simulated feedback below the word: phonemes (named in IPA when asked, with candidates for
//! what was said when `NBestPhonemeCount` asks) and per-word prosody feedback, in the shapes
//! UPSTREAMS.md 1.8 gives.

use serde_json::{Value, json};

use super::{mix, round};

/// Letters (and a few pairs) as the sounds they most often spell; good enough to look real.
const SPELLINGS: &[(&str, &str)] = &[
    ("th", "θ"),
    ("sh", "ʃ"),
    ("ch", "tʃ"),
    ("ng", "ŋ"),
    ("ee", "i"),
    ("oo", "u"),
    ("a", "æ"),
    ("e", "ɛ"),
    ("i", "ɪ"),
    ("o", "ɑ"),
    ("u", "ʌ"),
    ("y", "j"),
    ("j", "dʒ"),
    ("c", "k"),
    ("q", "k"),
    ("x", "ks"),
];

/// The sounds a word is taken to hold.
fn sounds(word: &str) -> Vec<String> {
    let letters: String = word.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect();
    let mut found = Vec::new();
    let mut rest = letters.as_str();
    while let Some(first) = rest.chars().next() {
        match SPELLINGS.iter().find(|(spelling, _)| rest.starts_with(spelling)) {
            Some((spelling, sound)) => {
                found.push((*sound).to_string());
                rest = &rest[spelling.len()..];
            }
            None => {
                found.push(first.to_string());
                rest = &rest[first.len_utf8()..];
            }
        }
    }
    if found.is_empty() {
        found.push("ə".to_string());
    }
    found
}

/// What is asked of phonemes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SoundOptions {
    /// `PhonemeAlphabet` was given: sounds are named.
    pub named: bool,
    /// `NBestPhonemeCount`.
    pub candidates: usize,
}

/// `Phonemes` of one word spoken over `[offset, offset + duration)` ticks with `accuracy`.
pub(super) fn phonemes(
    word: &str,
    accuracy: f64,
    offset: u64,
    duration: u64,
    hash: u64,
    options: SoundOptions,
) -> Value {
    let sounds = sounds(word);
    let each = duration / sounds.len() as u64;
    let items: Vec<Value> = sounds
        .iter()
        .enumerate()
        .map(|(index, sound)| {
            let roll = mix(hash, 1000 + index as u64);
            // A word's weak accuracy sits in one of its sounds.
            let score = if accuracy < 60.0 && index == (roll as usize % sounds.len()) {
                round(accuracy * 0.6, 1)
            } else {
                round((accuracy + (roll % 11) as f64 - 5.0).clamp(0.0, 100.0), 1)
            };
            let mut phoneme = json!({
                "Phoneme": if options.named { sound.as_str() } else { "" },
                "AccuracyScore": score,
                "Offset": offset + index as u64 * each,
                "Duration": each,
            });
            if options.named && options.candidates > 0 {
                let other = if sound == "ə" { "ʌ" } else { "ə" };
                let (first, second) = if score < 60.0 { (other, sound.as_str()) } else { (sound.as_str(), other) };
                let candidates: Vec<Value> = [(first, 100.0), (second, round(score.min(95.0), 1))]
                    .into_iter()
                    .take(options.candidates)
                    .map(|(phoneme, score)| json!({"Phoneme": phoneme, "Score": score}))
                    .collect();
                phoneme["NBestPhonemes"] = json!(candidates);
            }
            phoneme
        })
        .collect();
    json!(items)
}

/// `Feedback.Prosody` of one word.
pub(super) fn prosody_feedback(hash: u64, index: u64) -> Value {
    let roll = mix(hash, 2000 + index);
    let unexpected = round((roll % 100) as f64 / 100.0 * 0.5, 4);
    // About one word in eight misses a break a reader would make.
    let missing = if roll.is_multiple_of(8) { 0.9 } else { round((roll >> 8) as f64 % 50.0 / 100.0, 4) };
    let monotone = round((mix(hash, 2999) % 100) as f64 / 100.0, 4);
    json!({
        "Prosody": {
            "Break": {
                "ErrorTypes": ["None"],
                "UnexpectedBreak": {"Confidence": unexpected},
                "MissingBreak": {"Confidence": missing},
                "BreakLength": 0
            },
            "Intonation": {
                "ErrorTypes": if monotone >= 0.75 { vec!["Monotone"] } else { Vec::new() },
                "Monotone": {"Confidence": monotone, "WordPitchSlopeConfidence": monotone, "SyllablePitchDeltaConfidence": 0.5}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_spelled_out_as_sounds() {
        assert_eq!(sounds("think"), vec!["θ", "ɪ", "n", "k"]);
        assert_eq!(sounds("--"), vec!["ə"]);
    }

    #[test]
    fn candidates_come_only_with_names() {
        let unnamed = phonemes("cat", 90.0, 0, 3000, 1, SoundOptions { named: false, candidates: 5 });
        assert!(unnamed[0].get("NBestPhonemes").is_none());
        assert_eq!(unnamed[0]["Phoneme"], "");
        let named = phonemes("cat", 90.0, 0, 3000, 1, SoundOptions { named: true, candidates: 5 });
        assert_eq!(named[0]["Phoneme"], "k");
        assert_eq!(named[0]["NBestPhonemes"][0]["Phoneme"], "k");
    }
}
