//! The three upstream stacks, assembled once at start-up, each in the one layer order that
//! `layers` writes down.

mod chain;
mod layers;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use serde_json::{Value, json};
use tower::layer::util::Identity;
use tower::{Layer, service_fn};
use tower::util::BoxCloneSyncService;
use url::Url;

use crate::analysis::AnalysisOutcome;
use crate::analysis::analyzer::Analyzer;
use crate::cache::{Cache, CacheConfig, Ttls, resolve_mode};
use crate::config::{AzureTarget, GeminiTarget, Settings, SimulatorSettings};
use crate::domain::jobs::{AnalyzeJob, PronunciationJob, TranscribeJob};
use crate::domain::served::Served;
use crate::domain::speech::{Pronunciation, Transcription};
use crate::metrics::Metrics;
use crate::metrics::labels::{Operation, Tier};
use crate::middleware::cached_flight::CachedFlightConfig;
use crate::middleware::circuit_breaker::{Breaker, BreakerConfig};
use crate::middleware::detach::Detached;
use crate::middleware::model_health::ModelHealthLayer;
use crate::middleware::rate_limit::Admitted;
use crate::middleware::recording_digest::RecordingDigestLayer;
use crate::middleware::retry::{RetryBudget, RetryLayer, RetryPolicy};
use crate::redis::RedisLink;
use crate::simulator::{SimConfig, Simulator};
use crate::upstream::azure_speech::{AzureSpeechClient, AzureSpeechConfig};
use crate::upstream::connections::{ConnectionSettings, Connections};
use crate::upstream::gemini::{GeminiClient, GeminiConfig};
use crate::upstream::{Upstream, UpstreamError};
use layers::{Guard, Layers};

/// One upstream operation as a type-erased tower service: a job goes in with its request's
/// admission, never without.
pub type Stack<J, R> = BoxCloneSyncService<Admitted<J>, Served<R>, UpstreamError>;

pub struct Upstreams {
    pub transcribe: Stack<TranscribeJob, Transcription>,
    pub pronounce: Stack<PronunciationJob, Pronunciation>,
    pub analyze: Stack<AnalyzeJob, AnalysisOutcome>,
    cache: Cache,
    azure_breaker: Breaker,
    gemini_breaker: Breaker,
    azure_target: TargetInfo,
    gemini_target: TargetInfo,
    azure_connections: Connections,
    gemini_connections: Connections,
    detached: Detached,
    metrics: Metrics,
    /// The analysis chain's later links (none without `GEMINI_FALLBACK_MODELS`/`OPENAI_*`).
    analysis_chain: chain::AnalysisChain,
}

/// What `/health/upstreams` says of the built-in simulator's address: the port it listens on is
/// nobody's business outside the process (the endpoint needs no key).
const SIMULATOR_BASE: &str = "built-in (loopback)";

/// What `/health/upstreams` says about where an upstream's calls go.
struct TargetInfo {
    /// `cloud` or `simulator`.
    kind: &'static str,
    base_url: String,
}

impl Upstreams {
    pub fn health(&self) -> Value {
        json!({
            "azure_speech": {
                "target": self.azure_target.kind,
                "base_url": self.azure_target.base_url,
                "state": self.azure_breaker.state().as_str(),
                "breaker": self.azure_breaker.snapshot(),
            },
            "gemini": {
                "target": self.gemini_target.kind,
                "base_url": self.gemini_target.base_url,
                "state": self.gemini_breaker.state().as_str(),
                "breaker": self.gemini_breaker.snapshot(),
                "fallbacks": self.analysis_chain.health(),
            },
        })
    }

    /// Aim an analysis at the whole chain: its later links' cached answers are looked up too.
    pub fn aim_analysis(&self, job: AnalyzeJob) -> AnalyzeJob {
        AnalyzeJob { fallbacks: self.analysis_chain.fallbacks.clone(), ..job }
    }

