//! Whole readings: recordings past Azure's 30 s assessment limit cut at their pauses, each piece
//! assessed with its part of the text, combined into one result by the published formula; free
//! speech; the limits at their edges. Azure is a fake that "hears" espeak-ng's reading
//! (tests/support/reading_fake.rs).

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::helpers::{AZURE_PATH, assert_error, spawn_app_against};

#[path = "../support/reading_fake.rs"]
mod reading_fake;

use reading_fake::{FakeAzure, Kind, RATE, Reading, words_of};

/// What a reading costs its user, and identical readings on two instances paid for once.
mod costs;

const THIRTY_SECONDS: usize = 30 * RATE;

async fn fake_azure(fake: &FakeAzure) -> (MockServer, MockServer) {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).and(path(AZURE_PATH)).respond_with(fake.clone()).mount(&azure).await;
    (azure, gemini)
}

async fn assess(app: &crate::helpers::TestApp, wav: Vec<u8>, reference: Option<&str>) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav).file_name("reading.wav"))
        .text("language", "en-US");
    if let Some(reference) = reference {
        form = form.text("reference_text", reference.to_string());
    }
    app.client.post(app.url("/api/pronunciation")).multipart(form).send().await.expect("sent")
}

async fn data(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// The overall score by the documented weights, written out here again.
fn weighted(mut scores: Vec<f64>) -> f64 {
    scores.sort_by(f64::total_cmp);
    let weights: &[f64] = match scores.len() {
        4 => &[0.4, 0.2, 0.2, 0.2],
        3 => &[0.6, 0.2, 0.2],
        _ => &[0.6, 0.4],
    };
    scores.iter().zip(weights).map(|(score, weight)| score * weight).sum()
}

fn close(actual: &Value, expected: f64, tolerance: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what} is a number: {actual}"));
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not {expected}");
}

