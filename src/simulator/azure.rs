//! Simulated azure endpoints (to be filled in).

use axum::Router;

use super::Simulator;

pub fn router(_simulator: Simulator) -> Router {
    Router::new()
}
