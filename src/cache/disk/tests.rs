//! The disk tier against a real directory: bound, sweep, restart, batches, a crash part-way
//! through one, and a writer that cannot keep up. Each test waits for the worker with `flush`/`sweep` (jobs are done in order), never a sleep.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prometheus::IntCounter;

use super::*;

fn counters() -> (DiskCounters, IntCounter) {
    let counters = DiskCounters {
        set_ok: IntCounter::new("ok", "ok").expect("counter"),
        set_error: IntCounter::new("error", "error").expect("counter"),
        set_dropped: IntCounter::new("dropped", "dropped").expect("counter"),
    };
    let dropped = counters.set_dropped.clone();
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

#[tokio::test]
async fn a_burst_queued_behind_a_busy_disk_all_lands_once_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (counters, dropped) = counters();
    let written = counters.set_ok.clone();
    let disk = DiskTier::open(DiskConfig::new(dir.path().to_path_buf(), 1 << 30), counters);
    disk.flush().await;
    // Held, so the whole burst waits in the queue and is taken in batches, as after a stall.
    let release = disk.hold();
    let burst = 1_000;
    for n in 0..burst {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    drop(release);
    disk.flush().await;
    assert_eq!(dropped.get(), 0, "the queue had room for all of them");
    assert_eq!(written.get(), burst as u64);
    assert_eq!(disk.stats()["entries"], burst);
    for n in [0, 1, burst / 2, burst - 1] {
        match disk.get(&format!("key-{n}")).await {
            DiskRead::Found(bytes) => assert_eq!(bytes, value(n)),
            _ => panic!("key-{n} of the burst was not written"),
        }
    }
    drop(disk);
    // On disk, not only in the index: a fresh index built from the directory has them all.
    let reopened = open(dir.path(), 1 << 30);
    reopened.flush().await;
    assert_eq!(reopened.stats()["entries"], burst);
}

#[tokio::test]
async fn a_key_written_twice_in_one_batch_keeps_the_later_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.flush().await;
    let release = disk.hold();
    disk.put("key", value(1), in_an_hour());
    disk.put("key", value(2), in_an_hour());
    drop(release);
    disk.flush().await;
    match disk.get("key").await {
        DiskRead::Found(bytes) => assert_eq!(bytes, value(2)),
        _ => panic!("the key must be held"),
    }
    assert_eq!(disk.stats()["entries"], 1);
}

#[tokio::test]
async fn a_burst_past_the_bound_keeps_the_bound_and_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let max = 40_000;
    let disk = open(dir.path(), max);
    disk.flush().await;
    let release = disk.hold();
    for n in 0..300 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    drop(release);
    disk.flush().await;
    let stats = disk.stats();
    assert!(stats["bytes"].as_u64().expect("bytes") <= max, "{stats}");
    assert!(found(&disk, "key-299").await, "the newest entry must be kept");
    assert!(!found(&disk, "key-0").await, "the oldest must be gone");
    let on_disk = bytes_on_disk(dir.path());
    assert!(on_disk <= max + max / 2, "{on_disk} bytes on disk for a {max} byte bound");
}

#[tokio::test]
async fn a_touch_keeps_an_entry_as_a_read_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 40_000);
    for n in 0..10 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    disk.flush().await;
    // key-0 is served by the memory tier above: never read here, only touched.
    for n in 10..100 {
        disk.touch("key-0");
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
        disk.flush().await;
    }
    assert!(found(&disk, "key-0").await, "the entry hit in memory all along must be kept");
    assert!(!found(&disk, "key-1").await, "key-1, never used, must be gone");
}

/// Every index bucket file (one per key) whose lines name `key`.
fn bucket_of(dir: &Path, key: &str) -> PathBuf {
    let needle = format!("\"key\":\"{key}\"");
    let mut stack = vec![dir.join("index-v5")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read_to_string(&path).is_ok_and(|text| text.contains(&needle)) {
                return path;
            }
        }
    }
    panic!("no index bucket names {key}");
}

