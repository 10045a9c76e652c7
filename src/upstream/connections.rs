//! HTTP connections to one upstream, spread over several reqwest clients ("lanes").
//!
//! Over TLS, reqwest negotiates HTTP/2 by ALPN and then multiplexes every call of a client on
//! one connection. Servers cap the streams a connection may carry at once (Google's front ends
//! announce 100), and hyper queues calls past that cap rather than opening another connection
//! (hyperium/hyper#2197, #3623): with one client, a pod would quietly serialise behind 100 slow
//! model calls while its deadline runs. Each lane owns its own pool, hence its own connection, and
//! a call takes the lane with the fewest calls in flight, so `lanes × stream cap` calls run at once.
//! Over HTTP/1.1 the lanes are simply independent pools.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the service connects to an upstream (`UPSTREAM_CONNECTIONS`,
/// `UPSTREAM_HTTP2_PRIOR_KNOWLEDGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// How many clients (HTTP/2 connections) a call is spread over; at least 1.
    pub lanes: usize,
    /// Speak HTTP/2 without TLS negotiation (h2c): for plain-HTTP upstreams that support it,
    /// such as the built-in simulator or a local proxy.
    pub http2_prior_knowledge: bool,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self { lanes: 8, http2_prior_knowledge: false }
    }
}

#[derive(Debug, Clone)]
pub struct Connections {
    lanes: Arc<[Lane]>,
}

#[derive(Debug)]
struct Lane {
    client: reqwest::Client,
    in_flight: AtomicUsize,
}

impl Connections {
    /// `configure` adds the upstream's own client settings (timeouts, redirects, user agent).
    pub fn new(
        settings: ConnectionSettings,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, reqwest::Error> {
        let lanes = (0..settings.lanes.max(1))
            .map(|_| {
                let mut builder = configure(reqwest::Client::builder());
                if settings.http2_prior_knowledge {
                    builder = builder.http2_prior_knowledge();
                }
                builder.build().map(|client| Lane { client, in_flight: AtomicUsize::new(0) })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { lanes: lanes.into() })
    }

    /// The least busy lane's client, counted as busy until the lease is dropped: hold it until
    /// the response body has been read, since the stream stays open until then.
    pub fn lease(&self) -> Lease<'_> {
        // A handful of lanes: a scan is cheaper than any structure that keeps them sorted. Races
        // between two callers only make the spread slightly uneven, never wrong.
        let lane = self
            .lanes
            .iter()
            .min_by_key(|lane| lane.in_flight.load(Ordering::Relaxed))
            .expect("Connections::new makes at least one lane");
        lane.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease { lane }
    }

    /// How many clients (connections) calls are spread over.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Calls in flight over all lanes.
    pub fn calls_in_flight(&self) -> usize {
        self.lanes.iter().map(|lane| lane.in_flight.load(Ordering::Relaxed)).sum()
    }

    /// Calls in flight on each lane, for tests and diagnostics.
    pub fn in_flight(&self) -> Vec<usize> {
        self.lanes.iter().map(|lane| lane.in_flight.load(Ordering::Relaxed)).collect()
    }
}

#[derive(Debug)]
pub struct Lease<'a> {
    lane: &'a Lane,
}

impl std::ops::Deref for Lease<'_> {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.lane.client
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.lane.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(lanes: usize) -> Connections {
        Connections::new(ConnectionSettings { lanes, http2_prior_knowledge: false }, |builder| builder)
            .expect("client builds")
    }

    #[test]
    fn calls_spread_evenly_over_the_lanes() {
        let connections = connections(3);
        let leases: Vec<_> = (0..7).map(|_| connections.lease()).collect();
        let mut counts = connections.in_flight();
        counts.sort_unstable();
        assert_eq!(counts, vec![2, 2, 3]);
        drop(leases);
        assert_eq!(connections.in_flight(), vec![0, 0, 0]);
    }

    #[test]
    fn a_freed_lane_is_taken_first() {
        let connections = connections(2);
        let first = connections.lease();
        let second = connections.lease();
        let third = connections.lease();
        drop(second);
        let _fourth = connections.lease();
        assert_eq!(connections.in_flight(), vec![2, 1]);
        drop((first, third));
    }

    #[test]
    fn zero_lanes_means_one() {
        assert_eq!(connections(0).in_flight(), vec![0]);
    }
}
