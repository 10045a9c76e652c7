//! The HTTP server: where it listens, how many connections it holds and for how long, how
//! request bodies must arrive, what it serves besides the API, and how it stops.
//!
//! Variables: `BIND_ADDRESS`, `PORT`, `MAX_CONNECTIONS`, `HEADER_READ_TIMEOUT_SECONDS`,
//! `REQUEST_BODY_TIMEOUT_SECONDS`, `REQUEST_BODY_DEADLINE_SECONDS`,
//! `REQUEST_BODY_MIN_BYTES_PER_SECOND`, `PLAYGROUND_ENABLED`, `SHUTDOWN_GRACE_SECONDS`,
//! `SHUTDOWN_DELAY_SECONDS`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::names::*;
use super::vars::{ConfigError, Vars, invalid};
use crate::middleware::body_deadline::MinRate;
use crate::server::ServerOptions;

/// New variables about connections, request bodies, pages and shutdown belong here.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub bind_address: IpAddr,
    pub port: u16,
    /// Client connections served at once.
    pub max_connections: usize,
    /// HTTP/1.1: longest wait for a request head, idle keep-alive time included (hyper starts
    /// the clock when it starts waiting for a head).
    pub header_read_timeout: Duration,
    /// Longest pause between two pieces of a request body before the request is given up.
    pub request_body_timeout: Duration,
    /// A request body must be complete this long after the request arrived (408).
    pub request_body_deadline: Duration,
    /// A request body must keep this pace, on average, once its first seconds are past (408);
    /// 0: no minimum.
    pub request_body_min_rate: u64,
    /// Serve `/playground`. The contract turns it off by default in Kubernetes, where the callers
    /// are apps and an unneeded page is only more surface.
    pub playground_enabled: bool,
    pub shutdown_grace: Duration,
    /// Between readiness turning 503 and the listener closing: time for load balancers to stop
    /// sending new requests (an alternative to a `preStop` sleep).
    pub shutdown_delay: Duration,
}

impl ServerSettings {
    pub(super) fn from_vars(vars: &Vars<'_>, kubernetes: bool) -> Result<Self, ConfigError> {
        let bind_address = match vars.get(BIND_ADDRESS) {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(raw) => {
                raw.trim().parse().map_err(|_| invalid(BIND_ADDRESS, "must be an IP address such as 0.0.0.0"))?
            }
        };
        Ok(Self {
            bind_address,
            port: vars.number(PORT, 8000u16, 0)?,
            max_connections: vars.number(MAX_CONNECTIONS, crate::server::DEFAULT_MAX_CONNECTIONS, 1)?,
            header_read_timeout: vars.seconds(
                HEADER_READ_TIMEOUT_SECONDS,
                crate::server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
                1,
            )?,
            request_body_timeout: vars.seconds(REQUEST_BODY_TIMEOUT_SECONDS, 15, 1)?,
            request_body_deadline: vars.seconds(REQUEST_BODY_DEADLINE_SECONDS, 60, 1)?,
            request_body_min_rate: vars.number(REQUEST_BODY_MIN_BYTES_PER_SECOND, 4096u64, 0)?,
            playground_enabled: vars.boolean(PLAYGROUND_ENABLED, !kubernetes)?,
            shutdown_grace: vars.seconds(SHUTDOWN_GRACE_SECONDS, 25, 0)?,
            shutdown_delay: vars.seconds(SHUTDOWN_DELAY_SECONDS, 0, 0)?,
        })
    }

    /// `BIND_ADDRESS:PORT`.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.port)
    }

    /// The server's bounds on connections; its metrics are the caller's to add.
    pub fn options(&self) -> ServerOptions {
        ServerOptions {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
            ..ServerOptions::default()
        }
    }

    /// The pace a request body must keep, `None` when `REQUEST_BODY_MIN_BYTES_PER_SECOND` is 0.
    pub fn body_min_rate(&self) -> Option<MinRate> {
        MinRate::per_second(self.request_body_min_rate)
    }
}
