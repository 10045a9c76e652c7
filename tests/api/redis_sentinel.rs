//! The service on a real Sentinel set-up (1 master, 1 replica, 3 sentinels) that the test starts
//! on loopback: two instances share hits, flights and one limit through the master the sentinels
//! name; when it is killed under load no request fails, the instances follow the promoted
//! replica, and when the old master returns (demoted by the sentinels) nothing is written to it.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{analyze_ok, cache_health};
use crate::helpers::FakeClouds;
use crate::helpers::redis_sentinel::RedisSentinel;
use crate::shared_state::{
    Load, a_fresh_instance_hits_every_text, gemini_answers_everything, instance, recovered_without_failures, sentence,
    two_instances_share_hits_flights_and_one_limit,
};

const FAILOVER_GUARD: Duration = Duration::from_secs(30);

fn store(sentinel: &RedisSentinel) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("REDIS_SENTINELS", sentinel.sentinel_list()),
        ("REDIS_SENTINEL_MASTER", sentinel.master_name().to_string()),
    ];
    if let Some(password) = sentinel.sentinel_password() {
        vars.push(("REDIS_SENTINEL_PASSWORD", password.to_string()));
    }
    vars
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_sentinel_share_hits_flights_and_one_limit() {
    let sentinel =
        tokio::task::spawn_blocking(|| RedisSentinel::start_with_sentinel_password("s3ntinel")).await.expect("started");
    let vars = store(&sentinel);
    let fakes = FakeClouds::start().await;
    two_instances_share_hits_flights_and_one_limit(&fakes, &borrowed(&vars)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_load_fails_no_request_and_the_instances_follow_the_new_master() {
    let mut sentinel = tokio::task::spawn_blocking(RedisSentinel::start).await.expect("started");
    let vars = store(&sentinel);
    let store = borrowed(&vars);
    let fakes = FakeClouds::start().await;
    gemini_answers_everything(&fakes.gemini).await;
    let (a, b) = (Arc::new(instance(&fakes, &store, &[]).await), Arc::new(instance(&fakes, &store, &[]).await));
    let texts: Vec<String> = (0..16).map(sentence).collect();
    for text in &texts {
        analyze_ok(&a, text).await;
    }
    assert_eq!(cache_health(&a).await["redis"]["topology"], "sentinel");

    let load = Load::start(vec![a.clone(), b.clone()], 1000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sentinel_back, old, promoted) = tokio::task::spawn_blocking(move || {
        let old = sentinel.kill_master();
        let promoted = sentinel.wait_for_failover(old, FAILOVER_GUARD);
        (sentinel, old, promoted)
    })
    .await
    .expect("failed over");
    sentinel = sentinel_back;
    recovered_without_failures(&[&a, &b], load, &fakes, &store, &texts).await;

    // The old master comes back empty, as a master, until the sentinels demote it: results
    // written meanwhile must go to the promoted node, or a fresh instance would miss them.
    let load = Load::start(vec![a.clone(), b.clone()], 5000);
    let sentinel = tokio::task::spawn_blocking(move || {
        sentinel.restart(old);
        // Sentinel demotes a returning master at its next poll of it: about 10 s here.
        sentinel.wait_role(old, "slave", 3 * FAILOVER_GUARD);
        sentinel
    })
    .await
    .expect("old master demoted");
    let written = load.finish_without_failures().await;
    assert_eq!(sentinel.master_port(), promoted);
    a_fresh_instance_hits_every_text(&fakes, &store, &(5000..5000 + written).map(sentence).collect::<Vec<_>>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_manual_failover_the_demoted_master_still_answers_but_results_go_to_the_new_one() {
    let sentinel = tokio::task::spawn_blocking(RedisSentinel::start).await.expect("started");
    let vars = store(&sentinel);
    let store = borrowed(&vars);
    let fakes = FakeClouds::start().await;
    gemini_answers_everything(&fakes.gemini).await;
    let a = instance(&fakes, &store, &[]).await;
    analyze_ok(&a, &sentence(1)).await;

    // The old master stays up and becomes a replica: it answers `READONLY` to writes, so an
    // instance still talking to it would silently stop storing results.
    let (sentinel, old, promoted) = tokio::task::spawn_blocking(move || {
        let old = sentinel.master_port();
        let asked = sentinel.sentinel_ports()[0];
        sentinel.sentinel_query(asked, &["SENTINEL", "FAILOVER", sentinel.master_name()]).expect("failover started");
        let promoted = sentinel.wait_for_failover(old, FAILOVER_GUARD);
        sentinel.wait_role(old, "slave", FAILOVER_GUARD);
        (sentinel, old, promoted)
    })
    .await
    .expect("failed over");
    assert_ne!(old, promoted);
    let texts: Vec<String> = (2..10).map(sentence).collect();
    for text in &texts {
        analyze_ok(&a, text).await;
    }
    a_fresh_instance_hits_every_text(&fakes, &store, &texts).await;
    drop(sentinel);
}
