//! Every Prometheus metric the service exposes, in one registry per app instance (so two
//! instances in one test process do not share counters). Names, labels and buckets of the first
//! block are the contract's (`API.md`); the rest are ours and documented in the README.

pub mod labels;

use std::sync::Arc;

use labels::{Operation, Tier, Upstream};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Buckets the contract fixes for `ai_operation_duration_seconds`.
pub const AI_DURATION_BUCKETS: &[f64] = &[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// HTTP latency buckets: the service itself answers in micro- to milliseconds when cached and
/// in seconds when an upstream is involved, so the range spans both.
pub const HTTP_DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Cheap to clone and one pointer wide: it is held by every layer of every upstream stack, and
/// so by futures that live for a whole upstream call, thousands at once.
#[derive(Clone)]
pub struct Metrics(Arc<Collectors>);

impl std::ops::Deref for Metrics {
    type Target = Collectors;

    fn deref(&self) -> &Collectors {
        &self.0
    }
}

pub struct Collectors {
    registry: Registry,
    // --- contract ---
    /// 1 when the dependency is usable, 0 when not. `service`: azure_speech | gemini | redis.
    pub service_health_status: IntGaugeVec,
    /// `service`: redis | redis_limits. The share of the key space whose Redis node answers:
    /// 1 up, 0 down, in between a cluster with some shards unreachable.
    pub redis_slot_coverage: GaugeVec,
    /// `operation`: get | set; `result`: hit | miss (gets), ok | error (sets), error (gets that
    /// failed and were treated as misses); `tier`: memory | redis | disk.
    pub cache_operations_total: IntCounterVec,
    /// `operation`: transcribe | pronunciation | analyze; `provider`: the upstream serving it,
    /// azure_speech | gemini (`labels::Operation::upstream`).
    pub ai_operation_duration_seconds: HistogramVec,
    /// `operation` as above; `error_type`: `UpstreamError::kind()`.
    pub ai_operation_errors_total: IntCounterVec,
    /// `source`: gemini. Counts replies that ended as `fallback`.
    pub json_parse_failures_total: IntCounterVec,
    /// `path` is the matched route template, never the raw URL.
    pub http_requests_total: IntCounterVec,
    pub http_request_duration_seconds: HistogramVec,
    // --- ours ---
    /// 0 closed, 1 half-open, 2 open. `upstream`: azure_speech | gemini.
    pub circuit_breaker_state: IntGaugeVec,
    /// `limiter`: redis | local; `scope`: user (`RATE_LIMIT_PER_MINUTE`) | key (the ceiling,
    /// `RATE_LIMIT_PER_KEY_PER_MINUTE`).
    pub rate_limit_rejections_total: IntCounterVec,
    /// Requests answered by joining another request's upstream call. `operation` as above;
    /// `scope`: local (same instance) | remote (another instance's lease, via Redis).
    pub single_flight_shared_total: IntCounterVec,
    pub http_requests_in_flight: IntGauge,
    /// Connections being served (`MAX_CONNECTIONS` caps them), and those closed at once for it.
    pub http_connections_open: IntGauge,
    pub http_connections_refused_total: prometheus::IntCounter,
    /// Calls to an upstream on the wire or waiting for an HTTP/2 stream, set at each scrape.
    pub upstream_calls_in_flight: IntGaugeVec,
    /// Upstream calls running on their own task (`middleware::detach`), their caller still
    /// waiting or gone; shutdown waits for them.
    pub upstream_calls_detached: IntGauge,
    /// `UPSTREAM_CONNECTIONS` per upstream: with `upstream_calls_in_flight`, how full they are.
    pub upstream_connections: IntGaugeVec,
    /// `upstream`; `reason`: the `UpstreamError::kind()` that was retried.
    pub upstream_retries_total: IntCounterVec,
    /// Gemini `usageMetadata`. `kind`: prompt | candidates | thoughts | total.
    pub gemini_tokens_total: IntCounterVec,
    /// `quality`: clean | repaired | fallback.
    pub analysis_parse_total: IntCounterVec,
    /// Recordings taken in. `container`: wav | ogg | webm | matroska | mp4 | mp3 | adts | flac |
    /// unknown; `codec`: opus | aac | mp3 | flac | vorbis | pcm | alac | adpcm | unknown;
    /// `action`: passthrough | remux | transcode | rejected | cancelled.
    pub audio_inputs_total: IntCounterVec,
    /// Seconds of audio sent to Azure (which bills by the audio second), each attempt counted.
    /// `operation`: transcribe | pronunciation.
    pub audio_seconds_total: CounterVec,
    /// Bytes of the recordings' budget (`AUDIO_BYTES_IN_FLIGHT`) reserved by requests now.
    pub audio_bytes_reserved: IntGauge,
    /// Decoding workers (`AUDIO_WORKERS`) busy with a recording now.
    pub audio_workers_busy: IntGauge,
    /// Hand-overs from one link of a fallback chain to the next. `operation`; `from`, `to`: the
    /// configured model ids (so bounded by the configuration); `reason`: the hand-over's cause.
    pub ai_fallbacks_total: IntCounterVec,
    /// 404s from a configured model (not found, or retired). `operation`; `model` as configured.
    pub ai_model_not_found_total: IntCounterVec,
    // --- usage (contract) ---
    /// Seconds of audio sent to a speech upstream, each attempt counted. `operation`:
    /// transcribe | pronunciation; `provider` as for `ai_operation_duration_seconds`.
    pub ai_audio_seconds_total: CounterVec,
    /// Tokens an LLM upstream reported. `provider`; `model`: the configured model id (bounded by
    /// configuration); `kind`: input | output | thinking. No user label, ever.
    pub ai_tokens_total: IntCounterVec,
    /// Requests refused 429 `budget_exceeded`. `budget`: audio_seconds | tokens.
    pub budget_refusals_total: IntCounterVec,
    // --- usage (ours) ---
    /// Usage writes to Redis. `result`: written | failed (buffered) | flushed | duplicate (a batch
    /// sent again and found already added).
    pub usage_writes_total: IntCounterVec,
    /// Requests whose usage was lost because the buffer was full (`USAGE_BUFFER_MAX_ENTRIES`).
    pub usage_dropped_total: prometheus::IntCounter,
    /// Users' days held in memory waiting for Redis.
    pub usage_buffered_entries: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric.expect("metric definition is valid");
                registry.register(Box::new(metric.clone())).expect("metric names are unique");
                metric
            }};
        }
        let counter = |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
        };
        Self(Arc::new(Collectors {
            service_health_status: register!(IntGaugeVec::new(
                Opts::new("service_health_status", "1 when the dependency is usable, 0 when not"),
                &["service"]
            )),
            redis_slot_coverage: register!(GaugeVec::new(
                Opts::new(
                    "redis_slot_coverage",
                    "Share of the Redis key space whose node answers: 1 all, 0 none, between: some cluster shards down"
                ),
                &["service"]
            )),
            cache_operations_total: register!(counter(
                "cache_operations_total",
                "Cache gets and sets by result and tier",
                &["operation", "result", "tier"]
            )),
            ai_operation_duration_seconds: register!(histogram(
                "ai_operation_duration_seconds",
                "Duration of upstream AI operations, retries included",
                &["operation", "provider"],
                AI_DURATION_BUCKETS
            )),
            ai_operation_errors_total: register!(counter(
                "ai_operation_errors_total",
                "Failed upstream AI operations by error type",
                &["operation", "error_type"]
            )),
            json_parse_failures_total: register!(counter(
                "json_parse_failures_total",
                "Model replies that could not be parsed and ended as a fallback",
                &["source"]
            )),
            http_requests_total: register!(counter(
                "http_requests_total",
                "HTTP requests by method, route template and status",
                &["method", "path", "status"]
            )),
            http_request_duration_seconds: register!(histogram(
                "http_request_duration_seconds",
                "HTTP request latency by method and route template",
                &["method", "path"],
                HTTP_DURATION_BUCKETS
            )),
            circuit_breaker_state: register!(IntGaugeVec::new(
                Opts::new("circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open"),
                &["upstream"]
            )),
            rate_limit_rejections_total: register!(counter(
                "rate_limit_rejections_total",
                "Requests refused by the per-user rate limit or the per-key ceiling",
                &["limiter", "scope"]
            )),
            single_flight_shared_total: register!(counter(
                "single_flight_shared_total",
                "Requests answered by joining an identical in-flight upstream call",
                &["operation", "scope"]
            )),
            http_requests_in_flight: register!(IntGauge::new(
                "http_requests_in_flight",
                "HTTP requests being served right now"
            )),
            http_connections_open: register!(IntGauge::new(
                "http_connections_open",
                "Client connections being served (at most MAX_CONNECTIONS)"
            )),
            http_connections_refused_total: register!(prometheus::IntCounter::new(
                "http_connections_refused_total",
                "Client connections closed on arrival because MAX_CONNECTIONS were open"
            )),
            upstream_calls_in_flight: register!(IntGaugeVec::new(
                Opts::new(
                    "upstream_calls_in_flight",
                    "Upstream calls on the wire or waiting for an HTTP/2 stream (at most about UPSTREAM_CONNECTIONS x 100 run at once)"
                ),
                &["upstream"]
            )),
            upstream_calls_detached: register!(IntGauge::new(
                "upstream_calls_detached",
                "Upstream calls running on their own task, whether or not their client still waits"
            )),
            upstream_connections: register!(IntGaugeVec::new(
                Opts::new(
                    "upstream_connections",
                    "HTTP connections (clients) calls to an upstream are spread over (UPSTREAM_CONNECTIONS)"
                ),
                &["upstream"]
            )),
            upstream_retries_total: register!(counter(
                "upstream_retries_total",
                "Upstream calls sent again after a transient failure",
                &["upstream", "reason"]
            )),
            gemini_tokens_total: register!(counter(
                "gemini_tokens_total",
                "Gemini tokens used, from usageMetadata",
                &["kind"]
            )),
            analysis_parse_total: register!(counter(
                "analysis_parse_total",
                "Analyses by how their model reply was parsed",
                &["quality"]
            )),
            audio_inputs_total: register!(counter(
                "audio_inputs_total",
                "Recordings taken in, by container, codec and what was done to them for Azure",
                &["container", "codec", "action"]
            )),
            audio_seconds_total: register!(CounterVec::new(
                Opts::new("audio_seconds_total", "Seconds of audio sent to Azure Speech, retries included"),
                &["operation"]
            )),
            audio_bytes_reserved: register!(IntGauge::new(
                "audio_bytes_reserved",
                "Bytes of AUDIO_BYTES_IN_FLIGHT reserved by the audio requests being served"
            )),
            audio_workers_busy: register!(IntGauge::new(
                "audio_workers_busy",
                "Decoding workers (AUDIO_WORKERS) busy with a recording now"
            )),
            ai_fallbacks_total: register!(counter(
                "ai_fallbacks_total",
                "Calls handed from one link of a fallback chain to the next",
                &["operation", "from", "to", "reason"]
            )),
            ai_model_not_found_total: register!(counter(
                "ai_model_not_found_total",
                "404s (model not found or retired) from a configured model",
                &["operation", "model"]
            )),
            ai_audio_seconds_total: register!(CounterVec::new(
                Opts::new("ai_audio_seconds_total", "Seconds of audio sent to a speech upstream, retries included"),
                &["operation", "provider"]
            )),
            ai_tokens_total: register!(counter(
                "ai_tokens_total",
                "Tokens reported by an LLM upstream, by model and kind (input, output, thinking)",
                &["provider", "model", "kind"]
            )),
            budget_refusals_total: register!(counter(
                "budget_refusals_total",
                "Requests refused because the user's daily budget was spent",
                &["budget"]
            )),
            usage_writes_total: register!(counter(
                "usage_writes_total",
                "Per-user usage writes to Redis by result",
                &["result"]
            )),
            usage_dropped_total: register!(prometheus::IntCounter::new(
                "usage_dropped_total",
                "Requests whose usage was not counted because the in-memory buffer was full"
            )),
            usage_buffered_entries: register!(IntGauge::new(
                "usage_buffered_entries",
                "Users' days of usage held in memory until Redis takes them"
            )),
            registry,
        }))
    }

    /// Create every label set that is known up front at zero, so each metric the contract names
    /// is on the first scrape and `rate()` sees the first increment of a counter.
    pub fn initialise_series(&self) {
        for op in Operation::ALL {
            let (operation, upstream) = (op.as_str(), op.upstream().as_str());
            let _ = self.ai_operation_duration_seconds.with_label_values(&[operation, upstream]);
            for kind in crate::upstream::ErrorKind::ALL.iter().filter(|kind| kind.reaches_ai_metrics()) {
                let _ = self.ai_operation_errors_total.with_label_values(&[operation, kind.as_str()]);
            }
            // The kinds `UpstreamError::retry()` lets the retry layer send again.
            for kind in ["unreachable", "server_error", "rate_limited"] {
                let _ = self.upstream_retries_total.with_label_values(&[upstream, kind]);
            }
            let _ = self.upstream_calls_in_flight.with_label_values(&[upstream]);
            for scope in ["local", "remote"] {
                let _ = self.single_flight_shared_total.with_label_values(&[operation, scope]);
            }
            if op.sends_audio() {
                let _ = self.audio_seconds_total.with_label_values(&[operation]);
                let _ = self.ai_audio_seconds_total.with_label_values(&[operation, upstream]);
            }
        }
        for upstream in Upstream::ALL {
            let _ = self.upstream_connections.with_label_values(&[upstream.as_str()]);
        }
        let _ = self.json_parse_failures_total.with_label_values(&[Upstream::Gemini.as_str()]);
        for quality in ["clean", "repaired", "fallback"] {
            let _ = self.analysis_parse_total.with_label_values(&[quality]);
        }
        for limiter in ["redis", "local"] {
            for scope in ["user", "key"] {
                let _ = self.rate_limit_rejections_total.with_label_values(&[limiter, scope]);
            }
        }
        for result in ["written", "failed", "flushed", "duplicate"] {
            let _ = self.usage_writes_total.with_label_values(&[result]);
        }
        for kind in ["prompt", "candidates", "thoughts", "total"] {
            let _ = self.gemini_tokens_total.with_label_values(&[kind]);
        }
        // What learners' devices send most (README's table), and refusals.
        for (container, codec, action) in [
            ("webm", "opus", "remux"),
            ("mp4", "aac", "transcode"),
            ("mp4", "opus", "remux"),
            ("wav", "pcm", "passthrough"),
            ("wav", "pcm", "transcode"),
            ("mp3", "mp3", "transcode"),
            ("unknown", "unknown", "rejected"),
        ] {
            let _ = self.audio_inputs_total.with_label_values(&[container, codec, action]);
        }
    }

    /// Zero series for the cache tiers in use (of `Tier::ALL`, those the cache mode has).
    pub fn initialise_cache_tiers(&self, tiers: &[Tier]) {
        for tier in tiers.iter().map(|tier| tier.as_str()) {
            for result in ["hit", "miss", "error"] {
                let _ = self.cache_operations_total.with_label_values(&["get", result, tier]);
            }
            for result in ["ok", "error"] {
                let _ = self.cache_operations_total.with_label_values(&["set", result, tier]);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding of gathered metrics cannot fail");
        String::from_utf8(buffer).expect("the text encoder writes UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
