//! The Azure Speech client against wiremock fakes serving UPSTREAMS.md's payloads, and against
//! the built-in simulator. Only loopback is ever contacted.

use std::collections::HashMap;
use std::time::Duration;

use backend_ai::audio::opus::OpusHead;
use backend_ai::audio::{Audio, Policy, Purpose, ogg_opus};
use backend_ai::domain::jobs::{PronunciationJob, TranscribeJob};
use backend_ai::domain::speech::{Pronunciation, Transcription, WordScore};
use backend_ai::simulator::{SimConfig, Simulator};
use backend_ai::upstream::azure_speech::{AzureSpeechClient, AzureSpeechConfig};
use backend_ai::upstream::{Upstream, UpstreamError};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const RECOGNITION_PATH: &str = "/speech/recognition/conversation/cognitiveservices/v1";

// Verbatim from UPSTREAMS.md 1.6 [AZ-SHORT].
const SIMPLE: &str = r#"{
  "RecognitionStatus": "Success",
  "DisplayText": "Remind me to buy 5 pencils.",
  "Offset": "1236645672289",
  "Duration": "1236645672289"
}"#;

const DETAILED: &str = r#"{
  "RecognitionStatus": "Success",
  "Offset": "1236645672289",
  "Duration": "1236645672289",
  "NBest": [
    {"Confidence": 0.9052885, "Display": "What's the weather like?", "ITN": "what's the weather like", "Lexical": "what's the weather like", "MaskedITN": "what's the weather like"},
    {"Confidence": 0.92459863, "Display": "what is the weather like", "ITN": "what is the weather like", "Lexical": "what is the weather like", "MaskedITN": "what is the weather like"}
  ]
}"#;

// Verbatim from UPSTREAMS.md 1.8 [AZ-SHORT]: REST, HundredMark, Word granularity, prosody on.
const PA_REST_PROSODY: &str = r#"{
  "RecognitionStatus": "Success",
  "Offset": 700000,
  "Duration": 8400000,
  "DisplayText": "Good morning.",
  "SNR": 38.76819,
  "NBest": [
    {
      "Confidence": 0.98503506,
      "Lexical": "good morning",
      "ITN": "good morning",
      "MaskedITN": "good morning",
      "Display": "Good morning.",
      "AccuracyScore": 100.0,
      "FluencyScore": 100.0,
      "ProsodyScore": 87.8,
      "CompletenessScore": 100.0,
      "PronScore": 95.1,
      "Words": [
        {
          "Word": "good",
          "Offset": 700000,
          "Duration": 2600000,
          "Confidence": 0.0,
          "AccuracyScore": 100.0,
          "ErrorType": "None",
          "Feedback": {
            "Prosody": {
              "Break": {
                "ErrorTypes": [
                  "None"
                ],
                "BreakLength": 0
              },
              "Intonation": {
                "ErrorTypes": [],
                "Monotone": {
                  "Confidence": 0.0,
                  "WordPitchSlopeConfidence": 0.0,
                  "SyllablePitchDeltaConfidence": 0.91385907
                }
              }
            }
          }
        },
        {
          "Word": "morning",
          "Offset": 3400000,
          "Duration": 5700000,
          "Confidence": 0.0,
          "AccuracyScore": 100.0,
          "ErrorType": "None",
          "Feedback": {
            "Prosody": {
              "Break": {
                "ErrorTypes": [
                  "None"
                ],
                "UnexpectedBreak": {
                  "Confidence": 3.5294118e-08
                },
                "MissingBreak": {
                  "Confidence": 1.0
                },
                "BreakLength": 0
              },
              "Intonation": {
                "ErrorTypes": [],
                "Monotone": {
                  "Confidence": 0.0,
                  "WordPitchSlopeConfidence": 0.0,
                  "SyllablePitchDeltaConfidence": 0.91385907
                }
              }
            }
          }
        }
      ]
    }
  ]
}"#;

