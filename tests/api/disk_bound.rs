//! `DISK_CACHE_MAX_BYTES` over HTTP: many analyses through a disk tier with a small bound. The
//! memory tier is one byte, so an old entry is served by the disk tier or not at all. (Which
//! entries the bound keeps, the recently read ones, is tested on the tier itself, in
//! `cache::disk::tests`: over HTTP a repeat may be a memory hit, which the disk never sees.)

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cache::analyze_ok;
use crate::helpers::{TestApp, spawn_app};

const MAX_BYTES: u64 = 12_000;

async fn disk_health(app: &TestApp) -> Value {
    app.get("/health/cache").await.json().await.expect("JSON body")
}

/// Wait until the disk tier has taken `writes` writes (written, failed or dropped): writes are
/// queued off the request's path. The deadline only turns a hang into a failure.
async fn disk_writes_done(app: &TestApp, writes: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = disk_health(app).await;
        let counts = &health["counts"]["disk"];
        let taken = ["sets", "set_errors", "set_dropped"].iter().filter_map(|name| counts[name].as_u64()).sum::<u64>();
        if taken >= writes {
            return health;
        }
        assert!(Instant::now() < deadline, "the disk tier took {taken} of {writes} writes: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_disk_tier_stays_under_its_bound_dropping_the_oldest_entries() {
    let max = MAX_BYTES.to_string();
    let app =
        spawn_app(&[("CACHE_MODE", "disk_only"), ("DISK_CACHE_MAX_BYTES", &max), ("CACHE_MEMORY_MAX_BYTES", "1")])
            .await;
    let text = |n: u32| format!("I go to the store yesterday number {n}.");
    let mut writes = 0;
    for n in 0..40 {
        analyze_ok(&app, &text(n)).await;
        writes += 1;
        disk_writes_done(&app, writes).await;
    }
    let health = disk_health(&app).await;
    let disk = &health["disk"];
    assert_eq!(disk["max_bytes"], MAX_BYTES, "{health}");
    assert!(disk["bytes"].as_u64().is_some_and(|bytes| bytes <= MAX_BYTES), "{health}");
    assert!(disk["entries"].as_u64().is_some_and(|entries| entries < 40), "{health}");
    // The newest is kept, the oldest is gone: asked now, it goes upstream.
    let newest = analyze_ok(&app, &text(39)).await;
    assert_eq!(newest["meta"]["cached"], true, "{newest}");
    let oldest = analyze_ok(&app, &text(0)).await;
    assert_eq!(oldest["meta"]["cached"], false, "{oldest}");
}
