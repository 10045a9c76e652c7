use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::accept;
use super::*;
use crate::simulator::SimConfig;
use base64::Engine;

const PATH: &str = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=detailed";
const WAV: &str = "audio/wav; codecs=audio/pcm; samplerate=16000";

/// A canonical 44-byte header (16 kHz, 16-bit, mono) followed by `pcm`.
fn wav(pcm: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(44 + pcm.len());
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
    bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    bytes.extend_from_slice(pcm);
    bytes
}

/// `len` bytes of a noisy, never-silent signal; `seed` changes the recording.
fn speech(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) | 1).collect()
}

/// A valid Ogg Opus stream of `packets` 20 ms packets (pre-skip 312), as the service writes it.
fn ogg_opus(packets: usize) -> Vec<u8> {
    let head = crate::audio::opus::OpusHead {
        channels: 1,
        pre_skip: 312,
        input_rate: 48_000,
        output_gain: 0,
        mapping_family: 0,
        mapping: vec![],
    };
    let packets: Vec<Vec<u8>> = (0..packets).map(|i| vec![0xF8, i as u8, 0x55]).collect();
    crate::audio::ogg_opus::write(&head, packets.iter().map(Vec::as_slice), 0, "test").expect("written").bytes
}

/// A canonical 16 kHz mono 16-bit WAV of `seconds` of a never-silent signal.
fn long_wav(seconds: usize) -> Vec<u8> {
    wav(&speech(seconds * 32_000, 9))
}

fn assessment_header(params: Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(params.to_string())
}

async fn call(
    simulator: Simulator,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::post(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body)).expect("valid request");
    let response = router(simulator).oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

async fn recognise(uri: &str, extra: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, Value) {
    let mut headers = vec![("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", WAV)];
    headers.extend_from_slice(extra);
    let (status, _, json) = call(Simulator::default(), uri, &headers, body).await;
    (status, json)
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_as_apim_does() {
    let (status, _, body) = call(Simulator::default(), PATH, &[("Content-Type", WAV)], wav(&speech(3200, 1))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "401");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.starts_with("Access denied")));
}

#[tokio::test]
async fn a_missing_or_malformed_language_is_an_invalid_cid_or_language() {
    for uri in [
        "/speech/recognition/conversation/cognitiveservices/v1?format=detailed",
        "/speech/recognition/conversation/cognitiveservices/v1?language=english",
        "/speech/recognition/conversation/cognitiveservices/v1?language=en",
        "/speech/recognition/conversation/cognitiveservices/v1?language=en-US%3Bx",
    ] {
        let (status, body) = recognise(uri, &[], wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body, json!({"Message": "Invalid CID or language"}), "{uri}");
    }
}

#[tokio::test]
async fn audio_that_is_not_what_its_content_type_says_is_refused() {
    let headers = |content_type| vec![("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", content_type)];
    for (content_type, body) in [
        ("audio/mpeg", wav(&speech(3200, 1))),
        (WAV, ogg_opus(20)),
        ("audio/ogg; codecs=opus", wav(&speech(3200, 1))),
        (WAV, b"not audio at all".to_vec()),
        (WAV, Vec::new()),
    ] {
        let (status, _, body) = call(Simulator::default(), PATH, &headers(content_type), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}");
        assert!(body["Message"].is_string(), "{content_type}");
    }
}

#[tokio::test]
async fn a_wav_of_silence_times_out_on_initial_silence_without_nbest() {
    let (status, body) = recognise(PATH, &[], wav(&[0; 32_000])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["RecognitionStatus"], "InitialSilenceTimeout");
    assert_eq!(body["Duration"], 10_000_000);
    assert!(body.get("NBest").is_none() && body.get("DisplayText").is_none());
}

#[tokio::test]
async fn detailed_results_are_deterministic_and_timed_from_the_wav_header() {
    let audio = wav(&speech(32_000, 3));
    let (status, first) = recognise(PATH, &[], audio.clone()).await;
    let (_, second) = recognise(PATH, &[], audio).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first, second);
    assert_eq!(first["RecognitionStatus"], "Success");
    let (offset, duration) = (first["Offset"].as_u64(), first["Duration"].as_u64());
    assert_eq!(offset.zip(duration).map(|(o, d)| o + d), Some(10_000_000), "one second of audio");
    let n_best = first["NBest"].as_array().expect("NBest");
    assert!((1..=2).contains(&n_best.len()));
    for alternative in n_best {
        assert!(alternative["Confidence"].is_f64());
        assert!(alternative["Lexical"].is_string() && alternative["Display"].is_string());
    }
    assert!(SENTENCES.contains(&first["DisplayText"].as_str().unwrap_or_default()));
}

