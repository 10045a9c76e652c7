//! The per-key ceiling shared fairly: a request one user's own limit refused spends none of the
//! key's ceiling, so one user in a retry loop that ignores `Retry-After` leaves the key's other
//! users served, on every instance sharing the limits' Redis.

use std::time::Duration;

use crate::helpers::redis_support::RedisServer;
use crate::helpers::{TestApp, spawn_app};

const KEY: &str = "frontend-key";

async fn instance(redis: &RedisServer) -> TestApp {
    let url = redis.url();
    spawn_app(&[
        ("API_KEYS", KEY),
        ("RATE_LIMIT_REDIS_URL", url.as_str()),
        ("REDIS_TIMEOUT_MS", "1000"),
        ("RATE_LIMIT_PER_MINUTE", "5"),
        ("RATE_LIMIT_PER_KEY_PER_MINUTE", "30"),
        ("SIMULATOR_LATENCY_MS", "0"),
    ])
    .await
}

fn rejections(app: &TestApp, scope: &str) -> u64 {
    app.state.metrics.rate_limit_rejections_total.with_label_values(&["redis", scope]).get()
}

#[tokio::test]
async fn one_user_flooding_a_key_with_refused_requests_leaves_the_keys_other_users_served() {
    let redis = RedisServer::start();
    let instances = [instance(&redis).await, instance(&redis).await];

    // ~50 requests a second from one user id, over both instances, for two seconds: all but its
    // own five are 429s. Its five and the twenty others' fit the ceiling of thirty; the 95
    // refusals, had they been charged to the key, would have spent it three times over.
    let flood = async {
        let mut statuses = Vec::new();
        for n in 0..100 {
            statuses.push(instances[n % 2].analyze_as(KEY, "retry-loop").await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses
    };
    let others = async {
        let mut statuses = Vec::new();
        for n in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            statuses.push(instances[n % 2].analyze_as(KEY, &format!("learner-{n}")).await);
        }
        statuses
    };
    let started = std::time::Instant::now();
    let (flood, others) = tokio::join!(flood, others);
    // One more of its own every 12 s (5 a minute), should the machine be slow.
    let refilled = (started.elapsed().as_secs() / 12) as usize + 1;

    let served = flood.iter().filter(|status| **status == 200).count();
    assert!((5..=5 + refilled).contains(&served), "the flooder has its own limit and no more: {flood:?}");
    assert!(flood.iter().all(|status| matches!(status, 200 | 429)), "{flood:?}");
    assert_eq!(others, vec![200; 20], "every other user of the key is served");
    let by_key: u64 = instances.iter().map(|app| rejections(app, "key")).sum();
    assert_eq!(by_key, 0, "the ceiling never refused");
    let by_user: u64 = instances.iter().map(|app| rejections(app, "user")).sum();
    assert_eq!(by_user as usize, 100 - served, "the flood's refusals are its own limit's");

    // The ceiling still holds a key holder who invents a user id per request.
    let mut invented = Vec::new();
    for n in 0..40 {
        invented.push(instances[n % 2].analyze_as(KEY, &format!("invented-{n}")).await);
    }
    let served_after = invented.iter().filter(|status| **status == 200).count();
    assert!(served_after < 40, "the ceiling is spent by what was served: {invented:?}");
    assert!(instances.iter().map(|app| rejections(app, "key")).sum::<u64>() > 0, "{invented:?}");
}
