//! The pages a person opens in a browser: `/docs`, Swagger UI over the OpenAPI document, and
//! `/playground`, to record, send and see results (unless `PLAYGROUND_ENABLED` turns it off:
//! then its paths are unknown, a 404 like any other).
//!
//! Every file is compiled into the binary and nothing is loaded from elsewhere: clusters and
//! classrooms may have no internet. The routes sit outside `/api/*` (no key, no rate limit:
//! they only hand out files) but inside the HTTP metrics layer like every route, labelled by
//! template (`/docs/{file}`). They are not in the OpenAPI document, which describes the API.
//! A typed trailing slash (`/docs/`) is sent on to the page: the pages' files are named from
//! the root, so either address would work, but one address per page keeps links and history tidy.

mod asset;
mod docs;
mod playground;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

pub use asset::CONTENT_SECURITY_POLICY;

use crate::state::AppState;

pub fn routes(playground: bool) -> Router<AppState> {
    let docs = Router::new()
        .route("/docs", get(docs::index))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route("/docs/{file}", get(docs::file));
    if !playground {
        return docs;
    }
    docs.route("/playground", get(playground::index))
        .route("/playground/", get(|| async { Redirect::permanent("/playground") }))
        .route("/playground/{file}", get(playground::file))
}