// UPSTREAMS.md 1.8 [AZ-SHORT-OLD]: strings for Offset, Duration and Confidence.
const PA_OLD_STRINGS: &str = r#"{"RecognitionStatus": "Success", "Offset": "400000", "Duration": "11000000",
 "NBest": [{"Confidence": "0.87", "Lexical": "good morning", "ITN": "good morning", "MaskedITN": "good morning",
   "Display": "Good morning.", "PronScore": 84.4, "AccuracyScore": 100.0, "FluencyScore": 74.0, "CompletenessScore": 100.0,
   "Words": [{"Word": "Good", "AccuracyScore": 100.0, "ErrorType": "None", "Offset": 500000, "Duration": 2700000},
             {"Word": "morning", "AccuracyScore": 100.0, "ErrorType": "None", "Offset": 5300000, "Duration": 900000}]}]}"#;

// UPSTREAMS.md 1.8 [AZ-PA]: the Speech SDK's JSON, scores nested, numeric status.
const PA_SDK_NESTED: &str = r#"{
  "Id": "bbb42ea51bdb46d19a1d685e635fe173", "RecognitionStatus": 0, "Offset": 7500000, "Duration": 13800000, "DisplayText": "Hello.",
  "NBest": [{
    "Confidence": 0.975003, "Lexical": "hello", "ITN": "hello", "MaskedITN": "hello", "Display": "Hello.",
    "PronunciationAssessment": {"AccuracyScore": 100, "FluencyScore": 100, "CompletenessScore": 100, "PronScore": 100},
    "Words": [{
      "Word": "hello", "Offset": 7500000, "Duration": 13800000,
      "PronunciationAssessment": {"AccuracyScore": 99.0, "ErrorType": "None"},
      "Syllables": [{"Syllable": "hɛ", "PronunciationAssessment": {"AccuracyScore": 91.0}, "Offset": 7500000, "Duration": 4100000}],
      "Phonemes": [{"Phoneme": "h",
                    "PronunciationAssessment": {"AccuracyScore": 98.0,
                      "NBestPhonemes": [{"Phoneme": "h", "Score": 100.0}, {"Phoneme": "oʊ", "Score": 52.0}]},
                    "Offset": 7500000, "Duration": 3500000}]
    }]
  }]
}"#;

/// A canonical 44-byte header (16 kHz, 16-bit, mono) followed by `pcm`.
fn wav(pcm: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(44 + pcm.len());
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    bytes.extend_from_slice(pcm);
    bytes
}

fn speech_wav() -> Audio {
    let pcm: Vec<u8> = (0..32_000u32).map(|i| (i % 251) as u8 | 1).collect();
    Audio::normalise(Bytes::from(wav(&pcm)), Purpose::Transcription, Policy::default()).expect("a WAV")
}

fn ogg_opus() -> Audio {
    let head =
        OpusHead { channels: 1, pre_skip: 312, input_rate: 48_000, output_gain: 0, mapping_family: 0, mapping: vec![] };
    let packets: Vec<Vec<u8>> = (0..50).map(|i| vec![0xF8, i, 0x42]).collect();
    let ogg = ogg_opus::write(&head, packets.iter().map(Vec::as_slice), 0, "test").expect("written");
    Audio::normalise(Bytes::from(ogg.bytes), Purpose::Transcription, Policy::default()).expect("an Ogg/Opus file")
}

fn transcribe_job(audio: Audio) -> TranscribeJob {
    TranscribeJob { audio, language: "en-US".to_string() }
}

fn assess_job(language: &str, reference_text: &str) -> PronunciationJob {
    PronunciationJob {
        audio: speech_wav(),
        language: language.to_string(),
        reference_text: Some(reference_text.to_string()),
    }
}

