//! Retries as the caller of an upstream sees them: how many calls reach the upstream, how long
//! the caller waits (virtual time: paused tokio clock, no jitter), and what error it gets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_ai::metrics::Metrics;
use backend_ai::middleware::retry::{Jitter, RetryBudget, RetryLayer, RetryPolicy};
use backend_ai::upstream::{Upstream, UpstreamError};
use parking_lot::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const DEADLINE: Duration = Duration::from_secs(30);

enum Step {
    Fail(UpstreamError),
    /// Takes this long, then fails with a 503.
    SlowFail(Duration),
    Hang,
}

/// A fake upstream that plays a script of failures, then answers; it counts its calls.
#[derive(Clone)]
struct Fake {
    calls: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Step>>>,
    /// Step repeated once the script is played out; `None` answers.
    forever: Arc<Option<UpstreamError>>,
}

impl Fake {
    fn scripted(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            script: Arc::new(Mutex::new(steps.into_iter().collect())),
            forever: Arc::new(None),
        }
    }

    fn always(error: UpstreamError) -> Self {
        Self { forever: Arc::new(Some(error)), ..Self::scripted([]) }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<String> for Fake {
    type Response = String;
    type Error = UpstreamError;
    type Future = futures::future::BoxFuture<'static, Result<String, UpstreamError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), UpstreamError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: String) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self.script.lock().pop_front();
        let forever = (*self.forever).clone();
        Box::pin(async move {
            match step {
                Some(Step::Fail(error)) => Err(error),
                Some(Step::SlowFail(after)) => {
                    tokio::time::sleep(after).await;
                    Err(server_error())
                }
                Some(Step::Hang) => futures::future::pending().await,
                None => match forever {
                    Some(error) => Err(error),
                    None => Ok(format!("answer to {request}")),
                },
            }
        })
    }
}

fn server_error() -> UpstreamError {
    UpstreamError::Server { upstream: Upstream::Gemini, status: 503, message: "UNAVAILABLE".into(), retry_after: None }
}

fn overloaded(retry_after: Duration) -> UpstreamError {
    UpstreamError::Server {
        upstream: Upstream::AzureSpeech,
        status: 503,
        message: "Service Unavailable".into(),
        retry_after: Some(retry_after),
    }
}

fn throttled(retry_after: Option<Duration>) -> UpstreamError {
    UpstreamError::RateLimited { upstream: Upstream::Gemini, retry_after, per_day: false }
}

fn generous_budget() -> RetryBudget {
    RetryBudget::new(Duration::from_secs(10), 1000, 1.0)
}

fn layer(policy: RetryPolicy, budget: RetryBudget, metrics: &Metrics) -> RetryLayer {
    RetryLayer::new(policy, budget, Upstream::Gemini, metrics.clone()).with_jitter(Jitter::none())
}

