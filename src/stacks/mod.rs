//! The three upstream stacks, assembled once at start-up, each in the one layer order that
//! `layers` writes down.

mod chain;
mod layers;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use serde_json::{Value, json};
use tower::layer::util::Identity;
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};
use url::Url;

use crate::analysis::AnalysisOutcome;
use crate::analysis::analyzer::Analyzer;
use crate::cache::{Answer, Cache};
use crate::config::Settings;
use crate::domain::jobs::{AnalyzeJob, PronunciationJob, TranscribeJob};
use crate::domain::reading::{self, service::Reading};
use crate::domain::served::Served;
use crate::domain::speech::{Pronunciation, Transcription};
use crate::metrics::Metrics;
use crate::metrics::labels::{Operation, Tier};
use crate::middleware::cached_flight::CachedFlightConfig;
use crate::middleware::circuit_breaker::Breaker;
use crate::middleware::detach::Detached;
use crate::middleware::model_health::ModelHealthLayer;
use crate::middleware::rate_limit::Admitted;
use crate::middleware::recording_digest::RecordingDigestLayer;
use crate::middleware::retry::{RetryBudget, RetryLayer};
use crate::redis::RedisLink;
use crate::simulator::Simulator;
use crate::upstream::azure_speech::AzureSpeechClient;
use crate::upstream::connections::{ConnectionSettings, Connections};
use crate::upstream::gemini::GeminiClient;
use crate::upstream::{Upstream, UpstreamError};
use layers::{Guard, Layers};

/// One upstream operation as a type-erased tower service: a job goes in with its request's
/// admission, never without.
/// Its answer is as the cached flight layer serves it ([`Answer`]: ready to send from memory).
pub type Stack<J, R> = BoxCloneSyncService<Admitted<J>, Served<Answer<R>>, UpstreamError>;

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

