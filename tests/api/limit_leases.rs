//! The limits' scripts run per request, counted by Redis itself (its slow log, every command
//! with its keys, at a threshold of 0; `INFO commandstats` cannot tell them from the usage
//! writer's): a hit spends requests of a lease this instance holds, so a thousand hits from one
//! user cost a few scripts, not two thousand, and a user held at 429 costs none until
//! `Retry-After` has passed.

use std::time::{Duration, Instant};

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

async fn connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("connect");
    // The slow log of a thousand requests is a long reply.
    connection.set_response_timeout(Duration::from_secs(30));
    connection
}

/// The limits' scripts Redis ran since `reset_stats`: every command is in the slow log (a
/// threshold of 0), with its arguments, so the usage writer's scripts on the same Redis (one per
/// answered request, off the request's path) are told apart by their keys.
async fn scripts_run(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query_async(raw).await.expect("slowlog");
    let text = |value: &redis::Value| match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) => text.clone(),
        _ => String::new(),
    };
    let limit_script = |entry: &redis::Value| {
        let redis::Value::Array(fields) = entry else { return false };
        let Some(redis::Value::Array(args)) = fields.get(3) else { return false };
        let args: Vec<String> = args.iter().map(text).collect();
        args.first().is_some_and(|name| name.eq_ignore_ascii_case("evalsha") || name.eq_ignore_ascii_case("eval"))
            && args.iter().any(|arg| arg.contains(":ratelimit"))
    };
    entries.iter().filter(|entry| limit_script(entry)).count() as u64
}

async fn reset_stats(raw: &mut redis::aio::MultiplexedConnection) {
    for (name, value) in [("slowlog-log-slower-than", "0"), ("slowlog-max-len", "100000")] {
        let _: () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async(raw).await.expect("config set");
    }
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(raw).await.expect("slowlog reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hits_from_one_user_cost_a_few_scripts_not_two_thousand() {
    let redis = RedisServer::start();
    let app = instance(&redis, "6000000").await;
    let mut raw = connection(&redis).await;
    assert_eq!(app.analyze_as(KEY, "busy-learner").await, 200, "the miss that fills the cache");
    reset_stats(&mut raw).await;

    let started = Instant::now();
    for _ in 0..1000 {
        assert_eq!(app.analyze_as(KEY, "busy-learner").await, 200);
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
    assert_eq!(app.analyze_as(KEY, "warm-up").await, 200);
    reset_stats(&mut raw).await;

    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses.push(app.analyze_as(KEY, "retry-loop").await);
    }
    // One more of its own every 12 s, should the machine be that slow.
    let refills = started.elapsed().as_secs() / 12;
    let served = statuses.iter().filter(|status| **status == 200).count();
    assert!((5..=5 + refills as usize).contains(&served), "{statuses:?}");
    assert!(statuses[..5].iter().all(|status| *status == 200), "{statuses:?}");
    let scripts = scripts_run(&mut raw).await;
    // At 5 a minute a lease is one request: a script serves at most two (one on credit, charged
    // by it, and the lease of one it grants), plus the ceiling's (500 a minute, leases of 9), one
    // per refusal that Retry-After ended, and none for the 429s in between.
    assert!(scripts <= 2 * served as u64 + 2 * (refills + 1), "{scripts} scripts for 100 requests, {served} served");
    assert!(scripts >= served.div_ceil(2) as u64, "a script serves at most two requests here: {scripts} counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_from_learners_the_instance_never_saw_are_answered_while_redis_is_paused() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app(&[
        ("API_KEYS", KEY),
        ("RATE_LIMIT_REDIS_URL", url.as_str()),
        // Longer than the pause: a request that waited for a limit's script would wait it out.
        ("REDIS_TIMEOUT_MS", "60000"),
        ("RATE_LIMIT_PER_MINUTE", "60"),
        ("SIMULATOR_LATENCY_MS", "0"),
    ])
    .await;
    assert_eq!(app.analyze_as(KEY, "first-learner").await, 200, "the miss that fills the cache");
    let mut raw = connection(&redis).await;
    let pause = Duration::from_secs(20);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("ALL")
        .query_async(&mut raw)
        .await
        .expect("pause");
    let paused = Instant::now();

    // Each is served on credit, its charge sent off its path (and held by the pause).
    for learner in 0..20 {
        assert_eq!(app.analyze_as(KEY, &format!("new-learner-{learner}")).await, 200);
    }
    assert!(paused.elapsed() < pause, "the hits waited for Redis: {:?}", paused.elapsed());
}