    /// Bring the gauges that are read rather than counted up to date before a scrape: each
    /// breaker notices a recovery timeout that ran out while no request came, and the calls in
    /// flight are summed over the connections.
    pub fn observe(&self) {
        let _ = self.azure_breaker.state();
        let _ = self.gemini_breaker.state();
        for (_, breaker) in &self.analysis_chain.breakers {
            let _ = breaker.state();
        }
        for (upstream, connections) in
            [(Upstream::AzureSpeech, &self.azure_connections), (Upstream::Gemini, &self.gemini_connections)]
        {
            let calls = i64::try_from(connections.calls_in_flight()).unwrap_or(i64::MAX);
            self.metrics.upstream_calls_in_flight.with_label_values(&[upstream.as_str()]).set(calls);
        }
    }

    pub async fn cache_health(&self) -> Value {
        self.cache.health().await
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The calls running on their own tasks, and the `MAX_IN_FLIGHT` slots they share.
    pub fn detached(&self) -> &Detached {
        &self.detached
    }
}

/// Build the stacks; starts the built-in simulator on loopback when an upstream has no key.
pub async fn build(settings: &Settings, metrics: &Metrics) -> std::io::Result<Upstreams> {
    metrics.initialise_series();
    let simulator_url = if settings.uses_simulator() {
        let address = Simulator::new(simulator_config(&settings.simulator)).spawn().await?;
        tracing::warn!(
            simulator = %address,
            "no cloud keys: Azure Speech and/or Gemini are served by the built-in simulator (see /health/upstreams)"
        );
        Some(simulator_base(address))
    } else {
        None
    };

    // The built-in simulator speaks h2c, so calls to it take the multiplexed path production
    // takes over TLS.
    let simulator_connections = ConnectionSettings { http2_prior_knowledge: true, ..settings.upstream_connections };
    let (gemini_config, gemini_target) = match (&settings.gemini, &simulator_url) {
        (GeminiTarget::Cloud { base_url, key }, _) => (
            GeminiConfig {
                base_url: base_url.clone(),
                api_key: key.expose().to_string(),
                model: settings.gemini_model.clone(),
                api_version: GeminiConfig::DEFAULT_API_VERSION.to_string(),
                connections: settings.upstream_connections,
            },
            TargetInfo { kind: "cloud", base_url: base_url.to_string() },
        ),
        (GeminiTarget::Simulator, Some(url)) => (
            GeminiConfig {
                base_url: url.clone(),
                api_key: "simulator".to_string(),
                model: settings.gemini_model.clone(),
                api_version: GeminiConfig::DEFAULT_API_VERSION.to_string(),
                connections: simulator_connections,
            },
            TargetInfo { kind: "simulator", base_url: SIMULATOR_BASE.to_string() },
        ),
        (GeminiTarget::Simulator, None) => unreachable!("uses_simulator() is true whenever a target is the simulator"),
    };
    let gemini = GeminiClient::new(gemini_config.clone());
    let gemini_connections = gemini.connections().clone();
    let analyzer = Analyzer::new(gemini, metrics.clone());

    let (azure_config, azure_target) = match (&settings.azure, &simulator_url) {
        (AzureTarget::Cloud { base_url, transcription_url, key }, _) => (
            AzureSpeechConfig {
                connections: settings.upstream_connections,
                transcription_url: transcription_url.clone(),
                ..AzureSpeechConfig::with_endpoint(base_url.clone(), key.expose().to_string())
            },
            TargetInfo { kind: "cloud", base_url: base_url.to_string() },
        ),
        (AzureTarget::Simulator, Some(url)) => (
            AzureSpeechConfig {
                connections: simulator_connections,
                ..AzureSpeechConfig::with_endpoint(url.clone(), "simulator".to_string())
            },
            TargetInfo { kind: "simulator", base_url: SIMULATOR_BASE.to_string() },
        ),
        (AzureTarget::Simulator, None) => unreachable!("uses_simulator() is true whenever a target is the simulator"),
    };
    azure_config.validate().map_err(std::io::Error::other)?;
    let azure = AzureSpeechClient::new(azure_config);
    let azure_connections = azure.connections().clone();

    let cache = build_cache(settings, metrics).map_err(std::io::Error::other)?;
    // Waiting on another instance's lease must end before the caller's own deadline could.
    // `MAX_IN_FLIGHT`'s slots are made here, not with the load shedder, because a call whose
    // client has gone holds one too.
    let slots = (settings.max_in_flight > 0).then(|| Arc::new(Semaphore::new(settings.max_in_flight)));
    let detached = Detached::new(metrics.upstream_calls_detached.clone(), slots);
    let cached_flight = CachedFlightConfig { max_wait: settings.upstream_timeout, ..CachedFlightConfig::default() };

    let layers = Layers { cache: cache.clone(), cached_flight, detached: detached.clone(), metrics: metrics.clone() };

    // One retry budget for every link of the analysis chain.
    let gemini_budget = RetryBudget::default();
    let gemini_guard = Guard {
        upstream: Upstream::Gemini,
        breaker: Breaker::new(Upstream::Gemini, breaker_config(settings), metrics.clone()),
        retry: RetryLayer::new(retry_policy(settings), gemini_budget.clone(), Upstream::Gemini, metrics.clone()),
    };
    let primary = chain::Primary {
        analyzer,
        gemini: gemini_config,
        breaker: gemini_guard.breaker.clone(),
        budget: gemini_budget,
    };
    let (analyze, analysis_chain) = match chain::analysis_chain(
        settings,
        &layers,
        primary,
        simulator_url.as_ref(),
        simulator_connections,
    ) {
        Ok((chain, info)) => (layers.over_chain(Identity::new(), "analyze", Upstream::Gemini, chain), info),
        Err(primary) => {
            let analyzer = primary.analyzer;
            let retired = ModelHealthLayer::new(
                Operation::Analyze,
                settings.gemini_model.as_str().into(),
                crate::config::GEMINI_MODEL,
                Upstream::Gemini.as_str().into(),
                metrics.clone(),
            );
            let client = retired.layer(service_fn(move |job: AnalyzeJob| {
                let analyzer = analyzer.clone();
                async move { analyzer.analyze(&job).await.map(Served::fresh) }
            }));
            let stack = layers.stack(Identity::new(), Operation::Analyze, "analyze", &gemini_guard, client);
            (stack, chain::AnalysisChain::default())
        }
    };

    // Transcription and pronunciation assessment hit the same Azure endpoint: one breaker and
    // one retry budget for both, so an outage seen by one protects the other.
    let azure_budget = RetryBudget::default();
    let azure_guard = Guard {
        upstream: Upstream::AzureSpeech,
        breaker: Breaker::new(Upstream::AzureSpeech, breaker_config(settings), metrics.clone()),
        retry: RetryLayer::new(retry_policy(settings), azure_budget.clone(), Upstream::AzureSpeech, metrics.clone()),
    };
    let client = azure.clone();
    let billed = metrics.audio_seconds_total.with_label_values(&[Operation::Transcribe.as_str()]);
    let sent = metrics
        .ai_audio_seconds_total
        .with_label_values(&[Operation::Transcribe.as_str(), Upstream::AzureSpeech.as_str()]);
    let azure_transcribe = service_fn(move |job: TranscribeJob| {
        let client = client.clone();
        // Azure bills by the audio second, each attempt that reaches it.
        billed.inc_by(job.audio.duration().as_secs_f64());
        sent.inc_by(job.audio.duration().as_secs_f64());
        async move { client.transcribe(&job).await.map(Served::fresh) }
    });
    let transcribe = match chain::transcription_chain(
        settings,
        &layers,
        (&azure_guard.breaker, &azure_budget),
        azure_transcribe.clone(),
        simulator_url.as_ref(),
        simulator_connections,
    ) {
        Some(chain) => layers.over_chain(RecordingDigestLayer, "transcribe", Upstream::AzureSpeech, chain),
        None => layers.stack(RecordingDigestLayer, Operation::Transcribe, "transcribe", &azure_guard, azure_transcribe),
    };
    let client = azure.clone();
    let billed = metrics.audio_seconds_total.with_label_values(&[Operation::Pronunciation.as_str()]);
    let sent = metrics
        .ai_audio_seconds_total
        .with_label_values(&[Operation::Pronunciation.as_str(), Upstream::AzureSpeech.as_str()]);
    let pronounce = layers.stack(
        RecordingDigestLayer,
        Operation::Pronunciation,
        "pronunciation",
        &azure_guard,
        service_fn(move |job: PronunciationJob| {
            let client = client.clone();
            billed.inc_by(job.audio.duration().as_secs_f64());
            sent.inc_by(job.audio.duration().as_secs_f64());
            async move { client.assess(&job).await.map(Served::fresh) }
        }),
    );

    for (upstream, connections) in
        [(Upstream::AzureSpeech, &azure_connections), (Upstream::Gemini, &gemini_connections)]
    {
        let lanes = i64::try_from(connections.lanes()).unwrap_or(i64::MAX);
        metrics.upstream_connections.with_label_values(&[upstream.as_str()]).set(lanes);
    }

    Ok(Upstreams {
        transcribe,
        pronounce,
        analyze,
        cache,
        azure_breaker: azure_guard.breaker,
        gemini_breaker: gemini_guard.breaker,
        azure_target,
        gemini_target,
        azure_connections,
        gemini_connections,
        detached,
        metrics: metrics.clone(),
        analysis_chain,
    })
}

fn breaker_config(settings: &Settings) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: settings.breaker_failure_threshold,
        recovery_timeout: settings.breaker_recovery_timeout,
        half_open_max_probes: settings.breaker_half_open_probes,
    }
}

