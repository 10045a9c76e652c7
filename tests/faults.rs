//! Faults injected into the real `backend-ai` binary while it serves: Redis killed and restarted,
//! an upstream failing and healing, an upstream too slow, SIGTERM under load, disk cache files
//! corrupted. Each test asserts what a learner would notice (status codes, bodies, exit code),
//! never how long anything took; time bounds only stop a broken build from hanging the suite.
//!
//! Everything runs on loopback: the built-in simulator or a standalone one
//! (`backend-ai simulator PORT`, steered through `PUT /_simulator/faults`), and a private
//! `redis-server`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/audio.rs"]
mod audio_support;
use audio_support::wav_tone;

#[path = "support/redis.rs"]
mod redis_support;

use redis_support::{RedisServer, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_backend-ai");

/// Hang guard for a whole test.
const TEST_BOUND: Duration = Duration::from_secs(120);

/// A child process killed on drop, so a failing test leaves nothing running.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Wait for exit; the bound only keeps a broken shutdown from hanging the suite.
    fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "backend-ai did not exit within {bound:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str], port: u16, vars: &[(&str, &str)]) -> Process {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    let child = command.spawn().expect("spawn backend-ai");
    let process = Process { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "backend-ai {args:?} did not listen on {port} within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    process
}

/// The service on a free loopback port: disk-only cache in `disk`, no rate limit, no Redis
/// (a port nothing listens on), the built-in simulator; `vars` override any of these.
fn start_service(disk: &Path, vars: &[(&str, &str)]) -> Process {
    let port = free_port();
    let port_text = port.to_string();
    let disk_text = disk.to_string_lossy().into_owned();
    let no_redis = format!("redis://127.0.0.1:{}/0", free_port());
    let mut all: Vec<(&str, &str)> = vec![
        ("PORT", &port_text),
        ("BIND_ADDRESS", "127.0.0.1"),
        ("CACHE_MODE", "disk_only"),
        ("DISK_CACHE_DIR", &disk_text),
        ("REDIS_URL", &no_redis),
        ("RATE_LIMIT_PER_MINUTE", "0"),
    ];
    for (name, value) in vars {
        all.retain(|(existing, _)| existing != name);
        all.push((name, value));
    }
    spawn(&[], port, &all)
}

/// The standalone simulator (Azure Speech and Gemini on one port) with run-time fault control.
fn start_simulator() -> Process {
    let port = free_port();
    spawn(&["simulator", &port.to_string()], port, &[])
}

fn client() -> reqwest::Client {
    // The timeout is a hang guard, far above anything a passing run needs.
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("reqwest client")
}

async fn set_faults(client: &reqwest::Client, simulator: &Process, faults: Value) {
    let response =
        client.put(format!("{}/_simulator/faults", simulator.base())).json(&faults).send().await.expect("simulator");
    assert_eq!(response.status().as_u16(), 200, "PUT /_simulator/faults");
}

/// Status, body and `Retry-After` of one `POST /api/analyze`.
async fn analyze(client: &reqwest::Client, base: &str, text: &str) -> reqwest::Result<(u16, Value, Option<String>)> {
    let response = client.post(format!("{base}/api/analyze")).json(&json!({ "text": text })).send().await?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, retry_after))
}

/// `POST /api/transcribe` with an uploaded WAV of `samples` samples (the length makes the key).
async fn transcribe(client: &reqwest::Client, base: &str, samples: usize) -> reqwest::Result<(u16, Value)> {
    let part = reqwest::multipart::Part::bytes(wav_tone(samples)).file_name("clip.wav");
    let form = reqwest::multipart::Form::new().part("audio", part).text("language", "en-US");
    let response = client.post(format!("{base}/api/transcribe")).multipart(form).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.expect("get").json().await.expect("json")
}

/// Run `body` under the suite's hang guard.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    if tokio::time::timeout(TEST_BOUND, body).await.is_err() {
        panic!("the test did not finish within {TEST_BOUND:?}");
    }
}

/// Successful requests so far, across load workers: faults are injected once load is seen to
/// flow, never after a guessed sleep.
#[derive(Clone, Default)]
struct Progress(Arc<AtomicUsize>);

