//! The three upstream stacks, assembled once at start-up.
//!
//! Each upstream operation is a tower service built from small layers, outermost first:
//!
//! 1. single-flight: identical concurrent jobs share one call (in-process, and across instances
//!    through a Redis lease);
//! 2. cache: a hit answers without going further (so cached results are served even while the
//!    upstream's breaker is open);
//! 3. AI metrics: duration and errors of the logical operation;
//! 4. circuit breaker: fails fast while the upstream is known to be down;
//! 5. retry: transient failures again, with backoff, all inside `UPSTREAM_TIMEOUT_SECONDS`;
//! 6. the client: one HTTP exchange with the upstream.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, service_fn};
use url::Url;

use crate::analysis::AnalysisOutcome;
use crate::analysis::analyzer::Analyzer;
use crate::config::{AzureTarget, GeminiTarget, Settings, SimulatorSettings};
use crate::jobs::{AnalyzeJob, PronunciationJob, TranscribeJob};
use crate::metrics::Metrics;
use crate::middleware::ai_metrics::AiMetricsLayer;
use crate::served::Served;
use crate::simulator::{SimConfig, Simulator};
use crate::speech::{Pronunciation, Transcription};
use crate::upstream::azure_speech::{AzureSpeechClient, AzureSpeechConfig};
use crate::upstream::gemini::{GeminiClient, GeminiConfig};
use crate::upstream::UpstreamError;

/// One upstream operation as a type-erased tower service.
pub type Stack<J, R> = BoxCloneSyncService<J, Served<R>, UpstreamError>;

pub struct Upstreams {
    pub transcribe: Stack<TranscribeJob, Transcription>,
    pub pronounce: Stack<PronunciationJob, Pronunciation>,
    pub analyze: Stack<AnalyzeJob, AnalysisOutcome>,
    azure_target: TargetInfo,
    gemini_target: TargetInfo,
}

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
            },
            "gemini": {
                "target": self.gemini_target.kind,
                "base_url": self.gemini_target.base_url,
            },
        })
    }

    pub async fn cache_health(&self) -> Value {
        json!({})
    }
}

/// Build the stacks; starts the built-in simulator on loopback when an upstream has no key.
pub async fn build(settings: &Settings, metrics: &Metrics) -> std::io::Result<Upstreams> {
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

    let (gemini_config, gemini_target) = match (&settings.gemini, &simulator_url) {
        (GeminiTarget::Cloud { base_url, key }, _) => (
            GeminiConfig {
                base_url: base_url.clone(),
                api_key: key.expose().to_string(),
                model: settings.gemini_model.clone(),
                api_version: GeminiConfig::DEFAULT_API_VERSION.to_string(),
            },
            TargetInfo { kind: "cloud", base_url: base_url.to_string() },
        ),
        (GeminiTarget::Simulator, Some(url)) => (
            GeminiConfig {
                base_url: url.clone(),
                api_key: "simulator".to_string(),
                model: settings.gemini_model.clone(),
                api_version: GeminiConfig::DEFAULT_API_VERSION.to_string(),
            },
            TargetInfo { kind: "simulator", base_url: url.to_string() },
        ),
        (GeminiTarget::Simulator, None) => unreachable!("uses_simulator() is true whenever a target is the simulator"),
    };
    let analyzer = Analyzer::new(GeminiClient::new(gemini_config), metrics.clone());

    let (azure_config, azure_target) = match (&settings.azure, &simulator_url) {
        (AzureTarget::Cloud { base_url, key }, _) => (
            AzureSpeechConfig::with_endpoint(base_url.clone(), key.expose().to_string()),
            TargetInfo { kind: "cloud", base_url: base_url.to_string() },
        ),
        (AzureTarget::Simulator, Some(url)) => (
            AzureSpeechConfig::with_endpoint(url.clone(), "simulator".to_string()),
            TargetInfo { kind: "simulator", base_url: url.to_string() },
        ),
        (AzureTarget::Simulator, None) => unreachable!("uses_simulator() is true whenever a target is the simulator"),
    };
    azure_config.validate().map_err(std::io::Error::other)?;
    let azure = AzureSpeechClient::new(azure_config);

    let analyze = ServiceBuilder::new().layer(AiMetricsLayer::new("analyze", "gemini", metrics.clone())).service(
        service_fn(move |job: AnalyzeJob| {
            let analyzer = analyzer.clone();
            async move { analyzer.analyze(&job).await.map(Served::fresh) }
        }),
    );

    let client = azure.clone();
    let transcribe = ServiceBuilder::new().layer(AiMetricsLayer::new("transcribe", "azure", metrics.clone())).service(
        service_fn(move |job: TranscribeJob| {
            let client = client.clone();
            async move { client.transcribe(&job).await.map(Served::fresh) }
        }),
    );
    let client = azure.clone();
    let pronounce = ServiceBuilder::new().layer(AiMetricsLayer::new("pronunciation", "azure", metrics.clone())).service(
        service_fn(move |job: PronunciationJob| {
            let client = client.clone();
            async move { client.assess(&job).await.map(Served::fresh) }
        }),
    );

    Ok(Upstreams {
        transcribe: BoxCloneSyncService::new(transcribe),
        pronounce: BoxCloneSyncService::new(pronounce),
        analyze: BoxCloneSyncService::new(analyze),
        azure_target,
        gemini_target,
    })
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
    }
}
