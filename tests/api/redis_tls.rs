//! `rediss://` to a Redis that speaks TLS only on its data port, with a private CA named by
//! `REDIS_CA_FILE`: two instances share results through it; without the CA the certificate is
//! refused, Redis counts as down, and requests still succeed from the other tiers.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};

use crate::cache::{analysis, analysis_reply, analyze, analyze_ok, cache_health, gemini_answers};
use crate::helpers::redis_support::{RedisServer, free_port};
use crate::helpers::{FakeClouds, spawn_app_with_fakes};

/// A CA and a certificate for 127.0.0.1 that it signed, written under `dir`: (ca, cert, key).
pub(crate) fn certificates(dir: &Path) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let mut server_params = CertificateParams::new(Vec::<String>::new()).expect("server params");
    server_params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let server = server_params.signed_by(&server_key, &ca, &ca_key).expect("server certificate");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.to_string_lossy().into_owned()
    };
    (write("ca.pem", ca.pem()), write("server.pem", server.pem()), write("server.key", server_key.serialize_pem()))
}

#[tokio::test]
async fn two_instances_share_results_over_tls_and_an_untrusted_certificate_is_only_a_missing_redis() {
    let dir = tempfile::tempdir().expect("certificates directory");
    let (ca, cert, key) = certificates(dir.path());
    let tls_port = free_port();
    let _redis = RedisServer::start_with(
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ]
        .map(String::from)
        .to_vec(),
    );
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let fakes = FakeClouds::start().await;
    gemini_answers(&fakes.gemini, "My sister have a car.", analysis_reply("Over TLS."), 1).await;
    let trusted = [("CACHE_MODE", "redis_only"), ("REDIS_URL", url.as_str()), ("REDIS_CA_FILE", ca.as_str())];
    let (a, b) = (spawn_app_with_fakes(&fakes, &trusted).await, spawn_app_with_fakes(&fakes, &trusted).await);
    analyze_ok(&a, "My sister have a car.").await;
    let (status, body) = analyze(&b, "My sister have a car.").await;
    assert_eq!((status, &body["data"]), (200, &analysis("Over TLS.")), "B reads A's result over TLS: {body}");
    assert_eq!(cache_health(&b).await["redis"]["state"], "up");
    fakes.gemini.verify().await;

    // The system roots do not know this CA: the handshake fails, which is Redis down, not an error.
    gemini_answers(&fakes.gemini, "He don't know.", analysis_reply("Untrusted."), 1).await;
    let untrusted = spawn_app_with_fakes(&fakes, &[("CACHE_MODE", "redis_only"), ("REDIS_URL", url.as_str())]).await;
    let (status, body) = analyze(&untrusted, "He don't know.").await;
    assert_eq!((status, &body["data"]), (200, &analysis("Untrusted.")), "{body}");
    let health = cache_health(&untrusted).await;
    assert_eq!(health["redis"]["state"], "down", "{health}");
}
