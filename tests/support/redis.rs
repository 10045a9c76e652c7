//! A private `redis-server` per test, on a free loopback port, so tests never touch the
//! machine's shared Redis and can kill and restart theirs at will.
#![allow(dead_code)] // each test binary uses a different part of this

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// More `redis-server` arguments (e.g. a TLS port and its certificates).
    extra: Vec<String>,
}

impl RedisServer {
    /// Start a fresh, empty server. Panics with a clear message when `redis-server` is missing.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// `start`, with more arguments for `redis-server`; the plain port stays for the checks.
    pub fn start_with(extra: Vec<String>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        let mut server = Self { port: free_port(), child: None, dir, extra };
        // A port that was free a moment ago can be taken by a concurrent test's server before
        // ours binds it: ours then exits, and without the identity check in `try_spawn` this
        // test would talk to the other test's Redis until that one is killed.
        for _ in 0..5 {
            if server.try_spawn() {
                return server;
            }
            server.port = free_port();
        }
        panic!("redis-server did not start on any of 5 free ports");
    }
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kill the server (SIGKILL: as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.try_spawn(), "redis-server did not start again on port {}", self.port);
    }

    /// Start redis-server on `self.port`; true once that very process answers there.
    fn try_spawn(&mut self) -> bool {
        let binary = which_redis_server();
        let mut child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("could not start {}: {error}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return false; // it could not bind: the port was taken
            }
            if serving_pid(self.port) == Some(child.id()) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The process id of the Redis answering on `port` (from `INFO server`), if one does.
fn serving_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("process_id:") || !reply.ends_with(b"\r\n") {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&reply);
    let line = text.lines().find_map(|line| line.strip_prefix("process_id:"))?;
    line.trim().parse().ok()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn which_redis_server() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("redis-server")).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.into_iter().find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "this test needs `redis-server` on PATH to start a private Redis; \
             install it (Debian: `apt-get install redis-server`) and run the tests again"
        )
    })
}

/// A port that was free a moment ago. Another process could take it before redis-server binds;
/// on a test machine that race is rare enough, and the start-up wait above reports it clearly.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local address").port()
}
