//! What the contract returns for speech: a transcription and a pronunciation assessment.
//! Azure's wire shapes are private to `upstream::azure_speech`; these are ours.

use serde::{Deserialize, Serialize};

/// `data` of `POST /api/transcribe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcription {
    /// Display form (punctuated, capitalised); `""` when no speech was recognised.
    pub text: String,
    /// Lexical form: the words as spoken, no punctuation.
    pub lexical: String,
    /// 0..1, of the best NBest alternative.
    pub confidence: f64,
    /// BCP-47 language the audio was recognised in.
    pub language: String,
    /// Azure's `RecognitionStatus`: `Success`, `NoMatch`, `InitialSilenceTimeout`, `BabbleTimeout`.
    pub status: String,
    pub offset_ms: u64,
    pub duration_ms: u64,
    /// `meta.provider` when not Azure (the transcription fallback made it). Not part of `data`
    /// and never stored: only Azure's transcripts are cached (their key names no provider).
    #[serde(skip)]
    pub provider: Option<crate::domain::provider::Provider>,
}

/// One word of a pronunciation assessment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordScore {
    pub word: String,
    /// 0 for a word the learner skipped (`Omission`).
    pub accuracy_score: f64,
    /// `None`, `Omission`, `Insertion`, `Mispronunciation`, ... as Azure names them.
    pub error_type: String,
    /// On the whole recording's timeline; null for a skipped word.
    pub offset_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The word's sounds, in order; empty for a skipped word.
    #[serde(default)]
    pub phonemes: Vec<PhonemeScore>,
    /// Azure's prosody feedback on the word (en-US), when it sent any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<ProsodyFeedback>,
}

/// One sound of a word.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhonemeScore {
    /// The expected sound: IPA where Azure names sounds for the language (en-US), else null
    /// (the score still stands).
    pub phoneme: Option<String>,
    pub accuracy_score: f64,
    pub offset_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The sound most likely said instead, when it is not the expected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<String>,
    /// Azure's candidates for what was said, best first (`NBestPhonemeCount`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<PhonemeCandidate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhonemeCandidate {
    pub phoneme: String,
    pub score: f64,
}

/// Prosody feedback on one word. Azure sends confidences, not verdicts; `issues` names those at
/// or over 0.75 (Microsoft's suggested threshold) and any error type Azure named itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProsodyFeedback {
    /// Any of `UnexpectedBreak`, `MissingBreak`, `Monotone`.
    pub issues: Vec<String>,
    pub unexpected_break_confidence: Option<f64>,
    pub missing_break_confidence: Option<f64>,
    pub monotone_confidence: Option<f64>,
    /// The pause before the word.
    pub break_length_ms: Option<u64>,
}

/// Scripted (the learner read `reference_text`) or unscripted (free speech, assessed against
/// its own transcript).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Scripted,
    Unscripted,
}

/// One piece of the recording as Azure assessed it (a recording up to 30 s is one piece).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    /// Where the piece starts on the whole recording's timeline.
    pub offset_ms: u64,
    pub duration_ms: u64,
    pub accuracy_score: f64,
    pub fluency_score: f64,
    /// Null when unscripted.
    pub completeness_score: Option<f64>,
    pub prosody_score: Option<f64>,
    pub pronunciation_score: f64,
}

/// `data` of `POST /api/pronunciation`. Scores are on Azure's HundredMark scale (0..100).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pronunciation {
    pub mode: Mode,
    pub recognized_text: String,
    /// Null when unscripted.
    pub reference_text: Option<String>,
    pub accuracy_score: f64,
    pub fluency_score: f64,
    /// Null when unscripted: there is no text the learner could have left out.
    pub completeness_score: Option<f64>,
    /// Only when Azure assessed prosody (en-US).
    pub prosody_score: Option<f64>,
    pub pronunciation_score: f64,
    pub words: Vec<WordScore>,
    /// The pieces the recording was assessed in, in order.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// Azure's `RecognitionStatus`, as for transcription.
    pub status: String,
    /// The audio sent to make it; never stored, so a cached copy sent nothing.
    #[serde(skip)]
    pub sent: crate::usage::record::SentAudio,
}
