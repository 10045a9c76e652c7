//! Admission to the audio routes by the bytes a request really holds (`AUDIO_BYTES_IN_FLIGHT`):
//! a class submitting together is served, a client that holds its upload open holds nothing,
//! and long recordings' 16 kHz output is counted while it is decoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, assert_error, spawn_app, wav_tone};

/// 146 KB, as the class recording: 4.6 s of 16 kHz WAV.
const SMALL: usize = 73_000;
const MIB: usize = 1024 * 1024;

/// A small recording, different for each `index` (so nothing is cached or merged).
fn recording(index: usize) -> Vec<u8> {
    let mut wav = wav_tone(SMALL);
    wav[44..52].copy_from_slice(&(index as u64).to_le_bytes());
    wav
}

fn upload(bytes: Vec<u8>) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("a.wav").mime_str("audio/wav").expect("mime");
    reqwest::multipart::Form::new().part("audio", part).text("language", "en-US")
}

/// `count` uploads at once, of `recording(pick(i))`; their statuses.
async fn uploads_at_once(app: &TestApp, count: usize, pick: fn(usize) -> usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let (client, url) = (app.client.clone(), app.url("/api/transcribe"));
            tokio::spawn(async move {
                let response = client.post(url).multipart(upload(recording(pick(index)))).send().await.expect("sent");
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(count);
    for task in tasks {
        statuses.push(task.await.expect("joined"));
    }
    statuses
}

/// A loopback file server for `audio_url`: `/clip/N.wav` is `recording(N)`.
async fn recordings_server() -> MockServer {
    let server = MockServer::start().await;
    for index in 0..200 {
        Mock::given(method("GET"))
            .and(path_regex(format!("^/clip/{index}\\.wav$")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(recording(index)))
            .mount(&server)
            .await;
    }
    server
}

async fn by_url_at_once(app: &TestApp, files: &MockServer, count: usize, pick: fn(usize) -> usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let (client, url) = (app.client.clone(), app.url("/api/transcribe"));
            let audio_url = format!("{}/clip/{}.wav", files.uri(), pick(index));
            tokio::spawn(async move {
                let response = client.post(url).json(&json!({"audio_url": audio_url})).send().await.expect("sent");
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(count);
    for task in tasks {
        statuses.push(task.await.expect("joined"));
    }
    statuses
}

fn all_ok(statuses: &[u16]) -> bool {
    statuses.iter().all(|&status| status == 200)
}

fn reserved(app: &TestApp) -> i64 {
    app.state.metrics.audio_bytes_reserved.get()
}

/// The gauge's highest reading while `watching` holds, sampled every millisecond.
fn watch_gauge(app: &TestApp) -> (Arc<AtomicBool>, Arc<AtomicI64>, tokio::task::JoinHandle<()>) {
    let (watching, highest) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicI64::new(0)));
    let gauge = app.state.metrics.audio_bytes_reserved.clone();
    let (flag, peak) = (watching.clone(), highest.clone());
    let task = tokio::spawn(async move {
        while flag.load(Ordering::Relaxed) {
            peak.fetch_max(gauge.get(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    (watching, highest, task)
}

#[tokio::test]
async fn two_hundred_small_uploads_at_once_are_all_transcribed_cached_or_not() {
    let app = spawn_app(&[("UPSTREAM_TIMEOUT_SECONDS", "60")]).await;
    let fresh = uploads_at_once(&app, 200, |index| index).await;
    assert!(all_ok(&fresh), "{fresh:?}");
    // The same 200 again: answered from the cache, and still each one read and admitted.
    let cached = uploads_at_once(&app, 200, |index| index).await;
    assert!(all_ok(&cached), "{cached:?}");
    // And 200 of one recording at once: the cache and single-flight merge them.
    let same = uploads_at_once(&app, 200, |_| 7).await;
    assert!(all_ok(&same), "{same:?}");
    assert_eq!(reserved(&app), 0, "every byte given back once the answers are sent");
}

#[tokio::test]
async fn two_hundred_small_recordings_by_audio_url_at_once_are_all_transcribed_cached_or_not() {
    let files = recordings_server().await;
    let app = spawn_app(&[("AUDIO_FETCH_ALLOW_PRIVATE", "true"), ("UPSTREAM_TIMEOUT_SECONDS", "60")]).await;
    let fresh = by_url_at_once(&app, &files, 200, |index| index).await;
    assert!(all_ok(&fresh), "{fresh:?}");
    let cached = by_url_at_once(&app, &files, 200, |index| index).await;
    assert!(all_ok(&cached), "{cached:?}");
    // The class: forty of one recording at once, which answered 30 of 40 with 503.
    let class = by_url_at_once(&app, &files, 40, |_| 3).await;
    assert!(all_ok(&class), "{class:?}");
    assert_eq!(reserved(&app), 0);
}

/// Ten uploads that declare 10 MB and ten JSON requests that declare 1 KB, each sending its head
/// and a few bytes, then nothing.
async fn held_requests(app: &TestApp) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream
            .write_all(
                b"POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n\
                  Content-Length: 10485760\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\r\nRIFF",
            )
            .await
            .expect("head");
        held.push(stream);
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream
            .write_all(b"POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"audio_url\":")
            .await
            .expect("head");
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn requests_that_hold_their_bodies_open_do_not_close_the_audio_routes_to_others() {
    let app = spawn_app(&[("UPSTREAM_TIMEOUT_SECONDS", "60")]).await;
    let held = held_requests(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reserved(&app) < MIB as i64, "twenty held requests hold {} bytes", reserved(&app));
    let statuses = uploads_at_once(&app, 40, |index| 1000 + index).await;
    assert!(all_ok(&statuses), "{statuses:?}");
    drop(held);
}

/// An upload that declares `declared` bytes and sends `sent` of them, then nothing.
async fn hold_upload(app: &TestApp, declared: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(app.address).await.expect("connect");
    let head = format!(
        "POST /api/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {declared}\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&wav_tone(sent / 2 + 1)[..sent]).await.expect("body");
    stream
}

/// Room for two 1.9 MB uploads being received, not three.
const TIGHT: [(&str, &str); 2] = [("AUDIO_MAX_BYTES", "2000000"), ("AUDIO_BYTES_IN_FLIGHT", "4400000")];

#[tokio::test]
async fn an_upload_that_does_not_fit_waits_for_room_and_is_served_when_it_frees() {
    let app = spawn_app(&[TIGHT[0], TIGHT[1], ("AUDIO_BYTES_WAIT_MS", "20000")]).await;
    let first = hold_upload(&app, 2_000_000, 1_900_000).await;
    let _second = hold_upload(&app, 2_000_000, 1_900_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reserved(&app) >= 3_800_000, "the held uploads hold what they sent: {}", reserved(&app));
    let waiting = {
        let (client, url) = (app.client.clone(), app.url("/api/transcribe"));
        tokio::spawn(async move { client.post(url).multipart(upload(wav_tone(950_000))).send().await.expect("sent") })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the third upload waits for room instead of being refused at once");
    drop(first);
    let response = waiting.await.expect("joined");
    assert_eq!(response.status().as_u16(), 200, "served once the first upload's bytes came back");
}

#[tokio::test]
async fn past_its_wait_an_upload_that_does_not_fit_is_refused_503_with_retry_after() {
    let app = spawn_app(&[TIGHT[0], TIGHT[1], ("AUDIO_BYTES_WAIT_MS", "200")]).await;
    let _first = hold_upload(&app, 2_000_000, 1_900_000).await;
    let _second = hold_upload(&app, 2_000_000, 1_900_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = app.client.post(app.url("/api/transcribe")).multipart(upload(wav_tone(950_000))).send().await;
    let response = response.expect("sent");
    assert!(response.headers().get("retry-after").is_some());
    assert_error(response, 503, "overloaded").await;
    // Analyses hold no recording: they are served meanwhile.
    assert_eq!(app.post_json("/api/analyze", &json!({"text": "I goes home."})).await.status().as_u16(), 200);
}

/// One long upload; its status and the body.
async fn upload_long(app: &TestApp, recording: Vec<u8>) -> (u16, serde_json::Value) {
    let part = reqwest::multipart::Part::bytes(recording).file_name("long.wav");
    let form = reqwest::multipart::Form::new().part("audio", part);
    let response = app.client.post(app.url("/api/transcribe")).multipart(form).send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Past the 60 s short-audio limit in a form fast transcription does not take, so it gets a
/// 16 kHz WAV made here: 62 s of 8 kHz WAV streamed without sizes (1 MB), copied with its sizes,
/// then decoded to 2 MB of output, held twice while its WAV is written. Cheap to decode even in
/// a debug build on a busy machine; `bench/admission-memory.sh` runs the 10-minute AAC attack on
/// the release binary. Each `index` differs in its last bytes.
fn long_recording(index: usize) -> Vec<u8> {
    let mut recording = streamed_wav_8k(62);
    recording.extend_from_slice(&(index as u64).to_le_bytes());
    recording
}

/// `seconds` of an 8 kHz mono 16-bit tone, its RIFF and data sizes left 0xFFFFFFFF as a
/// streaming writer leaves them.
fn streamed_wav_8k(seconds: usize) -> Vec<u8> {
    let mut wav = wav_tone(seconds * 8000);
    wav[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    wav[24..28].copy_from_slice(&8000u32.to_le_bytes());
    wav[28..32].copy_from_slice(&16_000u32.to_le_bytes());
    wav[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    wav
}

const LONG: [(&str, &str); 3] =
    [("AUDIO_MAX_BYTES", "1048576"), ("AUDIO_WORKERS", "2"), ("UPSTREAM_TIMEOUT_SECONDS", "60")];

#[tokio::test]
async fn a_long_recordings_16_khz_output_is_counted_while_it_is_held() {
    let app = spawn_app(&LONG).await;
    let (watching, highest, watcher) = watch_gauge(&app);
    let recording = long_recording(0);
    let body = recording.len() as i64;
    let (status, answer) = upload_long(&app, recording).await;
    watching.store(false, Ordering::Relaxed);
    watcher.await.expect("joined");
    assert_eq!(status, 200, "{answer}");
    let highest = highest.load(Ordering::Relaxed);
    // 62 s of 16 kHz output is 2 MB, held twice while its WAV is written.
    assert!(highest > body + 2 * 1_984_000, "{highest} bytes counted for a {body}-byte upload");
    assert_eq!(reserved(&app), 0);
}

#[tokio::test]
async fn long_recordings_at_once_stay_within_the_budget_and_wait_or_are_refused() {
    // Room for about one long recording's body, copy and output at a time (5.9 MB).
    let budget = 8 * MIB;
    let budget_text = budget.to_string();
    let mut vars = LONG.to_vec();
    vars.extend([("AUDIO_BYTES_IN_FLIGHT", budget_text.as_str()), ("AUDIO_BYTES_WAIT_MS", "2000")]);
    let app = spawn_app(&vars).await;
    let (watching, highest, watcher) = watch_gauge(&app);
    let tasks: Vec<_> = (0..6)
        .map(|index| {
            let app_url = app.url("/api/transcribe");
            let client = app.client.clone();
            let recording = long_recording(index);
            tokio::spawn(async move {
                let part = reqwest::multipart::Part::bytes(recording).file_name("long.wav");
                let form = reqwest::multipart::Form::new().part("audio", part);
                let response = client.post(app_url).multipart(form).send().await.expect("sent");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                (status, body)
            })
        })
        .collect();
    let mut served = 0;
    for task in tasks {
        let (status, body) = task.await.expect("joined");
        match status {
            200 => served += 1,
            503 => assert_eq!(body["code"], "overloaded", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    watching.store(false, Ordering::Relaxed);
    watcher.await.expect("joined");
    let highest = highest.load(Ordering::Relaxed);
    assert!(served >= 1, "at least the first fits");
    assert!(highest <= budget as i64, "the gauge read {highest} against a budget of {budget}");
    assert_eq!(reserved(&app), 0);
}