#[tokio::test]
async fn different_recordings_get_different_sentences() {
    let mut sentences = std::collections::HashSet::new();
    for seed in 0..24 {
        let (_, body) = recognise(PATH, &[], wav(&speech(3200, seed))).await;
        sentences.insert(body["DisplayText"].as_str().unwrap_or_default().to_string());
    }
    assert!(sentences.len() > 2, "{sentences:?}");
}

#[tokio::test]
async fn a_zero_data_length_header_still_counts_the_audio_that_follows() {
    let mut audio = wav(&speech(16_000, 1));
    audio[40..44].copy_from_slice(&0u32.to_le_bytes());
    let (_, body) = recognise(PATH, &[], audio).await;
    let total = body["Offset"].as_u64().zip(body["Duration"].as_u64()).map(|(o, d)| o + d);
    assert_eq!(total, Some(5_000_000));
}

#[tokio::test]
async fn ogg_opus_is_timed_by_its_final_granule_less_the_pre_skip() {
    let (status, _, body) = call(
        Simulator::default(),
        PATH,
        &[("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", "audio/ogg; codecs=opus")],
        // 100 x 20 ms = 96,000 samples; less 312 of pre-skip: 95,688 = 1.9935 s.
        ogg_opus(100),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["RecognitionStatus"], "Success");
    let total = body["Offset"].as_u64().zip(body["Duration"].as_u64()).map(|(o, d)| o + d);
    assert_eq!(total, Some(95_688 * 10_000_000 / 48_000));
}

