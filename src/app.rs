//! Building the service from settings, and running it until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::audio::budget::AudioBudget;
use crate::audio::fetch::{AudioFetcher, FetchPolicy};
use crate::audio::{Policy as AudioPolicy, Preparer};
use crate::config::Settings;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::middleware::audio_budget::AudioBudgetLayer;
use crate::middleware::auth::{ApiKeys, AuthLayer};
use crate::middleware::body_deadline::{DeadlineBody, MinRate};
use crate::middleware::http_metrics::HttpMetricsLayer;
use crate::middleware::rate_limit::{RateLimitConfig, RateLimitLayer, RateLimiter};
use crate::middleware::request_id;
use crate::readiness::Readiness;
use crate::redis::{LinkOptions, RedisLink};
use crate::routes::{analyze, health, speech, usage};
use crate::server::{self, ConnectionMetrics, ServerOptions};
use crate::state::{AppState, Inner};

/// The HTTP surface. Layer order, outermost first:
/// 1. request id: everything inside, error bodies included, can name the request;
/// 2. HTTP metrics + access log: sees the final status of every request, panics included;
/// 3. panic catcher: a bug answers 500 in the envelope instead of dropping the connection.
///
/// Then, on `/api/*` only, auth before the rate limit so that unauthenticated floods cannot
/// spend a real user's budget. The pages (`web`) get neither: they are static files, and the
/// calls a page makes go to `/api/*` with the user's key like any other client's.
pub fn router(state: AppState, api_layers: ApiLayers) -> Router {
    let audio_body_limit = speech::body_limit(state.settings.audio_max_bytes);
    let deadline = state.settings.request_body_deadline;
    let min_rate = MinRate::per_second(state.settings.request_body_min_rate);
    // Inside the route layers below: a request refused by auth or the rate limit never takes a
    // share of the recordings' memory.
    let budget = api_layers.audio_budget;
    let api = Router::new()
        .route("/api/transcribe", post(speech::transcribe).layer(budget.clone()))
        .route("/api/pronunciation", post(speech::pronunciation).layer(budget))
        .route("/api/analyze", post(analyze::analyze))
        .route("/api/usage", get(usage::usage))
        // Route layers run only for matched routes, so a 404 is never rate limited or refused.
        // One stack rather than one `route_layer` each: axum boxes every layer's future
        // separately, and these futures live as long as the request.
        .route_layer(
            ServiceBuilder::new()
                .layer(AuthLayer::new(api_layers.api_keys))
                // Shedding sits before the rate limit's Redis round trip: an overloaded instance
                // should spend as little as possible on a request it is about to refuse.
                .option_layer(api_layers.max_in_flight.map(shed_above))
                .layer(api_layers.rate_limit)
                // Inside the rate limit: a refused request is neither counted nor checked
                // against its budget, and the admission it gives carries the budget's allowance.
                .layer(api_layers.usage),
        )
        .layer(
            ServiceBuilder::new()
                // A client that stalls mid-body, or drips it, must not hold a connection, a task
                // and a MAX_IN_FLIGHT slot: a bound on each pause, on the whole, and a pace.
                .layer(RequestBodyTimeoutLayer::new(state.settings.request_body_timeout))
                .layer(MapRequestBodyLayer::new(move |body| {
                    axum::body::Body::new(DeadlineBody::with_min_rate(body, deadline, min_rate))
                }))
                // Multipart reads go through axum's limit; JSON bodies are bounded in `routes::input`.
                .layer(DefaultBodyLimit::max(audio_body_limit)),
        );
    let ops = Router::new()
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/cache", get(health::cache))
        .route("/health/upstreams", get(health::upstreams))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(crate::openapi::serve));
    let metrics = state.metrics.clone();
    let quote = state.settings.log_format == crate::config::LogFormat::Pretty;
    api.merge(ops)
        .merge(crate::web::routes(state.settings.playground_enabled))
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(request_id::layer))
                // Every answer, errors and pages included: a browser must never guess a type.
                .layer(SetResponseHeaderLayer::if_not_present(
                    http::header::X_CONTENT_TYPE_OPTIONS,
                    http::HeaderValue::from_static("nosniff"),
                ))
                .layer(HttpMetricsLayer::new(metrics, quote))
                .layer(CatchPanicLayer::custom(|_| AppError::Internal.into_response())),
        )
        .with_state(state)
}

