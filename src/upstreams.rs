//! The three upstream stacks. Placeholder until the clients and layers land.

use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;

use crate::analysis::AnalysisOutcome;
use crate::jobs::{AnalyzeJob, PronunciationJob, TranscribeJob};
use crate::served::Served;
use crate::speech::{Pronunciation, Transcription};
use crate::upstream::UpstreamError;

/// One upstream operation as a type-erased tower service.
pub type Stack<J, R> = BoxCloneSyncService<J, Served<R>, UpstreamError>;

pub struct Upstreams {
    pub transcribe: Stack<TranscribeJob, Transcription>,
    pub pronounce: Stack<PronunciationJob, Pronunciation>,
    pub analyze: Stack<AnalyzeJob, AnalysisOutcome>,
}

impl Upstreams {
    pub fn health(&self) -> Value {
        json!({})
    }

    pub async fn cache_health(&self) -> Value {
        json!({})
    }
}

/// Placeholder: every call fails as unreachable.
pub async fn build(
    _settings: &crate::config::Settings,
    _metrics: &crate::metrics::Metrics,
) -> std::io::Result<Upstreams> {
    fn failing<J: Send + 'static, R: Send + 'static>() -> Stack<J, R> {
        BoxCloneSyncService::new(tower::service_fn(|_job: J| async {
            Err::<Served<R>, _>(UpstreamError::Unreachable {
                upstream: crate::upstream::Upstream::Gemini,
                message: "not wired".into(),
            })
        }))
    }
    Ok(Upstreams { transcribe: failing(), pronounce: failing(), analyze: failing() })
}

/// The simulator's fault settings from ours.
pub fn simulator_config(settings: &crate::config::SimulatorSettings) -> crate::simulator::SimConfig {
    crate::simulator::SimConfig {
        latency_ms: u64::try_from(settings.latency.as_millis()).unwrap_or(u64::MAX),
        rate_limit_rate: settings.rate_limit_rate,
        server_error_rate: settings.server_error_rate,
        hang_rate: settings.hang_rate,
        malformed_rate: settings.malformed_rate,
        retry_after_seconds: 1,
    }
}
