//! What a long reading costs: its user's usage counts every second sent to Azure (each piece
//! transcribed and then assessed), the audio budget holds to that figure, a repeat served from
//! the cache costs nothing, and two instances on one Redis sent the same reading at once pay
//! for it once.

use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond};

use super::fake_azure;
use super::reading_fake::{FakeAzure, Kind, RATE, Reading};
use crate::cache::HANG_GUARD;
use crate::helpers::redis_support::RedisServer;
use crate::helpers::{AZURE_PATH, TestApp, assert_error, spawn_app_against};

async fn assess_as(app: &TestApp, user: &str, wav: Vec<u8>, reference: Option<&str>) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new()
        .part("audio", reqwest::multipart::Part::bytes(wav).file_name("reading.wav"))
        .text("language", "en-US");
    if let Some(reference) = reference {
        form = form.text("reference_text", reference.to_string());
    }
    app.client
        .post(app.url("/api/pronunciation"))
        .header("X-User-ID", user)
        .multipart(form)
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("assessment answered")
}

async fn answered(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, 200, "{body}");
    body
}

/// Today's counts of `user` once they show `requests` requests (usage is written off the
/// response path).
async fn counted(app: &TestApp, user: &str, requests: u64) -> Value {
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let response = app.client.get(app.url(&format!("/api/usage?user_id={user}"))).send().await.expect("usage");
        let body: Value = response.json().await.expect("JSON body");
        let day = body["data"]["days"][0].clone();
        if day["requests"].as_u64().unwrap_or(0) >= requests {
            return day;
        }
        assert!(tokio::time::Instant::now() < give_up, "{requests} requests never counted: {day}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seconds of audio the fake Azure answered, from the WAVs it received.
fn received_seconds(fake: &FakeAzure) -> f64 {
    fake.calls().iter().filter(|call| call.status == 200).map(|call| call.samples as f64 / RATE as f64).sum()
}

fn seconds(day: &Value) -> f64 {
    day["audio_seconds"].as_f64().unwrap_or_else(|| panic!("audio_seconds is a number: {day}"))
}

#[tokio::test]
async fn a_long_reading_costs_its_user_every_second_sent_and_its_repeat_costs_none() {
    let reading = Reading::north_wind(1, 800, &[]);
    assert!(reading.seconds() > 30.0 && reading.seconds() < 60.0, "{}", reading.seconds());
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading.clone());
    let (azure, gemini) = fake_azure(&fake).await;
    // Enough for the recording's length once, not for what reading it in pieces sends.
    let budget = (reading.seconds().ceil() as u64 + 5).to_string();
    let app = spawn_app_against(&azure, &gemini, &[("USER_DAILY_AUDIO_SECONDS", budget.as_str())]).await;

    let first = answered(assess_as(&app, "reader", wav.clone(), Some(&reference)).await).await;
    assert_eq!(first["meta"]["cached"], false);
    let calls = fake.calls();
    let transcribed = calls.iter().filter(|call| call.kind == Kind::Transcribe).count();
    assert!(fake.assessments().len() >= 2 && transcribed == fake.assessments().len(), "{calls:?}");
    let sent = received_seconds(&fake);
    assert!(sent > 2.0 * reading.seconds() - 1.0, "each piece is sent twice: {sent}");
    let day = counted(&app, "reader", 1).await;
    // Whole milliseconds per reading: within a millisecond per call of the exact sum.
    assert!((seconds(&day) - sent).abs() <= 0.001 * calls.len() as f64, "{day} against {sent} s received");

    // The same reading again: the cache answers, Azure hears nothing, the user pays nothing.
    let repeat = answered(assess_as(&app, "reader", wav.clone(), Some(&reference)).await).await;
    assert_eq!(repeat["meta"]["cached"], true);
    assert_eq!(repeat["data"], first["data"]);
    assert_eq!(fake.calls().len(), calls.len());
    let day = counted(&app, "reader", 2).await;
    assert!((seconds(&day) - sent).abs() <= 0.001 * calls.len() as f64, "{day}");
    assert_eq!(day["cache_hits"], 1);

    // The budget reads the same figure: past it, a reading not in the cache is refused unsent.
    let refused = assess_as(&app, "reader", wav, None).await;
    let body = assert_error(refused, 429, "budget_exceeded").await;
    assert!(body["error"].as_str().is_some_and(|message| message.contains("audio")), "{body}");
    assert_eq!(fake.calls().len(), calls.len());
}

#[tokio::test]
async fn the_same_long_reading_on_two_instances_at_once_is_sent_to_azure_once() {
    let redis = RedisServer::start();
    let reading = Reading::north_wind(1, 800, &[]);
    let (wav, reference) = (reading.wav(), reading.reference_text());
    let fake = FakeAzure::new(reading.clone());
    // Each call takes a while, so the second instance finds the first one's reading in flight.
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST")).and(path(AZURE_PATH)).respond_with(Slow(fake.clone())).mount(&azure).await;
    let url = redis.url();
    let vars = [("CACHE_MODE", "redis_only"), ("REDIS_URL", url.as_str()), ("REDIS_TIMEOUT_MS", "1000")];
    let (a, b) = (spawn_app_against(&azure, &gemini, &vars).await, spawn_app_against(&azure, &gemini, &vars).await);

    let (first, second) = tokio::join!(
        assess_as(&a, "reader-a", wav.clone(), Some(&reference)),
        assess_as(&b, "reader-b", wav.clone(), Some(&reference)),
    );
    let (first, second) = (answered(first).await, answered(second).await);
    assert_eq!(first["data"], second["data"]);
    assert_eq!(first["data"]["mode"], "scripted");

    // One set of calls: every piece transcribed once and assessed once.
    let calls = fake.calls();
    let pieces = |kind: Kind| {
        let mut spans: Vec<_> = calls
            .iter()
            .filter(|call| call.kind == kind)
            .map(|call| call.piece.clone().map(|s| (s.start, s.end)))
            .collect();
        spans.sort();
        spans
    };
    let (transcribed, assessed) = (pieces(Kind::Transcribe), pieces(Kind::Assess));
    assert!(assessed.len() >= 2, "{calls:?}");
    assert_eq!(transcribed, assessed, "{calls:?}");
    let mut distinct = assessed.clone();
    distinct.dedup();
    assert_eq!(distinct, assessed, "a piece was sent twice: {calls:?}");

    // The second waited for the first one's lease and read its result back.
    let shared = |metrics: &str| {
        let prefix = "single_flight_shared_total{operation=\"pronunciation\",scope=\"remote\"} ";
        metrics.lines().find_map(|line| line.strip_prefix(prefix)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let metrics_a = a.get("/metrics").await.text().await.expect("metrics");
    let metrics_b = b.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(shared(&metrics_a) + shared(&metrics_b), 1, "{metrics_a}\n{metrics_b}");
    assert_eq!([&first, &second].iter().filter(|body| body["meta"]["cached"] == true).count(), 1);

    // Only the reading that made the calls paid for them.
    let sent = received_seconds(&fake);
    let (day_a, day_b) = (counted(&a, "reader-a", 1).await, counted(&b, "reader-b", 1).await);
    assert!((seconds(&day_a) + seconds(&day_b) - sent).abs() <= 0.001 * calls.len() as f64, "{day_a} {day_b}");
}

/// The fake Azure, answering after a second.
struct Slow(FakeAzure);

impl Respond for Slow {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0.respond(request).set_delay(Duration::from_secs(1))
    }
}
