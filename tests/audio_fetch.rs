//! Fetching audio by URL, end to end, against servers on loopback only. Every refusal case also
//! proves that nothing reached the server it was aimed at.

// A panic on unwrap is the test failing, with the error printed.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use backend_ai::audio::{Audio, AudioError, AudioFetcher, Container, FetchPolicy, Policy, Purpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
#[path = "support/audio.rs"]
mod audio_support;
#[path = "support/tripwire.rs"]
mod tripwire;

use tripwire::Tripwire;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 50 ms of 16 kHz mono 16-bit silence.
fn small_wav() -> Vec<u8> {
    audio_support::wav_silence(800)
}

fn strict() -> FetchPolicy {
    FetchPolicy::default()
}

fn allowing(server: &MockServer) -> FetchPolicy {
    FetchPolicy { allowed_addresses: vec![*server.address()], ..FetchPolicy::default() }
}

async fn wav_server(expected_requests: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/a.wav"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(small_wav()))
        .expect(expected_requests)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_loopback_server_is_refused_by_default_and_never_contacted() {
    let server = wav_server(0).await;
    let url = format!("{}/a.wav", server.uri());

    let error = AudioFetcher::new(strict()).fetch(&url).await.unwrap_err();

    assert!(matches!(&error, AudioError::Forbidden(message) if message.contains("loopback")), "{error:?}");
}

#[tokio::test]
async fn localhost_is_refused_after_resolving_and_never_contacted() {
    let server = wav_server(0).await;
    let url = format!("http://localhost:{}/a.wav", server.address().port());

    let error = AudioFetcher::new(strict()).fetch(&url).await.unwrap_err();

    assert_eq!(error, AudioError::Forbidden("localhost resolves to a loopback address".to_owned()));
}

#[tokio::test]
async fn decimal_hex_and_octal_spellings_of_loopback_never_connect() {
    let server = wav_server(0).await;
    let port = server.address().port();
    for host in ["2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]"] {
        let url = format!("http://{host}:{port}/a.wav");
        let error = AudioFetcher::new(strict()).fetch(&url).await.unwrap_err();
        assert!(matches!(&error, AudioError::Forbidden(message) if message.contains("loopback")), "{url}: {error:?}");
    }
}

#[tokio::test]
async fn the_exact_allowed_address_is_fetched() {
    let server = wav_server(1).await;
    let url = format!("{}/a.wav", server.uri());

    let bytes = AudioFetcher::new(allowing(&server)).fetch(&url).await.unwrap();

    assert_eq!(bytes.as_ref(), small_wav().as_slice());
    let audio = Audio::normalise(bytes, Purpose::Transcription, Policy::default()).expect("a WAV");
    assert_eq!(audio.container(), Container::Wav);
}

#[tokio::test]
async fn allow_private_lets_a_loopback_server_be_fetched() {
    let server = wav_server(1).await;
    let policy = FetchPolicy { allow_private: true, ..FetchPolicy::default() };

    let bytes = AudioFetcher::new(policy).fetch(&format!("{}/a.wav", server.uri())).await.unwrap();

    assert_eq!(bytes.as_ref(), small_wav().as_slice());
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_too_large() {
    let server = wav_server(1).await;
    let policy = FetchPolicy { max_bytes: 1000, ..allowing(&server) };

    let error = AudioFetcher::new(policy).fetch(&format!("{}/a.wav", server.uri())).await.unwrap_err();

    assert_eq!(error, AudioError::TooLarge { limit: 1000 });
}

/// Serves one response with a chunked body of `chunks` x 1 KiB and no Content-Length.
async fn chunked_server(chunks: usize) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n";
        if socket.write_all(head).await.is_err() {
            return;
        }
        let chunk = [b"400\r\n".as_slice(), &[0u8; 1024], b"\r\n"].concat();
        for _ in 0..chunks {
            if socket.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = socket.write_all(b"0\r\n\r\n").await;
    });
    (address, task)
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_too_large() {
    let (address, task) = chunked_server(64).await;
    let policy = FetchPolicy { max_bytes: 4096, allowed_addresses: vec![address], ..FetchPolicy::default() };

    let error = AudioFetcher::new(policy).fetch(&format!("http://{address}/a.wav")).await.unwrap_err();

    assert_eq!(error, AudioError::TooLarge { limit: 4096 });
    task.abort();
}

#[tokio::test]
async fn a_chunked_body_under_the_cap_is_read_whole() {
    let (address, task) = chunked_server(3).await;
    let policy = FetchPolicy { max_bytes: 4096, allowed_addresses: vec![address], ..FetchPolicy::default() };

    let bytes = AudioFetcher::new(policy).fetch(&format!("http://{address}/a.wav")).await.unwrap();

    assert_eq!(bytes.len(), 3 * 1024);
    task.abort();
}

async fn redirect(server: &MockServer, from: &str, to: &str) {
    Mock::given(method("GET"))
        .and(path(from))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", to))
        .mount(server)
        .await;
}

#[tokio::test]
async fn three_redirects_are_followed() {
    let server = wav_server(1).await;
    redirect(&server, "/r1", "/r2").await;
    redirect(&server, "/r2", "/r3").await;
    redirect(&server, "/r3", "/a.wav").await;

    let bytes = AudioFetcher::new(allowing(&server)).fetch(&format!("{}/r1", server.uri())).await.unwrap();

    assert_eq!(bytes.as_ref(), small_wav().as_slice());
}

#[tokio::test]
async fn a_fourth_redirect_is_refused_when_three_are_allowed() {
    let server = wav_server(0).await;
    redirect(&server, "/r1", "/r2").await;
    redirect(&server, "/r2", "/r3").await;
    redirect(&server, "/r3", "/r4").await;
    redirect(&server, "/r4", "/a.wav").await;

    let error = AudioFetcher::new(allowing(&server)).fetch(&format!("{}/r1", server.uri())).await.unwrap_err();

    assert_eq!(error, AudioError::Fetch("audio host redirected more than 3 times".to_owned()));
}

#[tokio::test]
async fn a_redirect_to_another_loopback_port_is_forbidden_and_not_followed() {
    let allowed = MockServer::start().await;
    let other = wav_server(0).await;
    let target = format!("{}/a.wav", other.uri());
    redirect(&allowed, "/start", &target).await;

    let error = AudioFetcher::new(allowing(&allowed)).fetch(&format!("{}/start", allowed.uri())).await.unwrap_err();

    assert!(matches!(&error, AudioError::Forbidden(message) if message.contains("loopback")), "{error:?}");
}

#[tokio::test]
async fn a_redirect_to_127_0_0_2_is_forbidden_and_nothing_connects() {
    let allowed = MockServer::start().await;
    let Some(tripwire) = Tripwire::bind("127.0.0.2").await else {
        panic!("127.0.0.2 should be bindable on Linux loopback");
    };
    redirect(&allowed, "/start", &format!("http://{}/a.wav", tripwire.address)).await;

    let error = AudioFetcher::new(allowing(&allowed)).fetch(&format!("{}/start", allowed.uri())).await.unwrap_err();

    assert!(
        matches!(&error, AudioError::Forbidden(message) if message.contains("127.0.0.2 is a loopback address")),
        "{error:?}"
    );
    assert_eq!(tripwire.connections(), 0);
}

#[tokio::test]
async fn a_redirect_to_ipv6_loopback_is_forbidden_and_nothing_connects() {
    let allowed = MockServer::start().await;
    // Without IPv6 on loopback nothing could connect anyway; the refusal is still asserted.
    let tripwire = Tripwire::bind("::1").await;
    let port = tripwire.as_ref().map_or(9, |t| t.address.port());
    redirect(&allowed, "/start", &format!("http://[::1]:{port}/a.wav")).await;

    let error = AudioFetcher::new(allowing(&allowed)).fetch(&format!("{}/start", allowed.uri())).await.unwrap_err();

    assert_eq!(error, AudioError::Forbidden("::1 is a loopback address".to_owned()));
    if let Some(tripwire) = tripwire {
        assert_eq!(tripwire.connections(), 0);
    }
}

#[tokio::test]
async fn a_redirect_to_a_non_http_scheme_is_invalid() {
    let allowed = MockServer::start().await;
    redirect(&allowed, "/start", "file:///etc/passwd").await;

    let error = AudioFetcher::new(allowing(&allowed)).fetch(&format!("{}/start", allowed.uri())).await.unwrap_err();

    assert!(matches!(error, AudioError::InvalidUrl(_)), "{error:?}");
}

#[tokio::test]
async fn a_404_is_a_fetch_error_naming_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(404)).expect(1).mount(&server).await;

    let error = AudioFetcher::new(allowing(&server)).fetch(&format!("{}/missing.wav", server.uri())).await.unwrap_err();

    assert_eq!(error, AudioError::Fetch("audio host answered 404".to_owned()));
}

#[tokio::test]
async fn a_closed_port_is_a_fetch_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let policy = FetchPolicy { allowed_addresses: vec![address], ..FetchPolicy::default() };

    let error = AudioFetcher::new(policy).fetch(&format!("http://{address}/a.wav")).await.unwrap_err();

    assert!(matches!(error, AudioError::Fetch(_)), "{error:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(small_wav()).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let policy = FetchPolicy { timeout: Duration::from_millis(300), ..allowing(&server) };

    let error = AudioFetcher::new(policy).fetch(&format!("{}/a.wav", server.uri())).await.unwrap_err();

    assert_eq!(error, AudioError::Timeout);
}
