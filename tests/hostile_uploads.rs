//! Hostile recordings against the real `backend-ai` binary, measured as an operator would: the
//! CPU the process spends on each (from /proc), and the log lines it writes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/hostile_audio.rs"]
mod hostile_audio;
#[path = "support/redis.rs"]
mod redis_support;

const BINARY: &str = env!("CARGO_BIN_EXE_backend-ai");

struct Running {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
    _disk: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// CPU the process has used so far, user and system.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("/proc stat");
        // Fields after the command name (which may hold spaces) in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).expect("log file")
    }

    /// The logs once `written` holds of them: the service writes its lines through a buffer
    /// flushed every 100 ms, so a line may land a moment after the answer.
    async fn logs_once(&self, written: impl Fn(&str) -> bool) -> String {
        for _ in 0..100 {
            let logs = self.logs();
            if written(&logs) {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.logs()
    }

    async fn transcribe(&self, bytes: Vec<u8>) -> (u16, serde_json::Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("blob");
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/transcribe", self.port))
            .multipart(reqwest::multipart::Form::new().part("audio", part))
            .timeout(Duration::from_secs(300))
            .send()
            .await
            .expect("answered");
        (response.status().as_u16(), response.json().await.expect("json"))
    }
}

fn clock_ticks() -> u64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(100)
}

fn start() -> Running {
    let disk = tempfile::tempdir().expect("tempdir");
    // Logs to a file, not a pipe: a flood of lines must show in the count, not block the
    // service on a full pipe.
    let log = tempfile::NamedTempFile::new().expect("log file");
    let port = redis_support::free_port();
    let child = Command::new(BINARY)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CACHE_MODE", "disk_only")
        .env("DISK_CACHE_DIR", disk.path())
        .env("REDIS_URL", format!("redis://127.0.0.1:{}/0", redis_support::free_port()))
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log file"))
        .stderr(log.reopen().expect("log file"))
        .spawn()
        .expect("spawn backend-ai");
    let running = Running { child, port, log, _disk: disk };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "backend-ai did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

#[tokio::test]
async fn each_hostile_file_is_refused_in_the_envelope_for_well_under_two_seconds_of_cpu() {
    let running = start();
    let files = [
        ("a fragmented MP4 whose trun claims 2^32-1 empty samples", hostile_audio::mp4_endless_run(1)),
        ("the same run on a track the reader skips", hostile_audio::mp4_endless_run(2)),
        ("Matroska blocks laced with 256 empty frames", hostile_audio::matroska_empty_laced_blocks(1, 1_000_000)),
        ("the same on a track the reader skips", hostile_audio::matroska_empty_laced_blocks(2, 1_000_000)),
    ];
    for (what, file) in files {
        let before = running.cpu();
        let (status, body) = running.transcribe(file).await;
        let spent = running.cpu() - before;
        eprintln!("{what}: {status} after {spent:?} of CPU");
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        assert_eq!(body["success"], false, "{what}: {body}");
        assert_eq!(body["code"], "validation_error", "{what}: {body}");
        // Before the bounds: about 340 s for the MP4, 2.9 s per MB for the Matroska file (in
        // a release build; this is a debug one).
        assert!(spent < Duration::from_secs(2), "{what}: {spent:?} of CPU");
    }
}

#[tokio::test]
async fn a_damaged_aac_upload_writes_a_bounded_number_of_decoder_log_lines() {
    let running = start();
    let good = std::fs::read("tests/fixtures/audio/adts-aac.aac").expect("fixture");
    // 100 frames the decoder refuses after each good one (too few in a row to refuse the
    // file): about 7,000 refusals, each an ERROR line from symphonia.
    let file = hostile_audio::adts_mostly_damaged(&good, 100, 1_000_000);
    let (status, body) = running.transcribe(file).await;
    assert_eq!(status, 200, "{body}");
    let logs = running.logs_once(|logs| logs.contains("further log lines from a library were dropped")).await;
    let decoder_lines = logs.lines().filter(|line| line.contains("symphonia_codec_aac")).count();
    assert!(decoder_lines > 0, "the first lines are kept: {logs}");
    assert!(decoder_lines <= backend_ai::telemetry::THIRD_PARTY_LINES as usize, "{decoder_lines} lines");
    let summary = logs.lines().find(|line| line.contains("further log lines from a library were dropped"));
    let summary: serde_json::Value =
        serde_json::from_str(summary.expect("one line says what was dropped")).expect("json");
    assert!(summary["dropped"].as_u64().is_some_and(|dropped| dropped > 1_000), "{summary}");
}