fn client_for(server: &MockServer) -> AzureSpeechClient {
    let endpoint = url::Url::parse(&server.uri()).expect("wiremock URI");
    AzureSpeechClient::new(AzureSpeechConfig::with_endpoint(endpoint, KEY.to_string()))
}

/// A fake answering every recognition call with `status` and `body`.
async fn azure_answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RECOGNITION_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json"))
        .mount(&server)
        .await;
    server
}

async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests.len(), 1, "exactly one call upstream");
    requests.remove(0)
}

fn query(request: &wiremock::Request) -> HashMap<String, String> {
    let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let map: HashMap<String, String> = pairs.iter().cloned().collect();
    assert_eq!(map.len(), pairs.len(), "no query parameter is repeated");
    map
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|value| value.to_str().ok())
}

fn decoded_assessment(request: &wiremock::Request) -> Value {
    let encoded = header(request, "Pronunciation-Assessment").expect("Pronunciation-Assessment header");
    // STANDARD insists on canonical padding, so this also proves the encoding is padded.
    let json = base64::engine::general_purpose::STANDARD.decode(encoded).expect("standard padded base64");
    serde_json::from_slice(&json).expect("JSON")
}

fn is_connection_id(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn azure_error(error: UpstreamError) -> UpstreamError {
    assert_eq!(error.upstream(), Upstream::AzureSpeech);
    error
}

// ---- what is sent ----

#[tokio::test]
async fn a_wav_transcription_sends_exactly_the_documented_request() {
    let server = azure_answering(200, DETAILED).await;
    let audio = speech_wav();
    client_for(&server).transcribe(&transcribe_job(audio.clone())).await.expect("transcribed");

    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), RECOGNITION_PATH);
    let query = query(&request);
    assert_eq!(query.len(), 4, "{query:?}");
    assert_eq!(query["language"], "en-US");
    assert_eq!(query["format"], "detailed");
    assert_eq!(query["profanity"], "masked");
    assert!(is_connection_id(&query["X-ConnectionId"]), "{query:?}");
    assert_eq!(header(&request, "Ocp-Apim-Subscription-Key"), Some(KEY));
    assert_eq!(header(&request, "Content-Type"), Some("audio/wav; codecs=audio/pcm; samplerate=16000"));
    assert_eq!(header(&request, "Accept"), Some("application/json"));
    assert_eq!(header(&request, "Pronunciation-Assessment"), None);
    assert_eq!(request.body, audio.payload().bytes.to_vec());
}

#[tokio::test]
async fn an_ogg_opus_transcription_is_sent_as_ogg_with_its_bytes_untouched() {
    let server = azure_answering(200, DETAILED).await;
    let audio = ogg_opus();
    client_for(&server).transcribe(&transcribe_job(audio.clone())).await.expect("transcribed");

    let request = only_request(&server).await;
    assert_eq!(request.url.path(), RECOGNITION_PATH);
    assert_eq!(header(&request, "Content-Type"), Some("audio/ogg; codecs=opus"));
    assert_eq!(header(&request, "Ocp-Apim-Subscription-Key"), Some(KEY));
    assert_eq!(header(&request, "Accept"), Some("application/json"));
    assert_eq!(request.body, audio.payload().bytes.to_vec());
}

#[tokio::test]
async fn an_english_assessment_asks_for_every_dimension_prosody_and_named_sounds() {
    let server = azure_answering(200, PA_REST_PROSODY).await;
    let job = assess_job("en-US", "Good morning.");
    client_for(&server).assess(&job).await.expect("assessed");

    let request = only_request(&server).await;
    assert_eq!(request.url.path(), RECOGNITION_PATH);
    let query = query(&request);
    assert_eq!((query["language"].as_str(), query["format"].as_str()), ("en-US", "detailed"));
    assert!(is_connection_id(&query["X-ConnectionId"]));
    assert_eq!(header(&request, "Content-Type"), Some("audio/wav; codecs=audio/pcm; samplerate=16000"));
    assert_eq!(header(&request, "Ocp-Apim-Subscription-Key"), Some(KEY));
    assert_eq!(
        decoded_assessment(&request),
        json!({
            "ReferenceText": "Good morning.",
            "GradingSystem": "HundredMark",
            "Granularity": "Phoneme",
            "Dimension": "Comprehensive",
            "EnableMiscue": "True",
            "EnableProsodyAssessment": "True",
            // Sounds named in IPA, with what may have been said instead.
            "PhonemeAlphabet": "IPA",
            "NBestPhonemeCount": 5,
        })
    );
    assert_eq!(request.body, job.audio.payload().bytes.to_vec());
}