impl Progress {
    fn tick(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Wait until `more` further requests have succeeded (the test's guard bounds the wait).
    async fn advance(&self, more: usize) {
        let target = self.count() + more;
        while self.count() < target {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What one load worker saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_under_load_fails_no_request() {
    let mut redis = RedisServer::start();
    let disk = tempfile::tempdir().expect("tempdir");
    let redis_url = redis.url();
    let service = start_service(
        disk.path(),
        &[
            ("CACHE_MODE", "tiered"),
            ("REDIS_URL", &redis_url),
            // On, so that the limiter's Redis path and its local fallback are under test too;
            // high enough that this load never reaches it.
            ("RATE_LIMIT_PER_MINUTE", "1000000"),
            ("REDIS_TIMEOUT_MS", "200"),
        ],
    );
    let base = service.base();
    let client = client();
    bounded(async {
        let health = get_json(&client, format!("{base}/health/cache")).await;
        assert_eq!((&health["mode"], &health["redis"]["connected"]), (&json!("tiered"), &json!(true)), "{health}");
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Progress::default();
        let workers: Vec<_> = (0..6)
            .map(|worker| {
                let (client, base, stop, progress) =
                    (client.clone(), base.clone(), Arc::clone(&stop), progress.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut i = 0usize;
                    // Bounded in count as well as by the stop flag.
                    while !stop.load(Ordering::SeqCst) && i < 5000 {
                        // A small key space: hits and misses, and concurrent identical jobs.
                        let outcome = if worker % 3 == 0 {
                            transcribe(&client, &base, 1600 + (i % 8) * 160).await
                        } else {
                            analyze(&client, &base, &format!("I goes to school number {}.", i % 20))
                                .await
                                .map(|(status, body, _)| (status, body))
                        };
                        match outcome {
                            Ok((200, _)) => {
                                tally.ok += 1;
                                progress.tick();
                            }
                            Ok((status, body)) => tally.failures.push(format!("{status}: {body}")),
                            Err(error) => tally.failures.push(format!("transport: {error}")),
                        }
                        i += 1;
                    }
                    tally
                })
            })
            .collect();

        progress.advance(30).await;
        for _ in 0..2 {
            tokio::task::block_in_place(|| redis.kill());
            // Served while Redis is down...
            progress.advance(60).await;
            tokio::task::block_in_place(|| redis.restart());
            // ...and after it is back, empty.
            progress.advance(60).await;
        }
        stop.store(true, Ordering::SeqCst);

        let mut ok = 0;
        let mut failures = Vec::new();
        for worker in workers {
            let tally = worker.await.expect("worker");
            ok += tally.ok;
            failures.extend(tally.failures);
        }
        assert!(failures.is_empty(), "{} of {} requests failed: {:?}", failures.len(), ok + failures.len(), failures);
        assert!(ok > 0, "the load ran");

        // The service found the restarted Redis again (reconnection is bounded by the guard).
        loop {
            let health = get_json(&client, format!("{base}/health/cache")).await;
            if health["redis"]["connected"] == true {
                break;
            }
            let _ = analyze(&client, &base, "Wake the Redis link up.").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Both upstreams on the standalone simulator; breaker: 3 failures open it for 1 s; no retries,
/// so each request is one upstream call.
fn start_service_on(simulator: &Process, disk: &Path, extra: &[(&str, &str)]) -> Process {
    let url = simulator.base();
    let mut vars = vec![
        ("AZURE_SPEECH_KEY", "simulator-key"),
        ("AZURE_SPEECH_ENDPOINT", url.as_str()),
        ("GEMINI_API_KEY", "simulator-key"),
        ("GEMINI_BASE_URL", url.as_str()),
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    vars.extend_from_slice(extra);
    start_service(disk, &vars)
}

#[tokio::test]
async fn a_flapping_upstream_opens_the_breaker_and_the_service_recovers_when_it_heals() {
    let simulator = start_simulator();
    let disk = tempfile::tempdir().expect("tempdir");
    let service = start_service_on(
        &simulator,
        disk.path(),
        &[("BREAKER_FAILURE_THRESHOLD", "3"), ("BREAKER_RECOVERY_TIMEOUT_SECONDS", "1")],
    );
    let base = service.base();
    let client = client();
    bounded(async {
        let gemini_state =
            || async { get_json(&client, format!("{base}/health/upstreams")).await["gemini"]["state"].clone() };
        let mut n = 0usize;
        let mut text = || {
            n += 1;
            // Distinct texts: a cached answer would hide the upstream.
            format!("The upstream flaps, sentence {n}.")
        };
        for round in 0..3 {
            set_faults(&client, &simulator, json!({"server_error_rate": 1.0})).await;
            // Failures until the breaker opens; every one of them a clean 503.
            let mut failures = 0;
            while gemini_state().await != "open" {
                let (status, body, _) = analyze(&client, &base, &text()).await.expect("answered");
                assert_eq!(
                    (status, body["code"].as_str()),
                    (503, Some("upstream_unavailable")),
                    "round {round}: {body}"
                );
                failures += 1;
                assert!(failures <= 3, "round {round}: the breaker did not open after 3 failures");
            }
            // Open: refused without calling Gemini, with a Retry-After.
            let (status, body, retry_after) = analyze(&client, &base, &text()).await.expect("answered");
            assert_eq!((status, body["code"].as_str()), (503, Some("upstream_unavailable")), "{body}");
            assert!(body["error"].as_str().is_some_and(|message| message.contains("paused")), "{body}");
            assert!(retry_after.is_some(), "an open breaker says when to retry");

            set_faults(&client, &simulator, json!({})).await;
            // Healed: after the recovery timeout a probe goes through and the breaker closes.
            loop {
                let (status, body, _) = analyze(&client, &base, &text()).await.expect("answered");
                if status == 200 {
                    break;
                }
                assert_eq!((status, body["code"].as_str()), (503, Some("upstream_unavailable")), "{body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(gemini_state().await, "closed", "round {round}");
            let (status, _, _) = analyze(&client, &base, &text()).await.expect("answered");
            assert_eq!(status, 200, "round {round}: serving again");
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_or_hung_upstream_is_a_504_after_the_deadline_and_the_service_carries_on() {
    let simulator = start_simulator();
    let disk = tempfile::tempdir().expect("tempdir");
    let service = start_service_on(
        &simulator,
        disk.path(),
        &[("UPSTREAM_TIMEOUT_SECONDS", "1"), ("BREAKER_FAILURE_THRESHOLD", "100")],
    );
    let base = service.base();
    let client = client();
    bounded(async {
        for (label, faults) in [("slow", json!({"latency_ms": 4000})), ("hung", json!({"hang_rate": 1.0}))] {
            set_faults(&client, &simulator, faults).await;
            let (status, body, _) = analyze(&client, &base, &format!("A {label} Gemini.")).await.expect("answered");
            assert_eq!((status, body["code"].as_str()), (504, Some("upstream_timeout")), "{label}: {body}");
            let (status, body) = transcribe(&client, &base, 1600).await.expect("answered");
            assert_eq!((status, body["code"].as_str()), (504, Some("upstream_timeout")), "{label}: {body}");
        }
        set_faults(&client, &simulator, json!({})).await;
        let (status, body, _) = analyze(&client, &base, "A healthy Gemini.").await.expect("answered");
        assert_eq!(status, 200, "{body}");
        let (status, body) = transcribe(&client, &base, 1600).await.expect("answered");
        assert_eq!(status, 200, "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_drops_nothing_that_was_sent_before_it_and_exits_0() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut service = start_service(
        disk.path(),
        &[("SIMULATOR_LATENCY_MS", "150"), ("SHUTDOWN_DELAY_SECONDS", "2"), ("SHUTDOWN_GRACE_SECONDS", "30")],
    );
    let base = service.base();
    let client = client();
    bounded(async {
        let signalled = Arc::new(AtomicBool::new(false));
        let progress = Progress::default();
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let (client, base, signalled, progress) =
                    (client.clone(), base.clone(), Arc::clone(&signalled), progress.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for i in 0..1000 {
                        // Read before sending: a request counted as "before" may in truth leave
                        // just after the signal, but it then lands within SHUTDOWN_DELAY, when
                        // the service still takes requests, so it must succeed all the same.
                        let before = !signalled.load(Ordering::SeqCst);
                        let outcome = analyze(&client, &base, &format!("Worker {worker} says sentence {i}.")).await;
                        if !before {
                            // Sent after the signal: any outcome is fair; this worker is done.
                            break;
                        }
                        match outcome {
                            Ok((200, _, _)) => {
                                tally.ok += 1;
                                progress.tick();
                            }
                            Ok((status, body, _)) => tally.failures.push(format!("{status}: {body}")),
                            Err(error) => tally.failures.push(format!("transport: {error}")),
                        }
                    }
                    tally
                })
            })
            .collect();
        // Every worker has a request in flight at any moment from here on.
        progress.advance(16).await;
        service.sigterm();
        signalled.store(true, Ordering::SeqCst);

        let mut ok = 0;
        let mut failures = Vec::new();
        for worker in workers {
            let tally = worker.await.expect("worker");
            ok += tally.ok;
            failures.extend(tally.failures);
        }
        assert!(failures.is_empty(), "requests sent before SIGTERM failed: {failures:?}");
        assert!(ok >= 16, "the load ran: {ok} requests");
    })
    .await;
    let status = tokio::task::block_in_place(|| service.wait_exit(Duration::from_secs(40)));
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
}

/// Overwrite every file under `dir` with garbage. Run as any user: files cacache made read-only
/// are made writable first.
fn corrupt_files_under(dir: &Path) -> usize {
    use std::os::unix::fs::PermissionsExt;
    let mut corrupted = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let length = std::fs::metadata(&path).map_or(64, |meta| meta.len() as usize);
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
                // Same length for half the files (only the integrity check can tell), shorter
                // for the others (a torn write).
                let garbage = if corrupted % 2 == 0 { vec![b'#'; length] } else { b"torn".to_vec() };
                std::fs::write(&path, garbage).expect("overwrite a cache file");
                corrupted += 1;
            }
        }
    }
    corrupted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupted_disk_cache_files_are_misses_and_every_answer_is_still_200() {
    let disk = tempfile::tempdir().expect("tempdir");
    // Keep the memory tier tiny so that repeats mostly reach the disk.
    let vars = [("CACHE_MEMORY_MAX_BYTES", "1")];
    let mut service = start_service(disk.path(), &vars);
    let client = client();
    let texts: Vec<String> = (0..8).map(|i| format!("My cache file number {i} is fine.")).collect();
    let content = disk.path().join("content-v2");
    let pass = |base: String, expect_cached: bool| {
        let (client, texts) = (client.clone(), texts.clone());
        async move {
            for text in &texts {
                let (status, body, _) = analyze(&client, &base, text).await.expect("answered");
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["meta"]["cached"], expect_cached, "{text}: {body}");
            }
        }
    };
    bounded(async {
        let base = service.base();
        pass(base.clone(), false).await;
        pass(base.clone(), true).await;

        // Corrupt while serving: the same keys requested concurrently throughout.
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Progress::default();
        let load: Vec<_> = (0..4)
            .map(|_| {
                let (client, base, texts, stop, progress) =
                    (client.clone(), base.clone(), texts.clone(), Arc::clone(&stop), progress.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for text in texts.iter().cycle().take(2000) {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        match analyze(&client, &base, text).await {
                            Ok((200, _, _)) => {
                                tally.ok += 1;
                                progress.tick();
                            }
                            Ok((status, body, _)) => tally.failures.push(format!("{status}: {body}")),
                            Err(error) => tally.failures.push(format!("transport: {error}")),
                        }
                    }
                    tally
                })
            })
            .collect();
        for _ in 0..5 {
            progress.advance(20).await;
            tokio::task::block_in_place(|| corrupt_files_under(&content));
        }
        progress.advance(20).await;
        stop.store(true, Ordering::SeqCst);
        for worker in load {
            let tally = worker.await.expect("worker");
            assert!(tally.failures.is_empty(), "{:?}", tally.failures);
        }
        let health = get_json(&client, format!("{base}/health/cache")).await;
        assert_eq!(health["counts"]["disk"]["errors"], 0, "corruption is a miss, not an error: {health}");
    })
    .await;

    // Corrupt everything at rest and start a fresh instance (empty memory tier) on it: every key
    // is a disk miss, answered fresh, and cached again afterwards.
    service.sigterm();
    let _ = tokio::task::block_in_place(|| service.wait_exit(Duration::from_secs(40)));
    let corrupted = corrupt_files_under(&content);
    assert!(corrupted > 0, "the disk tier wrote content files under {}", content.display());
    let service = start_service(disk.path(), &vars);
    bounded(async {
        let base = service.base();
        pass(base.clone(), false).await;
        pass(base.clone(), true).await;
        let health = get_json(&client, format!("{base}/health/cache")).await;
        assert_eq!(health["counts"]["disk"]["errors"], 0, "corruption is a miss, not an error: {health}");
        assert!(health["counts"]["disk"]["misses"].as_u64() >= Some(8), "{health}");
    })
    .await;
}
