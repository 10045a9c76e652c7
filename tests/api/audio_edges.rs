//! Recordings at the edges of what the contract says: exactly 60 s (still short audio), 29.99 to
//! 30.00 s for pronunciation whatever the format, no audio at all, an ID3 tag in front of a FLAC,
//! an Opus stream whose packets claim ten minutes they do not hold, and ten minutes of stereo
//! Opus, which must be decoded, not refused for taking too long.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::audio_checks::{long_wav, read_fixture, wav_frames};
use crate::helpers::{AZURE_PATH, TestApp, assert_error, spawn_app, spawn_app_against};

#[path = "../support/opus_recording.rs"]
mod opus_recording;

use opus_recording::stereo_ogg_opus;

const FAST_PATH: &str = "/speechtotext/transcriptions:transcribe";

fn upload(bytes: impl Into<bytes::Bytes>, file_name: &str) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::stream(reqwest::Body::from(bytes.into()))
        .file_name(file_name.to_string())
        .mime_str("application/octet-stream")
        .expect("mime");
    reqwest::multipart::Form::new().part("audio", part)
}

async fn post(app: &TestApp, route: &str, form: reqwest::multipart::Form) -> reqwest::Response {
    app.client.post(app.url(route)).multipart(form).send().await.expect("sent")
}

async fn ok(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status.as_u16(), 200, "{what}: {body}");
    body
}

/// An Ogg stream of mono or stereo Opus whose `packets` are all `packet`.
fn ogg_opus_of(channels: u8, packet: &[u8], packets: usize) -> Vec<u8> {
    use ogg::writing::{PacketWriteEndInfo, PacketWriter};
    let samples_per_packet = 6 * 960u64;
    let mut pages = PacketWriter::new(Vec::new());
    let head = [b"OpusHead".as_slice(), &[1, channels, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]].concat();
    pages.write_packet(head, 1, PacketWriteEndInfo::EndPage, 0).expect("head");
    let tags = [b"OpusTags".as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0]].concat();
    pages.write_packet(tags, 1, PacketWriteEndInfo::EndPage, 0).expect("tags");
    for index in 0..packets {
        let end = if index + 1 == packets {
            PacketWriteEndInfo::EndStream
        } else if index % 200 == 199 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        pages.write_packet(packet.to_vec(), 1, end, (index as u64 + 1) * samples_per_packet).expect("packet");
    }
    pages.into_inner()
}

async fn azure_answering(expected_short: u64, expected_fast: u64) -> MockServer {
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(AZURE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"RecognitionStatus": "Success", "DisplayText": "Hello.", "Offset": 0, "Duration": 10_000_000}),
        ))
        .expect(expected_short)
        .mount(&azure)
        .await;
    Mock::given(method("POST"))
        .and(path(FAST_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "durationMilliseconds": 61000,
            "combinedPhrases": [{"text": "Hello."}],
            "phrases": [{"offsetMilliseconds": 0, "durationMilliseconds": 500, "text": "Hello.",
                "locale": "en-US", "confidence": 0.9}]
        })))
        .expect(expected_fast)
        .mount(&azure)
        .await;
    azure
}

