//! Simulated pronunciation assessment: the flat REST shape (UPSTREAMS.md 1.8), scored with
//! Azure's documented formula.

use base64::Engine;
use serde_json::{Value, json};

use super::sounds::{SoundOptions, phonemes, prosody_feedback};
use super::{MISPRONUNCIATION_BELOW, SENTENCES, lexical, mix, round};

/// The decoded `Pronunciation-Assessment` parameters the answer depends on.
pub(super) struct AssessmentParams {
    reference_text: String,
    five_point: bool,
    prosody: bool,
    sounds: SoundOptions,
}

pub(super) fn decode_assessment(encoded: &str) -> Option<AssessmentParams> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let params: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    Some(AssessmentParams {
        reference_text: text("ReferenceText").unwrap_or_default().to_string(),
        five_point: text("GradingSystem") == Some("FivePoint"),
        prosody: text("EnableProsodyAssessment").is_some_and(|value| value.eq_ignore_ascii_case("true")),
        sounds: SoundOptions {
            named: text("PhonemeAlphabet").is_some(),
            // A number, or a string holding one, as the header's other values are strings.
            candidates: params
                .get("NBestPhonemeCount")
                .and_then(|count| count.as_u64().or_else(|| count.as_str()?.trim().parse().ok()))
                .map_or(0, |count| usize::try_from(count).unwrap_or(0)),
        },
    })
}

/// The flat REST PA shape (UPSTREAMS.md 1.8): scores on the NBest item and on each word.
pub(super) fn assessment_answer(params: &AssessmentParams, hash: u64, offset: u64, duration: u64) -> Value {
    let scripted = !params.reference_text.trim().is_empty();
    // Reading aloud: the learner said the reference text. Unscripted: they said a sentence.
    let display = if scripted {
        params.reference_text.trim().to_string()
    } else {
        SENTENCES[(hash % SENTENCES.len() as u64) as usize].to_string()
    };
    let lexical = lexical(&display);
    let spoken: Vec<&str> = lexical.split_whitespace().collect();
    let scale = if params.five_point { 0.05 } else { 1.0 };

    let per_word = duration / spoken.len().max(1) as u64;
    let mut accuracies = Vec::with_capacity(spoken.len());
    let words: Vec<Value> = spoken
        .iter()
        .enumerate()
        .map(|(index, word)| {
            let roll = mix(hash, index as u64 + 1);
            // About one word in five is mispronounced (below Azure's threshold of 60).
            let accuracy = if roll.is_multiple_of(5) {
                30.0 + (roll >> 8) as f64 % 30.0
            } else {
                70.0 + (roll >> 8) as f64 % 31.0
            };
            accuracies.push(accuracy);
            let word_offset = offset + index as u64 * per_word;
            let mut word = json!({
                "Word": word,
                "Offset": word_offset,
                "Duration": per_word,
                "Confidence": 0.0,
                "AccuracyScore": accuracy * scale,
                "ErrorType": if accuracy < MISPRONUNCIATION_BELOW { "Mispronunciation" } else { "None" },
                "Phonemes": phonemes(word, accuracy, word_offset, per_word, mix(hash, index as u64 + 500), params.sounds),
            });
            if params.prosody {
                word["Feedback"] = prosody_feedback(hash, index as u64);
            }
            word
        })
        .collect();
    let accuracy = round(accuracies.iter().sum::<f64>() / accuracies.len().max(1) as f64, 1);
    let fluency = 60.0 + (mix(hash, 101) % 41) as f64;
    let completeness = 100.0;
    let prosody = params.prosody.then(|| 55.0 + (mix(hash, 102) % 45) as f64);
    let pron_score = if scripted {
        pron_score(
            &[Some(accuracy), Some(fluency), Some(completeness), prosody],
            &[0.4, 0.2, 0.2, 0.2],
            &[0.6, 0.2, 0.2],
        )
    } else {
        pron_score(&[Some(accuracy), Some(fluency), prosody], &[0.6, 0.2, 0.2], &[0.6, 0.4])
    };

    let mut best = json!({
        "Confidence": round(0.85 + (hash >> 8) as f64 % 14.0 / 100.0, 4),
        "Lexical": lexical,
        "ITN": lexical,
        "MaskedITN": lexical,
        "Display": display,
        "AccuracyScore": accuracy * scale,
        "FluencyScore": fluency * scale,
        "CompletenessScore": completeness * scale,
        "PronScore": pron_score * scale,
        "Words": words,
    });
    if let (Some(prosody), Some(best)) = (prosody, best.as_object_mut()) {
        best.insert("ProsodyScore".to_string(), json!(prosody * scale));
    }
    json!({
        "RecognitionStatus": "Success",
        "Offset": offset,
        "Duration": duration,
        "DisplayText": display,
        "SNR": 20.0 + (hash >> 16) as f64 % 200.0 / 10.0,
        "NBest": [best],
    })
}

/// Azure's overall score [AZ-PA]: the available scores sorted ascending, weighted by
/// `with_all` when every score is there (prosody included), else by `without_last`.
pub(super) fn pron_score(scores: &[Option<f64>], with_all: &[f64], without_last: &[f64]) -> f64 {
    let mut present: Vec<f64> = scores.iter().flatten().copied().collect();
    present.sort_by(f64::total_cmp);
    let weights = if present.len() == scores.len() { with_all } else { without_last };
    round(present.iter().zip(weights).map(|(score, weight)| score * weight).sum(), 1)
}
