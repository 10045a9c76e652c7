//! `X-API-Key` check for `/api/*`, in constant time against every configured key.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::error::AppError;
use crate::secret::Secret;

pub const HEADER: &str = "x-api-key";

/// The accepted keys; empty means auth is off.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Arc<Vec<Secret>>,
}

impl ApiKeys {
    pub fn new(keys: Vec<Secret>) -> Self {
        Self { keys: Arc::new(keys) }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Compares against every key, without stopping at the first match, so timing says nothing
    /// about which key (or how much of one) matched. Lengths may leak; key material does not.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.keys
            .iter()
            .fold(subtle::Choice::from(0), |found, key| found | key.expose().as_bytes().ct_eq(presented))
            .into()
    }
}

#[derive(Clone)]
pub struct AuthLayer {
    keys: ApiKeys,
}

impl AuthLayer {
    pub fn new(keys: ApiKeys) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth { inner, keys: self.keys.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    keys: ApiKeys,
}

impl<S> Service<Request> for Auth<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.keys.enabled() {
            let presented = request.headers().get(HEADER).map(|value| value.as_bytes()).unwrap_or_default();
            if !self.keys.accepts(presented) {
                return Either::Right(ready(Ok(AppError::Unauthorized.into_response())));
            }
        }
        Either::Left(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> ApiKeys {
        ApiKeys::new(list.iter().map(|k| Secret::new(*k)).collect())
    }

    #[test]
    fn any_configured_key_is_accepted_and_nothing_else() {
        let keys = keys(&["alpha", "bravo"]);
        assert!(keys.accepts(b"alpha"));
        assert!(keys.accepts(b"bravo"));
        assert!(!keys.accepts(b"alph"));
        assert!(!keys.accepts(b"alphaa"));
        assert!(!keys.accepts(b""));
    }
}
