//! The real `backend-ai` binary as an operator meets it: start-up validation, the simulator
//! fallback, and graceful shutdown on SIGTERM.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/redis.rs"]
mod redis_support;

const BINARY: &str = env!("CARGO_BIN_EXE_backend-ai");

fn base_command(disk: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CACHE_MODE", "disk_only")
        .env("DISK_CACHE_DIR", disk)
        .env("REDIS_URL", format!("redis://127.0.0.1:{}/0", redis_support::free_port()))
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

fn run_to_exit(mut command: Command) -> (i32, String) {
    let output = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run backend-ai");
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn a_bad_value_exits_2_with_one_line_naming_the_variable() {
    let disk = tempfile::tempdir().expect("tempdir");
    for (name, value) in [("PORT", "eighty"), ("CACHE_MODE", "memory"), ("UPSTREAM_TIMEOUT_SECONDS", "0")] {
        let mut command = base_command(disk.path());
        command.env(name, value);
        let (code, output) = run_to_exit(command);
        assert_eq!(code, 2, "{name}={value}: {output}");
        let lines: Vec<&str> = output.lines().filter(|line| !line.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "exactly one line: {output}");
        assert!(lines[0].contains(name), "{output}");
    }
}

#[test]
fn in_kubernetes_missing_cloud_keys_stop_start_up() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut command = base_command(disk.path());
    command.env("KUBERNETES_SERVICE_HOST", "10.0.0.1").env("API_KEYS", "k");
    let (code, output) = run_to_exit(command);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("AZURE_SPEECH_KEY"), "{output}");
}

struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(disk: &std::path::Path, extra: &[(&str, &str)]) -> Running {
    let port = redis_support::free_port();
    let mut command = base_command(disk);
    command.env("PORT", port.to_string()).env("BIND_ADDRESS", "127.0.0.1");
    for (name, value) in extra {
        command.env(name, value);
    }
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn backend-ai");
    let running = Running { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "backend-ai did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

fn send_sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
}

/// Wait for exit; the bound only keeps a broken shutdown from hanging the suite.
fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "backend-ai did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_keys_it_runs_on_the_simulator_and_says_so() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(disk.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let upstreams: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{}/health/upstreams", running.port))
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    });
    assert_eq!(upstreams["azure_speech"]["target"], "simulator", "{upstreams}");
    assert_eq!(upstreams["gemini"]["target"], "simulator", "{upstreams}");
    let logs = stop_and_collect_output(&mut running.child);
    assert!(logs.contains("simulator"), "start-up log mentions the simulator: {logs}");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_turns_unready_first_and_exits_0() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(
        disk.path(),
        &[("SIMULATOR_LATENCY_MS", "1500"), ("SHUTDOWN_DELAY_SECONDS", "1"), ("SHUTDOWN_GRACE_SECONDS", "20")],
    );
    let port = running.port;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let in_flight: Vec<_> = (0..6)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .post(format!("http://127.0.0.1:{port}/api/analyze"))
                        .json(&serde_json::json!({"text": format!("I go to the store yesterday number {i}.")}))
                        .send()
                        .await
                        .map(|response| response.status().as_u16())
                })
            })
            .collect();
        // Let every request reach the (slow) upstream before the signal.
        tokio::time::sleep(Duration::from_millis(400)).await;
        send_sigterm(&running.child);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ready = client
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
            .expect("readiness answered during the delay");
        assert_eq!(ready.status().as_u16(), 503, "readiness turns 503 first");
        for request in in_flight {
            assert_eq!(request.await.expect("join").expect("in-flight request completed"), 200);
        }
    });
    let status = wait_exit(&mut running.child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
}

/// SIGTERM, a clean exit (code 0), and everything it printed.
fn stop_and_collect_output(child: &mut Child) -> String {
    send_sigterm(child);
    assert_eq!(wait_exit(child, Duration::from_secs(20)).code(), Some(0), "SIGTERM exits 0");
    collect_output(child)
}

fn collect_output(child: &mut Child) -> String {
    let mut logs = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut logs);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut logs);
    }
    logs
}

#[test]
fn json_logs_carry_request_fields_and_never_keys_or_learner_text() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(disk.path(), &[("LOG_FORMAT", "json"), ("API_KEYS", "very-secret-api-key")]);
    let port = running.port;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .header("X-API-Key", "very-secret-api-key")
            .header("X-User-ID", "learner-42")
            .header("X-Request-ID", "req-json-log-1")
            .json(&serde_json::json!({"text": "PrivateLearnerSentence about my holiday."}))
            .send()
            .await
            .expect("analyze");
        assert_eq!(response.status().as_u16(), 200);
        let wrong = client
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .header("X-API-Key", "another-secret-guess")
            .json(&serde_json::json!({"text": "x"}))
            .send()
            .await
            .expect("analyze");
        assert_eq!(wrong.status().as_u16(), 401);
    });
    let logs = stop_and_collect_output(&mut running.child);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}")))
        .collect();
    let access = lines
        .iter()
        .find(|line| line["request_id"] == "req-json-log-1")
        .unwrap_or_else(|| panic!("an access line for the request: {logs}"));
    assert_eq!(access["route"], "/api/analyze");
    assert_eq!(access["status"], 200);
    assert_eq!(access["user_id"], "learner-42");
    assert!(access["latency_ms"].as_f64().is_some(), "{access}");
    for secret in ["very-secret-api-key", "another-secret-guess", "PrivateLearnerSentence"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs: {logs}");
    }
}