#[tokio::test]
async fn a_long_reading_is_cut_in_its_pauses_and_scored_as_one_by_the_formula() {
    let reading = Reading::north_wind(1, 800, &[]);
    assert!(reading.seconds() > 35.0, "{}", reading.seconds());
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;

    let result = data(assess(&app, wav, Some(&reference)).await).await;
    assert_eq!(result["mode"], "scripted");
    assert_eq!(result["reference_text"], reference.as_str());

    // Cut: into pieces of at most 30 s, every cut inside one of the pauses between sentences.
    let pieces = fake.assessments();
    assert!(pieces.len() >= 2, "{pieces:?}");
    let mut spans: Vec<_> =
        pieces.iter().map(|call| call.piece.clone().expect("each piece is part of the reading")).collect();
    spans.sort_by_key(|span| span.start);
    for span in &spans {
        assert!(span.len() <= THIRTY_SECONDS, "a piece of {} samples", span.len());
    }
    for span in spans.iter().skip(1) {
        assert!(reading.gaps.iter().any(|gap| gap.contains(&span.start)), "cut at {} is in no pause", span.start);
    }
    // Each piece was assessed with exactly its sentences' part of the text.
    for call in &pieces {
        let span = call.piece.clone().expect("located");
        let held: Vec<&str> = reading
            .sentences
            .iter()
            .filter(|sentence| span.contains(&sentence.samples.start))
            .map(|sentence| sentence.reference.as_str())
            .collect();
        assert_eq!(call.reference.as_deref(), Some(held.join(" ").as_str()));
        assert_eq!(call.params["PhonemeAlphabet"], "IPA");
    }

    // One segment per piece, on the whole timeline.
    let segments = result["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), spans.len());
    for (segment, span) in segments.iter().zip(&spans) {
        assert_eq!(segment["offset_ms"], (span.start * 1000 / RATE) as u64);
    }

    // Words in order, on the whole recording's timeline.
    let sent: Vec<_> = {
        let mut words: Vec<_> = pieces.iter().flat_map(|call| call.words.clone()).collect();
        words.sort_by_key(|word| word.start);
        words
    };
    let words = result["words"].as_array().expect("words");
    assert_eq!(words.len(), sent.len());
    for (word, expected) in words.iter().zip(&sent) {
        assert_eq!(word["word"], expected.word.as_str());
        close(&word["offset_ms"], expected.start as f64 / 16.0, 1.5, "word offset");
    }
    assert_eq!(words[0]["phonemes"][0]["phoneme"], "ð");
    assert_eq!(words[0]["phonemes"][0]["said"], "d");
    assert_eq!(words[0]["prosody"]["issues"], json!(["MissingBreak"]));

    // The formula, computed here from what the fake sent.
    let accuracy = sent.iter().map(|word| word.accuracy).sum::<f64>() / sent.len() as f64;
    let correct = sent.iter().filter(|word| word.accuracy >= 60.0).count();
    let completeness = correct as f64 / sent.len() as f64 * 100.0;
    let ms = |samples: usize| samples as f64 / 16.0;
    let (first, last) = (&sent[0], &sent[sent.len() - 1]);
    let spoken: f64 = sent.iter().filter(|word| word.accuracy >= 60.0).map(|word| ms(word.len) + 10.0).sum();
    let fluency = spoken / (ms(last.start + last.len) + 10.0 - ms(first.start)) * 100.0;
    let prosody = pieces.iter().filter_map(|call| call.prosody).sum::<f64>() / pieces.len() as f64;
    close(&result["accuracy_score"], accuracy, 0.051, "accuracy");
    close(&result["completeness_score"], completeness, 0.051, "completeness");
    close(&result["fluency_score"], fluency, 0.2, "fluency");
    close(&result["prosody_score"], prosody, 0.051, "prosody");
    close(&result["pronunciation_score"], weighted(vec![accuracy, fluency, completeness, prosody]), 0.2, "overall");

    // Azure's audio seconds: every piece transcribed and assessed, counted per operation.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let counted = |operation: &str| -> f64 {
        let prefix = format!("ai_audio_seconds_total{{operation=\"{operation}\",provider=\"azure_speech\"}} ");
        metrics.lines().find_map(|line| line.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    assert!((counted("pronunciation") - reading.seconds()).abs() < 0.5, "{}", counted("pronunciation"));
    assert!((counted("transcribe") - reading.seconds()).abs() < 0.5, "{}", counted("transcribe"));
}

#[tokio::test]
async fn skipped_words_are_omissions_and_extra_words_insertions_of_the_whole_text() {
    let reading = Reading::north_wind(
        1,
        800,
        &[
            // "warm" skipped; "finally" added.
            (
                0,
                "The North Wind and the Sun were disputing which was the stronger, when a traveler came along wrapped in a cloak.",
            ),
            (3, "And at last the North Wind finally gave up the attempt."),
        ],
    );
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let result = data(assess(&app, wav, Some(&reference)).await).await;

    let words = result["words"].as_array().expect("words");
    let tagged = |text: &str| words.iter().find(|word| word["word"] == text).cloned().unwrap_or(Value::Null);
    let skipped = tagged("warm");
    assert_eq!(skipped["error_type"], "Omission");
    assert_eq!((skipped["offset_ms"].clone(), skipped["accuracy_score"].clone()), (Value::Null, json!(0.0)));
    assert_eq!(tagged("finally")["error_type"], "Insertion");
    let reference_words = words_of(&reference).len();
    assert_eq!(words.iter().filter(|word| word["error_type"] != "Insertion").count(), reference_words);
    // Completeness counts the skip: correct words (neither skipped nor mispronounced) of the text.
    let correct = words.iter().filter(|word| word["error_type"] == "None").count();
    close(&result["completeness_score"], correct as f64 / reference_words as f64 * 100.0, 0.051, "completeness");
    assert!(correct < reference_words);
}

#[tokio::test]
async fn a_piece_that_keeps_failing_fails_the_whole_reading_after_its_retries() {
    let reading = Reading::north_wind(1, 800, &[]);
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let mut fake = FakeAzure::new(reading);
    fake.failing_sentence = Some(5);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[("UPSTREAM_MAX_ATTEMPTS", "3")]).await;
    let body = assert_error(assess(&app, wav, Some(&reference)).await, 503, "upstream_unavailable").await;
    assert!(body.get("data").is_none(), "no partial score: {body}");
    let failed = fake.calls().into_iter().filter(|call| call.kind == Kind::Assess && call.status == 503).count();
    assert_eq!(failed, 3, "the failing piece was tried UPSTREAM_MAX_ATTEMPTS times");
}

#[tokio::test]
async fn free_speech_is_transcribed_then_assessed_against_its_own_transcript() {
    let reading = Reading::north_wind(1, 800, &[]);
    let wav = reading.wav();
    let fake = FakeAzure::new(reading);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let result = data(assess(&app, wav, None).await).await;
    assert_eq!(result["mode"], "unscripted");
    assert_eq!(result["reference_text"], Value::Null);
    assert_eq!(result["completeness_score"], Value::Null);
    let pieces = fake.assessments();
    assert!(pieces.len() >= 2);
    let transcripts = fake.calls().into_iter().filter(|call| call.kind == Kind::Transcribe).collect::<Vec<_>>();
    for call in &pieces {
        let transcript = transcripts.iter().find(|t| t.piece == call.piece).expect("the piece was transcribed first");
        let _ = transcript;
        assert!(call.reference.as_deref().is_some_and(|text| !text.is_empty()));
    }
    // Speaking: no completeness in the overall score.
    let score = |key: &str| result[key].as_f64().expect("score");
    let expected = weighted(vec![score("accuracy_score"), score("fluency_score"), score("prosody_score")]);
    close(&result["pronunciation_score"], expected, 0.15, "overall without completeness");
    assert!(result["segments"].as_array().expect("segments").iter().all(|s| s["completeness_score"].is_null()));
}

#[tokio::test]
async fn short_free_speech_is_one_transcription_then_one_assessment() {
    let reading = Reading::north_wind(1, 800, &[]);
    let sentence = reading.sentences[3].samples.clone();
    let short = Reading { samples: reading.samples[..sentence.end + RATE / 2].to_vec(), ..reading };
    let wav = short.wav();
    let fake = FakeAzure::new(short);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let result = data(assess(&app, wav, None).await).await;
    assert_eq!(result["mode"], "unscripted");
    let calls = fake.calls();
    assert_eq!(calls.iter().map(|call| call.kind).collect::<Vec<_>>(), vec![Kind::Transcribe, Kind::Assess]);
    assert_eq!(result["segments"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn thirty_seconds_is_one_piece_and_a_little_more_is_cut() {
    let reading = Reading::north_wind(1, 800, &[]);
    let exactly = Reading { samples: reading.samples[..THIRTY_SECONDS].to_vec(), ..reading.clone() };
    let fake = FakeAzure::new(exactly.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let result = data(assess(&app, exactly.wav(), Some(&exactly.reference_text())).await).await;
    assert_eq!(result["segments"].as_array().map(Vec::len), Some(1));
    assert!(fake.calls().iter().all(|call| call.kind == Kind::Assess && call.samples == THIRTY_SECONDS));

    let longer = Reading { samples: reading.samples[..THIRTY_SECONDS + RATE / 10].to_vec(), ..reading };
    let fake = FakeAzure::new(longer.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let result = data(assess(&app, longer.wav(), Some(&longer.reference_text())).await).await;
    assert!(result["segments"].as_array().map_or(0, Vec::len) >= 2, "{result}");
    assert!(fake.calls().iter().all(|call| call.samples <= THIRTY_SECONDS));
}

#[tokio::test]
async fn audio_max_seconds_is_accepted_and_a_moment_more_is_413() {
    let reading = Reading::north_wind(1, 800, &[]);
    let fake = FakeAzure::new(reading.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[("AUDIO_MAX_SECONDS", "40")]).await;
    let at_limit = Reading { samples: reading.samples[..40 * RATE].to_vec(), ..reading.clone() };
    let result = data(assess(&app, at_limit.wav(), Some(&at_limit.reference_text())).await).await;
    assert_eq!(result["mode"], "scripted");
    let over = Reading { samples: reading.samples[..40 * RATE + RATE / 2].to_vec(), ..reading };
    assert_error(assess(&app, over.wav(), Some(&over.reference_text())).await, 413, "payload_too_large").await;
}

#[tokio::test]
async fn reference_text_may_be_ten_thousand_characters_and_no_more() {
    let reading = Reading::north_wind(1, 800, &[]);
    let short = Reading { samples: reading.samples[..reading.sentences[0].samples.end].to_vec(), ..reading };
    let fake = FakeAzure::new(short.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let longest =
        format!("{} {}", short.sentences[0].reference, "a".repeat(10_000 - short.sentences[0].reference.len() - 1));
    assert_eq!(longest.chars().count(), 10_000);
    data(assess(&app, short.wav(), Some(&longest)).await).await;
    let too_long = format!("{longest}a");
    assert_error(assess(&app, short.wav(), Some(&too_long)).await, 422, "validation_error").await;
}

#[tokio::test]
async fn the_same_long_reading_again_is_one_cache_entry() {
    let reading = Reading::north_wind(1, 800, &[]);
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let first = data(assess(&app, wav.clone(), Some(&reference)).await).await;
    let calls = fake.calls().len();
    let again = assess(&app, wav, Some(&reference)).await;
    let body: Value = again.json().await.expect("json");
    assert_eq!(body["meta"]["cached"], true);
    assert_eq!(body["data"], first);
    assert_eq!(fake.calls().len(), calls, "no piece was sent again");
}

#[tokio::test]
async fn identical_long_readings_at_once_make_one_set_of_calls() {
    let reading = Reading::north_wind(1, 800, &[]);
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading);
    let (azure, gemini) = fake_azure(&fake).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let (first, second) =
        tokio::join!(assess(&app, wav.clone(), Some(&reference)), assess(&app, wav, Some(&reference)));
    let (first, second) = (data(first).await, data(second).await);
    assert_eq!(first, second);
    let pieces = first["segments"].as_array().map_or(0, Vec::len);
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|call| call.kind == Kind::Assess).count(), pieces, "each piece assessed once");
    assert_eq!(calls.iter().filter(|call| call.kind == Kind::Transcribe).count(), pieces, "and transcribed once");
}
