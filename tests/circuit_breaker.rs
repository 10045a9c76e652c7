//! The circuit breaker as a caller of an upstream sees it: how many calls reach the upstream,
//! what a refused caller is told, and when it lets traffic through again. Paused tokio time
//! drives the recovery timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_ai::metrics::Metrics;
use backend_ai::middleware::circuit_breaker::{Breaker, BreakerConfig, BreakerState, CircuitBreakerLayer};
use backend_ai::upstream::{Upstream, UpstreamError};
use parking_lot::Mutex;
use tower::{Layer, Service, ServiceExt};

const RECOVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum Behaviour {
    Answer,
    Fail(UpstreamError),
    /// Fails with a 503 after this long.
    SlowFail(Duration),
    Hang,
}

/// A fake upstream whose behaviour the test switches, counting the calls that reach it.
#[derive(Clone)]
struct Fake {
    calls: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Fake {
    fn new() -> Self {
        Self { calls: Arc::new(AtomicUsize::new(0)), behaviour: Arc::new(Mutex::new(Behaviour::Answer)) }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock() = behaviour;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<()> for Fake {
    type Response = &'static str;
    type Error = UpstreamError;
    type Future = futures::future::BoxFuture<'static, Result<&'static str, UpstreamError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), UpstreamError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behaviour = self.behaviour.lock().clone();
        Box::pin(async move {
            match behaviour {
                Behaviour::Answer => Ok("answer"),
                Behaviour::Fail(error) => Err(error),
                Behaviour::SlowFail(after) => {
                    tokio::time::sleep(after).await;
                    Err(server_error())
                }
                Behaviour::Hang => futures::future::pending().await,
            }
        })
    }
}

fn server_error() -> UpstreamError {
    UpstreamError::Server { upstream: Upstream::Gemini, status: 503, message: "UNAVAILABLE".into(), retry_after: None }
}

fn breaker(threshold: u32, probes: u32, metrics: &Metrics) -> Breaker {
    let config =
        BreakerConfig { failure_threshold: threshold, recovery_timeout: RECOVERY, half_open_max_probes: probes };
    Breaker::new(Upstream::Gemini, config, metrics.clone())
}

async fn call<S: Service<(), Response = &'static str, Error = UpstreamError>>(
    service: &mut S,
) -> Result<&'static str, UpstreamError> {
    service.ready().await?.call(()).await
}

