//! Counts not yet in Redis: while it is unreachable (or when there is none), an instance keeps
//! them here, merged per user and day so that memory grows with users, not with requests, and
//! bounded by `USAGE_BUFFER_MAX_ENTRIES`.
//!
//! An entry is *open* until a write of it is tried; then it is *sealed* under a batch id and
//! never changes again, so that however often it is sent, Redis adds it once (`store`'s marker).
//! Counts arriving for the same user and day meanwhile open a new entry.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::day::Day;
use super::record::{Counts, Spent};

/// One entry, open or sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub user: String,
    pub day: Day,
    pub counts: Counts,
    /// Set when sealed.
    pub id: Option<String>,
}

pub struct Buffer {
    inner: Mutex<Entries>,
    max_entries: usize,
}

#[derive(Default)]
struct Entries {
    open: HashMap<(String, Day), Counts>,
    sealed: Vec<Batch>,
}

impl Entries {
    fn len(&self) -> usize {
        self.open.len() + self.sealed.len()
    }
}

impl Buffer {
    pub fn new(max_entries: usize) -> Self {
        Self { inner: Mutex::new(Entries::default()), max_entries: max_entries.max(1) }
    }

    /// Keep counts for a later write. False when the buffer is full and they were dropped
    /// (counts for a user and day already held are always kept: they merge).
    pub fn add(&self, user: &str, day: Day, counts: &Counts) -> bool {
        let mut entries = self.inner.lock();
        if let Some(held) = entries.open.get_mut(&(user.to_owned(), day)) {
            held.merge(counts);
            return true;
        }
        if entries.len() >= self.max_entries {
            return false;
        }
        entries.open.insert((user.to_owned(), day), counts.clone());
        true
    }

    /// Keep a batch whose write failed, under the id it was sent with: it may have been added
    /// (a timeout after Redis applied it), so only that id may send it again.
    pub fn keep_sealed(&self, batch: Batch) -> bool {
        let mut entries = self.inner.lock();
        if entries.len() >= self.max_entries {
            return false;
        }
        entries.sealed.push(batch);
        true
    }

    /// The batches already sent once, oldest first: they go again before anything newer.
    pub fn sealed(&self) -> Vec<Batch> {
        self.inner.lock().sealed.clone()
    }

    /// Seal every open entry (each gets its batch id) and return them for a write. They stay
    /// held until `written` says they are in Redis.
    pub fn seal_open(&self) -> Vec<Batch> {
        let mut entries = self.inner.lock();
        let opened: Vec<_> = entries.open.drain().collect();
        let mut sealed = Vec::with_capacity(opened.len());
        for ((user, day), counts) in opened {
            let id = uuid::Uuid::new_v4().simple().to_string();
            sealed.push(Batch { user, day, counts, id: Some(id) });
        }
        entries.sealed.extend(sealed.iter().cloned());
        sealed
    }

    /// A sealed batch is in Redis (added now, or found added before): forget it.
    pub fn written(&self, id: &str) {
        self.inner.lock().sealed.retain(|batch| batch.id.as_deref() != Some(id));
    }

    /// Forget counts of days no longer kept anywhere.
    pub fn drop_before(&self, oldest_kept: Day) {
        let mut entries = self.inner.lock();
        entries.open.retain(|(_, day), _| *day >= oldest_kept);
        entries.sealed.retain(|batch| batch.day >= oldest_kept);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What `user` spent on `day` that Redis may not have yet.
    pub fn spent(&self, user: &str, day: Day) -> Spent {
        self.counts(user, day).spent()
    }

    /// Everything held for `user` on `day`.
    pub fn counts(&self, user: &str, day: Day) -> Counts {
        let entries = self.inner.lock();
        let mut counts = entries.open.get(&(user.to_owned(), day)).cloned().unwrap_or_default();
        for batch in entries.sealed.iter().filter(|batch| batch.user == user && batch.day == day) {
            counts.merge(&batch.counts);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::labels::Operation;
    use crate::usage::record::Spend;

    fn day() -> Day {
        Day::parse("2026-12-07").expect("date")
    }

    fn request() -> Counts {
        let mut spend = Spend::new(Operation::Transcribe, false);
        spend.add_audio(2.0);
        spend.counts()
    }

    #[test]
    fn requests_of_one_user_and_day_merge_into_one_entry() {
        let buffer = Buffer::new(1);
        assert!(buffer.add("user:a", day(), &request()));
        assert!(buffer.add("user:a", day(), &request()));
        assert!(!buffer.add("user:b", day(), &request()), "full: a new user's counts are dropped");
        assert_eq!(buffer.len(), 1);
        assert_eq!(buffer.spent("user:a", day()).audio_ms, 4000);
    }

    #[test]
    fn a_sealed_batch_keeps_its_id_and_later_counts_open_a_new_entry() {
        let buffer = Buffer::new(10);
        buffer.add("user:a", day(), &request());
        let first = buffer.seal_open();
        assert_eq!(first.len(), 1);
        buffer.add("user:a", day(), &request());
        assert_eq!(buffer.sealed(), first, "a sealed batch never changes");
        let second = buffer.seal_open();
        assert_eq!(second.len(), 1);
        assert_ne!(second[0].id, first[0].id);
        assert_eq!(buffer.counts("user:a", day()).get("requests"), 2);
        buffer.written(first[0].id.as_deref().expect("sealed"));
        assert_eq!(buffer.counts("user:a", day()).get("requests"), 1);
    }
}
