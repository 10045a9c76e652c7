//! Round trips to Redis on a request's path, in the configuration production runs (redis_only,
//! API keys, both rate limits, JSON logs), counted by a proxy that holds Redis's replies until the
//! test releases them (`support/redis_rounds.rs`): a hit costs at most one round (the lookup,
//! with the limits' scripts beside it when a lease has run out), none from memory, a miss one
//! too (that, with the lease taken in it; the store that ends the lease follows the answer, off
//! its path), and a refused request never reaches the upstream.

use serde_json::{Value, json};

use crate::cache::{HANG_GUARD, analysis, analysis_reply, gemini_answers};
use crate::helpers::redis_rounds::RoundCounter;
use crate::helpers::redis_support::RedisServer;
use crate::helpers::{FakeClouds, TestApp, spawn_app_with_fakes};

async fn production_instance(fakes: &FakeClouds, redis_url: &str, per_minute: &str) -> TestApp {
    let vars = [
        ("CACHE_MODE", "redis_only"),
        ("REDIS_URL", redis_url),
        ("API_KEYS", "round-key"),
        ("RATE_LIMIT_PER_MINUTE", per_minute),
        ("LOG_FORMAT", "json"),
        // Replies are held while the test counts; far above that wait.
        ("REDIS_TIMEOUT_MS", "20000"),
        ("UPSTREAM_MAX_ATTEMPTS", "1"),
    ];
    spawn_app_with_fakes(fakes, &vars).await
}

fn analyze(app: &TestApp, text: &str) -> impl std::future::Future<Output = (u16, Value)> + Send + 'static {
    let request = app
        .client
        .post(app.url("/api/analyze"))
        .header("X-API-Key", "round-key")
        .header("X-User-ID", "learner-7")
        .json(&json!({"text": text}))
        .timeout(HANG_GUARD);
    async move {
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }
}

fn names(rounds: &[Vec<String>]) -> Vec<Vec<&str>> {
    rounds.iter().map(|round| round.iter().map(String::as_str).filter(|name| *name != "PING").collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_costs_one_redis_round_trip_and_so_does_a_miss() {
    let redis = RedisServer::start();
    let proxy = RoundCounter::start(redis.port()).await;
    let fakes = FakeClouds::start().await;
    gemini_answers(&fakes.gemini, "She don't like apples.", analysis_reply("Stored."), 1).await;
    gemini_answers(&fakes.gemini, "We was happy.", analysis_reply("Missed."), 1).await;
    let (writer, reader) = (
        production_instance(&fakes, &proxy.url(), "1000").await,
        production_instance(&fakes, &proxy.url(), "1000").await,
    );
    // Warm up both links and store one result through the writer, replies flowing freely.
    let (status, _) = analyze(&writer, "She don't like apples.").await;
    assert_eq!(status, 200);
    let (status, _) = analyze(&reader, "Warm-up of the reader's connection.").await;
    assert!(status == 200 || status == 502, "{status}");
    // What follows those answers (the writer's store, the reader's lease released) lands
    // before anything is counted.
    let _after_the_warm_up = proxy.quiet_commands().await;

    // A result in Redis and not in the reader's memory: the limits and the lookup, one round.
    let ((status, body), rounds) = proxy.rounds(analyze(&reader, "She don't like apples.")).await;
    assert_eq!((status, &body["data"]), (200, &analysis("Stored.")), "{body}");
    assert_eq!(names(&rounds).len(), 1, "one round trip for a hit: {rounds:?}");

    // Now in the reader's memory too: the limits answer from the leases the reader holds, so
    // the request asks Redis nothing; a round seen here is the usage writer's (its scripts run
    // after answers, off their path). The limits' own scripts per hit are counted by key in
    // `limit_leases.rs`.
    let ((status, _), rounds) = proxy.rounds(analyze(&reader, "She don't like apples.")).await;
    assert_eq!(status, 200);
    assert!(names(&rounds).len() <= 1, "{rounds:?}");

    // A miss: the limits with the claim; the store that ends the lease is not waited for.
    let ((status, body), rounds) = proxy.rounds(analyze(&reader, "We was happy.")).await;
    assert_eq!((status, &body["data"]), (200, &analysis("Missed.")), "{body}");
    assert_eq!(names(&rounds).len(), 1, "one round trip for a miss: {rounds:?}");
    fakes.gemini.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_limit_refuses_never_reaches_the_upstream_though_its_lookup_ran_alongside() {
    let redis = RedisServer::start();
    let fakes = FakeClouds::start().await;
    gemini_answers(&fakes.gemini, "They goes home.", analysis_reply("Once."), 1).await;
    let url = redis.url();
    let (a, b) = (production_instance(&fakes, &url, "1").await, production_instance(&fakes, &url, "1").await);
    let (status, _) = analyze(&a, "They goes home.").await;
    assert_eq!(status, 200);
    // The same learner, over the limit, on the other instance: a hit, which that instance may
    // serve on credit before it hears the bucket is empty (the bound's `N·n`, `lease.rs`).
    let (status, _) = analyze(&b, "They goes home.").await;
    assert!(status == 200 || status == 429, "{status}");
    // Content nobody asked yet: by now the instance knows, and the upstream is not reached.
    gemini_answers(&fakes.gemini, "I has a dog.", analysis_reply("Never."), 0).await;
    let (status, body) = analyze(&b, "I has a dog.").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "{body}");
    let (status, body) = analyze(&a, "I has a dog.").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "{body}");
    fakes.gemini.verify().await;
}