fn retry_after(result: Result<&'static str, UpstreamError>) -> Duration {
    match result {
        Err(UpstreamError::CircuitOpen { upstream: Upstream::Gemini, retry_after }) => retry_after,
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
}

/// A breaker opened by `threshold` failures, with a fake still failing.
async fn opened(threshold: u32, probes: u32) -> (Breaker, Fake, Metrics) {
    let metrics = Metrics::new();
    let breaker = breaker(threshold, probes, &metrics);
    let fake = Fake::new();
    fake.set(Behaviour::Fail(server_error()));
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());
    for _ in 0..threshold {
        assert_eq!(call(&mut service).await, Err(server_error()));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    (breaker, fake, metrics)
}

#[tokio::test(start_paused = true)]
async fn opens_after_exactly_the_threshold_and_then_stops_calling_the_upstream() {
    let metrics = Metrics::new();
    let breaker = breaker(3, 1, &metrics);
    let fake = Fake::new();
    fake.set(Behaviour::Fail(server_error()));
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());

    for _ in 0..2 {
        assert_eq!(call(&mut service).await, Err(server_error()));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(call(&mut service).await, Err(server_error()));
    assert_eq!(breaker.state(), BreakerState::Open);

    for _ in 0..10 {
        retry_after(call(&mut service).await);
    }
    assert_eq!(fake.calls(), 3, "no call reaches the upstream while the circuit is open");
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_tells_callers_how_long_to_wait() {
    let (breaker, fake, _) = opened(1, 1).await;
    let mut service = CircuitBreakerLayer::new(breaker).layer(fake);

    assert_eq!(retry_after(call(&mut service).await), RECOVERY);
    tokio::time::advance(Duration::from_secs(20)).await;
    let wait = retry_after(call(&mut service).await);
    assert!(wait <= Duration::from_secs(40) && wait > Duration::from_secs(39), "{wait:?}");
}

#[tokio::test(start_paused = true)]
async fn every_clone_of_the_service_shares_one_circuit() {
    let (breaker, fake, _) = opened(2, 1).await;
    let layer = CircuitBreakerLayer::new(breaker);
    let mut first = layer.layer(fake.clone());
    let mut second = first.clone();
    retry_after(call(&mut first).await);
    retry_after(call(&mut second).await);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_count_of_consecutive_failures() {
    let metrics = Metrics::new();
    let breaker = breaker(3, 1, &metrics);
    let fake = Fake::new();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());
    for round in 0..3 {
        fake.set(Behaviour::Fail(server_error()));
        call(&mut service).await.expect_err("failing upstream");
        call(&mut service).await.expect_err("failing upstream");
        fake.set(Behaviour::Answer);
        assert_eq!(call(&mut service).await, Ok("answer"), "round {round}");
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn errors_that_prove_the_upstream_is_answering_never_open_it() {
    let metrics = Metrics::new();
    let breaker = breaker(2, 1, &metrics);
    let fake = Fake::new();
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());
    let answered = [
        UpstreamError::Rejected { upstream: Upstream::Gemini, status: 400, message: "INVALID_ARGUMENT".into() },
        UpstreamError::Auth { upstream: Upstream::Gemini, message: "API_KEY_INVALID".into() },
        UpstreamError::Blocked { upstream: Upstream::Gemini, reason: "SAFETY".into() },
        UpstreamError::InvalidResponse { upstream: Upstream::Gemini, message: "not JSON".into() },
    ];
    for error in answered {
        for _ in 0..5 {
            fake.set(Behaviour::Fail(error.clone()));
            assert_eq!(call(&mut service).await, Err(error.clone()));
        }
        // Between two real failures they also count as the upstream answering.
        fake.set(Behaviour::Fail(server_error()));
        call(&mut service).await.expect_err("failing upstream");
        fake.set(Behaviour::Fail(error.clone()));
        call(&mut service).await.expect_err("answered with an error");
        fake.set(Behaviour::Fail(server_error()));
        call(&mut service).await.expect_err("failing upstream");
        assert_eq!(breaker.state(), BreakerState::Closed, "after {error:?}");
        fake.set(Behaviour::Answer);
        call(&mut service).await.expect("healthy upstream");
    }
    assert_eq!(fake.calls(), 4 * 9);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_only_the_bounded_probes_through_and_refuses_the_rest_at_once() {
    let (breaker, fake, _) = opened(1, 2).await;
    fake.set(Behaviour::Hang);
    tokio::time::advance(RECOVERY).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);

    let service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());
    let probes: Vec<_> = (0..2).map(|_| tokio::spawn(service.clone().oneshot(()))).collect();
    while fake.calls() < 3 {
        tokio::task::yield_now().await;
    }
    for _ in 0..5 {
        let wait = retry_after(service.clone().oneshot(()).await);
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
    }
    assert_eq!(fake.calls(), 1 + 2, "only the two probes reached the upstream");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    for probe in probes {
        probe.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_caller_gave_up_frees_its_slot() {
    let (breaker, fake, _) = opened(1, 1).await;
    fake.set(Behaviour::Hang);
    tokio::time::advance(RECOVERY).await;
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());

    let abandoned = tokio::time::timeout(Duration::from_secs(5), call(&mut service)).await;
    assert!(abandoned.is_err(), "the probe hangs until its caller gives up");
    assert_eq!(fake.calls(), 2);

    fake.set(Behaviour::Answer);
    assert_eq!(call(&mut service).await, Ok("answer"));
    assert_eq!(fake.calls(), 3);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_it_and_traffic_flows_again() {
    let (breaker, fake, metrics) = opened(2, 1).await;
    assert_eq!(metrics.circuit_breaker_state.with_label_values(&["gemini"]).get(), 2);
    assert_eq!(metrics.service_health_status.with_label_values(&["gemini"]).get(), 0);

    tokio::time::advance(RECOVERY).await;
    fake.set(Behaviour::Answer);
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());
    for _ in 0..5 {
        assert_eq!(call(&mut service).await, Ok("answer"));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(fake.calls(), 2 + 5);
    assert_eq!(metrics.circuit_breaker_state.with_label_values(&["gemini"]).get(), 0);
    assert_eq!(metrics.service_health_status.with_label_values(&["gemini"]).get(), 1);
    assert_eq!(breaker.snapshot()["state"], "closed");
    assert_eq!(breaker.snapshot()["consecutive_failures"], 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again_for_a_full_recovery_timeout() {
    let (breaker, fake, metrics) = opened(1, 1).await;
    tokio::time::advance(RECOVERY).await;
    let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());

    assert_eq!(call(&mut service).await, Err(server_error()), "the probe reaches the upstream");
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(retry_after(call(&mut service).await), RECOVERY);

    tokio::time::advance(RECOVERY - Duration::from_secs(1)).await;
    retry_after(call(&mut service).await);
    assert_eq!(fake.calls(), 2);
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot["state"], "open");
    assert_eq!(snapshot["retry_in_seconds"], 1);
    assert!(snapshot["opened_at"].as_u64().is_some(), "{snapshot}");

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(metrics.circuit_breaker_state.with_label_values(&["gemini"]).get(), 1);
    assert_eq!(metrics.service_health_status.with_label_values(&["gemini"]).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_admitted_before_the_circuit_opened_does_not_count_after_it_closed_again() {
    let metrics = Metrics::new();
    let breaker = breaker(1, 1, &metrics);
    let fake = Fake::new();
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(fake.clone());

    fake.set(Behaviour::SlowFail(RECOVERY + Duration::from_secs(30)));
    let slow = tokio::spawn(service.clone().oneshot(()));
    while fake.calls() < 1 {
        tokio::task::yield_now().await;
    }
    fake.set(Behaviour::Fail(server_error()));
    service.clone().oneshot(()).await.expect_err("failing upstream");
    assert_eq!(breaker.state(), BreakerState::Open);

    tokio::time::advance(RECOVERY).await;
    fake.set(Behaviour::Answer);
    assert_eq!(service.clone().oneshot(()).await, Ok("answer"));
    assert_eq!(breaker.state(), BreakerState::Closed);

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(slow.await.expect("slow call task"), Err(server_error()));
    assert_eq!(breaker.state(), BreakerState::Closed, "one stale failure must not reopen it");
}

#[tokio::test(start_paused = true)]
async fn stacked_over_the_retry_layer_a_hung_upstream_opens_it_through_the_deadline() {
    use backend_ai::middleware::retry::{Jitter, RetryBudget, RetryLayer, RetryPolicy};

    let metrics = Metrics::new();
    let breaker = breaker(2, 1, &metrics);
    let fake = Fake::new();
    fake.set(Behaviour::Hang);
    let deadline = Duration::from_secs(30);
    let service = tower::ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .layer(
            RetryLayer::new(RetryPolicy::new(deadline), RetryBudget::default(), Upstream::Gemini, metrics.clone())
                .with_jitter(Jitter::none()),
        )
        .service(fake.clone());
    // The app keeps each upstream stack type-erased like this.
    let mut service = tower::util::BoxCloneSyncService::new(service);

    for _ in 0..2 {
        assert_eq!(call(&mut service).await, Err(UpstreamError::Timeout { upstream: Upstream::Gemini }));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let started = tokio::time::Instant::now();
    retry_after(call(&mut service).await);
    assert_eq!(started.elapsed(), Duration::ZERO, "an open circuit answers without waiting for the deadline");
    assert_eq!(fake.calls(), 2);
}
