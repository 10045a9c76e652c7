//! The cache's tiers against a real (private) Redis and a temporary disk directory.

#[path = "support/redis.rs"]
mod redis_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_ai::analysis::model::{Analysis, AnalysisOutcome, ParseQuality};
use backend_ai::cache::{Cache, CacheConfig, CacheKey, CacheKeyed, CacheMode, ModeSource, Ttls};
use backend_ai::domain::jobs::AnalyzeJob;
use backend_ai::domain::served::{Origin, Served};
use backend_ai::metrics::Metrics;
use backend_ai::middleware::cached_flight::{CachedFlightConfig, CachedFlightLayer};
use backend_ai::middleware::rate_limit::{Admission, Admitted};
use backend_ai::redis::{RedisLink, RedisTarget};
use backend_ai::upstream::error::UpstreamError;
use redis_support::RedisServer;
use tower::{Layer, ServiceExt, service_fn};

const OP_TIMEOUT: Duration = Duration::from_millis(500);

fn link(server: &RedisServer, metrics: &Metrics) -> RedisLink {
    RedisLink::new(&RedisTarget::single(server.url()), OP_TIMEOUT, metrics.clone()).expect("valid redis url")
}

fn cache(mode: CacheMode, dir: &Path, redis: Option<RedisLink>, metrics: &Metrics) -> Cache {
    Cache::new(CacheConfig::new(mode, ModeSource::Env, dir), redis, metrics.clone())
}

fn outcome(feedback: &str, parse: ParseQuality) -> AnalysisOutcome {
    AnalysisOutcome {
        analysis: Analysis { feedback: feedback.to_string(), ..Default::default() },
        parse,
        tokens: Default::default(),
        made_by: None,
    }
}

fn key(text: &str) -> CacheKey {
    AnalyzeJob::new(text, "gemini-test").cache_key()
}

fn count(metrics: &Metrics, operation: &str, result: &str, tier: &str) -> u64 {
    metrics.cache_operations_total.with_label_values(&[operation, result, tier]).get()
}

#[tokio::test]
async fn a_value_stored_by_one_instance_is_read_from_redis_by_another_then_from_its_memory() {
    let server = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let metrics = Metrics::new();
    let a = cache(CacheMode::RedisOnly, dir_a.path(), Some(link(&server, &metrics)), &metrics);
    let b = cache(CacheMode::Tiered, dir_b.path(), Some(link(&server, &metrics)), &metrics);
    let value = outcome("Good work.", ParseQuality::Clean);

    a.set(&key("I go home"), &value).await;

    assert_eq!(b.get::<AnalysisOutcome>(&key("I go home")).await, Some((value.clone(), "redis")));
    assert_eq!(b.get::<AnalysisOutcome>(&key("I go home")).await, Some((value, "memory")));
    assert!(count(&metrics, "get", "hit", "redis") >= 1);
    assert!(count(&metrics, "get", "miss", "memory") >= 1);
}

#[tokio::test]
async fn a_disk_hit_fills_memory_and_in_tiered_mode_redis_too() {
    let first_redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let value = outcome("Nice.", ParseQuality::Repaired);
    let first = cache(CacheMode::Tiered, dir.path(), Some(link(&first_redis, &metrics)), &metrics);
    first.set(&key("x"), &value).await;
    // Disk writes are queued, off the request's path: wait until this one is done.
    first.flush_disk().await;

    // A later instance on the same disk, with an empty Redis.
    let empty_redis = RedisServer::start();
    let later = cache(CacheMode::Tiered, dir.path(), Some(link(&empty_redis, &metrics)), &metrics);
    assert_eq!(later.get::<AnalysisOutcome>(&key("x")).await, Some((value.clone(), "disk")));
    assert_eq!(later.get::<AnalysisOutcome>(&key("x")).await, Some((value.clone(), "memory")));

    let redis_reader = cache(CacheMode::RedisOnly, dir.path(), Some(link(&empty_redis, &metrics)), &metrics);
    assert_eq!(redis_reader.get::<AnalysisOutcome>(&key("x")).await, Some((value, "redis")));
}

#[tokio::test]
async fn disk_only_serves_from_disk_across_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let value = outcome("Fine.", ParseQuality::Clean);
    let first = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    first.set(&key("y"), &value).await;
    first.flush_disk().await;

    let later = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    assert_eq!(later.get::<AnalysisOutcome>(&key("y")).await, Some((value.clone(), "disk")));
    assert_eq!(later.get::<AnalysisOutcome>(&key("y")).await, Some((value, "memory")));
    assert_eq!(later.get::<AnalysisOutcome>(&key("never stored")).await, None);
}