fn content_of(dir: &Path, key: &str) -> PathBuf {
    let meta = cacache::metadata_sync(dir, key).expect("index readable").expect("indexed");
    let (algorithm, hex) = meta.integrity.to_hex();
    dir.join("content-v2").join(algorithm.to_string()).join(&hex[..2]).join(&hex[2..4]).join(&hex[4..])
}

#[tokio::test]
async fn a_batch_cut_short_by_a_crash_reads_back_as_misses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.flush().await;
    let release = disk.hold();
    for n in 0..20 {
        disk.put(&format!("key-{n}"), value(n), in_an_hour());
    }
    drop(release);
    disk.close().await;
    drop(disk);
    // What a crash part-way through the batch can leave, nothing being synced: index lines
    // torn in the middle of their append (keys 0 to 4), and content files the file system
    // had not yet filled when their index line reached the disk (keys 5 to 9).
    for n in 0..5 {
        let bucket = bucket_of(dir.path(), &format!("key-{n}"));
        let text = std::fs::read(&bucket).expect("bucket");
        std::fs::write(&bucket, &text[..text.len() / 2]).expect("torn");
    }
    for n in 5..10 {
        let content = content_of(dir.path(), &format!("key-{n}"));
        let mut permissions = std::fs::metadata(&content).expect("content").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&content, permissions).expect("writable");
        std::fs::write(&content, b"").expect("emptied");
    }
    let reopened = open(dir.path(), 1 << 20);
    reopened.flush().await;
    assert_eq!(reopened.stats()["entries"], 15, "a torn index line is no entry");
    for n in 0..5 {
        assert!(matches!(reopened.get(&format!("key-{n}")).await, DiskRead::Missing), "key-{n}");
    }
    for n in 5..10 {
        let key = format!("key-{n}");
        assert!(matches!(reopened.get(&key).await, DiskRead::Corrupt(_)), "{key}: content fails its check");
        assert!(matches!(reopened.get(&key).await, DiskRead::Missing), "{key}: removed on sight");
    }
    for n in 10..20 {
        match reopened.get(&format!("key-{n}")).await {
            DiskRead::Found(bytes) => assert_eq!(bytes, value(n)),
            _ => panic!("key-{n}, written whole, must be read back"),
        }
    }
}

#[tokio::test]
async fn bytes_the_store_holds_are_not_written_again_for_another_key() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.put("first", value(1), in_an_hour());
    disk.close().await;
    drop(disk);
    let file = content_of(dir.path(), "first");
    let inode = std::fs::metadata(&file).expect("content").ino();
    let disk = open(dir.path(), 1 << 20);
    disk.flush().await;
    let release = disk.hold();
    for key in ["second", "third"] {
        disk.put(key, value(1), in_an_hour());
    }
    drop(release);
    disk.close().await;
    drop(disk);
    // The same file, not a copy renamed over it (which would unlink the old one).
    assert_eq!(std::fs::metadata(&file).expect("content").ino(), inode);
    let reopened = open(dir.path(), 1 << 20);
    for key in ["first", "second", "third"] {
        match reopened.get(key).await {
            DiskRead::Found(bytes) => assert_eq!(bytes, value(1)),
            _ => panic!("{key} must be read back"),
        }
    }
}

#[tokio::test]
async fn content_a_rewritten_key_leaves_stays_for_a_key_written_after_it_in_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = open(dir.path(), 1 << 20);
    disk.put("moved", value(1), in_an_hour());
    disk.flush().await;
    let release = disk.hold();
    disk.put("moved", value(2), in_an_hour());
    disk.put("same as before", value(1), in_an_hour());
    drop(release);
    disk.flush().await;
    match disk.get("same as before").await {
        DiskRead::Found(bytes) => assert_eq!(bytes, value(1)),
        _ => panic!("the bytes \"moved\" left are this key's"),
    }
}
