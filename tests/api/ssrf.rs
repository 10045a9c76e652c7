//! SSRF through the HTTP API: hostile `audio_url`s posted to /api/transcribe and
//! /api/pronunciation are refused with 422 `validation_error`, and nothing they name is ever
//! connected to.
//!
//! Every URL here names loopback (in one of its many spellings) or nothing at all, so even a
//! broken guard could only reach this machine: the tests never aim anything elsewhere. The
//! private, link-local and metadata classes are proven on the pure functions in
//! `src/audio/address.rs` and `src/audio/fetch.rs`. What is aimed at is a [`Tripwire`], a
//! listener that counts TCP connections, so "not fetched" means not even a connection.

use std::net::SocketAddr;

use backend_ai::app::{ApiLayers, router};
use backend_ai::audio::budget::AudioBudget;
use backend_ai::audio::{AudioFetcher, FetchPolicy, Policy as AudioPolicy, Preparer};
use backend_ai::config::Settings;
use backend_ai::metrics::Metrics;
use backend_ai::middleware::audio_budget::AudioBudgetLayer;
use backend_ai::middleware::auth::ApiKeys;
use backend_ai::middleware::rate_limit::RateLimitLayer;
use backend_ai::readiness::Readiness;
use backend_ai::state::{AppState, Inner};
use serde_json::json;
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::tripwire::Tripwire;
use crate::helpers::{assert_error, redis_support, spawn_app};

/// Where the hostile URLs point: 127.0.0.1, 127.0.0.2 and, where the machine has it, ::1.
struct Targets {
    v4: Tripwire,
    other_v4: Tripwire,
    v6: Option<Tripwire>,
}

impl Targets {
    async fn bind() -> Self {
        Self {
            v4: Tripwire::bind("127.0.0.1").await.expect("bind 127.0.0.1"),
            other_v4: Tripwire::bind("127.0.0.2").await.expect("127.0.0.2 is bindable on Linux loopback"),
            // Without IPv6 on loopback the [::1] forms could not connect anywhere; they are
            // aimed at the IPv4 tripwire's port and their refusal is still asserted.
            v6: Tripwire::bind("::1").await,
        }
    }

    fn connections(&self) -> usize {
        self.v4.connections() + self.other_v4.connections() + self.v6.as_ref().map_or(0, Tripwire::connections)
    }

    /// At least 15 spellings of "this machine" and of "not http", each one refused.
    fn hostile_urls(&self) -> Vec<String> {
        let p = self.v4.address.port();
        let p2 = self.other_v4.address.port();
        let p6 = self.v6.as_ref().map_or(p, |v6| v6.address.port());
        vec![
            format!("http://127.0.0.1:{p}/a.wav"),
            format!("https://127.0.0.1:{p}/a.wav"),
            format!("http://127.1:{p}/a.wav"),
            format!("http://2130706433:{p}/a.wav"),
            format!("http://0x7f000001:{p}/a.wav"),
            format!("http://017700000001:{p}/a.wav"),
            format!("http://0x7f.1:{p}/a.wav"),
            format!("http://0177.0.0.1:{p}/a.wav"),
            format!("http://127.0.0.1.:{p}/a.wav"),
            format!("http://%31%32%37.0.0.1:{p}/a.wav"),
            format!("http://127.0.0.2:{p2}/a.wav"),
            format!("http://[::1]:{p6}/a.wav"),
            format!("http://[0:0:0:0:0:0:0:1]:{p6}/a.wav"),
            format!("http://[::ffff:127.0.0.1]:{p}/a.wav"),
            format!("http://[::ffff:7f00:1]:{p}/a.wav"),
            format!("http://localhost:{p}/a.wav"),
            format!("http://LocalHost:{p}/a.wav"),
            format!("http://user:secret@127.0.0.1:{p}/a.wav"),
            format!("http://user@localhost:{p}/a.wav"),
            "file:///etc/passwd".to_string(),
            format!("gopher://127.0.0.1:{p}/_FLUSHALL"),
            format!("ftp://127.0.0.1:{p}/a.wav"),
            "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA=".to_string(),
            format!("127.0.0.1:{p}/a.wav"),
            format!("//127.0.0.1:{p}/a.wav"),
        ]
    }
}

/// Post `audio_url` every way the API takes it: JSON to both endpoints, multipart to one.
async fn post_everywhere(client: &reqwest::Client, base: &str, audio_url: &str) -> Vec<(String, reqwest::Response)> {
    let transcribe = client
        .post(format!("{base}/api/transcribe"))
        .json(&json!({"audio_url": audio_url, "language": "en-US"}))
        .send()
        .await
        .expect("sent");
    let pronunciation = client
        .post(format!("{base}/api/pronunciation"))
        .json(&json!({"audio_url": audio_url, "reference_text": "I went to the store."}))
        .send()
        .await
        .expect("sent");
    let form = reqwest::multipart::Form::new().text("audio_url", audio_url.to_string());
    let multipart = client.post(format!("{base}/api/transcribe")).multipart(form).send().await.expect("sent");
    vec![
        (format!("transcribe JSON {audio_url}"), transcribe),
        (format!("pronunciation JSON {audio_url}"), pronunciation),
        (format!("transcribe multipart {audio_url}"), multipart),
    ]
}

