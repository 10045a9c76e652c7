//! Azure Speech short-audio REST bodies as they really arrive (UPSTREAMS.md 1.6 and 1.8): private
//! to the client, lenient where the documentation itself is inconsistent, and ignorant of every
//! field we do not use.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The `Pronunciation-Assessment` header's JSON, before base64 (UPSTREAMS.md 1.8). Field order
/// is the documentation's; the values are strings, as the documentation writes them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AssessmentParams<'a> {
    pub reference_text: &'a str,
    pub grading_system: &'static str,
    pub granularity: &'static str,
    pub dimension: &'static str,
    pub enable_miscue: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_prosody_assessment: Option<&'static str>,
    /// `IPA` where Azure names the sounds (en-US); the default is SAPI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phoneme_alphabet: Option<&'static str>,
    /// What the learner may have said instead, per sound.
    #[serde(rename = "NBestPhonemeCount", skip_serializing_if = "Option::is_none")]
    pub n_best_phoneme_count: Option<u8>,
}

/// One recognition result, simple or detailed format, REST or Speech SDK shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RecognitionResponse {
    /// Required: a 200 without it is not a recognition result at all.
    pub recognition_status: RecognitionStatus,
    #[serde(default, deserialize_with = "number")]
    pub offset: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub duration: Option<f64>,
    /// Simple format, and the PA example; "present only on success".
    #[serde(default)]
    pub display_text: Option<String>,
    #[serde(default, rename = "NBest", deserialize_with = "list")]
    pub n_best: Vec<Alternative>,
}

/// The in-body status. The REST API sends names; the Speech SDK's JSON sends the enum's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RecognitionStatus {
    Success,
    NoMatch,
    InitialSilenceTimeout,
    BabbleTimeout,
    Error,
    /// Anything else (e.g. the SDK's `EndOfDictation`), kept as sent.
    Other(String),
}

impl RecognitionStatus {
    fn from_name(name: &str) -> Self {
        match name {
            "Success" => Self::Success,
            "NoMatch" => Self::NoMatch,
            "InitialSilenceTimeout" => Self::InitialSilenceTimeout,
            "BabbleTimeout" => Self::BabbleTimeout,
            "Error" => Self::Error,
            other => Self::Other(other.to_string()),
        }
    }

    /// The Speech SDK's `RecognitionStatus` enum order: Success, NoMatch, InitialSilenceTimeout,
    /// BabbleTimeout, Error, EndOfDictation.
    fn from_index(index: u64) -> Self {
        match index {
            0 => Self::Success,
            1 => Self::NoMatch,
            2 => Self::InitialSilenceTimeout,
            3 => Self::BabbleTimeout,
            4 => Self::Error,
            5 => Self::Other("EndOfDictation".to_string()),
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "Success",
            Self::NoMatch => "NoMatch",
            Self::InitialSilenceTimeout => "InitialSilenceTimeout",
            Self::BabbleTimeout => "BabbleTimeout",
            Self::Error => "Error",
            Self::Other(other) => other,
        }
    }
}

impl<'de> Deserialize<'de> for RecognitionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;

        impl Visitor<'_> for StatusVisitor {
            type Value = RecognitionStatus;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a RecognitionStatus name or index")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(RecognitionStatus::from_name(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(RecognitionStatus::from_index(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(RecognitionStatus::Other(value.to_string()))
            }
        }

        deserializer.deserialize_any(StatusVisitor)
    }
}

/// One `NBest` entry. Scores sit flat on it in the REST shape and under
/// `PronunciationAssessment` in the SDK shape; both are read, flat first.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Alternative {
    #[serde(default, deserialize_with = "number")]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub lexical: Option<String>,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(flatten)]
    pub scores: Scores,
    #[serde(default)]
    pub pronunciation_assessment: Option<Scores>,
    #[serde(default, deserialize_with = "list")]
    pub words: Vec<Word>,
}

impl Alternative {
    pub fn score(&self, pick: impl Fn(&Scores) -> Option<f64>) -> Option<f64> {
        pick(&self.scores).or_else(|| self.pronunciation_assessment.as_ref().and_then(pick))
    }
}

