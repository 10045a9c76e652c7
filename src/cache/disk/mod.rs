//! The local persistent tier, via `cacache`: content-addressed and integrity-checked on every
//! read, so a torn or tampered file is detected rather than served. A corrupt entry is removed
//! on sight so it costs one miss, not one per request. Expiry lives in the envelope, and in
//! each index line's metadata so the index can be swept without reading values.
//!
//! Bounded by `DISK_CACHE_MAX_BYTES`: an in-memory index (`index`) knows every entry's size,
//! expiry and last use (a read here or a hit in the memory tier), and one background thread
//! (`worker`) does all the writing, removing and sweeping, taking the queued writes in batches
//! with a second thread's help. A request never waits for the disk to take a write: `put`
//! queues it, and when the queue is full the write is dropped and counted
//! (`result="dropped"`), the value still in the memory tier (and Redis). Reads stay on the request path (a hit must be answered), each one
//! blocking-pool hop, bounded by `DISK_OP_TIMEOUT`; a key the index does not hold is a miss with
//! no disk access at all.

mod index;
#[cfg(test)]
mod tests;
mod worker;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prometheus::IntCounter;
use tokio::sync::oneshot;

use index::Index;
use worker::{Counters, Job, Put, Worker, lock};

/// A stuck disk (network volume, full device) must not hold a request hostage.
const DISK_OP_TIMEOUT: Duration = Duration::from_secs(2);

/// `DISK_CACHE_MAX_BYTES` default: 1 GiB, the old service's diskcache `size_limit`.
pub const DEFAULT_DISK_MAX_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(crate) struct DiskConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Writes waiting for the disk; past it new ones are dropped. A few seconds of misses at
    /// thousands per second, a few MiB of values.
    pub queue: usize,
    pub sweep_every: Duration,
}

impl DiskConfig {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes, queue: 4096, sweep_every: Duration::from_secs(60) }
    }
}

pub(crate) enum DiskRead {
    Found(Bytes),
    Missing,
    /// Failed its integrity check (or its index line was unreadable); already removed.
    Corrupt(String),
    Error(String),
}

/// The counters the tier bumps itself, label children resolved once.
pub(crate) struct DiskCounters {
    pub set_ok: IntCounter,
    pub set_error: IntCounter,
    pub set_dropped: IntCounter,
}

/// Cheap to clone; clones share the index and the writer.
#[derive(Clone)]
pub(crate) struct DiskTier {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The worker's queue; dropping the last handle ends the thread once the queue is done.
    jobs: SyncSender<Job>,
    set_dropped: IntCounter,
    /// The worker thread, joined by `close`.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the request path and the worker both see.
pub(super) struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    /// Locked briefly, never across I/O or an await.
    index: Mutex<Index>,
    /// The index has been rebuilt from disk; until then a lookup asks cacache's own index.
    loaded: AtomicBool,
    /// Jobs queued and not yet taken (for `/health/cache`).
    queued: AtomicUsize,
}

