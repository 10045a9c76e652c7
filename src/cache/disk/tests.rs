//! The disk tier against a real directory: bound, sweep, restart, and a writer that cannot keep
//! up. Each test waits for the worker with `flush`/`sweep` (jobs are done in order), never a sleep.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus::IntCounter;

use super::*;

fn counters() -> (DiskCounters, IntCounter) {
    let dropped = IntCounter::new("dropped", "dropped").expect("counter");
    let counters = DiskCounters {
        set_ok: IntCounter::new("ok", "ok").expect("counter"),
        set_error: IntCounter::new("error", "error").expect("counter"),
        set_dropped: dropped.clone(),
    };
    (counters, dropped)
}

fn open(dir: &Path, max_bytes: u64) -> DiskTier {
    DiskTier::open(DiskConfig::new(dir.to_path_buf(), max_bytes), counters().0)
}

fn value(n: usize) -> Bytes {
    Bytes::from(format!("{n:04}").repeat(250))
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

async fn found(disk: &DiskTier, key: &str) -> bool {
    matches!(disk.get(key).await, DiskRead::Found(_))
}

/// Bytes of every file under `dir`, as `du --apparent-size` counts them.
fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[tokio::test]
async fn many_writes_stay_under_the_bound_and_the_recently_read_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let max = 40_000;
    let disk = open(dir.path(), max);
    for n in 0..10 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    disk.flush().await;
    // key-0 is read often; the other early keys are never read again.
    for n in 10..200 {
        assert!(found(&disk, "key-0").await, "key-0 lost after {n} writes");
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
        disk.flush().await;
    }
    assert!(found(&disk, "key-0").await, "the entry read all along must be kept");
    assert!(found(&disk, "key-199").await, "the newest entry must be kept");
    for n in 1..10 {
        assert!(!found(&disk, &format!("key-{n}")).await, "key-{n}, least recently used, must be gone");
    }
    let stats = disk.stats();
    assert!(stats["bytes"].as_u64().expect("bytes") <= max, "{stats}");
    // Evicted entries' files are gone too, not just forgotten: 200 values of 1,000 bytes
    // would be 200,000 bytes.
    let on_disk = bytes_on_disk(dir.path());
    assert!(on_disk <= max + max / 2, "{on_disk} bytes on disk for a {max} byte bound");
}

#[tokio::test]
async fn expired_entries_are_swept_from_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    let soon = SystemTime::now() + Duration::from_millis(300);
    disk.put("short", value(1), soon);
    disk.put("long", value(2), in_an_hour());
    disk.flush().await;
    assert_eq!(disk.stats()["entries"], 2);
    // Wait on the clock the expiry is written in; no sleep whose length decides the outcome.
    while SystemTime::now() <= soon {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    disk.sweep().await;
    assert_eq!(disk.stats()["entries"], 1);
    assert!(found(&disk, "long").await);
    assert!(!found(&disk, "short").await);
    drop(disk);
    // Gone from disk as well: a fresh index built from the directory does not have it.
    let reopened = open(dir.path(), 1 << 20);
    reopened.flush().await;
    assert_eq!(reopened.stats()["entries"], 1);
    assert!(!found(&reopened, "short").await);
}

#[tokio::test]
async fn an_entry_within_the_bound_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.put("kept", value(7), in_an_hour());
    disk.close().await;
    drop(disk);
    let reopened = open(dir.path(), 1 << 20);
    reopened.flush().await;
    assert_eq!(reopened.stats()["loaded"], true);
    match reopened.get("kept").await {
        DiskRead::Found(bytes) => assert_eq!(bytes, value(7)),
        _ => panic!("an entry within the bound must survive a restart"),
    }
}

#[tokio::test]
async fn a_restart_with_a_smaller_bound_keeps_the_most_recent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    for n in 0..20 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
        // Distinct write times, so "most recent" is well defined after the restart.
        disk.flush().await;
        let at = now_ms();
        while now_ms() == at {
            std::thread::yield_now();
        }
    }
    disk.close().await;
    drop(disk);
    let reopened = open(dir.path(), 5_000);
    reopened.flush().await;
    assert!(reopened.stats()["bytes"].as_u64().expect("bytes") <= 5_000);
    assert!(found(&reopened, "key-19").await);
    assert!(!found(&reopened, "key-0").await);
}

#[tokio::test]
async fn a_write_never_waits_for_the_disk_a_full_queue_drops_and_counts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (counters, dropped) = counters();
    let config = DiskConfig { queue: 4, ..DiskConfig::new(dir.path().to_path_buf(), 1 << 20) };
    let disk = DiskTier::open(config, counters);
    disk.flush().await;
    // The worker is busy (as on a stalled disk) until `release` is dropped.
    let release = disk.hold();
    // These return at once although nothing is written; the queue holds four.
    for n in 0..10 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    assert!(dropped.get() >= 5, "{} writes dropped", dropped.get());
    // A read is answered meanwhile: a miss, since nothing reached the disk yet.
    assert!(!found(&disk, "key-0").await);
    drop(release);
    disk.flush().await;
    assert!(found(&disk, "key-0").await, "what was queued is written once the disk is back");
}

#[tokio::test]
async fn a_directory_that_cannot_be_written_costs_errors_not_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("file");
    let (counters, _) = counters();
    let errors = counters.set_error.clone();
    let disk = DiskTier::open(DiskConfig::new(file, 1 << 20), counters);
    disk.put("key", value(1), in_an_hour());
    disk.flush().await;
    assert_eq!(errors.get(), 1);
    assert!(!found(&disk, "key").await);
}

#[tokio::test]
async fn content_two_keys_share_outlives_the_first_eviction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.put("a", value(1), in_an_hour());
    disk.put("b", value(1), in_an_hour());
    disk.flush().await;
    disk.remove("a");
    disk.flush().await;
    assert!(found(&disk, "b").await, "b's bytes are the same file as a's");
}
