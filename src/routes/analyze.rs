//! `POST /api/analyze`.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower::ServiceExt;

use super::envelope::{Meta, Success};
use super::input;
use crate::analysis::Analysis;
use crate::analysis::model::{MadeBy, Provider};
use crate::domain::jobs::AnalyzeJob;
use crate::domain::served::Origin;
use crate::error::AppError;
use crate::metrics::labels::Operation;
use crate::middleware::rate_limit::{Admission, Admitted};
use crate::middleware::request_id;
use crate::state::AppState;
use crate::usage::Spend;

/// The contract's bound on `text`, in characters.
pub const TEXT_MAX_CHARS: usize = 5000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AnalyzeRequest {
    /// The learner's text, 1..5000 characters, not only whitespace.
    // The patterns are explained beside `input::TranscribeJson`.
    #[schema(
        required = true,
        nullable = false,
        value_type = String,
        example = "I go to the store yesterday.",
        min_length = 1,
        max_length = 5000,
        pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff]"
    )]
    text: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    user_id: Option<String>,
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?![\s\S])")]
    session_id: Option<String>,
}

/// Grammar-analyse a learner's text (Gemini, structured output, parsed robustly).
#[utoipa::path(
    post,
    path = "/api/analyze",
    tag = "analysis",
    request_body(content = AnalyzeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The analysis; `meta.parse` says how the model reply was read", body = Success<Analysis>),
    ),
    security((), ("api_key" = []))
)]
pub async fn analyze(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let admission = Admission::of(&request)?;
    let body: AnalyzeRequest = input::json_body(request, input::JSON_BODY_LIMIT).await?;
    let text = input::text_field("text", body.text.as_deref(), TEXT_MAX_CHARS)?;
    input::identifier("user_id", body.user_id.as_deref())?;
    input::identifier("session_id", body.session_id.as_deref())?;
    let job = AnalyzeJob::new(text, &state.settings.upstreams.gemini.model);
    let job = state.upstreams.aim_analysis(job);
    let served = state.upstreams.analyze.clone().oneshot(Admitted::new(admission, job)).await?;
    // Entries cached before chains existed name no maker: they sit under GEMINI_MODEL's key.
    let made_by = served
        .value
        .made_by
        .clone()
        .unwrap_or_else(|| MadeBy { model: state.settings.upstreams.gemini.model.clone(), provider: Provider::Gemini });
    let mut spend = Spend::new(Operation::Analyze, served.cached());
    // Only the request whose own call reached the model spent its tokens.
    if served.origin == Origin::Upstream
        && let Some(tokens) = served.value.tokens.0.clone()
    {
        spend.add_tokens(tokens);
    }
    let meta = Meta {
        cached: served.cached(),
        request_id: request_id::current().unwrap_or_default(),
        parse: Some(served.value.parse),
        model: Some(made_by.model),
        provider: Some(made_by.provider),
    };
    Ok(super::speech::with_spend(Success::new(&served.value, meta).into_response(), spend))
}
