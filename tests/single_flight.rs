//! Single-flight: identical concurrent jobs cost one upstream call, within one instance and
//! across instances sharing a Redis.

#[path = "support/redis.rs"]
mod redis_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_ai::analysis::model::{Analysis, AnalysisOutcome, ParseQuality};
use backend_ai::cache::{Answer, Cache, CacheConfig, CacheKeyed, CacheMode, ModeSource};
use backend_ai::domain::jobs::AnalyzeJob;
use backend_ai::domain::served::{Origin, Served};
use backend_ai::metrics::Metrics;
use backend_ai::middleware::cached_flight::{CachedFlightConfig, CachedFlightLayer};
use backend_ai::middleware::rate_limit::{Admission, Admitted};
use backend_ai::redis::{DEFAULT_KEY_PREFIX, KeySpace, RedisLink, RedisTarget};
use backend_ai::upstream::error::{Upstream, UpstreamError};
use futures::future::BoxFuture;
use redis_support::RedisServer;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

type Stack = BoxCloneService<Admitted<AnalyzeJob>, Served<Answer<AnalysisOutcome>>, UpstreamError>;

const OP_TIMEOUT: Duration = Duration::from_secs(2);

fn outcome() -> AnalysisOutcome {
    AnalysisOutcome {
        analysis: Analysis { feedback: "Well done.".into(), ..Default::default() },
        parse: ParseQuality::Clean,
        made_by: None,
        tokens: Default::default(),
    }
}

/// These stacks are driven without HTTP, so with no rate limit to pass.
fn admitted(job: AnalyzeJob) -> Admitted<AnalyzeJob> {
    Admitted::new(Admission::unlimited(), job)
}

fn job() -> AnalyzeJob {
    AnalyzeJob::new("I go to the store yesterday.", "gemini-test")
}

/// An upstream that counts its calls and takes `latency` to answer with `result`.
fn upstream(
    calls: &Arc<AtomicUsize>,
    latency: Duration,
    result: Result<AnalysisOutcome, UpstreamError>,
) -> impl Fn(AnalyzeJob) -> BoxFuture<'static, Result<Served<AnalysisOutcome>, UpstreamError>> + Clone + Send + 'static
{
    let calls = calls.clone();
    move |_job| {
        calls.fetch_add(1, Ordering::SeqCst);
        let result = result.clone();
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            result.map(Served::fresh)
        })
    }
}

fn instance(cache: &Cache, config: CachedFlightConfig, calls: &Arc<AtomicUsize>, latency: Duration) -> Stack {
    ServiceBuilder::new()
        .layer(CachedFlightLayer::new(cache.clone(), config))
        .service(service_fn(upstream(calls, latency, Ok(outcome()))))
        .boxed_clone()
}

fn redis_cache(server: &RedisServer, dir: &Path, metrics: &Metrics) -> Cache {
    let link =
        RedisLink::new(&RedisTarget::single(server.url()), OP_TIMEOUT, metrics.clone()).expect("valid redis url");
    Cache::new(CacheConfig::new(CacheMode::RedisOnly, ModeSource::Env, dir), Some(link), metrics.clone())
}

fn local_cache(dir: &Path, metrics: &Metrics) -> Cache {
    Cache::new(CacheConfig::new(CacheMode::DiskOnly, ModeSource::Env, dir), None, metrics.clone())
}

async fn call_concurrently(
    stacks: &[Stack],
    total: usize,
) -> Vec<Result<Served<Answer<AnalysisOutcome>>, UpstreamError>> {
    let tasks: Vec<_> =
        (0..total).map(|index| tokio::spawn(stacks[index % stacks.len()].clone().oneshot(admitted(job())))).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("no task panicked"));
    }
    results
}

