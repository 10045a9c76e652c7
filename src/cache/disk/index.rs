//! What the disk tier holds, in memory: each key's content address, size, expiry and last use.
//! It is what keeps the tier bounded without walking the directory, and lets a lookup of a key
//! the tier does not hold answer without touching the disk.
//!
//! Sizes count each value plus its index line (`INDEX_LINE_BYTES` on top of the key), not the
//! filesystem's blocks: the bound is on what we store, the same way moka counts the memory tier.

use std::collections::HashMap;

use cacache::Integrity;

/// An index line's fixed part (hashes, JSON field names, time, metadata) beside the key.
pub(super) const INDEX_LINE_BYTES: u64 = 260;

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub integrity: Integrity,
    /// The value's length in bytes.
    pub size: u64,
    /// Unix milliseconds; `None` for entries written before the tier recorded it (their
    /// envelope still carries it, checked on every read; they go by age instead).
    pub expires_at_ms: Option<u64>,
    /// Unix milliseconds of the last write or hit: the least recently used go first.
    pub last_used_ms: u64,
    /// The index's own count at that use: orders uses within one millisecond (a batch of
    /// writes shares one), so the earlier written of a batch goes first.
    pub last_used_seq: u64,
}

impl Entry {
    fn weight(&self, key: &str) -> u64 {
        self.size + key.len() as u64 + INDEX_LINE_BYTES
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// An entry to take off the disk, and whether its content file goes too (no other key points
/// at the same bytes: the store is content-addressed, two keys can share a file).
#[derive(Debug)]
pub(super) struct Removal {
    pub key: String,
    pub integrity: Integrity,
    pub content_unused: bool,
}

#[derive(Default)]
pub(super) struct Index {
    entries: HashMap<String, Entry>,
    /// How many keys point at each content address.
    content_refs: HashMap<String, u32>,
    bytes: u64,
    /// Bumped by every insert and touch (`Entry::last_used_seq`).
    uses: u64,
}

impl Index {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains_content(&self, integrity: &Integrity) -> bool {
        self.content_refs.contains_key(&integrity.to_string())
    }

    /// Mark a hit (here or in the memory tier above), so the entry is among the last to go.
    pub fn touch(&mut self, key: &str, now_ms: u64) -> Option<&Entry> {
        let entry = self.entries.get_mut(key)?;
        self.uses += 1;
        entry.last_used_ms = entry.last_used_ms.max(now_ms);
        entry.last_used_seq = self.uses;
        Some(entry)
    }

    /// Record `key` as stored; a replaced entry's content is returned if nothing else uses it.
    pub fn insert(&mut self, key: &str, mut entry: Entry) -> Option<Removal> {
        self.uses += 1;
        entry.last_used_seq = self.uses;
        *self.content_refs.entry(entry.integrity.to_string()).or_default() += 1;
        self.bytes += entry.weight(key);
        let replaced = self.entries.insert(key.to_string(), entry)?;
        self.bytes -= replaced.weight(key);
        let content_unused = self.release(&replaced.integrity);
        // The key stays: only its old content may go.
        content_unused.then(|| Removal { key: key.to_string(), integrity: replaced.integrity, content_unused })
    }

    /// Forget `key`; what to delete on disk, if it was held.
    pub fn remove(&mut self, key: &str) -> Option<Removal> {
        let entry = self.entries.remove(key)?;
        self.bytes -= entry.weight(key);
        let content_unused = self.release(&entry.integrity);
        Some(Removal { key: key.to_string(), integrity: entry.integrity, content_unused })
    }

    fn release(&mut self, integrity: &Integrity) -> bool {
        let name = integrity.to_string();
        match self.content_refs.get_mut(&name) {
            Some(refs) if *refs > 1 => {
                *refs -= 1;
                false
            }
            Some(_) => {
                self.content_refs.remove(&name);
                true
            }
            None => true,
        }
    }

    /// Forget every expired entry, then the least recently used until the index holds at most
    /// `target` bytes; what to delete on disk, in that order.
    pub fn evict(&mut self, now_ms: u64, target: u64) -> Vec<Removal> {
        let expired: Vec<String> =
            self.entries.iter().filter(|(_, entry)| entry.expired(now_ms)).map(|(key, _)| key.clone()).collect();
        let mut removals: Vec<Removal> = expired.iter().filter_map(|key| self.remove(key)).collect();
        if self.bytes > target {
            // Runs under the index's lock, which reads wait for: order borrowed keys and copy
            // only those that go (about a tenth of the index each time), not every key.
            let mut by_use: Vec<(u64, u64, &str, u64)> = self
                .entries
                .iter()
                .map(|(key, entry)| (entry.last_used_ms, entry.last_used_seq, key.as_str(), entry.weight(key)))
                .collect();
            by_use.sort_unstable_by_key(|&(ms, seq, _, _)| (ms, seq));
            let mut left = self.bytes;
            let going: Vec<String> = by_use
                .into_iter()
                .take_while(|&(_, _, _, weight)| {
                    let go = left > target;
                    left = left.saturating_sub(weight);
                    go
                })
                .map(|(_, _, key, _)| key.to_string())
                .collect();
            removals.extend(going.iter().filter_map(|key| self.remove(key)));
        }
        removals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(content: &[u8], size: u64, expires_at_ms: Option<u64>, last_used_ms: u64) -> Entry {
        Entry { integrity: Integrity::from(content), size, expires_at_ms, last_used_ms, last_used_seq: 0 }
    }

    #[test]
    fn the_least_recently_used_go_first_until_the_target_holds() {
        let mut index = Index::default();
        for n in 0..10u64 {
            index.insert(&format!("k{n}"), entry(format!("v{n}").as_bytes(), 1000, None, n));
        }
        index.touch("k0", 100);
        let one = 1000 + 2 + INDEX_LINE_BYTES;
        let gone: Vec<String> = index.evict(50, 4 * one).into_iter().map(|removal| removal.key).collect();
        assert_eq!(gone, ["k1", "k2", "k3", "k4", "k5", "k6"]);
        assert!(index.get("k0").is_some(), "read recently, kept");
        assert_eq!(index.bytes(), 4 * one);
    }

    #[test]
    fn within_one_millisecond_the_earlier_used_goes_first() {
        let mut index = Index::default();
        for n in 0..5u64 {
            index.insert(&format!("k{n}"), entry(format!("v{n}").as_bytes(), 1000, None, 7));
        }
        index.touch("k0", 7);
        let one = 1000 + 2 + INDEX_LINE_BYTES;
        let gone: Vec<String> = index.evict(7, 3 * one).into_iter().map(|removal| removal.key).collect();
        assert_eq!(gone, ["k1", "k2"]);
    }

    #[test]
    fn expired_entries_go_whatever_the_room() {
        let mut index = Index::default();
        index.insert("old", entry(b"a", 10, Some(1_000), 5));
        index.insert("fresh", entry(b"b", 10, Some(3_000), 1));
        index.insert("legacy", entry(b"c", 10, None, 1));
        let gone: Vec<String> = index.evict(2_000, u64::MAX).into_iter().map(|removal| removal.key).collect();
        assert_eq!(gone, ["old"]);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn content_two_keys_share_is_deleted_with_the_last_of_them() {
        let mut index = Index::default();
        index.insert("a", entry(b"same", 4, None, 1));
        index.insert("b", entry(b"same", 4, None, 2));
        assert!(!index.remove("a").expect("held").content_unused);
        assert!(index.contains_content(&Integrity::from(b"same")));
        assert!(index.remove("b").expect("held").content_unused);
        assert_eq!(index.bytes(), 0);
    }

    #[test]
    fn rewriting_a_key_frees_its_old_content_and_counts_it_once() {
        let mut index = Index::default();
        assert!(index.insert("a", entry(b"one", 3, None, 1)).is_none());
        let freed = index.insert("a", entry(b"two", 3, None, 2)).expect("old content freed");
        assert_eq!(freed.integrity, Integrity::from(b"one"));
        assert_eq!(index.len(), 1);
        assert_eq!(index.bytes(), 3 + 1 + INDEX_LINE_BYTES);
    }
}
