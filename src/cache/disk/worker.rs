//! The disk tier's background thread: every write, removal, sweep and start-up rebuild.
//!
//! Flow:
//! 1. At start, rebuild the index from cacache's index files (`cacache::index::ls`), drop what
//!    expired or lies past the bound, and delete content no index line points at (a crash
//!    between writing a value and its index line leaves one).
//! 2. Then take jobs from a bounded queue in turns: each turn takes every write waiting (up to
//!    `BATCH_MAX`) and writes them as one batch, then the job that ended the batch (a deletion,
//!    a flush), so jobs still happen in queue order. A sweep of expired entries runs every
//!    `sweep_every` (a full GC of unreferenced content every `GC_EVERY`).
//! 3. A batch: a key written twice keeps only its later value; the files are written by this
//!    thread and, for a batch of `SHARE_MIN` or more, one more beside it; then the index takes
//!    the whole batch under one lock, and if it is past `max_bytes` evicts expired entries, then
//!    the least recently used, down to `LOW_WATER` of the bound.
//!
//! Threads of its own, not tasks on tokio's blocking pool: a stalled disk (an ext4 journal
//! commit, a full device) then holds up only these, never a request, an audio decode or another
//! file read waiting for a pool thread. One thread decides the order (the index and the files
//! agree without locks around file operations); the second only ever writes keys the first is
//! not writing, within a batch whose keys are distinct.
//!
//! Why: a write through cacache is about a dozen system calls and two new files (the content
//! and the key's index bucket), and one thread took about 1,000 writes/s under load, so a burst
//! of 2,500 misses/s dropped most of them. Sampled, that thread was mostly not running but
//! waiting in the file system, much of it for the device to trim the blocks of content files
//! replaced by identical ones (a `discard` mount): so bytes the store already holds get only
//! an index line, and the files are written on two threads, the index updated once a batch.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
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
/// Most writes taken in one turn: bounds what one index lock and one eviction cover.
const BATCH_MAX: usize = 256;
/// A batch at least this long is shared with a second thread; a shorter one is not worth a
/// thread's start (tens of microseconds, against some 150 us a write).
const SHARE_MIN: usize = 8;

pub(super) struct Put {
    pub key: String,
    pub bytes: Bytes,
    pub expires_at_ms: u64,
}

