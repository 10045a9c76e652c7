//! A miss's answer does not wait for its Redis store. The value goes into the instance's memory
//! before the answer leaves; the store, which also ends the single-flight lease, follows on a
//! tracked task; another instance reads the stored answer once it lands, with no second
//! upstream call; and an instance told to stop lets that store land before it exits.
//!
//! "Does not wait" is shown without a clock: the test pauses its own Redis's writes
//! (`CLIENT PAUSE ... WRITE`) once the miss has taken its lease and before Gemini answers, so
//! the store cannot land until the test lets it, and the answer arrives all the same.

use std::sync::{Arc, Condvar, Mutex};

use serde_json::Value;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::cache::{HANG_GUARD, analysis, analysis_reply, analyze_ok};
use crate::helpers::redis_support::RedisServer;
use crate::helpers::{FakeClouds, GEMINI_PATH, TestApp, spawn_app_with_fakes};

const TEXT: &str = "Yesterday we goes to the beach.";

async fn instance(fakes: &FakeClouds, redis: &RedisServer) -> TestApp {
    let url = redis.url();
    let vars = [
        ("CACHE_MODE", "redis_only"),
        ("REDIS_URL", url.as_str()),
        // A write held by the pause must read as slow, never as Redis down.
        ("REDIS_TIMEOUT_MS", "60000"),
        ("UPSTREAM_TIMEOUT_SECONDS", "60"),
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    spawn_app_with_fakes(fakes, &vars).await
}

/// Gemini's answer, held until the test opens the gate (bounded by the hang guard).
#[derive(Clone)]
struct Gate {
    open: Arc<(Mutex<bool>, Condvar)>,
    reply: ResponseTemplate,
}

impl Gate {
    fn new(reply: ResponseTemplate) -> Self {
        Self { open: Arc::new((Mutex::new(false), Condvar::new())), reply }
    }

    fn open(&self) {
        let (open, changed) = &*self.open;
        *open.lock().expect("gate lock") = true;
        changed.notify_all();
    }
}

impl Respond for Gate {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let (open, changed) = &*self.open;
        let guard = open.lock().expect("gate lock");
        let _open = changed.wait_timeout_while(guard, HANG_GUARD, |open| !*open).expect("gate lock");
        self.reply.clone()
    }
}

/// Gemini answers `TEXT` once, when `gate` opens.
async fn gemini_behind(fakes: &FakeClouds, gate: &Gate) {
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(body_string_contains(TEXT))
        .respond_with(gate.clone())
        .expect(1)
        .named("gemini, once, when the test lets it")
        .mount(&fakes.gemini)
        .await;
}

/// The test's own connection to its Redis.
struct Probe(redis::aio::MultiplexedConnection);

impl Probe {
    async fn connect(redis: &RedisServer) -> Self {
        let client = redis::Client::open(redis.url()).expect("url");
        Self(client.get_multiplexed_async_connection().await.expect("connect"))
    }

    async fn keys(&mut self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS").arg(pattern).query_async(&mut self.0).await.expect("KEYS")
    }

    /// The single-flight lease's key, once a miss has taken it.
    async fn lease_taken(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(lease) = self.keys("*:lease").await.pop() {
                return lease;
            }
            assert!(tokio::time::Instant::now() < deadline, "no lease was taken");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn exists(&mut self, key: &str) -> bool {
        redis::cmd("EXISTS").arg(key).query_async(&mut self.0).await.expect("EXISTS")
    }

    /// Hold every write (scripts included) until `resume`; reads still pass.
    async fn pause_writes(&mut self) {
        let millis = HANG_GUARD.as_millis().to_string();
        let () =
            redis::cmd("CLIENT").arg("PAUSE").arg(millis).arg("WRITE").query_async(&mut self.0).await.expect("pause");
    }

    async fn resume(&mut self) {
        let () = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut self.0).await.expect("unpause");
    }

    async fn until_stored(&mut self, result: &str) {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        while !self.exists(result).await {
            assert!(tokio::time::Instant::now() < deadline, "the answer was never stored");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// A miss on `app` whose lease is taken and whose Redis writes are then paused, answered by
/// Gemini: its answer, with the result and lease keys.
async fn miss_with_writes_paused(app: &TestApp, probe: &mut Probe, gate: &Gate) -> (Value, String, String) {
    let request = {
        let (client, url) = (app.client.clone(), app.url("/api/analyze"));
        tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&serde_json::json!({"text": TEXT}))
                .timeout(HANG_GUARD)
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.expect("JSON body")
        })
    };
    let lease = probe.lease_taken().await;
    let result = lease.strip_suffix(":lease").expect("a lease key").to_string();
    probe.pause_writes().await;
    gate.open();
    let body = request.await.expect("the request ran");
    (body, result, lease)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_is_answered_before_its_store_lands_and_another_instance_reads_it_once_it_has() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    let gate = Gate::new(analysis_reply("Stored after the answer."));
    gemini_behind(&fakes, &gate).await;
    let (first, second) = (instance(&fakes, &redis).await, instance(&fakes, &redis).await);
    let mut probe = Probe::connect(&redis).await;

    let (body, result, lease) = miss_with_writes_paused(&first, &mut probe, &gate).await;
    assert_eq!(body["data"], analysis("Stored after the answer."), "{body}");
    assert_eq!(body["meta"]["cached"], false, "{body}");
    // Answered, and Redis has had no write since the lease: the store is still to come, and
    // the lease still tells the other instances to wait for it.
    assert!(!probe.exists(&result).await, "the answer waited for the store");
    assert!(probe.exists(&lease).await, "the lease ends with the store, not before");

    // The instance that made the call serves it again from memory, Redis writes still paused.
    let again = analyze_ok(&first, TEXT).await;
    assert_eq!((&again["data"], &again["meta"]["cached"]), (&body["data"], &Value::Bool(true)), "{again}");

    probe.resume().await;
    probe.until_stored(&result).await;
    assert!(!probe.exists(&lease).await, "the store ended the lease");
    let elsewhere = analyze_ok(&second, TEXT).await;
    assert_eq!((&elsewhere["data"], &elsewhere["meta"]["cached"]), (&body["data"], &Value::Bool(true)), "{elsewhere}");
    fakes.gemini.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_told_to_stop_lets_a_pending_store_land_before_it_exits() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    let gate = Gate::new(analysis_reply("Stored on the way out."));
    gemini_behind(&fakes, &gate).await;
    let app = instance(&fakes, &redis).await;
    let mut probe = Probe::connect(&redis).await;

    let (body, result, _lease) = miss_with_writes_paused(&app, &mut probe, &gate).await;
    assert_eq!(body["data"], analysis("Stored on the way out."), "{body}");
    assert!(!probe.exists(&result).await, "the answer waited for the store");

    // The store is work the instance tracks, as it does its detached upstream calls: what
    // shutdown waits for.
    let detached = app.state.upstreams.detached().clone();
    assert_eq!(detached.running(), 1, "the pending store is tracked");
    let address = app.address;
    let stopping = tokio::spawn(app.stop());
    // Shutdown is under way once the listener refuses new connections.
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while tokio::net::TcpStream::connect(address).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the instance never stopped listening");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(detached.running(), 1, "the store is still pending, and waited for");
    probe.resume().await;
    tokio::time::timeout(HANG_GUARD, stopping).await.expect("the instance stopped").expect("no panic");
    assert!(probe.exists(&result).await, "the instance exited before its store landed");
    fakes.gemini.verify().await;
}
