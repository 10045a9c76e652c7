//! Every key the service writes to Redis, under one prefix (`REDIS_KEY_PREFIX`).
//!
//! A result and its single-flight lease are touched by one script, so on a cluster they must
//! share a slot: the digest is their hash tag (`{...}`), which also spreads results over every
//! master. A rate-limit bucket is touched alone and needs no tag.

/// Namespaced and versioned under the prefix, so a change of the stored format can move to `v2`
/// without old instances misreading it during a rolling deploy.
const VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// `prefix` is checked by `config` (no braces: a hash tag there would put every key of a
    /// deployment in one slot).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// `{prefix}v1:{kind}:{<sha256hex>}`. Plain strings, so this floor needs nothing of the
    /// cache's key type above it.
    pub fn result(&self, kind: &str, digest: &str) -> String {
        format!("{}{VERSION}:{kind}:{{{digest}}}", self.prefix)
    }

    /// Beside its result, in the same slot.
    pub fn lease(&self, kind: &str, digest: &str) -> String {
        format!("{}:lease", self.result(kind, digest))
    }

    /// `{prefix}v1:{bucket}:{limiter key}`: `bucket` keeps the per-user and the per-key limits
    /// apart, whose keys can be the same string.
    pub fn limit(&self, bucket: &str, key: &str) -> String {
        format!("{}{VERSION}:{bucket}:{key}", self.prefix)
    }

    /// `{prefix}v1:usage:{<user tag>}:<YYYY-MM-DD>`: one user's counts of one UTC day. The tag
    /// (a digest of the user key, made by `usage::store`) keeps a user's days and the markers of
    /// the batches written to them in one slot.
    pub fn usage_day(&self, user_tag: &str, day: &str) -> String {
        format!("{}{VERSION}:usage:{{{user_tag}}}:{day}", self.prefix)
    }

    /// Marks a batch of counts as added to a user's day, so that a batch sent again after an
    /// unanswered write is not added twice.
    pub fn usage_batch(&self, user_tag: &str, batch: &str) -> String {
        format!("{}{VERSION}:usage:{{{user_tag}}}:batch:{batch}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(key: &str) -> u16 {
        crate::redis::slot(key.as_bytes())
    }

    #[test]
    fn a_result_and_its_lease_share_a_slot_and_results_spread_over_slots() {
        let keys = KeySpace::new("backend-ai:");
        let mut slots = std::collections::BTreeSet::new();
        for n in 0..64 {
            let digest = format!("{n:064x}");
            let (result, lease) = (keys.result("analysis", &digest), keys.lease("analysis", &digest));
            assert_eq!(slot(&result), slot(&lease), "{result}");
            slots.insert(slot(&result) / 1024);
        }
        assert!(slots.len() >= 12, "64 digests land in {} of the 16 slot ranges", slots.len());
    }

    #[test]
    fn the_prefix_leads_every_key() {
        let keys = KeySpace::new("staging:");
        assert_eq!(
            keys.result("transcription", &"ab".repeat(32)),
            format!("staging:v1:transcription:{{{}}}", "ab".repeat(32))
        );
        assert_eq!(keys.limit("ratelimit", "user:7"), "staging:v1:ratelimit:user:7");
    }
}