#[tokio::test]
async fn a_key_served_from_memory_all_along_outlives_older_keys_on_a_full_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let bounded = || {
        let config = CacheConfig {
            disk_max_bytes: 20_000,
            ..CacheConfig::new(CacheMode::DiskOnly, ModeSource::Env, dir.path())
        };
        Cache::new(config, None, metrics.clone())
    };
    let first = bounded();
    let value = outcome("Popular.", ParseQuality::Clean);
    first.set(&key("hot"), &value).await;
    first.set(&key("cold"), &value).await;
    for n in 0..200 {
        // Answered by memory every time: the disk never reads "hot" again.
        assert_eq!(first.get::<AnalysisOutcome>(&key("hot")).await, Some((value.clone(), "memory")));
        first.set(&key(&format!("filler {n}")), &outcome(&format!("Filler {n}."), ParseQuality::Clean)).await;
        first.flush_disk().await;
    }
    first.close().await;

    // A restarted instance, memory empty: the disk kept the key in use, not the one written next.
    let later = bounded();
    assert_eq!(later.get::<AnalysisOutcome>(&key("hot")).await, Some((value, "disk")));
    assert_eq!(later.get::<AnalysisOutcome>(&key("cold")).await, None);
}

#[tokio::test]
async fn a_corrupt_disk_entry_is_a_miss_and_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let first = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    first.set(&key("z"), &outcome("Ok.", ParseQuality::Clean)).await;
    first.flush_disk().await;
    let mut overwritten = 0;
    for file in files_under(&dir.path().join("content-v2")) {
        std::fs::write(&file, b"{\"v\":1,\"kind\":\"analysis\",\"tampered\":true}").expect("overwrite content");
        overwritten += 1;
    }
    assert_eq!(overwritten, 1, "one content file was written");

    let later = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    assert_eq!(later.get::<AnalysisOutcome>(&key("z")).await, None);
    // Forgotten at once; its files go with the disk tier's next jobs.
    later.flush_disk().await;
    let index = cacache::metadata(dir.path(), key("z").as_str()).await.expect("index readable");
    assert!(index.is_none(), "the corrupt entry is gone from the index");
    assert!(files_under(&dir.path().join("content-v2")).is_empty(), "the corrupt content file is deleted");
}

#[tokio::test]
async fn an_expired_disk_entry_is_a_miss_and_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let mut config = CacheConfig::new(CacheMode::DiskOnly, ModeSource::Env, dir.path());
    config.ttl = Ttls::uniform(Duration::from_millis(1));
    let first = Cache::new(config, None, metrics.clone());
    first.set(&key("old"), &outcome("Old.", ParseQuality::Clean)).await;
    first.flush_disk().await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let later = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    assert_eq!(later.get::<AnalysisOutcome>(&key("old")).await, None);
    later.flush_disk().await;
    let index = cacache::metadata(dir.path(), key("old").as_str()).await.expect("index readable");
    assert!(index.is_none());
}

#[tokio::test]
async fn a_value_of_another_kind_under_the_same_key_is_a_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    cache.set(&key("k"), &outcome("A.", ParseQuality::Clean)).await;
    assert_eq!(cache.get::<backend_ai::domain::speech::Transcription>(&key("k")).await, None);
}

#[tokio::test]
async fn a_fallback_analysis_is_never_stored() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = cache(CacheMode::Tiered, dir.path(), Some(link(&server, &metrics)), &metrics);
    cache.set(&key("f"), &outcome("", ParseQuality::Fallback)).await;
    assert_eq!(cache.get::<AnalysisOutcome>(&key("f")).await, None);

    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let calls = calls.clone();
        service_fn(move |_job: AnalyzeJob| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, UpstreamError>(Served::fresh(outcome("", ParseQuality::Fallback))) }
        })
    };
    let service = CachedFlightLayer::new(cache.clone(), CachedFlightConfig::default()).layer(upstream);
    for _ in 0..2 {
        let served = service
            .clone()
            .oneshot(Admitted::new(Admission::unlimited(), AnalyzeJob::new("fallback text", "gemini-test")))
            .await
            .expect("ok");
        assert_eq!(served.origin, Origin::Upstream);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "each request went upstream again");
}

