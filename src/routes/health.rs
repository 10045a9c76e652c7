//! Operations endpoints: liveness, readiness, cache and upstream health, metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::AppState;

/// Liveness: the process answers. Nothing else is checked, so a Redis or upstream outage never
/// gets pods restarted.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process answers", body = Object)))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 503 from the moment shutdown begins. Redis being down is not unready: the service
/// still answers from its other tiers and upstreams.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses(
    (status = 200, description = "Serving", body = Object),
    (status = 503, description = "Shutting down", body = Object)
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting_down"}))).into_response()
    }
}

#[utoipa::path(get, path = "/health/cache", tag = "operations", responses((status = 200, description = "Cache mode and per-tier state", body = Object)))]
pub async fn cache(State(state): State<AppState>) -> Json<Value> {
    let mut health = state.upstreams.cache_health().await;
    if let (Some(link), Some(object)) = (&state.limits_redis, health.as_object_mut()) {
        object.insert("limits_redis".to_string(), link.health().await);
    }
    Json(health)
}

#[utoipa::path(get, path = "/health/upstreams", tag = "operations", responses((status = 200, description = "Each upstream's target and breaker state", body = Object)))]
pub async fn upstreams(State(state): State<AppState>) -> Json<Value> {
    Json(state.upstreams.health())
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.upstreams.observe();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}
