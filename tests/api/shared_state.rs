//! What two instances on a distributed Redis must still do together, whatever the topology:
//! serve each other's results, make one upstream call for a key between them, hold one limit,
//! and keep answering while a master fails over. Used by `redis_cluster` and `redis_sentinel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::cache::{HANG_GUARD, analysis, analysis_reply, analyze, analyze_ok, cache_health, gemini_answers};
use crate::helpers::{FakeClouds, GEMINI_PATH, TestApp, assert_one_shared_limit, spawn_app_with_fakes};

/// An instance on the store that `store` names (`REDIS_CLUSTER_NODES=…` or the Sentinel pair).
pub async fn instance(fakes: &FakeClouds, store: &[(&str, &str)], extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("CACHE_MODE", "redis_only"),
        // A loaded machine must not turn a slow reply into "Redis is down"; a dead master's
        // operations still end well inside a request.
        ("REDIS_TIMEOUT_MS", "1000"),
        ("UPSTREAM_TIMEOUT_SECONDS", "30"),
        // One attempt per request: a mock's call count is the number of requests that reached it.
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    vars.extend_from_slice(store);
    vars.extend_from_slice(extra);
    spawn_app_with_fakes(fakes, &vars).await
}

/// Gemini answers every prompt; the calls are counted by `gemini_calls`.
pub async fn gemini_answers_everything(gemini: &MockServer) {
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(analysis_reply("Fine."))
        .with_priority(10)
        .mount(gemini)
        .await;
}

pub async fn gemini_calls(gemini: &MockServer) -> usize {
    gemini.received_requests().await.map_or(0, |requests| requests.len())
}

pub fn sentence(n: usize) -> String {
    format!("Yesterday I go to the shop number {n}.")
}

/// A result made through one instance is a hit on the other; twenty concurrent identical
/// requests over both make one call; one user's limit holds across both.
pub async fn two_instances_share_hits_flights_and_one_limit(fakes: &FakeClouds, store: &[(&str, &str)]) {
    let (a, b) = (instance(fakes, store, &[]).await, instance(fakes, store, &[]).await);

    gemini_answers(&fakes.gemini, "The cat sit on the mat.", analysis_reply("Cats."), 1).await;
    analyze_ok(&a, "The cat sit on the mat.").await;
    let (status, body) = analyze(&b, "The cat sit on the mat.").await;
    assert_eq!((status, &body["data"]), (200, &analysis("Cats.")), "B serves A's result: {body}");

    let slow = analysis_reply("Slow.").set_delay(Duration::from_millis(500));
    gemini_answers(&fakes.gemini, "He have two brother.", slow, 1).await;
    let both = (0..20).map(|i| analyze(if i % 2 == 0 { &a } else { &b }, "He have two brother."));
    for (status, body) in futures::future::join_all(both).await {
        assert_eq!((status, &body["data"]), (200, &analysis("Slow.")), "{body}");
    }
    fakes.gemini.verify().await;

    let limited = [("RATE_LIMIT_PER_MINUTE", "10")];
    let (a, b) = (instance(fakes, store, &limited).await, instance(fakes, store, &limited).await);
    let mut statuses = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = app
            .client
            .post(app.url("/api/analyze"))
            .header("X-User-ID", "one-learner")
            .json(&json!({"text": "The cat sit on the mat."}))
            .timeout(HANG_GUARD)
            .send()
            .await
            .expect("answered");
        statuses.push(response.status().as_u16());
    }
    assert_one_shared_limit(&statuses, 10, 2);
}

/// Requests alternating over `apps`, each a new text (a miss: it claims, calls Gemini and stores
/// through Redis), until stopped; every status, in order.
pub struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(u16, String)>>,
}

impl Load {
    pub fn start(apps: Vec<Arc<TestApp>>, first: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut n = 0usize;
            while !stopping.load(Ordering::Relaxed) {
                let (status, body) = analyze(&apps[n % apps.len()], &sentence(first + n)).await;
                outcomes.push((status, body.to_string()));
                n += 1;
            }
            outcomes
        });
        Self { stop, task }
    }

    /// Stop, and assert that every request succeeded; how many there were.
    pub async fn finish_without_failures(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let outcomes = self.task.await.expect("the load ran");
        let failed: Vec<_> = outcomes.iter().filter(|(status, _)| *status != 200).collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed: {:?}",
            failed.len(),
            outcomes.len(),
            &failed[..failed.len().min(3)]
        );
        outcomes.len()
    }
}

/// Every text is served from Redis by a fresh instance (empty memory tier): no Gemini call.
pub async fn a_fresh_instance_hits_every_text(fakes: &FakeClouds, store: &[(&str, &str)], texts: &[String]) {
    let fresh = instance(fakes, store, &[]).await;
    let before = gemini_calls(&fakes.gemini).await;
    for text in texts {
        analyze_ok(&fresh, text).await;
    }
    assert_eq!(gemini_calls(&fakes.gemini).await, before, "every result came from Redis");
}

/// After a failover: once every instance sees all of Redis again, the load that ran through it
/// had no failure, and a fresh instance hits every text stored before it.
pub async fn recovered_without_failures(
    apps: &[&TestApp],
    load: Load,
    fakes: &FakeClouds,
    store: &[(&str, &str)],
    texts: &[String],
) {
    for app in apps {
        wait_for_state(app, "up").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let served = load.finish_without_failures().await;
    assert!(served > 20, "the load ran through the failover ({served} requests)");
    a_fresh_instance_hits_every_text(fakes, store, texts).await;
}

/// Poll `/health/cache` until `redis.state` is `state`; the last body.
pub async fn wait_for_state(app: &TestApp, state: &str) -> Value {
    let give_up = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let health = cache_health(app).await;
        if health["redis"]["state"] == state {
            return health;
        }
        assert!(tokio::time::Instant::now() < give_up, "redis.state never became {state}: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