#[tokio::test(start_paused = true)]
async fn twenty_identical_concurrent_jobs_in_one_instance_make_one_upstream_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CachedFlightLayer::new(local_cache(dir.path(), &metrics), CachedFlightConfig::default());
    let stack: Stack = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(upstream(&calls, Duration::from_secs(2), Ok(outcome()))))
        .boxed_clone();

    let results = call_concurrently(&[stack], 20).await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let origins: Vec<Origin> = results.into_iter().map(|result| result.expect("every job succeeds").origin).collect();
    assert_eq!(origins.iter().filter(|origin| **origin == Origin::Upstream).count(), 1);
    assert_eq!(origins.iter().filter(|origin| **origin == Origin::SharedLocal).count(), 19);
    assert_eq!(metrics.single_flight_shared_total.with_label_values(&["analyze", "local"]).get(), 19);
}

#[tokio::test(start_paused = true)]
async fn waiters_get_the_same_error_as_the_one_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let error = UpstreamError::Server {
        upstream: Upstream::Gemini,
        status: 503,
        message: "overloaded".into(),
        retry_after: None,
    };
    let stack: Stack = ServiceBuilder::new()
        .layer(CachedFlightLayer::new(local_cache(dir.path(), &metrics), CachedFlightConfig::default()))
        .service(service_fn(upstream(&calls, Duration::from_secs(1), Err(error.clone()))))
        .boxed_clone();

    let results = call_concurrently(std::slice::from_ref(&stack), 5).await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|result| result.as_ref().err() == Some(&error)));
    // The failure is not remembered: the next job tries again.
    let _ = stack.oneshot(admitted(job())).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_still_gets_its_answer_when_the_first_caller_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let stack: Stack = ServiceBuilder::new()
        .layer(CachedFlightLayer::new(local_cache(dir.path(), &metrics), CachedFlightConfig::default()))
        .service(service_fn(upstream(&calls, Duration::from_secs(5), Ok(outcome()))))
        .boxed_clone();

    let first = tokio::spawn(stack.clone().oneshot(admitted(job())));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let waiter = tokio::spawn(stack.clone().oneshot(admitted(job())));
    tokio::time::sleep(Duration::from_millis(10)).await;
    first.abort();

    let served = waiter.await.expect("no panic").expect("the waiter is answered");
    assert_eq!(served.value, outcome());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the waiter carried on the same call");
}

#[tokio::test]
async fn twenty_jobs_over_two_instances_sharing_redis_make_one_upstream_call() {
    let server = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (metrics_a, metrics_b) = (Metrics::new(), Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let latency = Duration::from_millis(500);
    let a = instance(&redis_cache(&server, dir_a.path(), &metrics_a), CachedFlightConfig::default(), &calls, latency);
    let b = instance(&redis_cache(&server, dir_b.path(), &metrics_b), CachedFlightConfig::default(), &calls, latency);

    let results = call_concurrently(&[a, b], 20).await;

    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let served: Vec<_> = results.into_iter().map(|result| result.expect("every job succeeds")).collect();
    assert!(served.iter().all(|served| served.value == outcome()));
    assert_eq!(served.iter().filter(|served| served.origin == Origin::Upstream).count(), 1);
}

#[tokio::test]
async fn a_job_takes_over_when_the_lease_holder_dies_without_storing() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = redis_cache(&server, dir.path(), &metrics);
    // Another instance took the lease and then died: nothing renews or releases it.
    let lease_key = job_lease_key();
    let mut raw = raw_connection(&server).await;
    let _: () = redis::cmd("SET")
        .arg(&lease_key)
        .arg("dead-holder")
        .arg("PX")
        .arg(300)
        .query_async(&mut raw)
        .await
        .expect("set lease");
    let calls = Arc::new(AtomicUsize::new(0));
    let stack = instance(&cache, CachedFlightConfig::default(), &calls, Duration::from_millis(10));

    let served = stack.oneshot(admitted(job())).await.expect("the job succeeds");

    assert_eq!(served.origin, Origin::Upstream);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let holder: Option<String> = redis::cmd("GET").arg(&lease_key).query_async(&mut raw).await.expect("get lease");
    assert_eq!(holder, None, "the new holder released its lease");
}