#[tokio::test]
async fn the_cache_layer_answers_a_repeat_from_the_cache_and_stores_no_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = cache(CacheMode::DiskOnly, dir.path(), None, &metrics);
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let calls = calls.clone();
        service_fn(move |job: AnalyzeJob| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if job.text == "fails" {
                    return Err(UpstreamError::Server {
                        upstream: backend_ai::upstream::error::Upstream::Gemini,
                        status: 503,
                        message: "overloaded".into(),
                        retry_after: None,
                    });
                }
                Ok(Served::fresh(outcome(&format!("call {call}"), ParseQuality::Clean)))
            }
        })
    };
    let service = CachedFlightLayer::new(cache, CachedFlightConfig::default()).layer(upstream);
    let first = service
        .clone()
        .oneshot(Admitted::new(Admission::unlimited(), AnalyzeJob::new("I go home", "m")))
        .await
        .expect("ok");
    let second = service
        .clone()
        .oneshot(Admitted::new(Admission::unlimited(), AnalyzeJob::new("  I go   home ", "m")))
        .await
        .expect("ok");
    assert_eq!(first.origin, Origin::Upstream);
    assert_eq!(second.origin, Origin::Cache { tier: "memory" });
    assert_eq!(second.value, first.value);

    for _ in 0..2 {
        assert!(
            service
                .clone()
                .oneshot(Admitted::new(Admission::unlimited(), AnalyzeJob::new("fails", "m")))
                .await
                .is_err()
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one success cached, both failures went upstream");
}

#[tokio::test]
async fn with_redis_down_gets_and_sets_still_answer_and_health_says_disconnected() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let cache = cache(CacheMode::RedisOnly, dir.path(), Some(link(&server, &metrics)), &metrics);
    cache.set(&key("before"), &outcome("Before.", ParseQuality::Clean)).await;
    assert_eq!(cache.health().await["redis"]["connected"], true);

    server.kill();
    assert_eq!(cache.get::<AnalysisOutcome>(&key("unseen")).await, None);
    cache.set(&key("during"), &outcome("During.", ParseQuality::Clean)).await;
    // The memory tier still serves what this instance stored.
    assert!(cache.get::<AnalysisOutcome>(&key("during")).await.is_some());
    assert!(count(&metrics, "get", "error", "redis") >= 1);
    assert!(count(&metrics, "set", "error", "redis") >= 1);
    let health = cache.health().await;
    assert_eq!(health["redis"]["connected"], false, "{health}");
}

#[tokio::test]
async fn redis_coming_back_is_used_again_without_a_restart() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();
    let writer = cache(CacheMode::RedisOnly, dir.path(), Some(link(&server, &metrics)), &metrics);
    writer.set(&key("warm-up"), &outcome("Up.", ParseQuality::Clean)).await;
    server.kill();
    writer.set(&key("lost"), &outcome("Lost.", ParseQuality::Clean)).await;
    server.restart();

    // The link reconnects on the next operations; allow it a few.
    let value = outcome("Back.", ParseQuality::Clean);
    let mut stored_in_redis = false;
    for attempt in 0..50 {
        let key = key(&format!("after restart {attempt}"));
        writer.set(&key, &value).await;
        let reader = cache(CacheMode::RedisOnly, dir.path(), Some(link(&server, &metrics)), &metrics);
        if reader.get::<AnalysisOutcome>(&key).await == Some((value.clone(), "redis")) {
            stored_in_redis = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored_in_redis, "the same Cache wrote to the restarted Redis");
    assert_eq!(writer.health().await["redis"]["connected"], true);
}

#[tokio::test]
async fn health_shows_each_modes_tiers() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Metrics::new();

    let redis_only = cache(CacheMode::RedisOnly, dir.path(), Some(link(&server, &metrics)), &metrics).health().await;
    assert_eq!(redis_only["mode"], "redis_only");
    assert_eq!(redis_only["mode_source"], "env");
    assert!(redis_only["disk"].is_null());
    assert_eq!(redis_only["redis"]["connected"], true);
    assert!(redis_only["memory"]["entries"].is_u64());
    assert!(redis_only["counts"]["redis"]["hits"].is_u64());

    let tiered = cache(CacheMode::Tiered, dir.path(), Some(link(&server, &metrics)), &metrics).health().await;
    assert!(tiered["redis"].is_object() && tiered["disk"].is_object(), "{tiered}");
    assert_eq!(tiered["disk"]["exists"], true);
    // The endpoint needs no key: it says whether the directory is there, never where.
    assert!(!tiered.to_string().contains(&dir.path().display().to_string()), "{tiered}");

    // disk_only never talks to Redis even when a link is handed over.
    let disk_only = Cache::new(
        CacheConfig::new(CacheMode::DiskOnly, ModeSource::Kubernetes, dir.path()),
        Some(link(&server, &metrics)),
        metrics.clone(),
    );
    assert!(disk_only.redis().is_none());
    let disk_only = disk_only.health().await;
    assert!(disk_only["redis"].is_null(), "{disk_only}");
    assert_eq!(disk_only["mode_source"], "kubernetes");
    assert!(disk_only["disk"].is_object());
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