#[tokio::test]
async fn other_languages_are_assessed_without_prosody_and_keep_unicode_text() {
    let server = azure_answering(200, PA_OLD_STRINGS).await;
    client_for(&server).assess(&assess_job("de-DE", "Schöne Grüße — \"naïve\"\nZeile")).await.expect("assessed");

    let request = only_request(&server).await;
    assert_eq!(query(&request)["language"], "de-DE");
    assert_eq!(
        decoded_assessment(&request),
        json!({
            "ReferenceText": "Schöne Grüße — \"naïve\"\nZeile",
            "GradingSystem": "HundredMark",
            "Granularity": "Phoneme",
            "Dimension": "Comprehensive",
            "EnableMiscue": "True",
        })
    );
}

#[tokio::test]
async fn each_call_carries_a_fresh_connection_id() {
    let server = azure_answering(200, DETAILED).await;
    let client = client_for(&server);
    let job = transcribe_job(speech_wav());
    client.transcribe(&job).await.expect("first");
    client.transcribe(&job).await.expect("second");
    let requests = server.received_requests().await.expect("recording is on");
    let ids: Vec<String> = requests.iter().map(|r| query(r)["X-ConnectionId"].clone()).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn mode_profanity_and_an_endpoint_path_prefix_are_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/private/speech/recognition/dictation/cognitiveservices/v1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(DETAILED, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let endpoint = url::Url::parse(&format!("{}/private/", server.uri())).expect("URL");
    let mut config = AzureSpeechConfig::with_endpoint(endpoint, KEY.to_string());
    config.recognition_mode = "dictation".to_string();
    config.profanity = "raw".to_string();
    AzureSpeechClient::new(config).transcribe(&transcribe_job(speech_wav())).await.expect("transcribed");
    assert_eq!(query(&only_request(&server).await)["profanity"], "raw");
}

// ---- what is read ----

#[tokio::test]
async fn the_simple_format_reads_display_text() {
    let server = azure_answering(200, SIMPLE).await;
    let transcription = client_for(&server).transcribe(&transcribe_job(speech_wav())).await;
    assert_eq!(
        transcription,
        Ok(Transcription {
            text: "Remind me to buy 5 pencils.".to_string(),
            lexical: "Remind me to buy 5 pencils.".to_string(),
            confidence: 0.0,
            language: "en-US".to_string(),
            status: "Success".to_string(),
            offset_ms: 123_664_567,
            duration_ms: 123_664_567,
            provider: None,
        })
    );
}

#[tokio::test]
async fn the_detailed_format_picks_the_most_confident_alternative_not_the_first() {
    let server = azure_answering(200, DETAILED).await;
    let transcription = client_for(&server).transcribe(&transcribe_job(speech_wav())).await;
    assert_eq!(
        transcription,
        Ok(Transcription {
            text: "what is the weather like".to_string(),
            lexical: "what is the weather like".to_string(),
            confidence: 0.92459863,
            language: "en-US".to_string(),
            status: "Success".to_string(),
            offset_ms: 123_664_567,
            duration_ms: 123_664_567,
            provider: None,
        })
    );
}

#[tokio::test]
async fn the_rest_assessment_with_prosody_reads_flat_scores() {
    let server = azure_answering(200, PA_REST_PROSODY).await;
    let mut assessment = client_for(&server).assess(&assess_job("en-US", "Good morning.")).await;
    // Prosody feedback per word: "morning" misses a break with confidence 1.0 (over 0.75).
    let feedback: Vec<_> = assessment
        .iter_mut()
        .flat_map(|assessment| assessment.words.iter_mut())
        .map(|word| word.prosody.take().map(|prosody| prosody.issues))
        .collect();
    assert_eq!(feedback, vec![Some(vec![]), Some(vec!["MissingBreak".to_string()])]);
    assert_eq!(
        assessment,
        Ok(Pronunciation {
            recognized_text: "Good morning.".to_string(),
            reference_text: Some("Good morning.".to_string()),
            accuracy_score: 100.0,
            fluency_score: 100.0,
            completeness_score: Some(100.0),
            prosody_score: Some(87.8),
            pronunciation_score: 95.1,
            words: vec![
                WordScore {
                    word: "good".to_string(),
                    accuracy_score: 100.0,
                    error_type: "None".to_string(),
                    offset_ms: Some(70),
                    duration_ms: Some(260),
                    ..WordScore::default()
                },
                WordScore {
                    word: "morning".to_string(),
                    accuracy_score: 100.0,
                    error_type: "None".to_string(),
                    offset_ms: Some(340),
                    duration_ms: Some(570),
                    ..WordScore::default()
                },
            ],
            status: "Success".to_string(),
            ..Pronunciation::default()
        })
    );
}

#[tokio::test]
async fn the_old_assessment_with_numbers_in_strings_is_read() {
    let server = azure_answering(200, PA_OLD_STRINGS).await;
    let client = client_for(&server);
    let assessment = client.assess(&assess_job("en-US", "Good morning.")).await.expect("assessed");
    assert_eq!((assessment.fluency_score, assessment.pronunciation_score), (74.0, 84.4));
    assert_eq!(assessment.prosody_score, None);
    assert_eq!(
        assessment.words[0],
        WordScore {
            word: "Good".to_string(),
            accuracy_score: 100.0,
            error_type: "None".to_string(),
            offset_ms: Some(50),
            duration_ms: Some(270),
            ..WordScore::default()
        }
    );
    let transcription = client.transcribe(&transcribe_job(speech_wav())).await.expect("transcribed");
    assert_eq!((transcription.confidence, transcription.offset_ms, transcription.duration_ms), (0.87, 40, 1100));
}

#[tokio::test]
async fn the_sdk_shape_with_nested_scores_and_a_numeric_status_is_read() {
    let server = azure_answering(200, PA_SDK_NESTED).await;
    let mut assessment = client_for(&server).assess(&assess_job("en-US", "Hello.")).await;
    // Phonemes nested as the SDK nests them, with their candidates.
    let phonemes = assessment.as_mut().map(|assessment| std::mem::take(&mut assessment.words[0].phonemes));
    let first = phonemes.as_ref().ok().and_then(|phonemes| phonemes.first()).cloned().unwrap_or_default();
    assert_eq!((first.phoneme.as_deref(), first.accuracy_score), (Some("h"), 98.0));
    assert_eq!(first.candidates.first().map(|candidate| candidate.phoneme.as_str()), Some("h"));
    assert_eq!(first.said, None);
    assert_eq!(
        assessment,
        Ok(Pronunciation {
            recognized_text: "Hello.".to_string(),
            reference_text: Some("Hello.".to_string()),
            accuracy_score: 100.0,
            fluency_score: 100.0,
            completeness_score: Some(100.0),
            prosody_score: None,
            pronunciation_score: 100.0,
            words: vec![WordScore {
                word: "hello".to_string(),
                accuracy_score: 99.0,
                error_type: "None".to_string(),
                offset_ms: Some(750),
                duration_ms: Some(1380),
                ..WordScore::default()
            }],
            status: "Success".to_string(),
            ..Pronunciation::default()
        })
    );
}

#[tokio::test]
async fn a_word_without_an_error_type_counts_as_none() {
    let body = r#"{"RecognitionStatus": "Success", "NBest": [{"Confidence": 0.9, "Display": "Hi.", "AccuracyScore": 40,
        "PronScore": 40, "Words": [{"Word": "hi", "AccuracyScore": 40}]}]}"#;
    let server = azure_answering(200, body).await;
    let assessment = client_for(&server).assess(&assess_job("en-US", "Hi.")).await.expect("assessed");
    assert_eq!(assessment.words[0].error_type, "None");
    assert_eq!((assessment.fluency_score, assessment.completeness_score), (0.0, None));
}