/// Refuse at once (503 `overloaded`, `Retry-After`) instead of queueing once `limit` `/api/*`
/// requests are in flight: memory per held request is bounded by configuration, not traffic.
/// The semaphore is global because axum clones route services per request; a per-clone
/// `ConcurrencyLimit` would not limit anything.
fn shed_above(slots: Arc<tokio::sync::Semaphore>) -> ShedLayer {
    fn overloaded(_: tower::BoxError) -> std::future::Ready<AppError> {
        std::future::ready(AppError::Overloaded)
    }
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded as OverloadedHandler))
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(slots))
}

type OverloadedHandler = fn(tower::BoxError) -> std::future::Ready<AppError>;
type ShedLayer = ServiceBuilder<
    Stack<
        tower::limit::GlobalConcurrencyLimitLayer,
        Stack<tower::load_shed::LoadShedLayer, Stack<HandleErrorLayer<OverloadedHandler, ()>, Identity>>,
    >,
>;

/// The layers only `/api/*` gets.
pub struct ApiLayers {
    pub api_keys: ApiKeys,
    /// `MAX_IN_FLIGHT`'s slots, shared with the upstream calls whose client has gone
    /// (`middleware::detach`); `None` when `MAX_IN_FLIGHT=0`.
    pub max_in_flight: Option<Arc<tokio::sync::Semaphore>>,
    /// Without a limiter when both `RATE_LIMIT_PER_MINUTE` and `RATE_LIMIT_PER_KEY_PER_MINUTE`
    /// are 0, but never absent: it gives each request the admission its upstream calls need.
    pub rate_limit: RateLimitLayer,
    /// The audio routes' bound on recordings' bytes held (`AUDIO_BYTES_IN_FLIGHT`).
    pub audio_budget: AudioBudgetLayer,
    /// Counts each answered request's usage and holds the daily budgets.
    pub usage: crate::usage::UsageLayer,
}

/// A built, bound, not yet running service.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("cannot start the built-in simulator: {0}")]
    Simulator(std::io::Error),
    #[error("cannot use the rate limits' Redis: {0}")]
    Redis(redis::RedisError),
}

