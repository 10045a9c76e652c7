//! The pages a person opens in a browser: `/docs`, Swagger UI over the OpenAPI document.
//!
//! Every file is compiled into the binary and nothing is loaded from elsewhere: clusters and
//! classrooms may have no internet. The routes sit outside `/api/*` (no key, no rate limit:
//! they only hand out files) but inside the HTTP metrics layer like every route, labelled by
//! template (`/docs/{file}`). They are not in the OpenAPI document, which describes the API.

mod asset;
mod docs;

use axum::Router;
use axum::routing::get;

pub use asset::CONTENT_SECURITY_POLICY;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/docs", get(docs::index)).route("/docs/{file}", get(docs::file))
}
