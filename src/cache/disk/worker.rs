//! The disk tier's one background thread: every write, removal, sweep and start-up rebuild.
//!
//! Flow:
//! 1. At start, rebuild the index from cacache's index files (`cacache::index::ls`), drop what
//!    expired or lies past the bound, and delete content no index line points at (a crash
//!    between writing a value and its index line leaves one).
//! 2. Then take jobs from a bounded queue, in order: writes (`cacache` content file + index
//!    line), deletions, and a sweep of expired entries every `sweep_every` (a full GC of
//!    unreferenced content every `GC_EVERY`).
//! 3. After each write past `max_bytes`, evict expired entries, then the least recently used,
//!    down to `LOW_WATER` of the bound, so the next writes do not each evict one entry.
//!
//! A thread of its own, not tasks on tokio's blocking pool: a stalled disk (an ext4 journal
//! commit, a full device) then holds up only this thread, never a request, an audio decode or
//! another file read waiting for a pool thread. One thread also keeps the index and the files
//! in the same order without locks around file operations.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cacache::{Algorithm, Integrity};
use prometheus::IntCounter;
use tokio::sync::oneshot;

use super::index::{Entry, Index, Removal};
use super::{Shared, now_ms};

/// After an eviction the tier holds at most this share of `max_bytes`.
const LOW_WATER: (u64, u64) = (9, 10);
/// Full pass over the content directory for files no index line points at.
const GC_EVERY: Duration = Duration::from_secs(3600);
/// A content or temporary file younger than this may belong to a write in progress (another
/// instance on the same directory): the GC leaves it.
const GC_MIN_AGE: Duration = Duration::from_secs(600);

pub(super) enum Job {
    Write {
        key: String,
        bytes: Bytes,
        expires_at_ms: u64,
    },
    Delete(Removal),
    /// Run a sweep now; answered when done.
    #[cfg(test)]
    Sweep(oneshot::Sender<()>),
    /// Answered once every job queued before it is done.
    Flush(oneshot::Sender<()>),
    /// Finish the jobs queued before it, answer, and end the thread.
    Stop(oneshot::Sender<()>),
    /// Tests: hold the thread until the sender is dropped or sends, to fill the queue.
    #[cfg(test)]
    Hold(std::sync::mpsc::Receiver<()>),
}

pub(super) struct Counters {
    pub set_ok: IntCounter,
    pub set_error: IntCounter,
}

pub(super) struct Worker {
    pub shared: Arc<Shared>,
    pub counters: Counters,
    pub sweep_every: Duration,
}