impl App {
    /// Bind `BIND_ADDRESS:PORT` and build everything.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let address = SocketAddr::new(settings.bind_address, settings.port);
        let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Bind { address, source })?;
        Self::build_with_listener(settings, listener).await
    }

    /// Build on an already-bound listener (tests bind port 0).
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let metrics = Metrics::new();
        let upstreams = crate::stacks::build(&settings, &metrics).await.map_err(StartupError::Simulator)?;
        let fetcher = AudioFetcher::new(FetchPolicy {
            max_bytes: settings.audio_max_bytes,
            allow_private: settings.audio_fetch_allow_private,
            timeout: settings.audio_fetch_timeout,
            max_redirects: 3,
            allowed_addresses: Vec::new(),
        });
        let api_keys = ApiKeys::new(settings.api_keys.clone());
        // Shared by every instance through Redis: the limits' own store when one is set (cache
        // eviction cannot touch it), else the cache's Redis in Redis modes; otherwise local.
        let limits_redis = match &settings.redis.limits {
            Some(target) => {
                let options = LinkOptions { service: "redis_limits", ..LinkOptions::new(settings.redis_timeout) };
                Some(RedisLink::with_options(target, options, metrics.clone()).map_err(StartupError::Redis)?)
            }
            None => None,
        };
        let redis = limits_redis.clone().or_else(|| upstreams.cache().redis().cloned());
        let limiters: Vec<RateLimiter> = [
            (settings.rate_limit_per_minute, RateLimitConfig::new(settings.rate_limit_per_minute, api_keys.enabled())),
            (
                settings.rate_limit_per_key_per_minute,
                RateLimitConfig::ceiling(settings.rate_limit_per_key_per_minute, api_keys.enabled()),
            ),
        ]
        .into_iter()
        .filter(|(per_minute, _)| *per_minute > 0)
        .map(|(_, config)| RateLimiter::new(config, redis.clone(), metrics.clone()))
        .collect();
        // Always on, with no limiter when none is configured: it is what gives every request the
        // admission its upstream calls need (a route without it is refused).
        let rate_limit = RateLimitLayer::all(limiters);
        let max_in_flight = upstreams.detached().slots();
        let audio_budget = AudioBudgetLayer::new(AudioBudget::new(
            settings.audio_bytes_in_flight,
            metrics.audio_bytes_reserved.clone(),
            settings.audio_bytes_wait,
        ));
        // Usage lives where the limits do: shared by every instance, out of the cache's eviction
        // when the limits have their own store.
        let usage = crate::usage::Usage::new(settings.usage.clone(), redis.clone(), metrics.clone());
        for kind in ["input", "output", "thinking"] {
            let labels = [crate::upstream::Upstream::Gemini.as_str(), settings.gemini_model.as_str(), kind];
            let _ = metrics.ai_tokens_total.with_label_values(&labels);
        }
        let usage_layer = crate::usage::UsageLayer::new(usage.clone(), api_keys.enabled());
        let api_layers = ApiLayers { api_keys, max_in_flight, rate_limit, audio_budget, usage: usage_layer };
        if !api_layers.api_keys.enabled() {
            tracing::warn!("API_KEYS is empty: /api/* accepts requests without X-API-Key");
        }
        let audio = Preparer::new(
            settings.audio_workers,
            AudioPolicy { max_duration: settings.audio_max_duration, send: settings.audio_send_format },
            metrics.clone(),
        )
        .with_queue_wait(settings.audio_queue_wait);
        let state = AppState::new(Inner {
            settings,
            metrics,
            readiness: Readiness::new(),
            upstreams,
            fetcher,
            audio,
            limits_redis,
            usage,
        });
        let router = router(state.clone(), api_layers);
        Ok(Self { listener, router, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` completes, then: readiness 503 at once, keep serving for
    /// `SHUTDOWN_DELAY_SECONDS` (default 0) while load balancers notice, stop accepting, let
    /// in-flight requests finish for up to `SHUTDOWN_GRACE_SECONDS`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self { listener, router, state } = self;
        let grace = state.settings.shutdown_grace;
        let delay = state.settings.shutdown_delay;
        let started = Arc::new(tokio::sync::Notify::new());
        let readiness = state.readiness.clone();
        let metrics = state.metrics.clone();
        let signal_started = started.clone();
        let options = ServerOptions {
            header_read_timeout: state.settings.header_read_timeout,
            max_connections: state.settings.max_connections,
            metrics: Some(ConnectionMetrics {
                open: metrics.http_connections_open.clone(),
                refused: metrics.http_connections_refused_total.clone(),
            }),
            ..ServerOptions::default()
        };
        let server = server::serve(listener, router, options, async move {
            shutdown.await;
            readiness.shutting_down();
            tracing::info!(
                delay_seconds = delay.as_secs(),
                grace_seconds = grace.as_secs(),
                "shutting down: readiness 503"
            );
            tokio::time::sleep(delay).await;
            tracing::info!("listener closed; draining in-flight requests");
            signal_started.notify_one();
        });
        let detached = state.upstreams.detached().clone();
        let cache = state.upstreams.cache().clone();
        let usage = state.usage.clone();
        tokio::select! {
            // Upstream calls whose clients left are finished too: their answers get cached.
            result = async move {
                let result = server.await;
                detached.drain().await;
                // Every answered request's usage written (or one last try, when Redis is away).
                usage.close().await;
                // Their answers, and everything else queued for the disk tier, written.
                cache.close().await;
                result
            } => {
                tracing::info!("all requests finished; bye");
                result
            }
            () = grace_expired(started, grace) => {
                let in_flight = metrics.http_requests_in_flight.get();
                let detached = metrics.upstream_calls_detached.get();
                if detached > 0 {
                    tracing::warn!(detached, "shutdown grace period over; exiting with upstream calls still running");
                }
                if in_flight > 0 {
                    tracing::warn!(in_flight, "shutdown grace period over; exiting with requests still in flight");
                } else {
                    tracing::warn!(
                        connections = metrics.http_connections_open.get(),
                        "shutdown grace period over; exiting with connections open, no request in flight"
                    );
                }
                Ok(())
            }
        }
    }
}

async fn grace_expired(started: Arc<tokio::sync::Notify>, grace: Duration) {
    started.notified().await;
    tokio::time::sleep(grace).await;
}
