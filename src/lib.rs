//! backend-ai: Englivo's speech and writing analysis service.
//!
//! A learner's recording goes to Azure Speech (transcription, pronunciation assessment) and a
//! learner's text to Gemini (grammar analysis); the answers come back in the contract's JSON
//! envelope. Module map, from the outside in:
//!
//! - [`app`]: settings -> router -> running server, with the HTTP layer order explained;
//!   [`routes`] are thin handlers (read input, call a stack, shape the envelope);
//!   [`error`] is the one place failures become HTTP; [`openapi`] documents it all, and
//!   [`web`] serves the pages a person opens (Swagger UI at `/docs`, the playground).
//! - [`middleware`]: tower layers. HTTP level: request id, auth, rate limit, HTTP metrics.
//!   Domain level, stacked on every upstream call by [`stacks`]: single-flight -> cache ->
//!   AI metrics -> circuit breaker -> retry; the jobs they take and the results they give are
//!   on the ground floor in [`domain`] (jobs, served results, speech results).
//! - [`upstream`]: one client per upstream ([`upstream::azure_speech`], [`upstream::gemini`]),
//!   each owning its `reqwest::Client` and private wire types; [`upstream::UpstreamError`] is
//!   the boundary's one error type. [`simulator`] stands in for both when run without keys.
//! - [`analysis`]: the contract's analysis, the prompt, and the parser that survives whatever
//!   Gemini sends; [`audio`]: format detection and the SSRF-safe downloader of `audio_url`s.
//! - [`cache`]: memory, Redis and disk tiers, the Kubernetes-aware mode choice, content-addressed
//!   keys; [`redis`]: the one Redis connection shared by cache, single-flight and limits.
//! - [`usage`]: what each learner costs, per user and UTC day, in Redis; the daily budgets.
//! - [`config`], [`metrics`], [`telemetry`], [`readiness`], [`state`]: typed settings, the
//!   Prometheus registry, logs, shutdown state, handler state.
pub mod analysis;
pub mod app;
pub mod audio;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod readiness;
pub mod redis;
pub mod routes;
pub mod server;
pub mod simulator;
pub mod stacks;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod usage;
pub mod web;