pub(super) enum Job {
    Write(Put),
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
        let mut batch = Vec::with_capacity(BATCH_MAX);
        loop {
            match jobs.recv_timeout(next_sweep.saturating_duration_since(Instant::now())) {
                Ok(job) => batch.push(job),
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
            // Every write already waiting joins this turn; the first other job ends it, so a
            // flush or a hold is never overtaken by writes queued after it.
            while batch.len() < BATCH_MAX && matches!(batch.last(), Some(Job::Write(_))) {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.shared.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            if self.turn(&mut batch).is_break() {
                return;
            }
        }
    }

    /// Writes first (they came first), then the job that ended the batch, if any.
    fn turn(&self, batch: &mut Vec<Job>) -> ControlFlow<()> {
        let last = match batch.last() {
            Some(Job::Write(_)) | None => None,
            Some(_) => batch.pop(),
        };
        let writes = batch.drain(..).filter_map(|job| match job {
            Job::Write(write) => Some(write),
            _ => None,
        });
        self.write_batch(writes.collect());
        match last {
            None | Some(Job::Write(_)) => {}
            Some(Job::Delete(removal)) => self.delete(&removal),
            #[cfg(test)]
            Some(Job::Sweep(done)) => {
                self.sweep();
                let _ = done.send(());
            }
            Some(Job::Flush(done)) => {
                let _ = done.send(());
            }
            Some(Job::Stop(done)) => {
                let _ = done.send(());
                return ControlFlow::Break(());
            }
            #[cfg(test)]
            Some(Job::Hold(release)) => {
                let _ = release.recv();
            }
        }
        ControlFlow::Continue(())
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
                let entry = Entry {
                    integrity: meta.integrity,
                    size: meta.size as u64,
                    expires_at_ms,
                    last_used_ms,
                    last_used_seq: 0,
                };
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

    fn write_batch(&self, mut writes: Vec<Put>) {
        if writes.is_empty() {
            return;
        }
        let now = now_ms();
        // A key queued twice keeps its later value only (so the two threads never write the
        // same key); the earlier one counts as taken, since what it stored is now the later.
        let mut seen = HashSet::with_capacity(writes.len());
        let later: Vec<bool> = writes.iter().rev().map(|write| seen.insert(write.key.as_str())).collect();
        let mut later = later.into_iter().rev();
        let before = writes.len();
        writes.retain(|_| later.next().unwrap_or(true));
        self.counters.set_ok.inc_by((before - writes.len()) as u64);
        writes.retain(|write| write.expires_at_ms > now);

        // Content-addressed: bytes the store already holds (for another key, or earlier in this
        // batch) need only the key's index line. Writing them again costs a temporary file and
        // a rename that unlinks the old copy, and on a file system mounted with `discard` that
        // unlink waits for the device to trim the freed blocks.
        let jobs: Vec<(&Put, Integrity, bool)> = {
            let index = self.index();
            let mut new_here = HashSet::new();
            writes
                .iter()
                .map(|write| {
                    let integrity = Integrity::from(&write.bytes[..]);
                    let content = !index.contains_content(&integrity) && new_here.insert(integrity.to_string());
                    (write, integrity, content)
                })
                .collect()
        };
        let written = self.shared_out(&jobs, |(write, integrity, content)| self.store(write, integrity, *content));
        let mut failed = Vec::new();
        let (freed, removals) = {
            let mut index = self.index();
            let used = now_ms();
            let mut freed = Vec::new();
            for (write, written) in writes.iter().zip(written) {
                match written {
                    Ok(integrity) => {
                        let entry = Entry {
                            integrity,
                            size: write.bytes.len() as u64,
                            expires_at_ms: Some(write.expires_at_ms),
                            last_used_ms: used,
                            last_used_seq: 0,
                        };
                        freed.extend(index.insert(&write.key, entry));
                    }
                    Err(error) => failed.push((write.key.as_str(), error)),
                }
            }
            // Content a rewritten key left may be what a later write of the batch points at.
            freed.retain(|freed: &Removal| !index.contains_content(&freed.integrity));
            let target = self.low_water_if_over(index.bytes());
            let removals = if target == u64::MAX { Vec::new() } else { index.evict(used, target) };
            (freed, removals)
        };
        self.counters.set_ok.inc_by((writes.len() - failed.len()) as u64);
        if let Some((key, error)) = failed.first() {
            self.counters.set_error.inc_by(failed.len() as u64);
            tracing::warn!(key, failed = failed.len(), dir = %self.dir().display(), %error, "disk cache write failed");
        }
        self.shared_out(&freed, |freed| {
            // The key now points at new content: only the old file goes, not the index line.
            let _ = cacache::remove_hash_sync(self.dir(), &freed.integrity);
        });
        self.shared_out(&removals, |removal| self.delete(removal));
    }

    /// One value's content file (unless `content` is false: the store holds those bytes) and
    /// index line, through cacache (content integrity-checked on read, a torn index line
    /// skipped: a crash part-way through a batch leaves misses).
    fn store(&self, write: &Put, integrity: &Integrity, content: bool) -> cacache::Result<Integrity> {
        let opts = cacache::WriteOpts::new()
            .size(write.bytes.len())
            .metadata(serde_json::json!({ "expires_at_ms": write.expires_at_ms }));
        if !content {
            return cacache::index::insert(self.dir(), &write.key, opts.integrity(integrity.clone()));
        }
        opts.open_sync(self.dir(), &write.key).and_then(|mut writer| {
            writer.write_all(&write.bytes).map_err(|error| cacache::Error::IoError(error, "writing".into()))?;
            writer.commit()
        })
    }

    /// `work` over every item, in order of the results; shared with a second thread when
    /// there are `SHARE_MIN` or more: file operations mostly wait on the file system, so two
    /// overlap. Not more: on a busy machine more file threads would take CPU from requests.
    fn shared_out<T: Sync, R: Send>(&self, items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
        if items.len() < SHARE_MIN {
            return items.iter().map(&work).collect();
        }
        let (mine, theirs) = items.split_at(items.len() / 2);
        std::thread::scope(|scope| {
            let work = &work;
            let other = std::thread::Builder::new()
                .name("disk-cache-2".into())
                .spawn_scoped(scope, move || theirs.iter().map(work).collect::<Vec<R>>());
            let mut results: Vec<R> = mine.iter().map(work).collect();
            match other {
                Ok(other) => match other.join() {
                    Ok(rest) => results.extend(rest),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No second thread to be had: this one does the rest.
                Err(_) => results.extend(theirs.iter().map(work)),
            }
            results
        })
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