impl TargetInfo {
    /// `cloud_url` is the cloud endpoint, `None` when the simulator serves the upstream.
    fn new(cloud_url: Option<&Url>) -> Self {
        match cloud_url {
            Some(url) => Self { kind: "cloud", base_url: url.to_string() },
            None => Self { kind: "simulator", base_url: SIMULATOR_BASE.to_string() },
        }
    }
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
    let upstreams = &settings.upstreams;
    let simulator_url = if upstreams.uses_simulator() {
        let address = Simulator::new(upstreams.simulator.config()).spawn().await?;
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
    let simulator_connections = ConnectionSettings { http2_prior_knowledge: true, ..upstreams.connections };
    let gemini_config = upstreams.gemini.config(upstreams.connections, simulator_url.as_ref());
    let gemini_target = TargetInfo::new(upstreams.gemini.cloud_url());
    let gemini = GeminiClient::new(gemini_config.clone());
    let gemini_connections = gemini.connections().clone();
    let analyzer = Analyzer::new(gemini, metrics.clone());

    let azure_config = upstreams.azure.config(upstreams.connections, simulator_url.as_ref());
    let azure_target = TargetInfo::new(upstreams.azure.cloud_url());
    azure_config.validate().map_err(std::io::Error::other)?;
    let azure = AzureSpeechClient::new(azure_config);
    let azure_connections = azure.connections().clone();

    let cache = build_cache(settings, metrics).map_err(std::io::Error::other)?;
    // Waiting on another instance's lease must end before the caller's own deadline could.
    // `MAX_IN_FLIGHT`'s slots are made here, not with the load shedder, because a call whose
    // client has gone holds one too.
    let max_in_flight = settings.access.max_in_flight;
    let slots = (max_in_flight > 0).then(|| Arc::new(Semaphore::new(max_in_flight)));
    let detached = Detached::new(metrics.upstream_calls_detached.clone(), slots);
    let cached_flight = CachedFlightConfig { max_wait: upstreams.timeout, ..CachedFlightConfig::default() };

    let layers = Layers { cache: cache.clone(), cached_flight, detached: detached.clone(), metrics: metrics.clone() };

    // One retry budget for every link of the analysis chain.
    let gemini_budget = RetryBudget::default();
    let gemini_guard = Guard {
        upstream: Upstream::Gemini,
        breaker: Breaker::new(Upstream::Gemini, upstreams.breaker_config(), metrics.clone()),
        retry: RetryLayer::new(upstreams.retry_policy(), gemini_budget.clone(), Upstream::Gemini, metrics.clone()),
    };
    let primary = chain::Primary {
        analyzer,
        gemini: gemini_config,
        breaker: gemini_guard.breaker.clone(),
        budget: gemini_budget,
    };
    let (analyze, analysis_chain) =
        match chain::analysis_chain(settings, &layers, primary, simulator_url.as_ref(), simulator_connections) {
            Ok((chain, info)) => (layers.over_chain(Identity::new(), "analyze", Upstream::Gemini, chain), info),
            Err(primary) => {
                let analyzer = primary.analyzer;
                let retired = ModelHealthLayer::new(
                    Operation::Analyze,
                    upstreams.gemini.model.as_str().into(),
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
        breaker: Breaker::new(Upstream::AzureSpeech, upstreams.breaker_config(), metrics.clone()),
        retry: RetryLayer::new(upstreams.retry_policy(), azure_budget.clone(), Upstream::AzureSpeech, metrics.clone()),
    };
    let client = azure.clone();
    let billed = billing(metrics, Operation::Transcribe);
    let azure_transcribe = service_fn(move |job: TranscribeJob| {
        let client = client.clone();
        // Azure bills by the audio second, each attempt that reaches it.
        billed.count(&job.audio);
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
    // A reading is assessed in pieces (`domain::reading`): each piece's transcription and
    // assessment is one guarded call; the whole reading is the one cache entry and one flight.
    let (client, billed) = (azure.clone(), billing(metrics, Operation::Transcribe));
    let piece_transcribe = layers.guarded(
        Operation::Transcribe,
        &azure_guard,
        service_fn(move |job: TranscribeJob| {
            let client = client.clone();
            billed.count(&job.audio);
            async move { client.transcribe(&job).await.map(Served::fresh) }
        }),
    );
    let (client, billed) = (azure.clone(), billing(metrics, Operation::Pronunciation));
    let piece_assess = layers.guarded(
        Operation::Pronunciation,
        &azure_guard,
        service_fn(move |job: PronunciationJob| {
            let client = client.clone();
            billed.count(&job.audio);
            async move { client.assess(&job).await.map(Served::fresh) }
        }),
    );
    // Another instance's identical reading is waited for as long as a whole reading can take.
    let reading_wait = reading::longest_assessment(
        settings.audio.max_duration,
        settings.upstreams.timeout,
        settings.upstreams.azure.pronunciation_concurrency,
    );
    let reading_layers = Layers {
        cache: cache.clone(),
        cached_flight: CachedFlightConfig { max_wait: reading_wait.max(cached_flight.max_wait), ..cached_flight },
        detached: detached.clone(),
        metrics: metrics.clone(),
    };
    let pronounce = reading_layers.stored(
        RecordingDigestLayer,
        "pronunciation",
        Upstream::AzureSpeech,
        Reading::new(piece_transcribe, piece_assess, settings.upstreams.azure.pronunciation_concurrency),
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

/// Azure bills by the audio second, each attempt that reaches it (pieces of a reading included).
#[derive(Clone)]
struct Billing {
    legacy: prometheus::Counter,
    contract: prometheus::Counter,
}

impl Billing {
    fn count(&self, audio: &crate::audio::Audio) {
        let seconds = audio.duration().as_secs_f64();
        self.legacy.inc_by(seconds);
        self.contract.inc_by(seconds);
    }
}

fn billing(metrics: &Metrics, operation: Operation) -> Billing {
    let labels = [operation.as_str(), operation.upstream().as_str()];
    Billing {
        legacy: metrics.audio_seconds_total.with_label_values(&[operation.as_str()]),
        contract: metrics.ai_audio_seconds_total.with_label_values(&labels),
    }
}

/// The cache in the mode `CACHE_MODE` (or Kubernetes detection) asks for.
fn build_cache(settings: &Settings, metrics: &Metrics) -> Result<Cache, redis::RedisError> {
    let config = settings.cache.config(settings.kubernetes);
    let (mode, source) = (config.mode, config.mode_source);
    let redis = if mode.uses_redis() {
        Some(RedisLink::new(&settings.redis.cache, settings.redis.timeout, metrics.clone())?)
    } else {
        None
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