#[tokio::test]
async fn a_wav_that_is_not_16_khz_mono_16_bit_or_disagrees_with_its_type_is_refused() {
    let headers = |content_type| vec![("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", content_type)];
    let mut rate = wav(&speech(3200, 1));
    rate[24..28].copy_from_slice(&44_100u32.to_le_bytes());
    let mut stereo = wav(&speech(3200, 1));
    stereo[22..24].copy_from_slice(&2u16.to_le_bytes());
    let mut float = wav(&speech(3200, 1));
    float[20..22].copy_from_slice(&3u16.to_le_bytes());
    let mut wide = wav(&speech(3200, 1));
    wide[34..36].copy_from_slice(&24u16.to_le_bytes());
    for (name, content_type, body) in [
        ("44.1 kHz", WAV, rate),
        ("stereo", WAV, stereo),
        ("float", WAV, float),
        ("24-bit", WAV, wide),
        ("declared 44.1 kHz", "audio/wav; codecs=audio/pcm; samplerate=44100", wav(&speech(3200, 1))),
    ] {
        let (status, _, body) = call(Simulator::default(), PATH, &headers(content_type), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(body["Message"].as_str().is_some_and(|message| !message.is_empty()), "{name}");
    }
}

#[tokio::test]
async fn a_broken_ogg_stream_is_refused() {
    let headers = [("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", "audio/ogg; codecs=opus")];
    let good = ogg_opus(60);
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xFF;
    let mut cut = good.clone();
    cut.truncate(good.len() - 10);
    let mut granule_past_the_packets = good.clone();
    // The last page's granule (bytes 6..14 of its header) made huge, CRC and all: the reader
    // would refuse a bad CRC first, so rebuild the page with the crate's writer instead.
    granule_past_the_packets.clear();
    {
        let mut writer = ogg::writing::PacketWriter::new(&mut granule_past_the_packets);
        let head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec();
        writer.write_packet(head, 7, ogg::writing::PacketWriteEndInfo::EndPage, 0).expect("head");
        writer
            .write_packet(b"OpusTags\0\0\0\0\0\0\0\0".to_vec(), 7, ogg::writing::PacketWriteEndInfo::EndPage, 0)
            .expect("tags");
        writer.write_packet(vec![0xF8, 1], 7, ogg::writing::PacketWriteEndInfo::EndStream, 48_000).expect("audio");
    }
    for (name, body) in
        [("bad CRC", bad_crc), ("cut short", cut), ("granule past the packets", granule_past_the_packets)]
    {
        let (status, _, body) = call(Simulator::default(), PATH, &headers, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(body["Message"].as_str().is_some_and(|m| m.contains("Ogg")), "{name}: {body}");
    }
}

#[tokio::test]
async fn more_than_a_minute_of_short_audio_or_half_a_minute_assessed_is_refused() {
    let (status, body) = recognise(PATH, &[], long_wav(61)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = recognise(PATH, &[], long_wav(59)).await;
    assert_eq!(status, StatusCode::OK);
    let header = assessment_header(json!({"ReferenceText": "Good morning", "GradingSystem": "HundredMark"}));
    let (status, body) = recognise(PATH, &[("Pronunciation-Assessment", &header)], long_wav(31)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A multipart body as Azure fast transcription takes it.
fn fast_request(audio: &[u8], definition: &str) -> (String, Vec<u8>) {
    let boundary = "simulator-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes());
    body.extend_from_slice(audio);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"definition\"\r\n\r\n{definition}\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const FAST_PATH: &str = "/speechtotext/transcriptions:transcribe?api-version=2024-11-15";

#[tokio::test]
async fn fast_transcription_answers_phrases_across_the_whole_recording() {
    let (content_type, body) = fast_request(&long_wav(90), r#"{"locales":["en-US"]}"#);
    let (status, _, answer) = call(
        Simulator::default(),
        FAST_PATH,
        &[("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", &content_type)],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["durationMilliseconds"], 90_000);
    let phrases = answer["phrases"].as_array().expect("phrases");
    assert!(phrases.len() >= 20, "a phrase every few seconds: {}", phrases.len());
    let last = phrases.last().expect("a phrase");
    let end = last["offsetMilliseconds"].as_u64().zip(last["durationMilliseconds"].as_u64()).map(|(o, d)| o + d);
    assert!(end.is_some_and(|end| end > 85_000 && end <= 90_000), "{end:?}");
    assert!(answer["combinedPhrases"][0]["text"].as_str().is_some_and(|text| text.len() > 200));
    assert_eq!(phrases[0]["locale"], "en-US");
}

#[tokio::test]
async fn fast_transcription_refuses_what_azure_refuses() {
    let key = ("Ocp-Apim-Subscription-Key", "key");
    let (content_type, body) = fast_request(&long_wav(2), r#"{"locales":[]}"#);
    let (status, _, answer) =
        call(Simulator::default(), FAST_PATH, &[key, ("Content-Type", &content_type)], body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "InvalidArgument");
    let (content_type, body) = fast_request(b"not audio", r#"{"locales":["en-US"]}"#);
    let (status, _, answer) =
        call(Simulator::default(), FAST_PATH, &[key, ("Content-Type", &content_type)], body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (content_type, body) = fast_request(&long_wav(2), r#"{"locales":["en-US"]}"#);
    let no_version = "/speechtotext/transcriptions:transcribe";
    let (status, _, _) = call(Simulator::default(), no_version, &[key, ("Content-Type", &content_type)], body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (content_type, body) = fast_request(&long_wav(2), r#"{"locales":["en-US"]}"#);
    let (status, _, _) = call(Simulator::default(), FAST_PATH, &[("Content-Type", &content_type)], body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_simple_format_is_served_unless_detailed_is_asked() {
    let uri = "/speech/recognition/conversation/cognitiveservices/v1?language=en-GB";
    let (status, body) = recognise(uri, &[], wav(&speech(3200, 1))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["RecognitionStatus"], "Success");
    assert!(body["DisplayText"].is_string());
    assert!(body.get("NBest").is_none());
}

#[tokio::test]
async fn every_documented_recognition_mode_answers_and_others_do_not_exist() {
    for mode in ["conversation", "interactive", "dictation"] {
        let uri = format!("/speech/recognition/{mode}/cognitiveservices/v1?language=en-US");
        assert_eq!(recognise(&uri, &[], wav(&speech(3200, 1))).await.0, StatusCode::OK, "{mode}");
    }
    let uri = "/speech/recognition/batch/cognitiveservices/v1?language=en-US";
    assert_eq!(recognise(uri, &[], wav(&speech(3200, 1))).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assessment_scores_each_reference_word_with_azures_formula() {
    let header = assessment_header(json!({
        "ReferenceText": "Good morning, I have been living here for three years.",
        "GradingSystem": "HundredMark", "Granularity": "Phoneme", "Dimension": "Comprehensive",
        "EnableMiscue": "True", "EnableProsodyAssessment": "True",
    }));
    let mut saw_mispronunciation = false;
    for seed in 0..12 {
        let (status, body) =
            recognise(PATH, &[("Pronunciation-Assessment", &header)], wav(&speech(64_000, seed))).await;
        assert_eq!(status, StatusCode::OK);
        let best = &body["NBest"][0];
        let words: Vec<&str> =
            best["Words"].as_array().expect("Words").iter().filter_map(|w| w["Word"].as_str()).collect();
        assert_eq!(words, ["good", "morning", "i", "have", "been", "living", "here", "for", "three", "years"]);
        for word in best["Words"].as_array().expect("Words") {
            let accuracy = word["AccuracyScore"].as_f64().expect("AccuracyScore");
            let mispronounced = word["ErrorType"] == "Mispronunciation";
            assert_eq!(mispronounced, accuracy < 60.0, "{word}");
            saw_mispronunciation |= mispronounced;
        }
        let score = |name: &str| best[name].as_f64().expect(name);
        let mut sorted =
            [score("AccuracyScore"), score("FluencyScore"), score("CompletenessScore"), score("ProsodyScore")];
        sorted.sort_by(f64::total_cmp);
        let expected = 0.4 * sorted[0] + 0.2 * sorted[1] + 0.2 * sorted[2] + 0.2 * sorted[3];
        assert!((score("PronScore") - expected).abs() < 0.051, "{best}");
        assert_eq!(body["DisplayText"], "Good morning, I have been living here for three years.");
    }
    assert!(saw_mispronunciation, "some recordings must have a mispronounced word");
}

#[tokio::test]
async fn prosody_is_scored_only_when_asked() {
    let header = assessment_header(json!({"ReferenceText": "Guten Morgen", "GradingSystem": "HundredMark"}));
    let (status, body) = recognise(PATH, &[("Pronunciation-Assessment", &header)], wav(&speech(32_000, 1))).await;
    assert_eq!(status, StatusCode::OK);
    let best = &body["NBest"][0];
    assert!(best.get("ProsodyScore").is_none());
    let score = |name: &str| best[name].as_f64().expect(name);
    let mut sorted = [score("AccuracyScore"), score("FluencyScore"), score("CompletenessScore")];
    sorted.sort_by(f64::total_cmp);
    let expected = 0.6 * sorted[0] + 0.2 * sorted[1] + 0.2 * sorted[2];
    assert!((score("PronScore") - expected).abs() < 0.051, "{best}");
}

#[tokio::test]
async fn an_unreadable_assessment_header_is_refused() {
    for header in ["not base64!", "bm90IGpzb24=" /* "not json" */] {
        let (status, body) = recognise(PATH, &[("Pronunciation-Assessment", header)], wav(&speech(3200, 1))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header}");
        assert!(body["Message"].is_string());
    }
}

#[tokio::test]
async fn drawn_faults_answer_as_a_struggling_azure_would() {
    let headers = [("Ocp-Apim-Subscription-Key", "key"), ("Content-Type", WAV)];
    let limited = Simulator::new(SimConfig { rate_limit_rate: 1.0, retry_after_seconds: 3, ..SimConfig::default() });
    let (status, response_headers, _) = call(limited, PATH, &headers, wav(&speech(3200, 1))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response_headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("3"));

    let failing = Simulator::new(SimConfig { server_error_rate: 1.0, ..SimConfig::default() });
    assert_eq!(call(failing, PATH, &headers, wav(&speech(3200, 1))).await.0, StatusCode::SERVICE_UNAVAILABLE);

    let malformed = Simulator::new(SimConfig { malformed_rate: 1.0, ..SimConfig::default() });
    let (status, _, body) = call(malformed, PATH, &headers, wav(&speech(3200, 1))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["RecognitionStatus"], "Error");
}

#[test]
fn the_lexical_form_is_lower_case_without_punctuation() {
    assert_eq!(lexical("Good morning, how are you today?"), "good morning how are you today");
    assert_eq!(lexical("She doesn't like apples."), "she doesn't like apples");
    assert_eq!(lexical(" ... ! "), "");
}

proptest::proptest! {
    #[test]
    fn any_bytes_after_a_riff_header_are_measured_without_panicking(
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
    ) {
        let mut audio = b"RIFF\0\0\0\0WAVE".to_vec();
        audio.extend_from_slice(&tail);
        if let Ok(speech) = accept::short_audio(Some(WAV), &audio) {
            proptest::prop_assert!(speech.ticks <= audio.len() as u64 * TICKS_PER_SECOND);
        }
    }
}

#[test]
fn truncated_and_odd_wav_headers_never_panic() {
    for len in 0..60 {
        let mut audio = wav(&speech(16, 1));
        audio.truncate(len);
        let _ = accept::short_audio(Some(WAV), &audio);
    }
    let mut huge_chunk = wav(&speech(16, 1));
    huge_chunk[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let _ = accept::short_audio(Some(WAV), &huge_chunk);
}
