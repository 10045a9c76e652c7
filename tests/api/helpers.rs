use std::collections::HashMap;
use std::net::SocketAddr;

use backend_ai::app::App;
use backend_ai::config::Settings;
use backend_ai::state::AppState;

#[path = "../support/redis_cluster.rs"]
pub mod redis_cluster;
#[path = "../support/redis_rounds.rs"]
pub mod redis_rounds;
#[path = "../support/redis_sentinel.rs"]
pub mod redis_sentinel;
#[path = "../support/redis.rs"]
pub mod redis_support;
#[path = "../support/redis_wire.rs"]
pub mod redis_wire;

#[path = "../support/audio_checks.rs"]
pub mod audio_checks;
#[path = "../support/audio.rs"]
mod audio_support;
#[path = "../support/tripwire.rs"]
pub mod tripwire;
pub use audio_support::wav_tone;

/// One running instance of the service.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    #[allow(dead_code)]
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _disk: tempfile::TempDir,
}

/// Variables every test instance gets unless it overrides them: no shared Redis, a private
/// disk cache, the simulator for both upstreams, logs quiet.
fn defaults(disk: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("CACHE_MODE".into(), "disk_only".into()),
        ("DISK_CACHE_DIR".into(), disk.to_string_lossy().into_owned()),
        // A port nothing listens on: no test may reach the machine's shared Redis by accident.
        ("REDIS_URL".into(), format!("redis://127.0.0.1:{}/0", redis_support::free_port())),
        ("RATE_LIMIT_PER_MINUTE".into(), "0".into()),
        ("UPSTREAM_TIMEOUT_SECONDS".into(), "5".into()),
    ]
}

pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_unsetting(vars, &[]).await
}

/// `spawn_app`, with the default variables named in `unset` removed (to see what the service
/// does when they are absent).
pub async fn spawn_app_unsetting(vars: &[(&str, &str)], unset: &[&str]) -> TestApp {
    let disk = tempfile::tempdir().expect("temporary disk cache");
    let mut map: HashMap<String, String> = defaults(disk.path()).into_iter().collect();
    for name in unset {
        map.remove(*name);
    }
    for (name, value) in vars {
        map.insert((*name).to_string(), (*value).to_string());
    }
    // The default's dead-port REDIS_URL would contradict another topology a test asks for.
    let topology_given = vars.iter().any(|(name, _)| matches!(*name, "REDIS_CLUSTER_NODES" | "REDIS_SENTINELS"));
    if topology_given && !vars.iter().any(|(name, _)| *name == "REDIS_URL") {
        map.remove("REDIS_URL");
    }
    let settings =
        Settings::from_lookup(|name| map.get(name).cloned(), std::path::Path::new("/nonexistent/serviceaccount"))
            .expect("test settings are valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a test port");
    let app = App::build_with_listener(settings, listener).await.expect("the app builds");
    let address = app.local_addr().expect("bound address");
    let state = app.state().clone();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder().no_proxy().build().expect("reqwest client"),
        state,
        shutdown: Some(shutdown),
        server: Some(server),
        _disk: disk,
    }
}

/// Azure Speech and Gemini faked with wiremock on loopback.
pub struct FakeClouds {
    pub azure: wiremock::MockServer,
    pub gemini: wiremock::MockServer,
}

impl FakeClouds {
    pub async fn start() -> Self {
        Self { azure: wiremock::MockServer::start().await, gemini: wiremock::MockServer::start().await }
    }
}

/// An instance whose Azure and Gemini calls go to `fakes`, with `vars` on top.
pub async fn spawn_app_with_fakes(fakes: &FakeClouds, vars: &[(&str, &str)]) -> TestApp {
    spawn_app_against(&fakes.azure, &fakes.gemini, vars).await
}

/// The Azure short-audio recognition path and the Gemini `generateContent` path the fakes serve.
pub const AZURE_PATH: &str = "/speech/recognition/conversation/cognitiveservices/v1";
pub const GEMINI_PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

/// An instance whose Azure and Gemini are the given fakes, with test keys.
pub async fn spawn_app_against(
    azure: &wiremock::MockServer,
    gemini: &wiremock::MockServer,
    vars: &[(&str, &str)],
) -> TestApp {
    let (azure, gemini) = (azure.uri(), gemini.uri());
    let mut all = vec![
        ("AZURE_SPEECH_KEY", "azure-test-key"),
        ("AZURE_SPEECH_ENDPOINT", azure.as_str()),
        ("GEMINI_API_KEY", "gemini-test-key"),
        ("GEMINI_BASE_URL", gemini.as_str()),
    ];
    all.extend_from_slice(vars);
    spawn_app(&all).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// The status of one analysis of the same text, sent with `key` as `user`: what the limit
    /// tests count.
    pub async fn analyze_as(&self, key: &str, user: &str) -> u16 {
        self.client
            .post(self.url("/api/analyze"))
            .header("X-API-Key", key)
            .header("X-User-ID", user)
            .json(&serde_json::json!({"text": "Yesterday I go to the shop."}))
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    /// Begin graceful shutdown and wait for the server to finish.
    #[allow(dead_code)]
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Assert the contract's error envelope and return it.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("every response carries X-Request-ID");
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    body
}

/// One limit of `limit` a minute held across `instances` sharing a Redis, as the limits' stated
/// bound has it (`rate_limit/lease.rs`) over a run much shorter than a minute: with a lease of one
/// request (`n` = 1 at these limits), each instance may serve up to two requests on credit
/// beyond the limit before it hears the bucket is empty, and may let one leased request lapse
/// unused. The run must end with refusals.
pub fn assert_one_shared_limit(statuses: &[u16], limit: usize, instances: usize) {
    let served = statuses.iter().filter(|status| **status == 200).count();
    assert!(statuses.iter().all(|status| *status == 200 || *status == 429), "{statuses:?}");
    assert!(
        (limit - instances..=limit + 2 * instances).contains(&served),
        "one limit of {limit} across {instances}: {statuses:?}"
    );
    assert_eq!(&statuses[statuses.len() - 2..], [429, 429], "{statuses:?}");
}
