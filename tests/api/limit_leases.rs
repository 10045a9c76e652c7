//! The limits' scripts run per request, counted by Redis itself (`INFO commandstats`): a hit
//! spends requests of a lease this instance holds, so a thousand hits from one user cost a few
//! scripts, not two thousand, and a user held at 429 costs none until `Retry-After` has passed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::redis_support::RedisServer;
use crate::helpers::{TestApp, spawn_app};

const KEY: &str = "lease-key";

async fn instance(redis: &RedisServer, per_minute: &str) -> TestApp {
    let url = redis.url();
    spawn_app(&[
        ("API_KEYS", KEY),
        ("RATE_LIMIT_REDIS_URL", url.as_str()),
        ("REDIS_TIMEOUT_MS", "2000"),
        ("RATE_LIMIT_PER_MINUTE", per_minute),
        ("SIMULATOR_LATENCY_MS", "0"),
    ])
    .await
}

async fn analyze_as(app: &TestApp, user: &str) -> u16 {
    app.client
        .post(app.url("/api/analyze"))
        .header("X-API-Key", KEY)
        .header("X-User-ID", user)
        .json(&json!({"text": "Yesterday I go to the shop."}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

async fn connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).expect("url");
    client.get_multiplexed_async_connection().await.expect("connect")
}

/// Scripts Redis ran since its stats were last reset.
async fn scripts_run(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.expect("info");
    let calls: HashMap<&str, u64> = info
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            Some((name, stats.strip_prefix("calls=")?.split(',').next()?.parse().ok()?))
        })
        .collect();
    calls.get("evalsha").copied().unwrap_or(0) + calls.get("eval").copied().unwrap_or(0)
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(raw).await.expect("resetstat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hits_from_one_user_cost_a_few_scripts_not_two_thousand() {
    let redis = RedisServer::start();
    let app = instance(&redis, "6000000").await;
    let mut raw = connection(&redis).await;
    assert_eq!(analyze_as(&app, "busy-learner").await, 200, "the miss that fills the cache");
    reset_stats(&mut raw).await;

    let started = Instant::now();
    for _ in 0..1000 {
        assert_eq!(analyze_as(&app, "busy-learner").await, 200);
    }
    let seconds = started.elapsed().as_secs();
    let scripts = scripts_run(&mut raw).await;
    // Two limits (the user's and the key's ceiling), each asking again when its one-second
    // lease ends: two a second, however slow the machine is; before leases it was 2,000.
    assert!(scripts <= 2 * (seconds + 2), "{scripts} scripts for 1,000 hits in {seconds} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_held_at_429_costs_no_script_until_retry_after() {
    let redis = RedisServer::start();
    let app = instance(&redis, "5").await;
    let mut raw = connection(&redis).await;
    assert_eq!(analyze_as(&app, "warm-up").await, 200);
    reset_stats(&mut raw).await;

    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses.push(analyze_as(&app, "retry-loop").await);
    }
    // One more of its own every 12 s, should the machine be that slow.
    let refills = started.elapsed().as_secs() / 12;
    let served = statuses.iter().filter(|status| **status == 200).count();
    assert!((5..=5 + refills as usize).contains(&served), "{statuses:?}");
    assert!(statuses[..5].iter().all(|status| *status == 200), "{statuses:?}");
    let scripts = scripts_run(&mut raw).await;
    // At 5 a minute a lease is one request: one script per served request and its ceiling's
    // (the ceiling, 500 a minute, leases 9 at a time), one per refusal that Retry-After ended,
    // and none for the 429s in between.
    assert!(scripts <= 2 * served as u64 + 2 * (refills + 1), "{scripts} scripts for 100 requests, {served} served");
}
