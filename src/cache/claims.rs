//! Keys this instance holds the single-flight lease for, with the lease's token.
//!
//! The single-flight layer claims a key with one Redis script that looks for the value and, when
//! there is none, takes the lease (`single_flight::lease`). The cache layer beneath then knows two
//! things that save a Redis round trip each: Redis held no value a moment ago, so its own lookup
//! skips Redis; and the lease is ours, so storing the answer ends it in the same script
//! (`RedisTier::set_and_release`). A claim not used by a store (the call failed, the answer was
//! not cacheable) is released by the single-flight layer as before.

use std::collections::HashMap;

use parking_lot::Mutex;

/// A lease this instance holds: where it is in Redis and the token that proves it is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub lease_key: String,
    pub token: String,
}

#[derive(Default)]
pub struct Claims {
    held: Mutex<HashMap<String, Claim>>,
}

impl Claims {
    pub fn insert(&self, key: &str, claim: Claim) {
        self.held.lock().insert(key.to_owned(), claim);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.held.lock().contains_key(key)
    }

    /// The claim, if it is still here; it is gone afterwards.
    pub fn take(&self, key: &str) -> Option<Claim> {
        self.held.lock().remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_taken_once() {
        let claims = Claims::default();
        let claim = Claim { lease_key: "k:lease".to_owned(), token: "token".to_owned() };
        claims.insert("k", claim.clone());
        assert!(claims.contains("k"));
        assert_eq!(claims.take("k"), Some(claim));
        assert!(!claims.contains("k"));
        assert_eq!(claims.take("k"), None);
    }
}