#[tokio::test]
async fn nulls_read_as_absent_fields() {
    let body = r#"{"RecognitionStatus": "Success", "Offset": null, "Duration": null, "DisplayText": null,
        "NBest": [{"Confidence": null, "Display": "Hi.", "Lexical": null, "AccuracyScore": 80, "PronScore": 80,
        "ProsodyScore": null, "Words": null}]}"#;
    let server = azure_answering(200, body).await;
    let client = client_for(&server);
    let transcription = client.transcribe(&transcribe_job(speech_wav())).await.expect("transcribed");
    assert_eq!((transcription.text.as_str(), transcription.confidence, transcription.offset_ms), ("Hi.", 0.0, 0));
    let assessment = client.assess(&assess_job("en-US", "Hi.")).await.expect("assessed");
    assert_eq!((assessment.pronunciation_score, assessment.prosody_score), (80.0, None));
    assert!(assessment.words.is_empty());
}

#[tokio::test]
async fn no_speech_statuses_are_results_with_empty_text() {
    for status in [json!("NoMatch"), json!("InitialSilenceTimeout"), json!("BabbleTimeout"), json!(1)] {
        let body = json!({"RecognitionStatus": status, "Offset": 0, "Duration": 30_000_000}).to_string();
        let server = azure_answering(200, &body).await;
        let client = client_for(&server);
        let transcription = client.transcribe(&transcribe_job(speech_wav())).await.expect("a result");
        let expected = if status == json!(1) { "NoMatch" } else { status.as_str().unwrap_or_default() };
        assert_eq!(transcription.status, expected);
        assert_eq!((transcription.text.as_str(), transcription.duration_ms), ("", 3000));
        let assessment = client.assess(&assess_job("en-US", "Hello")).await.expect("a result");
        assert_eq!(assessment.status, expected);
        assert_eq!(assessment.recognized_text, "");
        assert_eq!(assessment.pronunciation_score, 0.0);
        assert!(assessment.words.is_empty());
    }
}

