//! The usage layer on `/api/*`, inside auth and the rate limit: it names the request's user,
//! adds its [`Allowance`] to the rate limit's admission (checked where the request would call an
//! upstream, after every cache tier missed), turns
//! a budget refusal into the contract's 429 `budget_exceeded`, and records the spend of every 2xx
//! answer without making the answer wait for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::Usage;
use super::budget::Allowance;
use super::day::Day;
use super::record::Spend;
use crate::error::AppError;
use crate::middleware::rate_limit::{Admission, UserKey};

#[derive(Clone)]
pub struct UsageLayer {
    usage: Usage,
    /// Whether the API key may name the user (as for the rate limit: only when keys are checked).
    api_keys_enabled: bool,
}

impl UsageLayer {
    pub fn new(usage: Usage, api_keys_enabled: bool) -> Self {
        Self { usage, api_keys_enabled }
    }
}

impl<S> Layer<S> for UsageLayer {
    type Service = UsageService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UsageService { inner, usage: self.usage.clone(), api_keys_enabled: self.api_keys_enabled }
    }
}

#[derive(Clone)]
pub struct UsageService<S> {
    inner: S,
    usage: Usage,
    api_keys_enabled: bool,
}

impl<S> Service<Request> for UsageService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let user = UserKey::of(request.headers(), request.extensions(), self.api_keys_enabled);
        let usage = self.usage.clone();
        let allowance = Allowance::new(usage.clone(), user.clone(), Day::today());
        // The budget travels with the rate limit's admission, which the handler hands to the
        // stack with the job. Without one the handler refuses the request anyway.
        if let Some(admission) = request.extensions_mut().remove::<Admission>() {
            request.extensions_mut().insert(admission.with_allowance(allowance.clone()));
        }
        // The instance polled ready goes with this call; the clone waits for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let work = inner.call(request);
        Box::pin(async move {
            let response = work.await?;
            if let Some(budget) = allowance.refusal() {
                let budgets = usage.budgets();
                let refusal = AppError::BudgetExceeded {
                    message: budgets.message(budget),
                    retry_after: Day::until_next_midnight(SystemTime::now()),
                };
                return Ok(refusal.into_response());
            }
            if response.status().is_success()
                && let Some(spend) = response.extensions().get::<Spend>()
            {
                usage.record(&user, Day::today(), spend);
            }
            Ok(response)
        })
    }
}
