//! Long readings for tests, and a fake Azure Speech that "hears" them.
//!
//! A reading is espeak-ng's "The North Wind and the Sun" (tests/fixtures/audio/reading, made by
//! scripts/make-reading-fixtures.sh), decoded to 16 kHz and joined with silence of a known
//! length, so the test knows where every sentence and every pause lies. The fake finds each
//! piece it is sent inside the reading (the pieces are exact copies of its samples), and answers
//! with the sentences whose middle the piece holds: their spoken text to a transcription, their
//! words scored to an assessment. Every call is recorded for the test to inspect.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_ai::audio::{Audio, Policy, Purpose, SendFormat, wav};
use base64::Engine;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub const RATE: usize = 16_000;
const TICKS_PER_SAMPLE: u64 = 10_000_000 / RATE as u64;

pub const NORTH_WIND: [&str; 6] = [
    "The North Wind and the Sun were disputing which was the stronger, when a traveler came along wrapped in a warm cloak.",
    "They agreed that the one who first succeeded in making the traveler take his cloak off should be considered stronger than the other.",
    "Then the North Wind blew as hard as he could, but the more he blew the more closely did the traveler fold his cloak around him.",
    "And at last the North Wind gave up the attempt.",
    "Then the Sun shined out warmly, and immediately the traveler took off his cloak.",
    "And so the North Wind was obliged to confess that the Sun was the stronger of the two.",
];

/// One sentence of a reading: where it is, what the text says, what the learner said.
#[derive(Debug, Clone)]
pub struct Sentence {
    pub samples: Range<usize>,
    pub reference: String,
    pub spoken: String,
}

#[derive(Debug, Clone)]
pub struct Reading {
    pub samples: Vec<i16>,
    pub sentences: Vec<Sentence>,
    /// The silences put between sentences.
    pub gaps: Vec<Range<usize>>,
}

fn sentence_pcm(index: usize) -> Vec<i16> {
    let path = format!("{}/tests/fixtures/audio/reading/north-wind-{}.ogg", env!("CARGO_MANIFEST_DIR"), index + 1);
    let bytes = std::fs::read(&path).expect("reading fixture");
    let policy = Policy { max_duration: Duration::from_secs(60), send: SendFormat::Wav };
    Audio::normalise(bytes.into(), Purpose::Transcription, policy).expect("fixture decodes").pcm().expect("pcm")
}

impl Reading {
    /// The passage read `times` times, `pause_ms` of silence between sentences; `spoken` may
    /// change what the learner said in a sentence (by its index in the whole reading).
    pub fn north_wind(times: usize, pause_ms: usize, spoken: &[(usize, &str)]) -> Self {
        let pcm: Vec<Vec<i16>> = (0..NORTH_WIND.len()).map(sentence_pcm).collect();
        let pause = vec![0i16; pause_ms * RATE / 1000];
        let mut reading = Reading { samples: Vec::new(), sentences: Vec::new(), gaps: Vec::new() };
        for round in 0..times {
            for (index, text) in NORTH_WIND.iter().enumerate() {
                if round + index > 0 {
                    let at = reading.samples.len();
                    reading.samples.extend_from_slice(&pause);
                    reading.gaps.push(at..reading.samples.len());
                }
                let start = reading.samples.len();
                reading.samples.extend_from_slice(&pcm[index]);
                let number = reading.sentences.len();
                let said = spoken.iter().find(|(at, _)| *at == number).map_or(*text, |(_, said)| *said);
                reading.sentences.push(Sentence {
                    samples: start..reading.samples.len(),
                    reference: (*text).to_string(),
                    spoken: said.to_string(),
                });
            }
        }
        reading
    }

    pub fn reference_text(&self) -> String {
        self.sentences.iter().map(|sentence| sentence.reference.as_str()).collect::<Vec<_>>().join(" ")
    }

    pub fn wav(&self) -> Vec<u8> {
        wav::encode(&self.samples)
    }

    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / RATE as f64
    }

    /// Where `piece` starts in the reading, found by its first stretch of sound.
    fn locate(&self, piece: &[i16]) -> Option<usize> {
        let first = piece.iter().position(|sample| sample.unsigned_abs() > 200)?;
        let window = &piece[first..(first + 400).min(piece.len())];
        let at = self.samples.windows(window.len()).position(|candidate| candidate == window)?;
        at.checked_sub(first)
    }
}