#[tokio::test]
async fn the_in_body_error_status_is_a_transient_server_failure() {
    let server = azure_answering(200, r#"{"RecognitionStatus": "Error", "Offset": 0, "Duration": 0}"#).await;
    let client = client_for(&server);
    for error in [
        client.transcribe(&transcribe_job(speech_wav())).await.expect_err("Error status"),
        client.assess(&assess_job("en-US", "Hello")).await.expect_err("Error status"),
    ] {
        assert!(matches!(azure_error(error.clone()), UpstreamError::Server { status: 200, .. }), "{error:?}");
        assert!(error.retry().is_some());
    }
}

#[tokio::test]
async fn an_unknown_status_is_kept_as_sent() {
    let server = azure_answering(200, r#"{"RecognitionStatus": "EndOfDictation", "Offset": 0, "Duration": 0}"#).await;
    let transcription = client_for(&server).transcribe(&transcribe_job(speech_wav())).await.expect("a result");
    assert_eq!(transcription.status, "EndOfDictation");
}

#[tokio::test]
async fn an_assessment_success_without_scores_is_not_reported_as_zero() {
    let server = azure_answering(200, DETAILED).await;
    let error = client_for(&server).assess(&assess_job("en-US", "Hello")).await.expect_err("no scores");
    assert!(matches!(azure_error(error), UpstreamError::InvalidResponse { .. }));
}

#[tokio::test]
async fn unreadable_success_bodies_are_invalid_responses() {
    for body in [
        "<html>upstream proxy</html>",
        "",
        "[]",
        r#"{"DisplayText": "no status"}"#,
        r#"{"RecognitionStatus": "Success", "Offset": "soon"}"#,
        r#"{"RecognitionStatus": "Success", "NBest": {"not": "a list"}}"#,
    ] {
        let server = azure_answering(200, body).await;
        let error = client_for(&server).transcribe(&transcribe_job(speech_wav())).await.expect_err(body);
        assert!(matches!(azure_error(error.clone()), UpstreamError::InvalidResponse { .. }), "{body}: {error:?}");
    }
}

// ---- HTTP errors ----

async fn error_for(status: u16, body: &str, retry_after: Option<&str>) -> UpstreamError {
    let server = MockServer::start().await;
    let mut template =
        ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json; charset=utf-8");
    if let Some(retry_after) = retry_after {
        template = template.insert_header("Retry-After", retry_after);
    }
    Mock::given(method("POST")).respond_with(template).mount(&server).await;
    azure_error(client_for(&server).transcribe(&transcribe_job(speech_wav())).await.expect_err("an error status"))
}

#[tokio::test]
async fn a_400_is_rejected_with_azures_message() {
    let error = error_for(400, r#"{"Message": "Invalid CID or language"}"#, None).await;
    assert_eq!(
        error,
        UpstreamError::Rejected {
            upstream: Upstream::AzureSpeech,
            status: 400,
            message: "Invalid CID or language".to_string()
        }
    );
    assert_eq!(error.retry(), None);
}

#[tokio::test]
async fn a_401_or_403_is_an_auth_failure_whatever_the_body() {
    let apim =
        r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}"#;
    match error_for(401, apim, None).await {
        UpstreamError::Auth { message, .. } => assert!(message.starts_with("Access denied"), "{message}"),
        other => panic!("expected Auth, got {other:?}"),
    }
    assert!(matches!(error_for(403, "", None).await, UpstreamError::Auth { .. }));
}

#[tokio::test]
async fn a_429_carries_retry_after_in_seconds() {
    let body = r#"{"error":{"code":"429","message":"Please retry after 1 second"}}"#;
    assert_eq!(
        error_for(429, body, Some("7")).await,
        UpstreamError::RateLimited {
            upstream: Upstream::AzureSpeech,
            retry_after: Some(Duration::from_secs(7)),
            per_day: false
        }
    );
}

#[tokio::test]
async fn a_429_carries_retry_after_given_as_an_http_date() {
    let in_an_hour = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    match error_for(429, "", Some(&in_an_hour)).await {
        UpstreamError::RateLimited { retry_after: Some(wait), per_day: false, .. } => {
            assert!(wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600), "{wait:?}")
        }
        other => panic!("expected RateLimited with a wait, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_without_a_readable_retry_after_leaves_the_wait_to_the_retry_layer() {
    for retry_after in [None, Some("tomorrow")] {
        assert!(matches!(
            error_for(429, "", retry_after).await,
            UpstreamError::RateLimited { retry_after: None, per_day: false, .. }
        ));
    }
}

#[tokio::test]
async fn timeouts_and_server_errors_are_transient() {
    for status in [408, 500, 502, 503, 504] {
        let error = error_for(status, "<html><body>Service Unavailable</body></html>", None).await;
        assert!(matches!(&error, UpstreamError::Server { status: s, .. } if *s == status), "{error:?}");
        assert!(error.retry().is_some());
    }
}

#[tokio::test]
async fn a_5xx_or_408_with_retry_after_carries_that_wait_for_the_retry_layer() {
    for status in [408, 500, 503] {
        let error = error_for(status, "", Some("2")).await;
        assert_eq!(error.retry(), Some(Some(Duration::from_secs(2))), "{status}: {error:?}");
    }
    let in_a_minute = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    let Some(Some(wait)) = error_for(503, "", Some(&in_a_minute)).await.retry() else {
        panic!("a 503 with an HTTP-date Retry-After is retried after it");
    };
    assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
}

#[tokio::test]
async fn other_client_errors_are_rejections_and_any_body_is_tolerated() {
    let bodies = ["", "not json", r#"{"error": "a string"}"#, r#"{"code": "UnsupportedMediaType", "message": "no"}"#];
    for (status, body) in [404, 413, 415, 422].into_iter().zip(bodies) {
        let error = error_for(status, body, None).await;
        assert!(matches!(&error, UpstreamError::Rejected { status: s, .. } if *s == status), "{error:?}");
    }
    match error_for(415, r#"{"code": "UnsupportedMediaType", "message": "wrong codec"}"#, None).await {
        UpstreamError::Rejected { message, .. } => assert_eq!(message, "wrong codec"),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let endpoint = url::Url::parse(&format!("http://{address}")).expect("URL");
    let client = AzureSpeechClient::new(AzureSpeechConfig::with_endpoint(endpoint, KEY.to_string()));
    let error = client.transcribe(&transcribe_job(speech_wav())).await.expect_err("nobody listens");
    assert!(matches!(azure_error(error.clone()), UpstreamError::Unreachable { .. }), "{error:?}");
}

// ---- against the built-in simulator ----

async fn simulator_client(config: SimConfig) -> AzureSpeechClient {
    let address = Simulator::new(config).spawn().await.expect("simulator on loopback");
    let endpoint = url::Url::parse(&format!("http://{address}")).expect("URL");
    AzureSpeechClient::new(AzureSpeechConfig::with_endpoint(endpoint, KEY.to_string()))
}

#[tokio::test]
async fn the_client_reads_the_simulators_transcriptions_and_assessments() {
    let client = simulator_client(SimConfig::default()).await;
    let transcription = client.transcribe(&transcribe_job(speech_wav())).await.expect("transcribed");
    assert_eq!(transcription.status, "Success");
    assert!(!transcription.text.is_empty() && transcription.confidence > 0.5);
    assert_eq!(transcription.offset_ms + transcription.duration_ms, 1000);

    let assessment = client.assess(&assess_job("en-US", "I like green tea.")).await.expect("assessed");
    let words: Vec<&str> = assessment.words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(words, ["i", "like", "green", "tea"]);
    assert!(assessment.prosody_score.is_some());
    assert!((0.0..=100.0).contains(&assessment.pronunciation_score));

    let silence =
        Audio::normalise(Bytes::from(wav(&[0; 16_000])), Purpose::Transcription, Policy::default()).expect("a WAV");
    let quiet = client.transcribe(&transcribe_job(silence)).await.expect("a result");
    assert_eq!((quiet.status.as_str(), quiet.text.as_str()), ("InitialSilenceTimeout", ""));
}

#[tokio::test]
async fn the_simulators_faults_reach_the_client_as_upstream_errors() {
    let limited = simulator_client(SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 3, ..SimConfig::default() });
    assert_eq!(
        limited.await.transcribe(&transcribe_job(speech_wav())).await,
        Err(UpstreamError::RateLimited {
            upstream: Upstream::AzureSpeech,
            retry_after: Some(Duration::from_secs(3)),
            per_day: false
        })
    );
    let malformed = simulator_client(SimConfig { malformed_rate: 1.0, ..SimConfig::default() }).await;
    let error = malformed.transcribe(&transcribe_job(speech_wav())).await.expect_err("Error status");
    assert!(matches!(error, UpstreamError::Server { status: 200, .. }));
}
