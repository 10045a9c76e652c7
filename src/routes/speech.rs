//! `POST /api/transcribe` and `POST /api/pronunciation`.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::envelope::{Meta, Success};
use super::input::{
    self, AudioInput, AudioSource, PronunciationJson, PronunciationUpload, TranscribeJson, TranscribeUpload,
};
use crate::audio::budget::Reservation;
use crate::audio::{Audio, AudioError, Purpose};
use crate::domain::jobs::{PronunciationJob, TranscribeJob};
use crate::domain::provider::Provider;
use crate::domain::served::{Origin, Served};
use crate::domain::speech::{Pronunciation, Transcription};
use crate::error::AppError;
use crate::metrics::labels::Operation;
use crate::middleware::rate_limit::{Admission, Admitted};
use crate::middleware::request_id;
use crate::state::AppState;
use crate::upstream::error::{Upstream, UpstreamError};
use crate::usage::Spend;

/// Longest `reference_text` the contract accepts.
const REFERENCE_TEXT_MAX_CHARS: usize = 10_000;

/// Transcribe a recording: up to 60 s by Azure Speech short-audio recognition (detailed format),
/// longer ones (up to `AUDIO_MAX_SECONDS`) by Azure fast transcription.
#[utoipa::path(
    post,
    path = "/api/transcribe",
    tag = "speech",
    request_body(content(
        (TranscribeJson = "application/json"),
        (TranscribeUpload = "multipart/form-data")
    ), description = "JSON with `audio_url`, or multipart with an `audio` file part and the same fields as text parts"),
    responses(
        (status = 200, description = "The transcription", body = Success<Transcription>),
    ),
    security((), ("api_key" = []))
)]
pub async fn transcribe(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let admission = Admission::of(&request)?;
    let reservation = reservation(&request)?;
    let input = read_input(&state, request, &reservation).await?;
    let language = input::language(input.fields.language.as_deref(), input::DEFAULT_LANGUAGE)?;
    let audio = obtain_audio(&state, input.source, Purpose::Transcription, reservation, &admission).await?;
    let seconds = audio.duration().as_secs_f64();
    let served =
        state.upstreams.transcribe.clone().oneshot(Admitted::new(admission, TranscribeJob { audio, language })).await?;
    let spend = spend(Operation::Transcribe, &served, seconds);
    let mut meta = meta(served.cached());
    meta.provider = Some(served.value.provider.unwrap_or(Provider::Azure));
    Ok(with_spend(Success::new(&served.value, meta).into_response(), spend))
}

/// Score a recording against the text the learner read, or as free speech without one (Azure
/// pronunciation assessment; past 30 s in pieces cut at pauses, combined into one result).
#[utoipa::path(
    post,
    path = "/api/pronunciation",
    tag = "speech",
    request_body(content(
        (PronunciationJson = "application/json"),
        (PronunciationUpload = "multipart/form-data")
    ), description = "As for /api/transcribe, plus `reference_text` (absent: free speech)"),
    responses(
        (status = 200, description = "The assessment", body = Success<Pronunciation>),
    ),
    security((), ("api_key" = []))
)]
pub async fn pronunciation(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let admission = Admission::of(&request)?;
    let reservation = reservation(&request)?;
    let input = read_input(&state, request, &reservation).await?;
    // Absent: free speech, assessed against its own transcript (`domain::reading`).
    let reference_text = match input.fields.reference_text.as_deref() {
        None => None,
        text => Some(input::text_field("reference_text", text, REFERENCE_TEXT_MAX_CHARS)?.trim().to_string()),
    };
    let language = input::language(input.fields.language.as_deref(), input::DEFAULT_LANGUAGE)?;
    let audio = obtain_audio(&state, input.source, Purpose::Assessment, reservation, &admission).await?;
    let served = state
        .upstreams
        .pronounce
        .clone()
        .oneshot(Admitted::new(admission, PronunciationJob { audio, language, reference_text }))
        .await?;
    // Every call the assessment made: a long reading sends each piece twice (transcribed, then
    // assessed), free speech its recording twice.
    let sent = served.value.sent.0.as_secs_f64();
    let spend = spend(Operation::Pronunciation, &served, sent);
    let meta = meta(served.cached());
    Ok(with_spend(Success::new(&served.value, meta).into_response(), spend))
}

/// The request's share of `AUDIO_BYTES_IN_FLIGHT`, given by the audio budget layer. Without it
/// the route is wired wrongly: fail closed rather than hold recordings nobody counts.
fn reservation(request: &Request) -> Result<Reservation, AppError> {
    request.extensions().get::<Reservation>().cloned().ok_or_else(|| {
        tracing::error!("an audio route was reached without the audio budget layer");
        AppError::Internal
    })
}

async fn read_input(state: &AppState, request: Request, reservation: &Reservation) -> Result<AudioInput, AppError> {
    let audio_limit = state.settings.audio.max_bytes;
    let input = input::audio_input(request, body_limit(audio_limit), audio_limit, reservation).await?;
    input::identifier("user_id", input.fields.user_id.as_deref())?;
    input::identifier("session_id", input.fields.session_id.as_deref())?;
    Ok(input)
}

/// Room for multipart framing and text fields around the largest accepted audio.
pub fn body_limit(audio_limit: usize) -> usize {
    audio_limit.saturating_add(256 * 1024)
}

/// The recording, recognised, measured and made into what Azure takes (off the async workers).
async fn obtain_audio(
    state: &AppState,
    source: AudioSource,
    purpose: Purpose,
    reservation: Reservation,
    admission: &Admission,
) -> Result<Audio, AppError> {
    // An outbound fetch and decoding cost: not for a request the rate limit refuses.
    if !admission.admitted().await {
        return Err(UpstreamError::NotAdmitted { upstream: Upstream::AzureSpeech }.into());
    }
    let bytes = match source {
        AudioSource::Upload(bytes) => bytes,
        AudioSource::Url(url) => state.fetcher.fetch_within(&url, &reservation).await?,
    };
    if bytes.is_empty() {
        return Err(AudioError::Missing("the audio is empty".into()).into());
    }
    let audio = state.audio.prepare(bytes, purpose, reservation.clone()).await?;
    Ok(audio.held_in(reservation))
}

/// What the request cost: the audio it sent, when its own call reached Azure (a cached or shared
/// answer sent nothing for it).
fn spend<T>(operation: Operation, served: &Served<T>, seconds: f64) -> Spend {
    let mut spend = Spend::new(operation, served.cached());
    if served.origin == Origin::Upstream {
        spend.add_audio(seconds);
    }
    spend
}

/// For the usage layer, which records it once the answer is known to be a 2xx.
pub(super) fn with_spend(mut response: Response, spend: Spend) -> Response {
    response.extensions_mut().insert(spend);
    response
}

fn meta(cached: bool) -> Meta {
    Meta { cached, request_id: request_id::current().unwrap_or_default(), parse: None, model: None, provider: None }
}