#[tokio::test]
async fn a_job_calls_upstream_itself_when_its_wait_budget_runs_out() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = redis_cache(&server, dir.path(), &metrics);
    let lease_key = job_lease_key();
    let mut raw = raw_connection(&server).await;
    let _: () = redis::cmd("SET")
        .arg(&lease_key)
        .arg("slow-holder")
        .arg("PX")
        .arg(600_000)
        .query_async(&mut raw)
        .await
        .expect("set lease");
    let calls = Arc::new(AtomicUsize::new(0));
    let config = CachedFlightConfig { max_wait: Duration::from_millis(300), ..CachedFlightConfig::default() };
    let stack = instance(&cache, config, &calls, Duration::from_millis(10));

    let served = stack.oneshot(admitted(job())).await.expect("the job succeeds");

    assert_eq!(served.origin, Origin::Upstream);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let holder: Option<String> = redis::cmd("GET").arg(&lease_key).query_async(&mut raw).await.expect("get lease");
    assert_eq!(holder.as_deref(), Some("slow-holder"), "someone else's lease is never touched");
}

#[tokio::test]
async fn a_stored_result_from_another_instance_is_served_as_shared_remote() {
    let server = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (metrics_a, metrics_b) = (Metrics::new(), Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let a = instance(
        &redis_cache(&server, dir_a.path(), &metrics_a),
        CachedFlightConfig::default(),
        &calls,
        Duration::from_secs(1),
    );
    let b = instance(
        &redis_cache(&server, dir_b.path(), &metrics_b),
        CachedFlightConfig::default(),
        &calls,
        Duration::from_secs(1),
    );

    let first = tokio::spawn(a.oneshot(admitted(job())));
    // Once A holds the lease, B's job certainly finds it held.
    wait_until_lease_is_held(&server).await;
    let second = b.oneshot(admitted(job())).await.expect("B succeeds");

    assert_eq!(first.await.expect("no panic").expect("A succeeds").origin, Origin::Upstream);
    assert_eq!(second.origin, Origin::SharedRemote);
    assert!(second.cached());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(metrics_b.single_flight_shared_total.with_label_values(&["analyze", "remote"]).get(), 1);
}

#[tokio::test]
async fn with_redis_down_every_job_still_succeeds() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = redis_cache(&server, dir.path(), &metrics);
    server.kill();
    let calls = Arc::new(AtomicUsize::new(0));
    let stack = instance(&cache, CachedFlightConfig::default(), &calls, Duration::from_millis(200));

    let results = call_concurrently(std::slice::from_ref(&stack), 10).await;
    assert!(results.iter().all(Result::is_ok));
    assert!(calls.load(Ordering::SeqCst) >= 1);

    let again = stack.oneshot(admitted(job())).await.expect("succeeds");
    assert_eq!(again.value, outcome());
}

#[tokio::test]
async fn a_lease_outlived_by_a_slow_call_is_renewed_so_no_second_instance_calls() {
    let server = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (metrics_a, metrics_b) = (Metrics::new(), Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    // The call takes several lease lifetimes; only renewal keeps B waiting instead of taking over.
    let config = CachedFlightConfig { lease: Duration::from_millis(600), ..CachedFlightConfig::default() };
    let latency = Duration::from_millis(2000);
    let a = instance(&redis_cache(&server, dir_a.path(), &metrics_a), config, &calls, latency);
    let b = instance(&redis_cache(&server, dir_b.path(), &metrics_b), config, &calls, latency);

    let first = tokio::spawn(a.oneshot(admitted(job())));
    wait_until_lease_is_held(&server).await;
    let second = b.oneshot(admitted(job())).await.expect("B succeeds");

    assert_eq!(first.await.expect("no panic").expect("A succeeds").origin, Origin::Upstream);
    assert_eq!(second.origin, Origin::SharedRemote);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The lease single-flight takes for `job()`, beside its result under the default prefix.
fn job_lease_key() -> String {
    let key = job().cache_key();
    KeySpace::new(DEFAULT_KEY_PREFIX).lease(key.kind().as_str(), key.digest())
}

/// Where `job()`'s result is stored in Redis.
fn job_redis_key() -> String {
    let key = job().cache_key();
    KeySpace::new(DEFAULT_KEY_PREFIX).result(key.kind().as_str(), key.digest())
}

/// A connection of the test's own, to look at what the layers left in Redis.
async fn raw_connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).expect("url").get_multiplexed_async_connection().await.expect("connect")
}