/// The score the fake gives a word: the same every time; "cloak" is always mispronounced.
pub fn word_accuracy(word: &str) -> f64 {
    if word == "cloak" { 45.0 } else { 60.0 + (word.bytes().map(u64::from).sum::<u64>() % 41) as f64 }
}

/// A piece's prosody score: by the number of sentences it holds.
pub fn piece_prosody(sentences: usize) -> f64 {
    60.0 + 10.0 * (sentences % 4) as f64
}

pub fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|word| !word.is_empty())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Transcribe,
    Assess,
}

/// One word the fake sent, on the whole reading's timeline (samples).
#[derive(Debug, Clone)]
pub struct SentWord {
    pub word: String,
    pub accuracy: f64,
    pub start: usize,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub kind: Kind,
    /// The piece, in the reading's samples (`None`: not found in it).
    pub piece: Option<Range<usize>>,
    pub samples: usize,
    pub reference: Option<String>,
    pub params: Value,
    pub status: u16,
    pub words: Vec<SentWord>,
    pub prosody: Option<f64>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
}

/// The fake Azure: mount with `Mock::given(method("POST")).respond_with(fake.clone())`.
#[derive(Clone)]
pub struct FakeAzure {
    reading: Arc<Reading>,
    state: Arc<Mutex<State>>,
    /// Assessments of the piece holding this sentence answer 503, every time.
    pub failing_sentence: Option<usize>,
}

impl FakeAzure {
    pub fn new(reading: Reading) -> Self {
        Self { reading: Arc::new(reading), state: Arc::default(), failing_sentence: None }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("fake state").calls.clone()
    }

    pub fn assessments(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.kind == Kind::Assess && call.status == 200).collect()
    }

    fn held(&self, piece: &Option<Range<usize>>) -> Vec<&Sentence> {
        let Some(piece) = piece else { return Vec::new() };
        self.reading
            .sentences
            .iter()
            .filter(|sentence| piece.contains(&((sentence.samples.start + sentence.samples.end) / 2)))
            .collect()
    }
}

impl Respond for FakeAzure {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let samples: Vec<i16> = request
            .body
            .get(44..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let piece = self.reading.locate(&samples).map(|start| start..start + samples.len());
        let held = self.held(&piece);
        let params: Value = request
            .headers
            .get("Pronunciation-Assessment")
            .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value.as_bytes()).ok())
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or(Value::Null);
        let kind = if params.is_null() { Kind::Transcribe } else { Kind::Assess };
        let reference = params["ReferenceText"].as_str().map(str::to_string);
        let mut call = Call {
            kind,
            piece: piece.clone(),
            samples: samples.len(),
            reference,
            params: params.clone(),
            status: 200,
            words: Vec::new(),
            prosody: None,
        };
        let duration_ticks = samples.len() as u64 * TICKS_PER_SAMPLE;
        let failing = self.failing_sentence.is_some_and(|failing| {
            held.iter().any(|sentence| std::ptr::eq(*sentence, &self.reading.sentences[failing]))
        });
        let reply = if kind == Kind::Assess && failing {
            call.status = 503;
            ResponseTemplate::new(503).set_body_json(json!({"error": {"code": "503", "message": "busy"}}))
        } else if held.is_empty() {
            ResponseTemplate::new(200).set_body_json(
                json!({"RecognitionStatus": "InitialSilenceTimeout", "Offset": 0, "Duration": duration_ticks}),
            )
        } else if kind == Kind::Transcribe {
            let display = held.iter().map(|sentence| sentence.spoken.as_str()).collect::<Vec<_>>().join(" ");
            let lexical = words_of(&display).join(" ");
            ResponseTemplate::new(200).set_body_json(json!({
                "RecognitionStatus": "Success", "Offset": 0, "Duration": duration_ticks, "DisplayText": display,
                "NBest": [{"Confidence": 0.93, "Lexical": lexical, "ITN": lexical, "MaskedITN": lexical, "Display": display}]
            }))
        } else {
            let start = piece.as_ref().map_or(0, |piece| piece.start);
            let (body, words, prosody) = assessment(&held, start, duration_ticks, &params);
            call.words = words;
            call.prosody = prosody;
            ResponseTemplate::new(200).set_body_json(body)
        };
        self.state.lock().expect("fake state").calls.push(call);
        reply
    }
}