#[tokio::test]
async fn ten_minutes_of_stereo_opus_are_decoded_and_transcribed_whole() {
    let app = spawn_app(&[]).await;
    // What a phone's stereo recorder makes of a ten-minute answer: 2.4 MB at 32 kbps.
    let recording = stereo_ogg_opus(600.0, 32);
    let body = ok(post(&app, "/api/transcribe", upload(recording, "answer.opus")).await, "600 s stereo Opus").await;
    // The simulator times what fast transcription received: the whole ten minutes.
    let end = body["data"]["offset_ms"].as_u64().unwrap_or(0) + body["data"]["duration_ms"].as_u64().unwrap_or(0);
    assert!(end > 590_000 && end <= 600_000, "Azure heard {end} ms of 600 s: {body}");
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(metrics.contains(r#"audio_inputs_total{action="transcode",codec="opus",container="ogg"} 1"#), "{metrics}");
}

#[tokio::test]
async fn recordings_of_exactly_60_s_in_transcoded_formats_go_to_short_audio() {
    let gemini = MockServer::start().await;
    let azure = azure_answering(3, 0).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    for (name, recording) in [
        ("44.1 kHz mono WAV", long_wav(44_100, 1, 60).to_vec()),
        ("22.05 kHz stereo WAV", long_wav(22_050, 2, 60).to_vec()),
        ("48 kHz stereo Opus", stereo_ogg_opus(60.0, 32)),
    ] {
        let _ = ok(post(&app, "/api/transcribe", upload(recording, "memo")).await, name).await;
    }
}

#[tokio::test]
async fn pronunciation_takes_up_to_30_s_in_one_piece_and_a_moment_more_in_two_in_any_format() {
    let app = spawn_app(&[]).await;
    let recordings = [
        ("30.00 s 16 kHz WAV", wav_frames(16_000, 1, 480_000)),
        ("30.00 s 44.1 kHz stereo WAV", wav_frames(44_100, 2, 1_323_000)),
        ("29.99 s 44.1 kHz stereo WAV", wav_frames(44_100, 2, 1_322_559)),
        ("30.00 s 48 kHz mono WAV", wav_frames(48_000, 1, 1_440_000)),
        ("30.00 s 8 kHz mono WAV", wav_frames(8_000, 1, 240_000)),
        ("30.00 s stereo Opus", bytes::Bytes::from(stereo_ogg_opus(30.0, 32))),
        ("29.99 s stereo Opus", bytes::Bytes::from(stereo_ogg_opus(29.99, 32))),
    ];
    for (name, recording) in recordings {
        let form = upload(recording, "reading").text("reference_text", "I go to the store yesterday");
        let body = ok(post(&app, "/api/pronunciation", form).await, name).await;
        assert!(body["data"]["pronunciation_score"].is_number(), "{name}: {body}");
    }
    // One sample more than 30 s is assessed in two pieces, in every format.
    for (name, recording) in [
        ("30.00 s + 1 sample 16 kHz WAV", wav_frames(16_000, 1, 480_001)),
        ("30.01 s 44.1 kHz stereo WAV", wav_frames(44_100, 2, 1_323_441)),
        ("30.01 s stereo Opus", bytes::Bytes::from(stereo_ogg_opus(30.01, 32))),
    ] {
        let form = upload(recording, "reading").text("reference_text", "I go to the store yesterday");
        let body = ok(post(&app, "/api/pronunciation", form).await, name).await;
        assert_eq!(body["data"]["segments"].as_array().map(Vec::len), Some(2), "{name}: {body}");
    }
}

#[tokio::test]
async fn audio_with_nothing_in_it_is_refused_without_calling_azure() {
    let gemini = MockServer::start().await;
    let azure = azure_answering(0, 0).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    let headers_only_opus = ogg_opus_of(1, &[0xF8, 0x01], 0);
    for (name, recording) in [
        ("an empty file", Vec::new()),
        ("a 16 kHz WAV header and no samples", wav_frames(16_000, 1, 0).to_vec()),
        ("a 44.1 kHz stereo WAV header and no samples", wav_frames(44_100, 2, 0).to_vec()),
        ("Ogg/Opus headers and no packets", headers_only_opus),
    ] {
        for route in ["/api/transcribe", "/api/pronunciation"] {
            let form = upload(recording.clone(), "empty").text("reference_text", "Hello");
            let response = post(&app, route, form).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            assert!((400..500).contains(&status) && status != 413, "{name} on {route}: {status} {body}");
            assert_eq!(body["success"], false, "{name}: {body}");
            let message = body["error"].as_str().unwrap_or_default();
            let says_so = ["no audio", "empty", "before its first audio"].iter().any(|words| message.contains(words));
            assert!(says_so, "{name} on {route}: {body}");
        }
    }
}

#[tokio::test]
async fn a_flac_behind_an_id3_tag_is_labelled_flac_for_fast_transcription() {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(FAST_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "durationMilliseconds": 61000, "combinedPhrases": [{"text": ""}], "phrases": []
        })))
        .expect(1)
        .mount(&azure)
        .await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    // A tag as taggers write it: ID3v2.4, a title frame, syncsafe size 23.
    let mut recording = b"ID3\x04\x00\x00\x00\x00\x00\x17TIT2\x00\x00\x00\x0d\x00\x00\x03A reading.\x00\x00".to_vec();
    recording.extend_from_slice(&read_fixture("flac-61s-silence.flac"));
    let _ = ok(post(&app, "/api/transcribe", upload(recording, "reading.flac")).await, "ID3 + FLAC").await;

    let request = &azure.received_requests().await.expect("recorded")[0];
    let body = &request.body;
    let find = |needle: &[u8]| body.windows(needle.len()).position(|window| window == needle);
    assert!(find(b"Content-Type: audio/flac").or(find(b"content-type: audio/flac")).is_some(), "labelled FLAC");
    assert!(find(b"audio/mpeg").is_none() && find(br#"filename="audio.flac""#).is_some());
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(metrics.contains(r#"audio_inputs_total{action="transcode",codec="flac",container="flac"} 1"#), "{metrics}");
}

#[tokio::test]
async fn an_opus_stream_claiming_ten_minutes_it_does_not_hold_never_reaches_azure() {
    let gemini = MockServer::start().await;
    let azure = azure_answering(0, 0).await;
    let app = spawn_app_against(&azure, &gemini, &[]).await;
    // Code 3 packets of six 20 ms CELT frames of no bytes at all: 120 ms claimed by two bytes,
    // 600 s in 15.6 KB. libopus conceals such frames as lost; there is no audio in them.
    let packet = [0xFB, 0x06];
    for channels in [1, 2] {
        let recording = ogg_opus_of(channels, &packet, 5000);
        assert!(recording.len() < 16_000, "{}", recording.len());
        let response = post(&app, "/api/transcribe", upload(recording, "claim.opus")).await;
        let body = assert_error(response, 422, "validation_error").await;
        assert!(body["error"].as_str().is_some_and(|message| message.contains("no audio")), "{channels}: {body}");
    }
}