impl Worker {
    pub fn run(self, jobs: Receiver<Job>) {
        self.rebuild();
        let mut next_sweep = Instant::now() + self.sweep_every;
        let mut next_gc = Instant::now() + GC_EVERY;
        loop {
            let job = match jobs.recv_timeout(next_sweep.saturating_duration_since(Instant::now())) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.sweep();
                    next_sweep = Instant::now() + self.sweep_every;
                    if Instant::now() >= next_gc {
                        self.collect_garbage();
                        next_gc = Instant::now() + GC_EVERY;
                    }
                    continue;
                }
                // Every handle is gone: nothing can queue anything any more.
                Err(RecvTimeoutError::Disconnected) => return,
            };
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            match job {
                Job::Write { key, bytes, expires_at_ms } => self.write(&key, &bytes, expires_at_ms),
                Job::Delete(removal) => self.delete(&removal),
                #[cfg(test)]
                Job::Sweep(done) => {
                    self.sweep();
                    let _ = done.send(());
                }
                Job::Flush(done) => {
                    let _ = done.send(());
                }
                Job::Stop(done) => {
                    let _ = done.send(());
                    return;
                }
                #[cfg(test)]
                Job::Hold(release) => {
                    let _ = release.recv();
                }
            }
        }
    }

    fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        lock(&self.shared.index)
    }

    fn rebuild(&self) {
        let started = Instant::now();
        let mut index = Index::default();
        let mut unreadable = 0u64;
        if self.dir().is_dir() {
            for line in cacache::index::ls(self.dir()) {
                let Ok(meta) = line else {
                    unreadable += 1;
                    continue;
                };
                let expires_at_ms = meta.metadata.get("expires_at_ms").and_then(serde_json::Value::as_u64);
                let last_used_ms = u64::try_from(meta.time).unwrap_or(u64::MAX);
                let entry = Entry { integrity: meta.integrity, size: meta.size as u64, expires_at_ms, last_used_ms };
                index.insert(&meta.key, entry);
            }
        }
        let removals = index.evict(now_ms(), self.low_water_if_over(index.bytes()));
        let (entries, bytes) = (index.len(), index.bytes());
        *self.index() = index;
        self.shared.loaded.store(true, Ordering::Release);
        for removal in &removals {
            self.delete(removal);
        }
        self.collect_garbage();
        tracing::info!(
            entries,
            bytes,
            removed = removals.len(),
            unreadable,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "disk cache index loaded"
        );
    }

    fn write(&self, key: &str, bytes: &[u8], expires_at_ms: u64) {
        if expires_at_ms <= now_ms() {
            return;
        }
        let written = cacache::WriteOpts::new()
            .size(bytes.len())
            .metadata(serde_json::json!({ "expires_at_ms": expires_at_ms }))
            .open_sync(self.dir(), key)
            .and_then(|mut writer| {
                writer.write_all(bytes).map_err(|error| cacache::Error::IoError(error, "writing".into()))?;
                writer.commit()
            });
        let integrity = match written {
            Ok(integrity) => integrity,
            Err(error) => {
                self.counters.set_error.inc();
                tracing::warn!(key, dir = %self.dir().display(), %error, "disk cache write failed");
                return;
            }
        };
        self.counters.set_ok.inc();
        let entry =
            Entry { integrity, size: bytes.len() as u64, expires_at_ms: Some(expires_at_ms), last_used_ms: now_ms() };
        let (freed, removals) = {
            let mut index = self.index();
            let freed = index.insert(key, entry);
            let target = self.low_water_if_over(index.bytes());
            let removals = if target == u64::MAX { Vec::new() } else { index.evict(now_ms(), target) };
            (freed, removals)
        };
        if let Some(freed) = freed {
            // The key now points at new content: only the old file goes, not the index line.
            let _ = cacache::remove_hash_sync(self.dir(), &freed.integrity);
        }
        for removal in &removals {
            self.delete(removal);
        }
    }

    /// Best effort: what fails here is found again by the next GC or start-up rebuild.
    fn delete(&self, removal: &Removal) {
        if removal.content_unused
            && cacache::RemoveOpts::new().remove_fully(true).remove_sync(self.dir(), &removal.key).is_ok()
        {
            return;
        }
        // Content another key shares, or already gone: forget the key alone.
        let _ = cacache::remove_sync(self.dir(), &removal.key);
    }

    fn sweep(&self) {
        let removals = {
            let mut index = self.index();
            let target = self.low_water_if_over(index.bytes());
            index.evict(now_ms(), target)
        };
        if !removals.is_empty() {
            tracing::debug!(removed = removals.len(), "disk cache sweep");
        }
        for removal in &removals {
            self.delete(removal);
        }
    }

    /// `u64::MAX` (expired entries only) while within the bound, the low-water mark past it.
    fn low_water_if_over(&self, bytes: u64) -> u64 {
        let max = self.shared.max_bytes;
        if bytes <= max { u64::MAX } else { max / LOW_WATER.1 * LOW_WATER.0 }
    }

    /// Delete content files and stale temporary files no index entry points at.
    fn collect_garbage(&self) {
        let content = self.dir().join("content-v2");
        let mut files = Vec::new();
        collect_files(&content, 0, &mut files);
        let mut removed = 0u64;
        for path in files {
            let Some(integrity) = integrity_of(&content, &path) else { continue };
            if old_enough(&path) && !self.index().contains_content(&integrity) && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if let Ok(temporary) = fs::read_dir(self.dir().join("tmp")) {
            for file in temporary.flatten() {
                if old_enough(&file.path()) && fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "disk cache: unreferenced files removed");
        }
    }
}

pub(super) fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    // The index holds no invariant a panic half-way could break beyond a wrong byte count.
    index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `content-v2/<algorithm>/<2 hex>/<2 hex>/<rest>`: the layout cacache writes.
fn collect_files(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() && depth < 3 => collect_files(&path, depth + 1, files),
            Ok(kind) if kind.is_file() && depth == 3 => files.push(path),
            _ => {}
        }
    }
}

fn integrity_of(content: &Path, path: &Path) -> Option<Integrity> {
    let relative = path.strip_prefix(content).ok()?;
    let mut parts = relative.iter().filter_map(|part| part.to_str());
    let algorithm = match parts.next()? {
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        "sha1" => Algorithm::Sha1,
        _ => return None,
    };
    let hex: String = parts.collect();
    Integrity::from_hex(hex, algorithm).ok()
}

fn old_enough(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .map(|modified| SystemTime::now().duration_since(modified).unwrap_or_default() >= GC_MIN_AGE)
        .unwrap_or(false)
}
