use axum::extract::ConnectInfo;
use http::{Extensions, HeaderMap};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

const USER_ID: &str = "x-user-id";
const API_KEY: &str = "x-api-key";
/// Longer or unprintable user ids are hashed: they become map keys and Redis key names.
const MAX_PLAIN_USER_ID: usize = 128;

/// Which limit a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The contract's per-user limit (`RATE_LIMIT_PER_MINUTE`): `X-User-ID`, else the API key,
    /// else the client address.
    User,
    /// The ceiling above it (`RATE_LIMIT_PER_KEY_PER_MINUTE`): the API key, else the client
    /// address, whatever user ids a client sends. A key holder who invents a user id per request
    /// is held by it.
    Ceiling,
}

impl Scope {
    /// The `scope` label of `rate_limit_rejections_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ceiling => "key",
        }
    }

    pub fn key(self, headers: &HeaderMap, extensions: &Extensions, api_keys_enabled: bool) -> String {
        match self {
            Self::User => rate_limit_key(headers, extensions, api_keys_enabled),
            Self::Ceiling => ceiling_key(headers, extensions, api_keys_enabled),
        }
    }
}

/// The API key when keys are checked, else the client address.
fn ceiling_key(headers: &HeaderMap, extensions: &Extensions, api_keys_enabled: bool) -> String {
    if api_keys_enabled && let Some(key) = non_empty(headers, API_KEY) {
        return format!("key-sha256:{}", hex::encode(Sha256::digest(key)));
    }
    address_key(extensions)
}

fn address_key(extensions: &Extensions) -> String {
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(address)) => format!("addr:{}", address.ip()),
        None => "addr:unknown".to_owned(),
    }
}

/// The per-user key the rate limit computed for a request, left in its extensions so the layers
/// inside (usage) count the same user without hashing and formatting it again.
#[derive(Debug, Clone)]
pub struct UserKey(pub String);

impl UserKey {
    /// The request's user: the rate limit's key when it ran, else computed here.
    pub fn of(headers: &HeaderMap, extensions: &Extensions, api_keys_enabled: bool) -> String {
        match extensions.get::<UserKey>() {
            Some(UserKey(key)) => key.clone(),
            None => rate_limit_key(headers, extensions, api_keys_enabled),
        }
    }
}

/// Who a request counts against, as the contract orders it: `X-User-ID`, else the API key,
/// else the client address.
///
/// - The API key is only an identity when keys are checked (`api_keys_enabled`): unchecked, a
///   client could send a fresh value per request and never be limited; then the address is
///   used. Keys are kept as a SHA-256 only, never raw, in memory or in Redis.
/// - The address is the IP without the port (each connection has its own port).
/// - Each kind has its own prefix, so a user id cannot collide with an address or a key hash.
pub fn rate_limit_key(headers: &HeaderMap, extensions: &Extensions, api_keys_enabled: bool) -> String {
    if let Some(user) = non_empty(headers, USER_ID) {
        return match std::str::from_utf8(user) {
            Ok(user) if user.len() <= MAX_PLAIN_USER_ID && user.bytes().all(|byte| byte.is_ascii_graphic()) => {
                format!("user:{user}")
            }
            _ => format!("user-sha256:{}", hex::encode(Sha256::digest(user))),
        };
    }
    if api_keys_enabled && let Some(key) = non_empty(headers, API_KEY) {
        return format!("key-sha256:{}", hex::encode(Sha256::digest(key)));
    }
    address_key(extensions)
}

fn non_empty<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(|value| value.as_bytes()).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key(headers: &[(&'static str, &[u8])], address: Option<&str>, api_keys_enabled: bool) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_bytes(value).expect("test header value"));
        }
        let mut extensions = Extensions::new();
        if let Some(address) = address {
            extensions.insert(ConnectInfo(address.parse::<SocketAddr>().expect("test address")));
        }
        rate_limit_key(&map, &extensions, api_keys_enabled)
    }

    #[test]
    fn the_user_id_wins_over_the_api_key_and_the_address() {
        let key = key(&[("x-user-id", b"alice"), ("x-api-key", b"secret")], Some("10.0.0.1:5000"), true);
        assert_eq!(key, "user:alice");
    }

    #[test]
    fn the_ceiling_ignores_user_ids() {
        let headers = [("x-user-id", &b"invented-1"[..]), ("x-api-key", &b"secret"[..])];
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name, HeaderValue::from_bytes(value).expect("value"));
        }
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo("10.0.0.1:5000".parse::<SocketAddr>().expect("address")));
        let ceiling = Scope::Ceiling.key(&map, &extensions, true);
        assert!(ceiling.starts_with("key-sha256:"), "{ceiling}");
        assert_eq!(Scope::Ceiling.key(&map, &extensions, false), "addr:10.0.0.1", "no checked key: the address");
        assert_eq!(Scope::User.key(&map, &extensions, true), "user:invented-1");
    }

    #[test]
    fn the_api_key_is_kept_only_as_a_hash() {
        let key = key(&[("x-api-key", b"secret-key")], Some("10.0.0.1:5000"), true);
        assert!(key.starts_with("key-sha256:"), "{key}");
        assert!(!key.contains("secret-key"), "{key}");
        assert_eq!(key.len(), "key-sha256:".len() + 64);
    }

    #[test]
    fn an_unchecked_api_key_is_not_an_identity() {
        assert_eq!(key(&[("x-api-key", b"anything")], Some("10.0.0.1:5000"), false), "addr:10.0.0.1");
    }

    #[test]
    fn the_address_ignores_the_port_and_falls_back_to_unknown() {
        assert_eq!(key(&[], Some("[::1]:40000"), true), "addr:::1");
        assert_eq!(key(&[], None, true), "addr:unknown");
        assert_eq!(key(&[("x-user-id", b"")], None, true), "addr:unknown");
    }

    #[test]
    fn odd_user_ids_are_hashed_not_stored() {
        let long = "u".repeat(500);
        let key_long = key(&[("x-user-id", long.as_bytes())], None, true);
        assert!(key_long.starts_with("user-sha256:") && key_long.len() < 100, "{key_long}");
        let spaced = key(&[("x-user-id", b"a b")], None, true);
        assert!(spaced.starts_with("user-sha256:"), "{spaced}");
        let binary = key(&[("x-user-id", &[0xff, 0xfe])], None, true);
        assert!(binary.starts_with("user-sha256:"), "{binary}");
    }
}
