//! The per-user rate limit through a small axum router, as a client sees it: which requests
//! are refused, what a refusal looks like, and that losing Redis never fails a request. Redis
//! tests use a private redis-server; the 60 s windows dwarf the test's own run time.

#[path = "support/redis.rs"]
mod redis_support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use backend_ai::metrics::Metrics;
use backend_ai::middleware::rate_limit::{RateLimitConfig, RateLimitLayer, RateLimiter};
use backend_ai::redis::{RedisLink, RedisTarget};
use http_body_util::BodyExt;
use redis_support::RedisServer;
use tower::ServiceExt;

const ADDRESS: &str = "192.0.2.10:40000";

fn app(limiter: RateLimiter) -> Router {
    Router::new().route("/api/analyze", get(|| async { "analysed" })).route_layer(RateLimitLayer::new(limiter))
}

fn limiter(per_minute: u32, redis: Option<RedisLink>, metrics: &Metrics) -> RateLimiter {
    RateLimiter::new(RateLimitConfig::new(per_minute, true), redis, metrics.clone())
}

fn link(server: &RedisServer, metrics: &Metrics) -> RedisLink {
    RedisLink::new(&RedisTarget::single(server.url()), Duration::from_millis(500), metrics.clone()).expect("redis url")
}

#[derive(Default, Clone, Copy)]
struct From<'a> {
    user: Option<&'a str>,
    api_key: Option<&'a str>,
    address: Option<&'a str>,
}

fn user(id: &str) -> From<'_> {
    From { user: Some(id), address: Some(ADDRESS), ..From::default() }
}

async fn send(app: &Router, from: From<'_>) -> Response {
    let mut request = Request::get("/api/analyze");
    if let Some(user) = from.user {
        request = request.header("x-user-id", user);
    }
    if let Some(key) = from.api_key {
        request = request.header("x-api-key", key);
    }
    if let Some(address) = from.address {
        request = request.extension(ConnectInfo(address.parse::<SocketAddr>().expect("test address")));
    }
    app.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible router")
}

async fn statuses(app: &Router, from: From<'_>, count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::with_capacity(count);
    for _ in 0..count {
        statuses.push(send(app, from).await.status());
    }
    statuses
}

fn refusals(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count()
}

fn header(response: &Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header missing"))
        .to_str()
        .expect("ASCII header")
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not an integer"))
}

#[tokio::test]
async fn two_instances_sharing_redis_hold_one_limit_per_user() {
    let server = RedisServer::start();
    let metrics = [Metrics::new(), Metrics::new()];
    let apps = [
        app(limiter(10, Some(link(&server, &metrics[0])), &metrics[0])),
        app(limiter(10, Some(link(&server, &metrics[1])), &metrics[1])),
    ];

    // Each instance serves from what it holds of the one bucket and hears of the other's spending
    // when it asks again: one limit of 10, within the stated bound (`2·N·n` = 4 more at most,
    // `rate_limit/lease.rs`), each instance's `RateLimit-Remaining` falling as it serves.
    let mut alice = Vec::new();
    let mut remaining = [Vec::new(), Vec::new()];
    for round in 0..16 {
        let response = send(&apps[round % 2], user("alice")).await;
        alice.push(response.status());
        remaining[round % 2].push(header(&response, "ratelimit-remaining"));
    }
    let served = alice.len() - refusals(&alice);
    assert!((10..=14).contains(&served), "{alice:?}");
    assert!(alice[..10].iter().all(|status| *status == StatusCode::OK), "{alice:?}");
    assert_eq!(&alice[14..], [StatusCode::TOO_MANY_REQUESTS; 2], "{alice:?}");
    for seen in &remaining {
        assert!(seen.windows(2).all(|pair| pair[1] <= pair[0]) && seen[0] == 9, "{remaining:?}");
        assert_eq!(seen.last(), Some(&0), "{remaining:?}");
    }

    for round in 0..5 {
        assert_eq!(send(&apps[round % 2], user("bob")).await.status(), StatusCode::OK);
    }
    let by_redis: u64 =
        metrics.iter().map(|m| m.rate_limit_rejections_total.with_label_values(&["redis", "user"]).get()).sum();
    assert_eq!(by_redis, refusals(&alice) as u64);
}

