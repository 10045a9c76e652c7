//! The analysis chain's links, from the settings: `GEMINI_MODEL`, each `GEMINI_FALLBACK_MODELS`
//! entry (same Gemini endpoint and key), then the OpenAI-compatible model.
//!
//! A link that has a next one answers within `ANALYSIS_FALLBACK_AFTER_SECONDS` in one attempt
//! (a failure hands over at once; the next link is the retry), the last one gets the usual
//! attempts; the chain as a whole stays inside `UPSTREAM_TIMEOUT_SECONDS`. Every link has its
//! own breaker and metrics; the retry budget is the chain's, shared, so an outage of every link
//! cannot multiply the load.

use std::sync::Arc;

use serde_json::{Value, json};
use tower::service_fn;
use url::Url;

use super::layers::{Guard, Layers};
use crate::analysis::AnalysisOutcome;
use crate::analysis::analyzer::Analyzer;
use crate::analysis::compat::CompatAnalyzer;
use crate::analysis::model::{MadeBy, ParseQuality, Provider};
use crate::config::{
    GEMINI_FALLBACK_MODELS, GEMINI_MODEL, OPENAI_MODEL, OpenAiTarget, Settings, TRANSCRIBE_FALLBACK_MODEL,
};
use crate::domain::jobs::{AnalyzeJob, TranscribeJob};
use crate::domain::served::Served;
use crate::domain::speech::Transcription;
use crate::metrics::labels::Operation;
use crate::middleware::circuit_breaker::Breaker;
use crate::middleware::fallback::{FallbackChain, Link, LinkInfo};
use crate::middleware::model_health::ModelHealthLayer;
use crate::middleware::retry::{RetryBudget, RetryLayer, RetryPolicy};
use crate::upstream::Upstream;
use crate::upstream::connections::ConnectionSettings;
use crate::upstream::gemini::{GeminiClient, GeminiConfig};
use crate::upstream::openai_compat::{OpenAiCompatClient, OpenAiCompatConfig, Transcriber};

/// What the rest of the service needs to know of the chain.
#[derive(Default)]
pub(super) struct AnalysisChain {
    /// Key models of the links after the first, in order (`AnalyzeJob::fallbacks`).
    pub fallbacks: Arc<[String]>,
    /// Each later link's breaker, for `/health/upstreams` and the scrape.
    pub breakers: Vec<(LinkInfo, Breaker)>,
}

impl AnalysisChain {
    pub fn health(&self) -> Value {
        Value::Array(
            self.breakers
                .iter()
                .map(|(info, breaker)| {
                    json!({
                        "model": &*info.model,
                        "provider": provider(info.provider).as_str(),
                        "service": breaker.label(),
                        "state": breaker.state().as_str(),
                    })
                })
                .collect(),
        )
    }
}

/// What the primary link is made of, built by `stacks::build` as before.
pub(super) struct Primary {
    pub analyzer: Analyzer,
    pub gemini: GeminiConfig,
    pub breaker: Breaker,
    pub budget: RetryBudget,
}

fn provider(upstream: Upstream) -> Provider {
    match upstream {
        Upstream::Gemini => Provider::Gemini,
        Upstream::OpenAiCompatible => Provider::OpenaiCompatible,
        Upstream::AzureSpeech => Provider::Azure,
    }
}

