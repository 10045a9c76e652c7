//! The chain as a tower service over its links' services.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use super::policy::{HandOver, hand_over};
use crate::domain::served::Served;
use crate::metrics::Metrics;
use crate::metrics::labels::Operation;
use crate::upstream::{Upstream, UpstreamError};

/// `Retry-After` of an all-links-down answer when no link said how long to wait.
const ALL_DOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Who a link is, for labels, logs and `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The model id as configured: `from`/`to` of `ai_fallbacks_total`, `meta.model`.
    pub model: Arc<str>,
    pub provider: Upstream,
    /// The variable that names this model, for the log line that says what to change.
    pub variable: &'static str,
}

/// One link: who it is and its whole stack.
pub struct Link<J, R> {
    pub info: LinkInfo,
    pub service: BoxCloneSyncService<J, Served<R>, UpstreamError>,
}

impl<J, R> Clone for Link<J, R> {
    fn clone(&self) -> Self {
        Self { info: self.info.clone(), service: self.service.clone() }
    }
}

/// Re-aims a job at a link (its model id, hence its cache key).
type Retarget<J> = dyn Fn(&J, &LinkInfo) -> J + Send + Sync;

pub struct FallbackChain<J, R> {
    shared: Arc<Shared<J, R>>,
}

impl<J, R> Clone for FallbackChain<J, R> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

struct Shared<J, R> {
    links: Vec<Link<J, R>>,
    operation: Operation,
    deadline: Duration,
    retarget: Box<Retarget<J>>,
    usable: fn(&R) -> bool,
    metrics: Metrics,
}

impl<J, R> FallbackChain<J, R> {
    /// `links` in order, at least one; `deadline` bounds the whole chain.
    pub fn new(
        operation: Operation,
        links: Vec<Link<J, R>>,
        deadline: Duration,
        retarget: impl Fn(&J, &LinkInfo) -> J + Send + Sync + 'static,
        usable: fn(&R) -> bool,
        metrics: Metrics,
    ) -> Self {
        assert!(!links.is_empty(), "a chain has at least one link");
        for pair in links.windows(2) {
            for reason in HandOver::ALL {
                let labels = [operation.as_str(), &pair[0].info.model, &pair[1].info.model, reason.as_str()];
                let _ = metrics.ai_fallbacks_total.with_label_values(&labels);
            }
        }
        Self { shared: Arc::new(Shared { links, operation, deadline, retarget: Box::new(retarget), usable, metrics }) }
    }

    pub fn links(&self) -> impl Iterator<Item = &LinkInfo> {
        self.shared.links.iter().map(|link| &link.info)
    }
}

impl<J, R> Service<J> for FallbackChain<J, R>
where
    J: Send + Sync + 'static,
    R: Send + 'static,
{
    type Response = Served<R>;
    type Error = UpstreamError;
    type Future = BoxFuture<'static, Result<Served<R>, UpstreamError>>;

    /// Always ready: each link is made ready when (and if) the call reaches it.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, job: J) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut failures: Vec<UpstreamError> = Vec::new();
            let mut kept: Option<Served<R>> = None;
            let walk = walk(&shared, &job, &mut failures, &mut kept);
            let outcome = tokio::time::timeout(shared.deadline, walk).await;
            match outcome {
                Ok(Some(answer)) => answer,
                // Every link failed or ran out of time: an unusable answer beats none.
                Ok(None) | Err(_) => match kept {
                    Some(served) => Ok(served),
                    None => Err(all_down(failures, shared.links[0].info.provider)),
                },
            }
        })
    }
}

/// Try the links in order. `Some` is the call's answer; `None` means every link handed over
/// (their failures are in `failures`, an unusable answer in `kept`).
async fn walk<J, R>(
    shared: &Shared<J, R>,
    job: &J,
    failures: &mut Vec<UpstreamError>,
    kept: &mut Option<Served<R>>,
) -> Option<Result<Served<R>, UpstreamError>> {
    let operation = shared.operation.as_str();
    for (index, link) in shared.links.iter().enumerate() {
        let next = shared.links.get(index + 1);
        let result = link.service.clone().oneshot((shared.retarget)(job, &link.info)).await;
        let (reason, cause) = match result {
            Ok(served) if (shared.usable)(&served.value) => {
                if index > 0 {
                    tracing::info!(operation, model = %link.info.model, provider = link.info.provider.as_str(), "answered by a fallback link");
                }
                return Some(Ok(served));
            }
            Ok(served) => {
                kept.get_or_insert(served);
                (HandOver::Unreadable, "no usable answer in the reply".to_string())
            }
            Err(error) => match hand_over(&error) {
                None => return Some(Err(error)),
                Some(reason) => {
                    let cause = error.to_string();
                    failures.push(error);
                    (reason, cause)
                }
            },
        };
        if let Some(next) = next {
            let labels = [operation, &link.info.model, &next.info.model, reason.as_str()];
            shared.metrics.ai_fallbacks_total.with_label_values(&labels).inc();
            tracing::warn!(
                operation,
                from = %link.info.model,
                to = %next.info.model,
                reason = reason.as_str(),
                cause = %cause,
                "handing the call over to the next link"
            );
        }
    }
    None
}

/// The first link's failure, with a `Retry-After` for the learner: the shortest wait any link
/// asked for, else [`ALL_DOWN_RETRY_AFTER`]. An unreachable first link is said as a 503 with
/// that wait (the same `upstream_unavailable` class), since no variant for it carries one.
fn all_down(failures: Vec<UpstreamError>, first: Upstream) -> UpstreamError {
    let wait = failures
        .iter()
        .filter_map(|error| match error {
            UpstreamError::Server { retry_after, .. } | UpstreamError::RateLimited { retry_after, .. } => *retry_after,
            UpstreamError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        })
        .min()
        .unwrap_or(ALL_DOWN_RETRY_AFTER)
        .max(Duration::from_secs(1));
    let Some(primary) = failures.into_iter().next() else {
        // Only an unusable answer or the chain's deadline got here without a failure.
        return UpstreamError::Timeout { upstream: first };
    };
    match primary {
        UpstreamError::Server { upstream, status, message, retry_after: None } => {
            UpstreamError::Server { upstream, status, message, retry_after: Some(wait) }
        }
        UpstreamError::RateLimited { upstream, retry_after: None, per_day } => {
            UpstreamError::RateLimited { upstream, retry_after: Some(wait), per_day }
        }
        UpstreamError::Unreachable { upstream, message } => UpstreamError::Server {
            upstream,
            status: 503,
            message: format!("unreachable: {message}"),
            retry_after: Some(wait),
        },
        other => other,
    }
}