#[tokio::test]
async fn when_redis_dies_each_instance_limits_locally_and_no_request_fails() {
    let mut server = RedisServer::start();
    let metrics = Metrics::new();
    let app = app(limiter(10, Some(link(&server, &metrics)), &metrics));
    assert_eq!(send(&app, user("warm-up")).await.status(), StatusCode::OK);

    server.kill();
    let carol = statuses(&app, user("carol"), 12).await;
    assert_eq!(refusals(&carol), 2, "{carol:?}");
    assert!(carol.iter().all(|status| !status.is_server_error()), "{carol:?}");
    assert_eq!(metrics.rate_limit_rejections_total.with_label_values(&["local", "user"]).get(), 2);
    assert_eq!(metrics.service_health_status.with_label_values(&["redis"]).get(), 0);
}

#[tokio::test]
async fn when_redis_returns_the_shared_limit_is_used_again_without_a_restart() {
    let mut server = RedisServer::start();
    let metrics = Metrics::new();
    let app = app(limiter(1000, Some(link(&server, &metrics)), &metrics));
    server.kill();
    assert_eq!(send(&app, user("ivan")).await.status(), StatusCode::OK);

    server.restart();
    let observer = link(&server, &Metrics::new());
    let give_up = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert_eq!(send(&app, user("ivan")).await.status(), StatusCode::OK);
        let stored: Option<String> = observer
            .run("backend-ai:v1:ratelimit:user:ivan", |mut connection| async move {
                redis::cmd("GET").arg("backend-ai:v1:ratelimit:user:ivan").query_async(&mut connection).await
            })
            .await
            .unwrap_or(None);
        if stored.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < give_up, "the limiter never went back to Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn without_redis_the_local_limiter_holds_the_limit() {
    let metrics = Metrics::new();
    let app = app(limiter(10, None, &metrics));
    let dave = statuses(&app, user("dave"), 12).await;
    assert_eq!(refusals(&dave), 2, "{dave:?}");
    assert_eq!(statuses(&app, user("erin"), 10).await, vec![StatusCode::OK; 10]);
}

#[tokio::test]
async fn a_refusal_is_the_contracts_429_with_retry_after_and_ratelimit_headers() {
    let server = RedisServer::start();
    for redis in [None, Some(link(&server, &Metrics::new()))] {
        let app = app(limiter(1, redis, &Metrics::new()));

        let allowed = send(&app, user("frank")).await;
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(header(&allowed, "ratelimit-limit"), 1);
        assert_eq!(header(&allowed, "ratelimit-remaining"), 0);
        assert!((1..=60).contains(&header(&allowed, "ratelimit-reset")));

        let refused = send(&app, user("frank")).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after = header(&refused, "retry-after");
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        assert_eq!(header(&refused, "ratelimit-limit"), 1);
        assert_eq!(header(&refused, "ratelimit-remaining"), 0);
        assert!(header(&refused, "ratelimit-reset") >= 1);
        let body = refused.into_body().collect().await.expect("body").to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON envelope");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], "Rate limit exceeded");
        assert_eq!(body["code"], "rate_limited");
    }
}

