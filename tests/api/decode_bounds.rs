//! Decoding bounded by the work a recording really holds: files that claim billions of packets
//! are refused in the envelope, a recording waits a bounded time for a decoding worker, and a
//! decoding whose client went away stops. (CPU per hostile file: `tests/hostile_uploads.rs`,
//! which measures the real binary.)

use std::time::Duration;

use crate::helpers::audio_checks::{long_wav, read_fixture};
use crate::helpers::{TestApp, assert_error, spawn_app};

#[path = "../support/hostile_audio.rs"]
mod hostile_audio;

fn upload(bytes: Vec<u8>) -> reqwest::multipart::Form {
    let part =
        reqwest::multipart::Part::bytes(bytes).file_name("blob").mime_str("application/octet-stream").expect("mime");
    reqwest::multipart::Form::new().part("audio", part)
}

async fn transcribe(app: &TestApp, bytes: Vec<u8>) -> reqwest::Response {
    let request = app.client.post(app.url("/api/transcribe")).multipart(upload(bytes)).send();
    // Before these bounds, the first file cost minutes of CPU: fail, don't hang.
    tokio::time::timeout(Duration::from_secs(120), request).await.expect("answered").expect("sent")
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.expect("text")
}

/// A recording that takes seconds to decode in a test build: 50 s of 44.1 kHz stereo (8.8 MB),
/// resampled to 16 kHz.
fn slow_to_decode() -> Vec<u8> {
    let frames = 50 * 44_100;
    let mut wav = crate::helpers::wav_tone(frames * 2);
    wav[22..24].copy_from_slice(&2u16.to_le_bytes());
    wav[24..28].copy_from_slice(&44_100u32.to_le_bytes());
    wav[28..32].copy_from_slice(&(44_100u32 * 4).to_le_bytes());
    wav[32..34].copy_from_slice(&4u16.to_le_bytes());
    wav
}

