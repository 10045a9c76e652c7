//! A stand-in for Azure Speech and Gemini that speaks their documented wire formats, so the
//! service runs (and is load-tested) without cloud keys. It is a separate HTTP server on
//! loopback: the real clients talk to it over HTTP exactly as they would to the cloud, which
//! keeps the simulator out of the request path's code.
//!
//! Faults are drawn per request from settable rates, and can be changed at run time through
//! `GET/PUT /_simulator/faults` (for fault and load tests).

pub mod azure;
pub mod gemini;
pub mod openai;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::server::ServerOptions;

/// How the simulator misbehaves. Rates are probabilities in 0..=1 drawn independently per
/// request, in the order hang, rate limit, server error, malformed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Fixed delay before every answer.
    pub latency_ms: u64,
    /// 429 with `Retry-After` (Azure) or `RetryInfo` (Gemini).
    pub rate_limit_rate: f64,
    /// 503 with each upstream's documented error body.
    pub server_error_rate: f64,
    /// Never answers (until the client gives up).
    pub hang_rate: f64,
    /// Gemini only: a reply whose JSON text is damaged (fenced, trailing commas, truncated...).
    pub malformed_rate: f64,
    /// Seconds advertised in `Retry-After` / `retryDelay` on simulated 429s.
    pub retry_after_seconds: u64,
    /// Models (Gemini or OpenAI-compatible) that always answer 503, as an overloaded model does.
    pub unavailable_models: Vec<String>,
    /// Models that answer 404, as a retired (shut down) model does.
    pub retired_models: Vec<String>,
    /// Azure Speech answers every recognition with 503.
    pub azure_unavailable: bool,
}

/// One drawn misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Hang,
    RateLimited,
    ServerError,
    Malformed,
}

/// Shared, run-time settable simulator state.
#[derive(Clone, Default)]
pub struct Simulator {
    config: Arc<RwLock<SimConfig>>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        Self { config: Arc::new(RwLock::new(config)) }
    }

    pub fn config(&self) -> SimConfig {
        // A poisoned lock only means a writer panicked mid-assignment of plain data.
        self.config.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn set_config(&self, config: SimConfig) {
        *self.config.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
    }

    /// Wait the configured latency, then draw a fault (or none). A hang is served here: the
    /// future never completes, as a stuck upstream would behave.
    pub async fn before_answer(&self) -> Option<Fault> {
        let config = self.config();
        if config.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(config.latency_ms)).await;
        }
        let fault = draw(&config);
        if fault == Some(Fault::Hang) {
            std::future::pending::<()>().await;
        }
        fault
    }

    /// Both upstreams' routes plus the control endpoint.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/_simulator/faults", get(get_faults).put(put_faults))
            .with_state(self.clone())
            .merge(azure::router(self.clone()))
            .merge(gemini::router(self.clone()))
            .merge(openai::router(self.clone()))
    }

    /// Serve on an already-bound listener until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The service multiplexes its calls over a few HTTP/2 connections: no cap that would queue them.
        let options = ServerOptions { max_concurrent_streams: 100_000, ..ServerOptions::default() };
        crate::server::serve(listener, self.router(), options, shutdown).await
    }

    /// Start on an ephemeral loopback port in the background; returns its address. Used by the
    /// service when it runs without cloud keys, and by tests.
    pub async fn spawn(self) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        // Lives as long as the runtime: the simulator is a dev/test stand-in with no state to
        // flush, so it is simply dropped with the process.
        tokio::spawn(self.serve(listener, std::future::pending()));
        Ok(address)
    }
}

fn draw(config: &SimConfig) -> Option<Fault> {
    let roll = || rand::random::<f64>();
    if roll() < config.hang_rate {
        Some(Fault::Hang)
    } else if roll() < config.rate_limit_rate {
        Some(Fault::RateLimited)
    } else if roll() < config.server_error_rate {
        Some(Fault::ServerError)
    } else if roll() < config.malformed_rate {
        Some(Fault::Malformed)
    } else {
        None
    }
}

async fn get_faults(State(simulator): State<Simulator>) -> Json<SimConfig> {
    Json(simulator.config())
}

async fn put_faults(State(simulator): State<Simulator>, Json(config): Json<SimConfig>) -> Json<SimConfig> {
    simulator.set_config(config.clone());
    Json(config)
}