fn retry_policy(settings: &Settings) -> RetryPolicy {
    RetryPolicy { max_attempts: settings.upstream_max_attempts, ..RetryPolicy::new(settings.upstream_timeout) }
}

/// The cache in the mode `CACHE_MODE` (or Kubernetes detection) asks for.
fn build_cache(settings: &Settings, metrics: &Metrics) -> Result<Cache, redis::RedisError> {
    let (mode, source) = resolve_mode(settings.cache_mode, settings.kubernetes);
    let redis = if mode.uses_redis() {
        Some(RedisLink::new(&settings.redis.cache, settings.redis_timeout, metrics.clone())?)
    } else {
        None
    };
    let config = CacheConfig {
        ttl: Ttls {
            transcription: settings.ttl_transcription,
            pronunciation: settings.ttl_pronunciation,
            analysis: settings.ttl_analysis,
        },
        memory_max_entries: settings.memory_cache_max_entries,
        memory_max_bytes: settings.memory_cache_max_bytes,
        disk_max_bytes: settings.disk_cache_max_bytes,
        ..CacheConfig::new(mode, source, settings.disk_cache_dir.clone())
    };
    tracing::info!(mode = mode.as_str(), source = source.as_str(), "cache mode");
    let mut tiers = vec![Tier::Memory];
    if mode.uses_redis() {
        tiers.push(Tier::Redis);
    }
    if mode.uses_disk() {
        tiers.push(Tier::Disk);
    }
    metrics.initialise_cache_tiers(&tiers);
    Ok(Cache::new(config, redis, metrics.clone()))
}

fn simulator_base(address: SocketAddr) -> Url {
    Url::parse(&format!("http://{address}")).expect("a socket address makes a valid URL")
}

/// The simulator's fault settings from ours.
pub fn simulator_config(settings: &SimulatorSettings) -> SimConfig {
    SimConfig {
        latency_ms: u64::try_from(settings.latency.as_millis()).unwrap_or(u64::MAX),
        rate_limit_rate: settings.rate_limit_rate,
        server_error_rate: settings.server_error_rate,
        hang_rate: settings.hang_rate,
        malformed_rate: settings.malformed_rate,
        retry_after_seconds: 1,
        unavailable_models: settings.unavailable_models.clone(),
        retired_models: settings.retired_models.clone(),
        azure_unavailable: settings.azure_unavailable,
    }
}