#[tokio::test]
async fn a_user_id_is_one_budget_whatever_address_or_key_it_comes_with() {
    let app = app(limiter(1, None, &Metrics::new()));
    let first = From { user: Some("grace"), api_key: Some("key-one"), address: Some("192.0.2.1:1000") };
    let second = From { user: Some("grace"), api_key: Some("key-two"), address: Some("192.0.2.2:2000") };
    assert_eq!(send(&app, first).await.status(), StatusCode::OK);
    assert_eq!(send(&app, second).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let someone_else = From { user: Some("heidi"), ..first };
    assert_eq!(send(&app, someone_else).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_a_user_id_the_api_key_is_the_identity_and_redis_never_sees_it_raw() {
    let server = RedisServer::start();
    let metrics = Metrics::new();
    let redis = link(&server, &metrics);
    let app = app(limiter(1, Some(redis.clone()), &metrics));
    let key = |key, address| From { api_key: Some(key), address: Some(address), ..From::default() };

    assert_eq!(send(&app, key("secret-key-one", "192.0.2.1:1000")).await.status(), StatusCode::OK);
    assert_eq!(send(&app, key("secret-key-one", "192.0.2.2:2000")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, key("secret-key-two", "192.0.2.1:1000")).await.status(), StatusCode::OK);

    let stored: Vec<String> = redis
        .run("backend-ai:v1:ratelimit:", |mut connection| async move {
            redis::cmd("KEYS").arg("backend-ai:v1:ratelimit:*").query_async(&mut connection).await
        })
        .await
        .expect("list rate limit keys");
    // The buckets are charged off the requests' path: give the second its moment.
    let mut stored = stored;
    for _ in 0..100 {
        if stored.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stored = redis
            .run("backend-ai:v1:ratelimit:", |mut connection| async move {
                redis::cmd("KEYS").arg("backend-ai:v1:ratelimit:*").query_async(&mut connection).await
            })
            .await
            .expect("list rate limit keys");
    }
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.iter().all(|name| !name.contains("secret")), "{stored:?}");
}

#[tokio::test]
async fn without_user_id_or_checked_key_the_client_address_is_the_identity() {
    let unchecked = RateLimiter::new(RateLimitConfig::new(1, false), None, Metrics::new());
    let app = app(unchecked);
    let from = |key, address| From { api_key: key, address, ..From::default() };

    assert_eq!(send(&app, from(Some("made-up-1"), Some("192.0.2.1:1000"))).await.status(), StatusCode::OK);
    // Another port and another unchecked key: still the same client.
    let again = send(&app, from(Some("made-up-2"), Some("192.0.2.1:1001"))).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, from(None, Some("192.0.2.2:1000"))).await.status(), StatusCode::OK);
    // No address known: every such request shares one bucket rather than escaping the limit.
    assert_eq!(send(&app, from(None, None)).await.status(), StatusCode::OK);
    assert_eq!(send(&app, from(None, None)).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn with_ceiling(user_limit: u32, ceiling: u32, redis: Option<RedisLink>, metrics: &Metrics) -> Router {
    let limiters = vec![
        RateLimiter::new(RateLimitConfig::new(user_limit, true), redis.clone(), metrics.clone()),
        RateLimiter::new(RateLimitConfig::ceiling(ceiling, true), redis, metrics.clone()),
    ];
    Router::new().route("/api/analyze", get(|| async { "analysed" })).route_layer(RateLimitLayer::all(limiters))
}

#[tokio::test]
async fn a_key_holder_inventing_a_user_id_per_request_is_held_by_the_key_ceiling() {
    let metrics = Metrics::new();
    let app = with_ceiling(60, 5, None, &metrics);
    let mut answered = Vec::new();
    for request in 0..8 {
        let id = format!("invented-{request}");
        let from = From { user: Some(&id), api_key: Some("frontend-key"), address: Some(ADDRESS) };
        answered.push(send(&app, from).await.status());
    }
    assert_eq!(refusals(&answered), 3, "{answered:?}");
    assert_eq!(metrics.rate_limit_rejections_total.with_label_values(&["local", "key"]).get(), 3);
    // Another key has its own ceiling.
    let other = From { user: Some("someone"), api_key: Some("another-key"), address: Some(ADDRESS) };
    assert_eq!(send(&app, other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_a_key_the_ceiling_is_per_client_address() {
    let metrics = Metrics::new();
    let limiters = vec![
        RateLimiter::new(RateLimitConfig::new(60, false), None, metrics.clone()),
        RateLimiter::new(RateLimitConfig::ceiling(2, false), None, metrics.clone()),
    ];
    let app =
        Router::new().route("/api/analyze", get(|| async { "analysed" })).route_layer(RateLimitLayer::all(limiters));
    let from =
        |user: &'static str, address: &'static str| From { user: Some(user), api_key: None, address: Some(address) };
    assert_eq!(send(&app, from("a", "192.0.2.1:1")).await.status(), StatusCode::OK);
    assert_eq!(send(&app, from("b", "192.0.2.1:2")).await.status(), StatusCode::OK);
    assert_eq!(send(&app, from("c", "192.0.2.1:3")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&app, from("c", "192.0.2.2:3")).await.status(), StatusCode::OK, "another address");
}

#[tokio::test]
async fn the_key_ceiling_holds_across_instances_sharing_redis_within_the_stated_bound() {
    let server = RedisServer::start();
    let (metrics_a, metrics_b) = (Metrics::new(), Metrics::new());
    let a = with_ceiling(60, 10, Some(link(&server, &metrics_a)), &metrics_a);
    let b = with_ceiling(60, 10, Some(link(&server, &metrics_b)), &metrics_b);
    let mut answered = Vec::new();
    for request in 0..16 {
        let id = format!("fresh-{request}");
        let from = From { user: Some(&id), api_key: Some("frontend-key"), address: Some(ADDRESS) };
        let instance = if request % 2 == 0 { &a } else { &b };
        answered.push(send(instance, from).await.status());
    }
    // Ten, and at most `2·N·n` = 4 more served on credit before both hear the bucket is empty.
    let served = answered.iter().filter(|status| **status == StatusCode::OK).count();
    assert!((10..=14).contains(&served), "{answered:?}");
    assert_eq!(&answered[14..], [StatusCode::TOO_MANY_REQUESTS; 2], "{answered:?}");
    let by_redis: u64 = [&metrics_a, &metrics_b]
        .iter()
        .map(|m| m.rate_limit_rejections_total.with_label_values(&["redis", "key"]).get())
        .sum();
    assert_eq!(by_redis, 16 - served as u64);
}

#[tokio::test]
async fn requests_a_users_own_limit_refused_spend_nothing_of_the_key_ceiling() {
    let server = RedisServer::start();
    for redis in [None, Some(link(&server, &Metrics::new()))] {
        let shared = redis.is_some();
        let metrics = Metrics::new();
        let app = with_ceiling(2, 4, redis, &metrics);
        let from = |id| From { user: Some(id), api_key: Some("frontend-key"), address: Some(ADDRESS) };
        let looping = statuses(&app, from("retry-loop"), 30).await;
        assert_eq!(refusals(&looping), 28, "redis: {shared}: {looping:?}");
        // Two of the ceiling's four went to the looping user's served requests; two are left.
        assert_eq!(send(&app, from("second")).await.status(), StatusCode::OK, "redis: {shared}");
        assert_eq!(send(&app, from("third")).await.status(), StatusCode::OK, "redis: {shared}");
        assert_eq!(send(&app, from("fourth")).await.status(), StatusCode::TOO_MANY_REQUESTS, "redis: {shared}");
        let limiter = if shared { "redis" } else { "local" };
        assert_eq!(metrics.rate_limit_rejections_total.with_label_values(&[limiter, "key"]).get(), 1);
    }
}

#[tokio::test]
async fn a_request_the_ceiling_refused_spends_nothing_of_the_users_shared_limit() {
    let server = RedisServer::start();
    let metrics = Metrics::new();
    let app = with_ceiling(2, 1, Some(link(&server, &metrics)), &metrics);
    let from = |id| From { user: Some(id), api_key: Some("frontend-key"), address: Some(ADDRESS) };
    assert_eq!(send(&app, from("first")).await.status(), StatusCode::OK);
    let refused = send(&app, from("second")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The second user's shared bucket was given back: a rested bucket is no key at all.
    let keys: Vec<String> = link(&server, &Metrics::new())
        .run("backend-ai:v1:ratelimit:", |mut connection| async move {
            redis::cmd("KEYS").arg("backend-ai:v1:ratelimit:user:*").query_async(&mut connection).await
        })
        .await
        .expect("list the users' buckets");
    assert_eq!(keys, ["backend-ai:v1:ratelimit:user:first"], "{keys:?}");
}
