//! The link against servers that refuse, hang or vanish: back-off, trials, the idle probe.

use std::time::Duration;

use tokio::time::Instant;

use super::link::is_link_failure;
use super::{LinkOptions, RedisLink, RedisLinkError, RedisTarget};
use crate::metrics::Metrics;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn redis_answering_with_an_error_is_not_a_link_failure() {
    let refused =
        redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "WRONGTYPE"));
    assert!(!is_link_failure(&RedisLinkError::Redis(refused)));
    let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    assert!(is_link_failure(&RedisLinkError::Redis(io)));
    assert!(is_link_failure(&RedisLinkError::Timeout(SECOND)));
}

/// A port that refuses connections: bound, then closed.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("redis://127.0.0.1:{port}/0")
}

fn quiet_options(op_timeout: Duration) -> LinkOptions {
    LinkOptions { health_every: None, ..LinkOptions::new(op_timeout) }
}

async fn get(link: &RedisLink) -> Result<Option<String>, RedisLinkError> {
    link.run("k", |mut conn| async move { redis::cmd("GET").arg("k").query_async(&mut conn).await }).await
}

/// The operation went to Redis (and failed, there being no Redis), rather than being skipped.
fn attempted_and_failed(result: &Result<Option<String>, RedisLinkError>) -> bool {
    matches!(result, Err(RedisLinkError::Timeout(_) | RedisLinkError::Redis(_)))
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_redis_is_tried_again_only_when_each_back_off_ends() {
    let metrics = Metrics::new();
    // A doubling back-off, as the link can be configured (its default stays at one second).
    let options = LinkOptions { backoff_max: 10 * SECOND, ..quiet_options(SECOND / 4) };
    let link = RedisLink::with_options(&RedisTarget::single(closed_port_url()), options, metrics).expect("valid url");
    assert!(attempted_and_failed(&get(&link).await), "the first operation tries");
    let failed_at = Instant::now();
    assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)));
    assert!(!link.is_up());

    tokio::time::advance((failed_at + SECOND).saturating_duration_since(Instant::now())).await;
    assert!(attempted_and_failed(&get(&link).await), "tried again after 1 s");
    let failed_again_at = Instant::now();
    tokio::time::advance(SECOND).await;
    assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)), "the second back-off is 2 s");
    tokio::time::advance((failed_again_at + 2 * SECOND).saturating_duration_since(Instant::now())).await;
    assert!(attempted_and_failed(&get(&link).await), "tried again after 2 s");
    assert_eq!(link.failures(), 5, "skipped operations count as failures");
}

#[tokio::test]
async fn a_hung_redis_costs_one_timeout_then_operations_skip_it() {
    // Accepts connections and never answers, as a wedged Redis or a black-holing proxy does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("redis://{}/0", listener.local_addr().expect("address"));
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let metrics = Metrics::new();
    let link = RedisLink::with_options(
        &RedisTarget::single(url.clone()),
        quiet_options(Duration::from_millis(200)),
        metrics.clone(),
    )
    .expect("url");

    let first = get(&link).await;
    assert!(attempted_and_failed(&first), "the first operation waits for Redis and fails: {first:?}");
    for _ in 0..50 {
        assert!(matches!(get(&link).await, Err(RedisLinkError::BackingOff)), "skipped, not attempted");
    }
    assert!(!link.is_up());
    assert_eq!(link.failures(), 51);
    assert_eq!(metrics.service_health_status.with_label_values(&["redis"]).get(), 0);
    accepting.abort();
}

#[tokio::test(start_paused = true)]
async fn a_trial_abandoned_by_its_caller_lets_the_next_operation_try() {
    // Bound but never accepting: the kernel completes connections, nothing ever answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("redis://{}/0", hung.local_addr().expect("address"));
    let link = RedisLink::with_options(&RedisTarget::single(url.clone()), quiet_options(SECOND), Metrics::new())
        .expect("valid url");
    assert!(attempted_and_failed(&get(&link).await));
    tokio::time::advance(2 * SECOND).await;
    // The caller gives up (its request was dropped) while its trial operation is pending.
    let abandoned = tokio::time::timeout(Duration::from_millis(1), get(&link)).await;
    assert!(abandoned.is_err(), "the trial was still pending: {abandoned:?}");
    assert!(attempted_and_failed(&get(&link).await), "not stuck skipping behind a trial that will never report");
}

#[tokio::test(start_paused = true)]
async fn while_redis_is_down_an_idle_link_probes_it_every_second() {
    let options = LinkOptions { health_every: Some(5 * SECOND), ..LinkOptions::new(SECOND / 4) };
    let link = RedisLink::with_options(&RedisTarget::single(closed_port_url()), options, Metrics::new()).expect("url");
    // Let the first probe run, then count the probes of the next ten seconds: each failed.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = link.failures();
    for _ in 0..100 {
        tokio::time::sleep(SECOND / 10).await;
    }
    let probes = link.failures() - before;
    assert!((9..=11).contains(&probes), "{probes} probes in 10 s, where every 5 s would make 2");
}

#[tokio::test]
async fn the_health_probe_ends_when_the_last_link_is_dropped() {
    let metrics = Metrics::new();
    let options = LinkOptions { health_every: Some(Duration::from_millis(20)), ..LinkOptions::new(SECOND) };
    let link = RedisLink::with_options(&RedisTarget::single(closed_port_url()), options, metrics).expect("url");
    let clone = link.clone();
    let runtime = tokio::runtime::Handle::current();
    assert!(runtime.metrics().num_alive_tasks() >= 1, "the probe runs");
    drop(link);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(runtime.metrics().num_alive_tasks() >= 1, "a clone still uses the link");
    drop(clone);
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while runtime.metrics().num_alive_tasks() > 0 {
        assert!(std::time::Instant::now() < give_up, "the probe outlived its link");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