impl DiskTier {
    /// Starts the worker thread, which first rebuilds the index from what `dir` holds.
    pub fn open(config: DiskConfig, counters: DiskCounters) -> Self {
        let shared = Arc::new(Shared {
            dir: config.dir,
            max_bytes: config.max_bytes,
            index: Mutex::new(Index::default()),
            loaded: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
        });
        let (jobs, queue) = std::sync::mpsc::sync_channel(config.queue.max(1));
        let worker = Worker {
            shared: shared.clone(),
            counters: Counters { set_ok: counters.set_ok, set_error: counters.set_error },
            sweep_every: config.sweep_every,
        };
        let thread = std::thread::Builder::new()
            .name("disk-cache".into())
            .spawn(move || worker.run(queue))
            .map_err(|error| tracing::error!(%error, "disk cache thread not started; disk writes will be dropped"))
            .ok();
        Self { inner: Arc::new(Inner { shared, jobs, set_dropped: counters.set_dropped, thread: Mutex::new(thread) }) }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    pub async fn get(&self, key: &str) -> DiskRead {
        let shared = &self.inner.shared;
        let dir = shared.dir.clone();
        let read = if shared.loaded.load(Ordering::Acquire) {
            let Some(integrity) = lock(&shared.index).touch(key, now_ms()).map(|entry| entry.integrity.clone()) else {
                return DiskRead::Missing;
            };
            tokio::task::spawn_blocking(move || cacache::read_hash_sync(dir, &integrity))
        } else {
            let key = key.to_string();
            tokio::task::spawn_blocking(move || cacache::read_sync(dir, key))
        };
        let read = match tokio::time::timeout(DISK_OP_TIMEOUT, read).await {
            Ok(Ok(read)) => read,
            Ok(Err(join)) => return DiskRead::Error(format!("disk read failed: {join}")),
            Err(_) => return DiskRead::Error(format!("disk read timed out after {DISK_OP_TIMEOUT:?}")),
        };
        match read {
            Ok(bytes) => DiskRead::Found(Bytes::from(bytes)),
            Err(cacache::Error::EntryNotFound(..)) => DiskRead::Missing,
            Err(cacache::Error::IoError(error, _)) if error.kind() == ErrorKind::NotFound => {
                // The index names content that is gone: drop the dangling index entry.
                self.remove(key);
                DiskRead::Missing
            }
            Err(
                error @ (cacache::Error::IntegrityError(_)
                | cacache::Error::SizeMismatch(..)
                | cacache::Error::SerdeError(..)),
            ) => {
                self.remove(key);
                DiskRead::Corrupt(error.to_string())
            }
            Err(error) => DiskRead::Error(error.to_string()),
        }
    }

    /// A hit in the memory tier above: the entry here is in use too, so it is among the last
    /// to go, as if read. No disk access, and never a wait: with the index busy (an eviction
    /// under way) the mark is skipped, as recency is approximate anyway and a memory hit must
    /// keep a memory hit's cost.
    pub fn touch(&self, key: &str) {
        let mut index = match self.inner.shared.index.try_lock() {
            Ok(index) => index,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        index.touch(key, now_ms());
    }

    /// Queue `value` for the disk; never waits. A full queue drops it (counted).
    pub fn put(&self, key: &str, value: Bytes, expires_at: SystemTime) {
        let expires_at_ms = unix_ms(expires_at);
        self.send(Job::Write(Put { key: key.to_string(), bytes: value, expires_at_ms }));
    }

    /// Forget `key` at once and queue its files' removal. A removal the queue has no room for
    /// is left to the next start-up's rebuild (an expired entry) or GC (orphaned content).
    pub fn remove(&self, key: &str) {
        if let Some(removal) = lock(&self.inner.shared.index).remove(key) {
            self.send(Job::Delete(removal));
        } else if !self.inner.shared.loaded.load(Ordering::Acquire) {
            let removal =
                index::Removal { key: key.to_string(), integrity: cacache::Integrity::from(b""), content_unused: true };
            self.send(Job::Delete(removal));
        }
    }

    fn send(&self, job: Job) {
        let shared = &self.inner.shared;
        shared.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.inner.jobs.try_send(job) {
            shared.queued.fetch_sub(1, Ordering::Relaxed);
            let job = match error {
                TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
            };
            if matches!(job, Job::Write(_)) {
                self.inner.set_dropped.inc();
            }
        }
    }

    /// Waits until every job queued so far is done (tests, and shutdown).
    pub async fn flush(&self) {
        self.ask(Job::Flush).await;
    }

    /// Runs a sweep now (expired, then least recently used past the bound) and waits for it.
    #[cfg(test)]
    pub async fn sweep(&self) {
        self.ask(Job::Sweep).await;
    }

    /// Finish the queued writes and stop the thread. Later writes are dropped.
    pub async fn close(&self) {
        self.ask(Job::Stop).await;
        let thread = self.inner.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Queue a job that answers, waiting for room (these are rare and wanted, unlike writes).
    async fn ask(&self, job: impl FnOnce(oneshot::Sender<()>) -> Job) {
        let (done, answered) = oneshot::channel();
        let jobs = self.inner.jobs.clone();
        let job = job(done);
        self.inner.shared.queued.fetch_add(1, Ordering::Relaxed);
        if tokio::task::spawn_blocking(move || jobs.send(job)).await.map_or(true, |sent| sent.is_err()) {
            self.inner.shared.queued.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let _ = answered.await;
    }

    /// `{"entries", "bytes", "max_bytes", "queued", "loaded"}` from the index: no disk access.
    pub fn stats(&self) -> serde_json::Value {
        let shared = &self.inner.shared;
        let (entries, bytes) = {
            let index = lock(&shared.index);
            (index.len(), index.bytes())
        };
        serde_json::json!({
            "entries": entries,
            "bytes": bytes,
            "max_bytes": shared.max_bytes,
            "queued": shared.queued.load(Ordering::Relaxed),
            "loaded": shared.loaded.load(Ordering::Acquire),
        })
    }

    #[cfg(test)]
    fn hold(&self) -> std::sync::mpsc::SyncSender<()> {
        let (release, held) = std::sync::mpsc::sync_channel(1);
        self.send(Job::Hold(held));
        release
    }
}

pub(super) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