#[test]
fn a_failed_request_logs_the_upstreams_own_words_which_the_client_is_not_told() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let gemini = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "error": {"code": 400, "message": "Unknown name \"fooBar\": Cannot find field.", "status": "INVALID_ARGUMENT"}
            })))
            .mount(&server)
            .await;
        server
    });
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(
        disk.path(),
        &[("LOG_FORMAT", "json"), ("GEMINI_API_KEY", "test-key"), ("GEMINI_BASE_URL", &gemini.uri())],
    );
    let port = running.port;
    let body: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .header("X-Request-ID", "req-upstream-400")
            .json(&serde_json::json!({"text": "I goes to school."}))
            .send()
            .await
            .expect("analyze");
        assert_eq!(response.status().as_u16(), 502);
        response.json().await.expect("envelope")
    });
    assert!(!body.to_string().contains("fooBar"), "the learner's client is not told upstream internals: {body}");
    let logs = stop_and_collect_output(&mut running.child);
    let failed = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["request_id"] == "req-upstream-400" && line["message"] == "request failed")
        .unwrap_or_else(|| panic!("a 'request failed' line for the request: {logs}"));
    assert_eq!(failed["code"], "upstream_error");
    let cause = failed["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("400") && cause.contains("fooBar"), "the cause names the upstream's answer: {failed}");
}

#[test]
fn a_real_scrape_passes_promtool_and_names_every_contract_metric() {
    let disk = tempfile::tempdir().expect("tempdir");
    let running = start(disk.path(), &[]);
    let port = running.port;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let scrape = runtime.block_on(async {
        let client = reqwest::Client::new();
        let _ = client
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .json(&serde_json::json!({"text": "I go to the store yesterday."}))
            .send()
            .await
            .expect("analyze");
        client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("scrape").text().await.expect("text")
    });
    for name in [
        "service_health_status{service=\"azure_speech\"}",
        "service_health_status{service=\"gemini\"}",
        "cache_operations_total{operation=\"get\",result=\"hit\"",
        "ai_operation_duration_seconds_bucket{operation=\"analyze\",provider=\"gemini\",le=\"0.5\"}",
        "ai_operation_duration_seconds_bucket{operation=\"analyze\",provider=\"gemini\",le=\"60\"}",
        "ai_operation_errors_total{error_type=\"timeout\",operation=\"transcribe\"}",
        "json_parse_failures_total{source=\"gemini\"} 0",
        "http_requests_total{method=\"POST\",path=\"/api/analyze\",status=\"200\"} 1",
        "http_request_duration_seconds_bucket{method=\"POST\",path=\"/api/analyze\"",
        "circuit_breaker_state{upstream=\"gemini\"} 0",
    ] {
        assert!(scrape.contains(name), "missing {name} in:\n{scrape}");
    }
    let mut promtool = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => panic!("promtool is needed for this test: run `bash scripts/install-ci-tools.sh`"),
    };
    use std::io::Write;
    promtool.stdin.take().expect("stdin").write_all(scrape.as_bytes()).expect("write scrape");
    let output = promtool.wait_with_output().expect("promtool");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn pretty_logs_quote_what_the_client_chose_so_it_cannot_forge_fields() {
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(disk.path(), &[("LOG_FORMAT", "pretty")]);
    let port = running.port;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .header("X-User-ID", "bob status=500 route=/admin")
            .json(&serde_json::json!({"text": "I goes home."}))
            .send()
            .await
            .expect("analyze");
        assert_eq!(response.status().as_u16(), 200);
    });
    let logs = stop_and_collect_output(&mut running.child);
    let access = logs
        .lines()
        .find(|line| line.contains("route=/api/analyze"))
        .unwrap_or_else(|| panic!("an access line: {logs}"));
    assert!(access.contains(r#"user_id="bob status=500 route=/admin""#), "{access}");
    assert_eq!(access.matches("status=").count(), 2, "the real status and the quoted one: {access}");
}

#[test]
fn sigterm_closes_an_idle_http2_connection_at_once_instead_of_waiting_out_the_grace_period() {
    use std::io::Write;
    let disk = tempfile::tempdir().expect("tempdir");
    let mut running = start(disk.path(), &[("SHUTDOWN_GRACE_SECONDS", "60")]);
    // A client that only sent its HTTP/2 preface and settings, and then nothing.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", running.port)).expect("connect");
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").expect("preface");
    std::thread::sleep(Duration::from_millis(300));
    send_sigterm(&running.child);
    // Well inside the 60 s grace period: nothing is in flight, so nothing is waited for.
    let status = wait_exit(&mut running.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let logs = collect_output(&mut running.child);
    assert!(!logs.contains("requests still in flight"), "{logs}");
    assert!(logs.contains("all requests finished"), "{logs}");
}

#[test]
fn sigterm_lets_an_upstream_call_whose_client_left_finish_and_its_answer_is_cached() {
    let disk = tempfile::tempdir().expect("tempdir");
    let slow = [("SIMULATOR_LATENCY_MS", "1500"), ("SHUTDOWN_GRACE_SECONDS", "20")];
    let text = serde_json::json!({"text": "She don't like the rain in autumn."});
    let mut running = start(disk.path(), &slow);
    let port = running.port;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let gave_up = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .json(&text)
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        assert!(gave_up.is_err(), "the client left before the (slow) upstream answered");
    });
    // No request is in flight any more: only the detached upstream call is.
    let logs = stop_and_collect_output(&mut running.child);
    assert!(logs.contains("waiting for detached upstream calls and cache stores to end"), "{logs}");

    // The answer the call brought back was cached before the process exited.
    let running = start(disk.path(), &slow);
    let port = running.port;
    let body: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/analyze"))
            .json(&text)
            .send()
            .await
            .expect("analyze")
            .json()
            .await
            .expect("json")
    });
    assert_eq!(body["meta"]["cached"], true, "{body}");
}
