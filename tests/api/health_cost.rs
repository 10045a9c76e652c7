//! `/health/cache` needs no key, so what one call costs is what anyone can make a pod spend:
//! it answers from the state the Redis links keep (their own probes, at most a few seconds
//! old), not from a probe of every part of Redis per call, and never walks the memory tier.

use crate::helpers::redis_rounds::RoundCounter;
use crate::helpers::redis_support::RedisServer;
use crate::helpers::spawn_app;

const CALLS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_health_calls_cost_redis_a_bounded_few_commands() {
    let (cache_redis, limits_redis) = (RedisServer::start(), RedisServer::start());
    let (cache_proxy, limits_proxy) =
        (RoundCounter::start(cache_redis.port()).await, RoundCounter::start(limits_redis.port()).await);
    let (cache_url, limits_url) = (cache_proxy.url(), limits_proxy.url());
    let app =
        spawn_app(&[("CACHE_MODE", "redis_only"), ("REDIS_URL", &cache_url), ("RATE_LIMIT_REDIS_URL", &limits_url)])
            .await;
    let first: serde_json::Value = app.get("/health/cache").await.json().await.expect("json");
    assert_eq!(first["redis"]["connected"], true, "{first}");
    assert_eq!(first["limits_redis"]["connected"], true, "{first}");
    let _ = (cache_proxy.quiet_commands().await, limits_proxy.quiet_commands().await);

    let calls = (0..CALLS).map(|_| async {
        let health: serde_json::Value = app.get("/health/cache").await.json().await.expect("json");
        assert_eq!(health["redis"]["state"], "up", "{health}");
        assert!(health["memory"]["bytes"].is_u64(), "{health}");
    });
    futures::future::join_all(calls).await;

    // The background probe (every 5 s) and at most one probe for the calls, per link; before,
    // one PING per call.
    for (name, proxy) in [("cache", &cache_proxy), ("limits", &limits_proxy)] {
        let commands = proxy.quiet_commands().await;
        assert!(
            commands.len() <= 3,
            "{CALLS} calls sent {} commands to the {name} Redis: {commands:?}",
            commands.len()
        );
    }
}