async fn wait_until_lease_is_held(server: &RedisServer) {
    let lease_key = job_lease_key();
    let mut raw = raw_connection(server).await;
    for _ in 0..500 {
        let held: bool = redis::cmd("EXISTS").arg(&lease_key).query_async(&mut raw).await.expect("exists");
        if held {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first instance never took the lease");
}

/// How often Redis ran each command since its stats were last reset (`INFO commandstats`).
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.expect("info");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test]
async fn a_miss_costs_two_redis_round_trips_and_its_store_ends_the_lease() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = Arc::new(AtomicUsize::new(0));
    let stack = instance(
        &redis_cache(&server, dir.path(), &Metrics::new()),
        CachedFlightConfig::default(),
        &calls,
        Duration::from_millis(10),
    );
    let mut raw = raw_connection(&server).await;
    // A first miss loads the scripts (a one-off `SCRIPT LOAD` each); then count a second one.
    stack.clone().oneshot(admitted(AnalyzeJob::new("A warm-up sentence.", "gemini-test"))).await.expect("warm-up");
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut raw).await.expect("reset stats");

    let served = stack.oneshot(admitted(job())).await.expect("succeeds");

    assert_eq!(served.origin, Origin::Upstream);
    let counted = command_calls(&mut raw).await;
    // Two round trips: the claim (look for the value, take the lease) and the store (which also
    // ends the lease). The GETs, SETs and the DEL are those two scripts' own steps; before, the
    // look, the lease, the cache layer's second look, the store and the release were each a
    // round trip of their own.
    assert_eq!(counted.get("evalsha"), Some(&2), "{counted:?}");
    assert_eq!(counted.get("get"), Some(&2), "{counted:?}");
    assert_eq!(counted.get("set"), Some(&2), "{counted:?}");
    assert_eq!(counted.get("del"), Some(&1), "{counted:?}");
    let lease_key = job_lease_key();
    let lease_left: bool = redis::cmd("EXISTS").arg(&lease_key).query_async(&mut raw).await.expect("exists");
    assert!(!lease_left, "the store ended the lease");
    let stored: bool = redis::cmd("EXISTS").arg(job_redis_key()).query_async(&mut raw).await.expect("exists");
    assert!(stored, "the answer is in Redis for the other instances");
}

#[tokio::test]
async fn a_failed_call_ends_its_lease_at_once_so_the_next_job_need_not_wait_for_it_to_expire() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = redis_cache(&server, dir.path(), &Metrics::new());
    let failing: Stack = ServiceBuilder::new()
        .layer(CachedFlightLayer::new(cache.clone(), CachedFlightConfig::default()))
        .service(service_fn(upstream(
            &calls,
            Duration::from_millis(10),
            Err(UpstreamError::Server {
                upstream: Upstream::Gemini,
                status: 503,
                message: "down".into(),
                retry_after: None,
            }),
        )))
        .boxed_clone();

    assert!(failing.oneshot(admitted(job())).await.is_err());

    let mut raw = raw_connection(&server).await;
    let lease_key = job_lease_key();
    let lease_left: bool = redis::cmd("EXISTS").arg(&lease_key).query_async(&mut raw).await.expect("exists");
    assert!(!lease_left, "nothing was stored, so the single-flight layer released the lease itself");
}

#[tokio::test]
async fn a_flight_every_caller_abandoned_leaves_no_claim_behind() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = redis_cache(&server, dir.path(), &Metrics::new());
    let stack = instance(&cache, CachedFlightConfig::default(), &calls, Duration::from_secs(30));

    let caller = tokio::spawn(stack.oneshot(admitted(job())));
    wait_until_lease_is_held(&server).await;
    caller.abort();
    let _ = caller.await;

    // The claim was the abandoned call's own value: its drop released the lease, so the next job
    // need not wait for it to expire.
    let mut raw = raw_connection(&server).await;
    let mut released = false;
    for _ in 0..500 {
        let held: bool = redis::cmd("EXISTS").arg(job_lease_key()).query_async(&mut raw).await.expect("exists");
        if !held {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "the abandoned call's claim released its lease");
}