/// The chain, or `Err(primary)` when nothing follows `GEMINI_MODEL` (the stack is then today's).
pub(super) fn analysis_chain(
    settings: &Settings,
    layers: &Layers,
    primary: Primary,
    simulator_url: Option<&Url>,
    simulator_connections: ConnectionSettings,
) -> Result<(FallbackChain<AnalyzeJob, AnalysisOutcome>, AnalysisChain), Box<Primary>> {
    let fallbacks = &settings.upstreams.fallbacks;
    if !fallbacks.has_analysis_fallback() {
        return Err(Box::new(primary));
    }
    let metrics = &layers.metrics;
    let mut links: Vec<Link<AnalyzeJob, AnalysisOutcome>> = Vec::new();
    let mut breakers = Vec::new();
    let count = 1 + fallbacks.gemini_models.len() + usize::from(fallbacks.openai.is_some());
    // A link with a next one: one attempt within the hand-over deadline. The last: as today.
    let policy = |index: usize| {
        if index + 1 < count {
            RetryPolicy { max_attempts: 1, ..RetryPolicy::new(fallbacks.after) }
        } else {
            settings.upstreams.retry_policy()
        }
    };
    let guard = |index: usize, upstream: Upstream, breaker: Breaker| Guard {
        upstream,
        breaker,
        retry: RetryLayer::new(policy(index), primary.budget.clone(), upstream, metrics.clone()),
    };
    let gemini_link = |index: usize, model: &str, variable: &'static str, analyzer: Analyzer, breaker: Breaker| {
        let info = LinkInfo { model: model.into(), provider: Upstream::Gemini, variable };
        let health = ModelHealthLayer::new(
            Operation::Analyze,
            info.model.clone(),
            variable,
            breaker.label().into(),
            metrics.clone(),
        );
        let service = layers.link(
            Operation::Analyze,
            Upstream::Gemini,
            &guard(index, Upstream::Gemini, breaker),
            Some(health),
            service_fn(move |job: AnalyzeJob| {
                let analyzer = analyzer.clone();
                async move { analyzer.analyze(&job).await.map(Served::fresh) }
            }),
        );
        Link { info, service }
    };

    links.push(gemini_link(0, &settings.upstreams.gemini.model, GEMINI_MODEL, primary.analyzer, primary.breaker));
    for (offset, model) in fallbacks.gemini_models.iter().enumerate() {
        let client = GeminiClient::new(GeminiConfig { model: model.clone(), ..primary.gemini.clone() });
        let label = format!("gemini:{model}");
        let breaker = Breaker::labelled(Upstream::Gemini, &label, settings.upstreams.breaker_config(), metrics.clone());
        let link = gemini_link(
            offset + 1,
            model,
            GEMINI_FALLBACK_MODELS,
            Analyzer::new(client, metrics.clone()),
            breaker.clone(),
        );
        breakers.push((link.info.clone(), breaker));
        links.push(link);
    }
    if let Some(openai) = &fallbacks.openai {
        let (base_url, api_key, connections) = match (&openai.target, simulator_url) {
            (OpenAiTarget::Remote { base_url, key }, _) => {
                (base_url.clone(), key.as_ref().map(|key| key.expose().to_string()), settings.upstreams.connections)
            }
            (OpenAiTarget::Simulator, Some(url)) => {
                (url.join("v1").expect("a path joins a base URL"), None, simulator_connections)
            }
            (OpenAiTarget::Simulator, None) => unreachable!("the OpenAI link is simulated only when Gemini is"),
        };
        let client = OpenAiCompatClient::new(OpenAiCompatConfig { base_url, api_key, connections });
        let analyzer = CompatAnalyzer::new(client, &openai.model, metrics.clone());
        let upstream = Upstream::OpenAiCompatible;
        let breaker =
            Breaker::labelled(upstream, upstream.as_str(), settings.upstreams.breaker_config(), metrics.clone());
        let info = LinkInfo { model: openai.model.as_str().into(), provider: upstream, variable: OPENAI_MODEL };
        let health = ModelHealthLayer::new(
            Operation::Analyze,
            info.model.clone(),
            OPENAI_MODEL,
            upstream.as_str().into(),
            metrics.clone(),
        );
        let service = layers.link(
            Operation::Analyze,
            upstream,
            &guard(count - 1, upstream, breaker.clone()),
            Some(health),
            service_fn(move |job: AnalyzeJob| {
                let analyzer = analyzer.clone();
                async move { analyzer.analyze(&job).await.map(Served::fresh) }
            }),
        );
        breakers.push((info.clone(), breaker));
        links.push(Link { info, service });
    }

    let key_model = |info: &LinkInfo| {
        MadeBy { model: info.model.to_string(), provider: provider(info.provider) }.key_model().into_owned()
    };
    let fallback_keys: Arc<[String]> = links.iter().skip(1).map(|link| key_model(&link.info)).collect();
    let chain = FallbackChain::new(
        Operation::Analyze,
        links,
        settings.upstreams.timeout,
        move |job: &AnalyzeJob, info: &LinkInfo| AnalyzeJob {
            text: job.text.clone(),
            model: key_model(info),
            prompt_version: job.prompt_version,
            fallbacks: Arc::default(),
        },
        |outcome: &AnalysisOutcome| outcome.parse != ParseQuality::Fallback,
        metrics.clone(),
    );
    tracing::info!(
        links = ?chain.links().map(|info| format!("{}:{}", provider(info.provider).as_str(), info.model)).collect::<Vec<_>>(),
        fallback_after_seconds = fallbacks.after.as_secs(),
        "analysis chain"
    );
    Ok((chain, AnalysisChain { fallbacks: fallback_keys, breakers }))
}