/// A scored answer in the flat REST shape: the sentences' spoken words, each timed evenly
/// over its sentence; reference words of this piece not said are sent as `Omission` (as Azure
/// does with miscue on), said words not in the piece's text as `Insertion`.
fn assessment(
    held: &[&Sentence],
    piece_start: usize,
    duration_ticks: u64,
    params: &Value,
) -> (Value, Vec<SentWord>, Option<f64>) {
    let reference: Vec<String> = words_of(params["ReferenceText"].as_str().unwrap_or_default());
    let mut sent = Vec::new();
    let mut body_words = Vec::new();
    for sentence in held {
        let spoken = words_of(&sentence.spoken);
        let each = sentence.samples.len() / spoken.len().max(1);
        for (index, word) in spoken.iter().enumerate() {
            let start = sentence.samples.start + index * each;
            let accuracy = word_accuracy(word);
            let error = if !reference.contains(word) {
                "Insertion"
            } else if accuracy < 60.0 {
                "Mispronunciation"
            } else {
                "None"
            };
            let offset = (start - piece_start) as u64 * TICKS_PER_SAMPLE;
            let duration = each as u64 * TICKS_PER_SAMPLE;
            let mut word_json = json!({
                "Word": word, "Offset": offset, "Duration": duration, "Confidence": 0.0,
                "AccuracyScore": accuracy, "ErrorType": error,
                "Phonemes": [
                    {"Phoneme": "ð", "AccuracyScore": accuracy, "Offset": offset, "Duration": duration / 2,
                     "NBestPhonemes": [{"Phoneme": "d", "Score": 90.0}, {"Phoneme": "ð", "Score": 40.0}]},
                    {"Phoneme": "ə", "AccuracyScore": 100.0, "Offset": offset + duration / 2, "Duration": duration / 2}
                ],
            });
            if params["EnableProsodyAssessment"].as_str().is_some() {
                word_json["Feedback"] = json!({"Prosody": {
                    "Break": {"ErrorTypes": ["None"], "UnexpectedBreak": {"Confidence": 0.1}, "MissingBreak": {"Confidence": 0.9}, "BreakLength": 0},
                    "Intonation": {"ErrorTypes": [], "Monotone": {"Confidence": 0.2, "WordPitchSlopeConfidence": 0.2, "SyllablePitchDeltaConfidence": 0.5}}
                }});
            }
            body_words.push(word_json);
            sent.push(SentWord { word: word.clone(), accuracy, start, len: each });
        }
    }
    let spoken_all: Vec<String> = held.iter().flat_map(|sentence| words_of(&sentence.spoken)).collect();
    for word in reference.iter().filter(|word| !spoken_all.contains(word)) {
        body_words
            .push(json!({"Word": word, "AccuracyScore": 0.0, "ErrorType": "Omission", "Offset": 0, "Duration": 0}));
    }
    let accuracy = sent.iter().map(|word| word.accuracy).sum::<f64>() / sent.len().max(1) as f64;
    let prosody = params["EnableProsodyAssessment"].as_str().map(|_| piece_prosody(held.len()));
    let display = held.iter().map(|sentence| sentence.spoken.as_str()).collect::<Vec<_>>().join(" ");
    let mut best = json!({
        "Confidence": 0.95, "Lexical": words_of(&display).join(" "), "Display": display,
        "AccuracyScore": accuracy, "FluencyScore": 91.0, "CompletenessScore": 100.0, "PronScore": 87.0,
        "Words": body_words,
    });
    if let Some(prosody) = prosody {
        best["ProsodyScore"] = json!(prosody);
    }
    let body = json!({"RecognitionStatus": "Success", "Offset": 0, "Duration": duration_ticks, "DisplayText": display, "NBest": [best]});
    (body, sent, prosody)
}
