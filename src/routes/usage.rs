//! `GET /api/usage`: a user's counts per UTC day and their estimated cost.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{Extensions, HeaderMap, HeaderValue};
use serde::Serialize;

use super::envelope::{Meta, Success};
use super::input;
use crate::error::AppError;
use crate::middleware::rate_limit::rate_limit_key;
use crate::middleware::request_id;
use crate::state::AppState;
use crate::usage::record::field;
use crate::usage::{Counts, Day, Prices};

/// The longest range one request may ask for, both ends included.
pub const MAX_DAYS: i64 = 92;

/// One UTC day of a user's usage.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    #[schema(example = "2026-12-07")]
    pub date: String,
    /// 2xx answers of `/api/transcribe`, `/api/analyze` and `/api/pronunciation`, cache hits included.
    pub requests: u64,
    /// Of those, answered from the cache (no upstream call).
    pub cache_hits: u64,
    /// Audio sent to Azure Speech.
    pub audio_seconds: f64,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub tokens_thinking: u64,
    /// From the `PRICE_*` settings; an estimate, not a bill.
    pub estimated_cost_usd: f64,
}

/// The counts of the whole range, summed.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct UsageTotal {
    pub requests: u64,
    pub cache_hits: u64,
    pub audio_seconds: f64,
    pub tokens_input: u64,
    pub tokens_output: u64,
    pub tokens_thinking: u64,
    pub estimated_cost_usd: f64,
}

/// `data` of `GET /api/usage`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub user_id: String,
    pub from: String,
    pub to: String,
    /// Every day of the range, oldest first; a day without usage has zeros.
    pub days: Vec<UsageDay>,
    pub total: UsageTotal,
    /// False when Redis could not be read: the counts are this instance's unwritten ones only.
    pub complete: bool,
}

/// A user's usage per UTC day, `from` to `to` (both included, at most 92 days), with an estimated
/// cost from the `PRICE_*` settings. A user with no usage gets zeros.
#[utoipa::path(
    get,
    path = "/api/usage",
    tag = "usage",
    params(
        // The patterns are those of `user_id` elsewhere (no control characters) plus one visible
        // character, written for ECMA-262 and Python alike (see `input::schema`).
        ("user_id" = String, Query, description = "The user, as sent in `X-User-ID`", min_length = 1, max_length = 128,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u00ad\u034f\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff][^\u0000-\u001f\u007f-\u009f]*(?![\s\S])"),
        ("from" = Option<String>, Query, format = Date, description = "First day, `YYYY-MM-DD` (UTC); default: `to`. At most 92 days before `to`"),
        ("to" = Option<String>, Query, format = Date, description = "Last day, `YYYY-MM-DD` (UTC); default: today"),
    ),
    responses(
        (status = 200, description = "Counts per day and their sum", body = Success<UsageReport>),
        (status = 401, description = "Missing or wrong X-API-Key", body = crate::error::ErrorEnvelope),
        (status = 422, description = "A missing user id, a bad date, `from` after `to`, or more than 92 days", body = crate::error::ErrorEnvelope),
        (status = 429, description = "Per-user rate limit; see Retry-After", body = crate::error::ErrorEnvelope),
    ),
    security((), ("api_key" = []))
)]
pub async fn usage(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, AppError> {
    let mut user_id = None;
    let (mut from, mut to) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "user_id" => user_id = Some(value.into_owned()),
            "from" => from = Some(value.into_owned()),
            "to" => to = Some(value.into_owned()),
            _ => {}
        }
    }
    let user_id = input::text_field("user_id", user_id.as_deref(), 128)?.to_owned();
    input::identifier("user_id", Some(&user_id))?;
    let to = match to {
        Some(text) => date("to", &text)?,
        None => Day::today(),
    };
    let from = match from {
        Some(text) => date("from", &text)?,
        None => to,
    };
    if from > to {
        return Err(AppError::Validation(format!("from ({from}) is after to ({to})")));
    }
    let span = from.days_through(to);
    if span > MAX_DAYS {
        return Err(AppError::Validation(format!("at most {MAX_DAYS} days per request (asked for {span})")));
    }
    let days: Vec<Day> = std::iter::successors(Some(from), |day| day.next().filter(|next| *next <= to)).collect();
    let read = state.usage.read(&user_key(&user_id)?, &days).await;
    let prices = state.usage.prices();
    let days: Vec<UsageDay> = read.days.iter().map(|(day, counts)| usage_day(*day, counts, prices)).collect();
    let total = sum(&days);
    let report =
        UsageReport { user_id, from: from.to_string(), to: to.to_string(), days, total, complete: read.complete };
    let meta = Meta {
        cached: false,
        request_id: request_id::current().unwrap_or_default(),
        parse: None,
        model: None,
        provider: None,
    };
    Ok(Success::new(report, meta).into_response())
}

fn date(name: &str, text: &str) -> Result<Day, AppError> {
    Day::parse(text.trim())
        .ok_or_else(|| AppError::Validation(format!("{name} must be a date as YYYY-MM-DD (got {text:?})")))
}

/// The key the user's requests were counted under: what the rate limit makes of `X-User-ID`.
fn user_key(user_id: &str) -> Result<String, AppError> {
    let value = HeaderValue::from_str(user_id)
        .map_err(|_| AppError::Validation("user_id must be at most 128 printable characters".into()))?;
    let mut headers = HeaderMap::new();
    headers.insert("x-user-id", value);
    Ok(rate_limit_key(&headers, &Extensions::new(), false))
}

fn usage_day(day: Day, counts: &Counts, prices: &Prices) -> UsageDay {
    let count = |name| u64::try_from(counts.get(name)).unwrap_or(0);
    UsageDay {
        date: day.to_string(),
        requests: count(field::REQUESTS),
        cache_hits: count(field::CACHE_HITS),
        audio_seconds: count(field::AUDIO_MS) as f64 / 1000.0,
        tokens_input: count(field::TOKENS_INPUT),
        tokens_output: count(field::TOKENS_OUTPUT),
        tokens_thinking: count(field::TOKENS_THINKING),
        estimated_cost_usd: prices.cost(counts),
    }
}

fn sum(days: &[UsageDay]) -> UsageTotal {
    let mut total = UsageTotal::default();
    let mut audio_ms = 0u64;
    let mut cost = 0.0;
    for day in days {
        total.requests += day.requests;
        total.cache_hits += day.cache_hits;
        audio_ms += (day.audio_seconds * 1000.0).round() as u64;
        total.tokens_input += day.tokens_input;
        total.tokens_output += day.tokens_output;
        total.tokens_thinking += day.tokens_thinking;
        cost += day.estimated_cost_usd;
    }
    total.audio_seconds = audio_ms as f64 / 1000.0;
    total.estimated_cost_usd = (cost * 1_000_000.0).round() / 1_000_000.0;
    total
}