async fn assert_refused(label: &str, response: reqwest::Response) {
    let status = response.status().as_u16();
    assert_eq!(status, 422, "{label}: status");
    let body = assert_error(response, 422, "validation_error").await;
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("audio_url"), "{label}: the refusal names audio_url: {body}");
}

#[tokio::test]
async fn hostile_audio_urls_are_refused_with_422_and_nothing_is_connected_to() {
    let targets = Targets::bind().await;
    let app = spawn_app(&[]).await;
    let urls = targets.hostile_urls();
    assert!(urls.len() >= 15);
    for url in &urls {
        for (label, response) in post_everywhere(&app.client, &app.url(""), url).await {
            assert_refused(&label, response).await;
        }
    }
    assert_eq!(targets.connections(), 0, "a refused audio_url was connected to");
}

/// The service as the binary builds it, except that its fetcher admits one exact address: the
/// redirector's, so that the redirect it answers with is what gets judged.
async fn spawn_admitting(admitted: SocketAddr) -> (String, tokio::task::JoinHandle<()>) {
    let disk = tempfile::tempdir().expect("temporary disk cache");
    let disk_path = disk.path().to_string_lossy().into_owned();
    let redis_url = format!("redis://127.0.0.1:{}/0", redis_support::free_port());
    let settings = Settings::from_lookup(
        |name| match name {
            "CACHE_MODE" => Some("disk_only".to_string()),
            "DISK_CACHE_DIR" => Some(disk_path.clone()),
            "REDIS_URL" => Some(redis_url.clone()),
            "RATE_LIMIT_PER_MINUTE" => Some("0".to_string()),
            _ => None,
        },
        std::path::Path::new("/nonexistent/serviceaccount"),
    )
    .expect("test settings are valid");
    let metrics = Metrics::new();
    let upstreams = backend_ai::stacks::build(&settings, &metrics).await.expect("upstreams");
    let fetcher = AudioFetcher::new(FetchPolicy { allowed_addresses: vec![admitted], ..FetchPolicy::default() });
    let audio = Preparer::new(1, AudioPolicy::default(), metrics.clone());
    let usage = backend_ai::usage::Usage::new(settings.usage.clone(), None, metrics.clone());
    let usage_layer = backend_ai::usage::UsageLayer::new(usage.clone(), false);
    let state = AppState::new(Inner {
        settings,
        metrics,
        readiness: Readiness::new(),
        upstreams,
        fetcher,
        audio,
        limits_redis: None,
        usage,
    });
    let audio_budget = AudioBudgetLayer::new(AudioBudget::new(
        128 * 1024 * 1024,
        prometheus::IntGauge::new("reserved", "test").expect("gauge"),
        std::time::Duration::from_secs(1),
    ));
    // No limit, but the layer still admits each request: the stacks take nothing unadmitted.
    let rate_limit = RateLimitLayer::all(Vec::new());
    let layers = ApiLayers {
        api_keys: ApiKeys::new(Vec::new()),
        max_in_flight: None,
        rate_limit,
        audio_budget,
        usage: usage_layer,
    };
    let app = router(state, layers);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let server = tokio::spawn(async move {
        // The disk cache directory lives as long as the server.
        let _disk = disk;
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (base, server)
}

#[tokio::test]
async fn a_redirect_from_an_admitted_host_to_loopback_is_refused_and_not_followed() {
    let targets = Targets::bind().await;
    let redirector = MockServer::start().await;
    let p = targets.v4.address.port();
    let p2 = targets.other_v4.address.port();
    let p6 = targets.v6.as_ref().map_or(p, |v6| v6.address.port());
    let destinations = [
        format!("http://127.0.0.1:{p}/a.wav"),
        format!("http://localhost:{p}/a.wav"),
        format!("http://2130706433:{p}/a.wav"),
        format!("http://127.0.0.2:{p2}/a.wav"),
        format!("http://[::1]:{p6}/a.wav"),
        format!("//127.0.0.1:{p}/a.wav"),
        "file:///etc/passwd".to_string(),
        format!("gopher://127.0.0.1:{p}/_FLUSHALL"),
    ];
    for (index, destination) in destinations.iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(format!("/hop/{index}")))
            .respond_with(ResponseTemplate::new(302).insert_header("Location", destination.as_str()))
            // Three requests per URL (see post_everywhere): each reaches the redirector once.
            .expect(3)
            .mount(&redirector)
            .await;
    }
    let (base, server) = spawn_admitting(*redirector.address()).await;
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    for (index, destination) in destinations.iter().enumerate() {
        let url = format!("{}/hop/{index}", redirector.uri());
        for (label, response) in post_everywhere(&client, &base, &url).await {
            assert_refused(&format!("{label} -> {destination}"), response).await;
        }
    }
    assert_eq!(targets.connections(), 0, "a redirect to loopback was followed");
    redirector.verify().await;
    server.abort();
}

#[tokio::test]
async fn the_admitted_host_itself_is_fetched_so_the_refusals_above_are_the_guard_at_work() {
    let redirector = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/a.wav"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(crate::helpers::wav_tone(8000)))
        .expect(1)
        .mount(&redirector)
        .await;
    let (base, server) = spawn_admitting(*redirector.address()).await;
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let response = client
        .post(format!("{base}/api/transcribe"))
        .json(&json!({"audio_url": format!("{}/a.wav", redirector.uri())}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    redirector.verify().await;
    server.abort();
}