/// Scores of an alternative or a word, wherever they sit.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Scores {
    #[serde(default, deserialize_with = "number")]
    pub accuracy_score: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub fluency_score: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub completeness_score: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub prosody_score: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub pron_score: Option<f64>,
    #[serde(default)]
    pub error_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Word {
    #[serde(default)]
    pub word: String,
    #[serde(default, deserialize_with = "number")]
    pub offset: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub duration: Option<f64>,
    #[serde(flatten)]
    pub scores: Scores,
    #[serde(default)]
    pub pronunciation_assessment: Option<Scores>,
    #[serde(default, deserialize_with = "list")]
    pub phonemes: Vec<Phoneme>,
    #[serde(default)]
    pub feedback: Option<Feedback>,
}

/// One sound of a word: scores flat (REST) or under `PronunciationAssessment` (SDK shape).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Phoneme {
    #[serde(default)]
    pub phoneme: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub offset: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub duration: Option<f64>,
    #[serde(flatten)]
    pub scores: PhonemeScores,
    #[serde(default)]
    pub pronunciation_assessment: Option<PhonemeScores>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PhonemeScores {
    #[serde(default, deserialize_with = "number")]
    pub accuracy_score: Option<f64>,
    #[serde(default, rename = "NBestPhonemes", deserialize_with = "list")]
    pub n_best_phonemes: Vec<PhonemeCandidate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PhonemeCandidate {
    #[serde(default)]
    pub phoneme: String,
    #[serde(default, deserialize_with = "number")]
    pub score: Option<f64>,
}

impl Phoneme {
    pub fn accuracy(&self) -> Option<f64> {
        self.scores.accuracy_score.or_else(|| self.pronunciation_assessment.as_ref()?.accuracy_score)
    }

    pub fn candidates(&self) -> &[PhonemeCandidate] {
        match &self.pronunciation_assessment {
            Some(nested) if self.scores.n_best_phonemes.is_empty() => &nested.n_best_phonemes,
            _ => &self.scores.n_best_phonemes,
        }
    }
}

/// `Feedback.Prosody` of a word (en-US with prosody on).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Feedback {
    #[serde(default)]
    pub prosody: Option<ProsodyFeedback>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ProsodyFeedback {
    #[serde(default, rename = "Break")]
    pub pause: Option<Break>,
    #[serde(default)]
    pub intonation: Option<Intonation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Break {
    #[serde(default, deserialize_with = "list")]
    pub error_types: Vec<String>,
    #[serde(default)]
    pub unexpected_break: Option<Confidence>,
    #[serde(default)]
    pub missing_break: Option<Confidence>,
    #[serde(default, deserialize_with = "number")]
    pub break_length: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Intonation {
    #[serde(default, deserialize_with = "list")]
    pub error_types: Vec<String>,
    #[serde(default)]
    pub monotone: Option<Confidence>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Confidence {
    #[serde(default, deserialize_with = "number")]
    pub confidence: Option<f64>,
}

impl Word {
    pub fn accuracy(&self) -> Option<f64> {
        self.scores.accuracy_score.or_else(|| self.pronunciation_assessment.as_ref()?.accuracy_score)
    }

    pub fn error_type(&self) -> Option<&str> {
        self.scores.error_type.as_deref().or_else(|| self.pronunciation_assessment.as_ref()?.error_type.as_deref())
    }
}

/// A list, with `null` read as an empty one.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A JSON number, or a string holding one (the docs quote `Offset`, `Duration` and `Confidence`
/// both ways); `null` reads as absent. A string that is not a finite number is an error: the
/// body is then not the documented shape.
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct NumberVisitor;

    impl Visitor<'_> for NumberVisitor {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Ok(Some(value))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            Ok(Some(value as f64))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok(Some(value as f64))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            match value.trim().parse::<f64>() {
                Ok(number) if number.is_finite() => Ok(Some(number)),
                _ => Err(E::invalid_value(de::Unexpected::Str(value), &self)),
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(NumberVisitor)
}

/// The error bodies seen on Speech hosts: `{"Message": ..}` (short audio, observed 400),
/// `{"error": {"code", "message"}}` (APIM, other Speech APIs) and the Speech REST `Error`
/// schema `{"code", "message"}`. Every field optional: an error body never fails to parse.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default, rename = "Message")]
    pub message_pascal: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<InnerError>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct InnerError {
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorBody {
    pub fn into_message(self) -> Option<String> {
        self.message_pascal.or(self.message).or(self.error.and_then(|error| error.message))
    }
}