async fn until(app: &TestApp, what: &str, done: impl Fn(&str) -> bool) {
    for _ in 0..600 {
        if done(&metrics(app).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {}", metrics(app).await);
}

#[tokio::test]
async fn a_fragmented_mp4_whose_run_claims_four_billion_empty_samples_is_refused() {
    let app = spawn_app(&[]).await;
    // The run on the audio track, and on a second track the reader skips.
    for track in [1, 2] {
        let file = hostile_audio::mp4_endless_run(track);
        assert!(file.len() < 1_200, "{} bytes", file.len());
        let body = assert_error(transcribe(&app, file).await, 422, "validation_error").await;
        assert!(body["error"].as_str().is_some_and(|error| error.contains("MP4")), "{body}");
    }
}

#[tokio::test]
async fn matroska_blocks_laced_with_nothing_are_refused_whichever_track_they_are_on() {
    let app = spawn_app(&[]).await;
    for track in [1, 2] {
        let file = hostile_audio::matroska_empty_laced_blocks(track, 1_000_000);
        let body = assert_error(transcribe(&app, file).await, 422, "validation_error").await;
        assert!(body["error"].as_str().is_some_and(|error| error.contains("in a row")), "track {track}: {body}");
    }
}

#[tokio::test]
async fn a_stream_of_packets_that_decode_to_nothing_is_refused() {
    let app = spawn_app(&[]).await;
    let good = std::fs::read("tests/fixtures/audio/adts-aac.aac").expect("fixture");
    // Nothing but frames the decoder refuses after the first good one.
    let file = hostile_audio::adts_mostly_damaged(&good[..good.len() / 2], 2_000, 400_000);
    let body = assert_error(transcribe(&app, file).await, 422, "validation_error").await;
    assert!(body["error"].as_str().is_some_and(|error| error.contains("hold no audio")), "{body}");
}

#[tokio::test]
async fn small_files_of_eight_channels_at_high_rates_are_refused_once_they_decode_more_than_stereo_48k_would() {
    // A limit of 60 s keeps the test quick in a debug build: 61 s of stereo 48 kHz, 5.9 million
    // samples. The files are past the default's 58 million too: 7.9 KB claiming 30 s of 8
    // channels at 384 kHz (92 million samples), 18 KB claiming 200 s of 8 channels at 48 kHz (77
    // million).
    let app = spawn_app(&[("AUDIO_MAX_SECONDS", "60")]).await;
    let files = [
        ("flac-8ch-384k-30s-silence.flac", "FLAC audio of 8 channels at 384000 Hz"),
        ("vorbis-8ch-48k-200s-silence.ogg", "Ogg audio of 8 channels at 48000 Hz"),
    ];
    for (file, what) in files {
        let body =
            assert_error(transcribe(&app, read_fixture(file).to_vec()).await, 415, "unsupported_media_type").await;
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(what) && error.contains("more samples than 61 s of stereo 48 kHz"), "{file}: {body}");
    }
    assert!(metrics(&app).await.contains(r#"audio_inputs_total{action="rejected",codec="flac",container="flac"} 1"#));
}

#[tokio::test]
async fn recordings_of_up_to_stereo_48k_for_the_longest_length_still_decode() {
    let app = spawn_app(&[("AUDIO_MAX_SECONDS", "20")]).await;
    // The budget: 21 s (the limit and a second of overrun) of stereo 48 kHz, 2,016,000 samples.
    let stereo_to_the_limit = long_wav(48_000, 2, 20).to_vec();
    assert_eq!(transcribe(&app, stereo_to_the_limit).await.status().as_u16(), 200);
    let eight_channels_within = long_wav(48_000, 8, 5).to_vec();
    assert_eq!(transcribe(&app, eight_channels_within).await.status().as_u16(), 200);
    // Past the length limit, stereo 48 kHz is too long (413), not too much.
    let stereo_too_long = long_wav(48_000, 2, 23).to_vec();
    assert_error(transcribe(&app, stereo_too_long).await, 413, "payload_too_large").await;
    let eight_channels_past = long_wav(48_000, 8, 6).to_vec();
    let body = assert_error(transcribe(&app, eight_channels_past).await, 415, "unsupported_media_type").await;
    assert!(body["error"].as_str().is_some_and(|error| error.contains("21 s of stereo 48 kHz")), "{body}");
}

#[tokio::test]
async fn a_recording_that_finds_every_decoder_busy_is_told_to_come_back() {
    let app = spawn_app(&[("AUDIO_WORKERS", "1"), ("AUDIO_QUEUE_WAIT_SECONDS", "0")]).await;
    let busy = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/api/transcribe"));
        async move { client.post(url).multipart(upload(slow_to_decode())).send().await.expect("sent").status() }
    });
    until(&app, "the first recording is being decoded", |metrics| metrics.contains("audio_workers_busy 1")).await;
    let refused = transcribe(&app, crate::helpers::wav_tone(16_000)).await;
    assert_eq!(refused.headers().get("retry-after").and_then(|value| value.to_str().ok()), Some("1"));
    let body = assert_error(refused, 503, "overloaded").await;
    assert!(body["error"].as_str().is_some_and(|error| error.contains("busy")), "{body}");
    assert_eq!(busy.await.expect("joined").as_u16(), 200, "the recording that had the worker is served");
}

#[tokio::test]
async fn a_client_that_goes_away_stops_its_decoding_and_frees_the_worker() {
    let app = spawn_app(&[("AUDIO_WORKERS", "1")]).await;
    let gone = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/api/transcribe"));
        async move { client.post(url).multipart(upload(slow_to_decode())).send().await }
    });
    until(&app, "the recording is being decoded", |metrics| metrics.contains("audio_workers_busy 1")).await;
    gone.abort();
    until(&app, "the decoding stopped", |metrics| {
        metrics.contains("audio_workers_busy 0")
            && metrics.contains(r#"audio_inputs_total{action="cancelled",codec="pcm",container="wav"} 1"#)
    })
    .await;
    let decoded_to_the_end = r#"audio_inputs_total{action="transcode",codec="pcm",container="wav"} 1"#;
    assert!(!metrics(&app).await.contains(decoded_to_the_end));
    // The worker is free for the next learner.
    let served = transcribe(&app, crate::helpers::wav_tone(16_000)).await;
    assert_eq!(served.status().as_u16(), 200);
}
