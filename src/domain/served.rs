//! A result together with where it came from, so the HTTP layer can answer `meta.cached`.

/// Where a served result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This request called the upstream.
    Upstream,
    /// Read from a cache tier (`memory`, `redis`, `disk`).
    Cache { tier: &'static str },
    /// Another identical request in this instance called the upstream; this one waited for it.
    SharedLocal,
    /// Another instance held the Redis lease and stored the result; this one read it back.
    SharedRemote,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Served<T> {
    pub fn fresh(value: T) -> Self {
        Self { value, origin: Origin::Upstream }
    }

    /// `meta.cached`: true when no upstream call was made for this request's own sake and the
    /// answer was read from storage.
    pub fn cached(&self) -> bool {
        matches!(self.origin, Origin::Cache { .. } | Origin::SharedRemote)
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served { value: f(self.value), origin: self.origin }
    }
}