/// `/api/transcribe`'s chain when `TRANSCRIBE_FALLBACK_BASE_URL` is set: Azure (its breaker and
/// retry budget still shared with pronunciation, one attempt within half the deadline, so the
/// fallback gets the other half), then the OpenAI-compatible transcription.
pub(super) fn transcription_chain<S>(
    settings: &Settings,
    layers: &Layers,
    (azure_breaker, azure_budget): (&Breaker, &RetryBudget),
    azure: S,
    simulator_url: Option<&Url>,
    simulator_connections: ConnectionSettings,
) -> Option<FallbackChain<TranscribeJob, Transcription>>
where
    S: tower::Service<TranscribeJob, Response = Served<Transcription>, Error = crate::upstream::UpstreamError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let fallback = settings.upstreams.fallbacks.transcribe.as_ref()?;
    let metrics = &layers.metrics;
    let azure_guard = Guard {
        upstream: Upstream::AzureSpeech,
        breaker: azure_breaker.clone(),
        retry: RetryLayer::new(
            RetryPolicy { max_attempts: 1, ..RetryPolicy::new(settings.upstreams.timeout / 2) },
            azure_budget.clone(),
            Upstream::AzureSpeech,
            metrics.clone(),
        ),
    };
    let azure_link = Link {
        info: LinkInfo { model: "azure".into(), provider: Upstream::AzureSpeech, variable: "AZURE_SPEECH_KEY" },
        service: layers.link(Operation::Transcribe, Upstream::AzureSpeech, &azure_guard, None, azure),
    };

    let (base_url, api_key, connections) = match (&fallback.target, simulator_url) {
        (OpenAiTarget::Remote { base_url, key }, _) => {
            (base_url.clone(), key.as_ref().map(|key| key.expose().to_string()), settings.upstreams.connections)
        }
        (OpenAiTarget::Simulator, Some(url)) => {
            (url.join("v1").expect("a path joins a base URL"), None, simulator_connections)
        }
        (OpenAiTarget::Simulator, None) => unreachable!("the transcription fallback is simulated only when Azure is"),
    };
    let transcriber = Transcriber::new(
        OpenAiCompatClient::new(OpenAiCompatConfig { base_url, api_key, connections }),
        &fallback.model,
    );
    let upstream = Upstream::OpenAiCompatible;
    let label = "openai_compatible_transcription";
    let breaker = Breaker::labelled(upstream, label, settings.upstreams.breaker_config(), metrics.clone());
    let guard = Guard {
        upstream,
        breaker,
        retry: RetryLayer::new(settings.upstreams.retry_policy(), azure_budget.clone(), upstream, metrics.clone()),
    };
    let info =
        LinkInfo { model: fallback.model.as_str().into(), provider: upstream, variable: TRANSCRIBE_FALLBACK_MODEL };
    let health = ModelHealthLayer::new(
        Operation::Transcribe,
        info.model.clone(),
        TRANSCRIBE_FALLBACK_MODEL,
        label.into(),
        metrics.clone(),
    );
    let service = layers.link(
        Operation::Transcribe,
        upstream,
        &guard,
        Some(health),
        service_fn(move |job: TranscribeJob| {
            let transcriber = transcriber.clone();
            async move { transcriber.transcribe(&job).await.map(Served::fresh) }
        }),
    );
    tracing::info!(model = %fallback.model, "transcription fallback");
    Some(FallbackChain::new(
        Operation::Transcribe,
        vec![azure_link, Link { info, service }],
        settings.upstreams.timeout,
        |job: &TranscribeJob, _: &LinkInfo| job.clone(),
        |_: &Transcription| true,
        metrics.clone(),
    ))
}