fn retries(metrics: &Metrics, reason: &str) -> u64 {
    metrics.upstream_retries_total.with_label_values(&["gemini", reason]).get()
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_with_growing_backoff_until_the_upstream_answers() {
    let metrics = Metrics::new();
    let fake = Fake::scripted([Step::Fail(server_error()), Step::Fail(server_error())]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Ok("answer to hello".into()));
    assert_eq!(fake.calls(), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(250 + 500));
    assert_eq!(retries(&metrics, "server_error"), 2);
}

#[tokio::test(start_paused = true)]
async fn the_upstreams_retry_hint_is_waited_out_when_longer_than_the_backoff() {
    let metrics = Metrics::new();
    let hint = Duration::from_secs(7);
    let fake = Fake::scripted([Step::Fail(throttled(Some(hint)))]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Ok("answer to hello".into()));
    assert!(started.elapsed() >= hint, "waited {:?}", started.elapsed());
    assert_eq!(fake.calls(), 2);
    assert_eq!(retries(&metrics, "rate_limited"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_backoff_is_waited_out_when_longer_than_the_hint() {
    let metrics = Metrics::new();
    let policy = RetryPolicy { base_delay: Duration::from_secs(2), ..RetryPolicy::new(DEADLINE) };
    let fake = Fake::scripted([Step::Fail(throttled(Some(Duration::from_millis(100))))]);
    let service = layer(policy, generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    service.oneshot("hello".into()).await.expect("answer after one retry");
    assert!(started.elapsed() >= Duration::from_secs(2), "waited {:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_the_remaining_deadline_gives_up_at_once_with_the_upstreams_error() {
    let metrics = Metrics::new();
    let error = throttled(Some(Duration::from_secs(45)));
    let fake = Fake::scripted([Step::Fail(error.clone())]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Err(error));
    assert_eq!(fake.calls(), 1);
    assert!(started.elapsed() < Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(retries(&metrics, "rate_limited"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_retried_once_that_wait_has_passed_not_after_the_backoff() {
    let metrics = Metrics::new();
    let fake = Fake::scripted([Step::Fail(overloaded(Duration::from_secs(1)))]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Ok("answer to hello".into()));
    assert_eq!(started.elapsed(), Duration::from_secs(1), "the 250 ms backoff would have been shorter");
    assert_eq!(fake.calls(), 2);
    assert_eq!(retries(&metrics, "server_error"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_asking_for_longer_than_the_remaining_deadline_is_returned_at_once() {
    let metrics = Metrics::new();
    let error = overloaded(Duration::from_secs(31));
    let fake = Fake::scripted([Step::Fail(error.clone())]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Err(error));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(fake.calls(), 1);
    assert_eq!(retries(&metrics, "server_error"), 0);
}

#[tokio::test(start_paused = true)]
async fn per_day_quotas_credentials_rejections_and_content_decisions_are_never_retried() {
    let final_errors = [
        UpstreamError::RateLimited {
            upstream: Upstream::Gemini,
            retry_after: Some(Duration::from_secs(1)),
            per_day: true,
        },
        UpstreamError::Auth { upstream: Upstream::Gemini, message: "API_KEY_INVALID".into() },
        UpstreamError::Rejected { upstream: Upstream::Gemini, status: 400, message: "INVALID_ARGUMENT".into() },
        UpstreamError::Blocked { upstream: Upstream::Gemini, reason: "SAFETY".into() },
        UpstreamError::InvalidResponse { upstream: Upstream::Gemini, message: "not JSON".into() },
    ];
    for error in final_errors {
        let metrics = Metrics::new();
        let fake = Fake::always(error.clone());
        let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());
        assert_eq!(service.oneshot("hello".into()).await, Err(error.clone()));
        assert_eq!(fake.calls(), 1, "{error:?} was sent again");
    }
}

#[tokio::test(start_paused = true)]
async fn a_persistent_503_is_tried_max_attempts_times_then_returned() {
    let metrics = Metrics::new();
    let fake = Fake::always(server_error());
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    assert_eq!(service.oneshot("hello".into()).await, Err(server_error()));
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_hung_upstream_times_out_at_the_deadline() {
    let metrics = Metrics::new();
    let fake = Fake::scripted([Step::Hang]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Err(UpstreamError::Timeout { upstream: Upstream::Gemini }));
    assert!(started.elapsed() >= DEADLINE && started.elapsed() < DEADLINE + Duration::from_secs(1));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_failures_and_their_retries_all_fit_in_one_deadline() {
    let metrics = Metrics::new();
    let fake = Fake::scripted([Step::SlowFail(Duration::from_secs(20)), Step::SlowFail(Duration::from_secs(20))]);
    let service = layer(RetryPolicy::new(DEADLINE), generous_budget(), &metrics).layer(fake.clone());

    let started = Instant::now();
    assert_eq!(service.oneshot("hello".into()).await, Err(UpstreamError::Timeout { upstream: Upstream::Gemini }));
    assert_eq!(started.elapsed(), DEADLINE);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_shared_by_every_caller_stops_retries_during_an_outage() {
    let metrics = Metrics::new();
    // Retries may add 50% to first attempts, with no floor: one retry per two calls.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5);
    let fake = Fake::always(server_error());
    let policy = RetryPolicy::new(DEADLINE);
    let first = layer(policy.clone(), budget.clone(), &metrics).layer(fake.clone());
    let second = layer(policy, budget, &metrics).layer(fake.clone());

    for caller in [&first, &second, &first, &second] {
        assert_eq!(caller.clone().oneshot("hello".into()).await, Err(server_error()));
    }
    assert_eq!(fake.calls(), 4 + 2, "without the budget the outage would have cost 4 * 3 calls");
    assert_eq!(retries(&metrics, "server_error"), 2);
}

#[tokio::test(start_paused = true)]
async fn jitter_chooses_the_wait_within_the_backoff() {
    let metrics = Metrics::new();
    let fake = Fake::scripted([Step::Fail(server_error()), Step::Fail(server_error())]);
    let service = RetryLayer::new(RetryPolicy::new(DEADLINE), generous_budget(), Upstream::Gemini, metrics)
        .with_jitter(Jitter::from_fn(|ceiling| ceiling / 5))
        .layer(fake.clone());

    let started = Instant::now();
    service.oneshot("hello".into()).await.expect("answer after two retries");
    assert_eq!(started.elapsed(), Duration::from_millis(50 + 100));
}
