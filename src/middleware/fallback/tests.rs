use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::util::BoxCloneSyncService;
use tower::{ServiceExt, service_fn};

use super::*;
use crate::domain::served::Served;
use crate::metrics::Metrics;
use crate::metrics::labels::Operation;
use crate::upstream::{Upstream, UpstreamError};

/// A link answering with `answer` (a clone each call), counting its calls.
fn link(
    model: &str,
    answer: Result<&'static str, UpstreamError>,
    calls: &Arc<AtomicUsize>,
) -> Link<String, &'static str> {
    let calls = calls.clone();
    let provider = if model.starts_with("gemini") { Upstream::Gemini } else { Upstream::OpenAiCompatible };
    Link {
        info: LinkInfo { model: model.into(), provider, variable: "GEMINI_MODEL" },
        service: BoxCloneSyncService::new(service_fn(move |job: String| {
            calls.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            async move { answer.map(|value| Served::fresh(if value.is_empty() { leak(job) } else { value })) }
        })),
    }
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn chain(links: Vec<Link<String, &'static str>>, metrics: &Metrics) -> FallbackChain<String, &'static str> {
    FallbackChain::new(
        Operation::Analyze,
        links,
        Duration::from_secs(30),
        |job: &String, info: &LinkInfo| format!("{job}@{}", info.model),
        |value: &&str| *value != "unusable",
        metrics.clone(),
    )
}

fn overloaded() -> UpstreamError {
    UpstreamError::Server { upstream: Upstream::Gemini, status: 503, message: "UNAVAILABLE".into(), retry_after: None }
}

#[tokio::test]
async fn an_overloaded_primary_hands_over_at_once_and_the_hand_over_is_counted() {
    let metrics = Metrics::new();
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let service = chain(vec![link("gemini-a", Err(overloaded()), &first), link("gpt-b", Ok(""), &second)], &metrics);
    let served = service.oneshot("text".to_string()).await.expect("the fallback answers");
    assert_eq!(served.value, "text@gpt-b", "the job is re-aimed at the link that answers");
    assert_eq!((first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)), (1, 1));
    let scrape = metrics.render();
    assert!(
        scrape
            .contains(r#"ai_fallbacks_total{from="gemini-a",operation="analyze",reason="server_error",to="gpt-b"} 1"#),
        "{scrape}"
    );
}

#[tokio::test]
async fn a_bad_request_of_ours_is_the_answer_and_the_next_link_is_not_asked() {
    let metrics = Metrics::new();
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bad = UpstreamError::Rejected { upstream: Upstream::Gemini, status: 400, message: "INVALID_ARGUMENT".into() };
    let service = chain(vec![link("gemini-a", Err(bad), &first), link("gpt-b", Ok(""), &second)], &metrics);
    let error = service.oneshot("text".to_string()).await.expect_err("400 is final");
    assert!(matches!(error, UpstreamError::Rejected { status: 400, .. }), "{error:?}");
    assert_eq!(second.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_link_down_answers_the_first_links_failure_with_a_wait() {
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let limited = UpstreamError::RateLimited {
        upstream: Upstream::OpenAiCompatible,
        retry_after: Some(Duration::from_secs(20)),
        per_day: false,
    };
    let service =
        chain(vec![link("gemini-a", Err(overloaded()), &calls), link("gpt-b", Err(limited), &calls)], &metrics);
    let error = service.oneshot("text".to_string()).await.expect_err("all down");
    assert!(
        matches!(error, UpstreamError::Server { upstream: Upstream::Gemini, status: 503, retry_after: Some(wait), .. } if wait == Duration::from_secs(20)),
        "{error:?}"
    );
    // An unreachable first link is said as a 503 with a wait too.
    let refused = UpstreamError::Unreachable { upstream: Upstream::Gemini, message: "connection refused".into() };
    let service =
        chain(vec![link("gemini-a", Err(refused), &calls), link("gpt-b", Err(overloaded()), &calls)], &metrics);
    let error = service.oneshot("text".to_string()).await.expect_err("all down");
    assert!(matches!(error, UpstreamError::Server { retry_after: Some(_), .. }), "{error:?}");
}

#[tokio::test]
async fn an_unusable_answer_moves_on_and_is_served_only_when_nothing_better_comes() {
    let metrics = Metrics::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = chain(vec![link("gemini-a", Ok("unusable"), &calls), link("gpt-b", Ok(""), &calls)], &metrics);
    assert_eq!(service.oneshot("t".to_string()).await.expect("answer").value, "t@gpt-b");
    let service =
        chain(vec![link("gemini-a", Ok("unusable"), &calls), link("gpt-b", Err(overloaded()), &calls)], &metrics);
    assert_eq!(service.oneshot("t".to_string()).await.expect("kept").value, "unusable");
}

#[tokio::test(start_paused = true)]
async fn the_whole_chain_stays_inside_its_deadline() {
    let metrics = Metrics::new();
    let hang = Link::<String, &'static str> {
        info: LinkInfo { model: "gemini-a".into(), provider: Upstream::Gemini, variable: "GEMINI_MODEL" },
        service: BoxCloneSyncService::new(service_fn(|_job: String| std::future::pending())),
    };
    let error = chain(vec![hang], &metrics).oneshot("t".to_string()).await.expect_err("deadline");
    assert!(matches!(error, UpstreamError::Timeout { upstream: Upstream::Gemini }), "{error:?}");
}
