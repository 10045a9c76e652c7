use std::time::Duration;

use super::*;
use crate::cache::RequestedMode;
use crate::upstream::connections::ConnectionSettings;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_lookup(|name| map.get(name).cloned(), Path::new("/nonexistent/serviceaccount"))
}

#[test]
fn defaults_run_on_the_simulator_outside_kubernetes() {
    let settings = settings(&[]).expect("defaults are valid");
    assert_eq!(settings.server.port, 8000);
    assert_eq!(settings.upstreams.azure.target, AzureTarget::Simulator);
    assert_eq!(settings.upstreams.gemini.target, GeminiTarget::Simulator);
    assert_eq!(settings.cache.mode, RequestedMode::Auto);
    assert_eq!(settings.telemetry.log_format, LogFormat::Pretty);
    assert_eq!(settings.upstreams.timeout, Duration::from_secs(30));
    assert_eq!(settings.cache.ttl_analysis, Duration::from_secs(604_800));
    assert_eq!(settings.upstreams.connections, ConnectionSettings { lanes: 8, http2_prior_knowledge: false });
}

#[test]
fn a_bad_value_names_its_variable() {
    for (name, value) in [
        (PORT, "eighty"),
        (PORT, "70000"),
        (CACHE_MODE, "memory"),
        (RATE_LIMIT_PER_MINUTE, "-1"),
        (BREAKER_FAILURE_THRESHOLD, "0"),
        (UPSTREAM_TIMEOUT_SECONDS, "0"),
        (UPSTREAM_CONNECTIONS, "0"),
        (UPSTREAM_CONNECTIONS, "65"),
        (UPSTREAM_HTTP2_PRIOR_KNOWLEDGE, "h2c"),
        (AUDIO_FETCH_ALLOW_PRIVATE, "maybe"),
        (AUDIO_MAX_SECONDS, "0"),
        (AUDIO_SEND_FORMAT, "mp3"),
        (AUDIO_WORKERS, "0"),
        (REDIS_URL, "http://example"),
        (LOG_FORMAT, "xml"),
        (SIMULATOR_HANG_RATE, "2"),
        (GEMINI_MODEL, "gemini 2.5/../x"),
        (PLAYGROUND_ENABLED, "sometimes"),
    ] {
        let error = settings(&[(name, value)]).expect_err(name);
        assert_eq!(error.variable, name, "{error}");
        assert!(error.to_string().starts_with(&format!("invalid configuration: {name}: ")));
    }
}

#[test]
fn api_keys_of_only_commas_and_blanks_are_refused_not_read_as_auth_off() {
    for raw in [" , ", ",", "  ", ",,, ,"] {
        let error = settings(&[(API_KEYS, raw)]).expect_err(raw);
        assert_eq!(error.variable, API_KEYS, "{raw:?}");
    }
    assert!(settings(&[(API_KEYS, "")]).expect("empty is auth off").access.api_keys.is_empty());
    assert_eq!(settings(&[(API_KEYS, " a , ,b ")]).expect("two keys").access.api_keys.len(), 2);
}

#[test]
fn the_recordings_budget_must_hold_at_least_one_largest_recording() {
    let error = settings(&[(AUDIO_BYTES_IN_FLIGHT, "1000000")]).expect_err("under one 10 MB upload");
    assert_eq!(error.variable, AUDIO_BYTES_IN_FLIGHT);
    assert!(settings(&[(AUDIO_BYTES_IN_FLIGHT, "3000000"), (AUDIO_MAX_BYTES, "100000")]).is_ok());
}

#[test]
fn max_in_flight_is_on_by_default_and_zero_turns_it_off() {
    assert_eq!(settings(&[]).expect("defaults").access.max_in_flight, 3000);
    assert_eq!(settings(&[(MAX_IN_FLIGHT, "0")]).expect("off").access.max_in_flight, 0);
}

#[test]
fn the_key_ceiling_defaults_to_a_hundred_users_worth() {
    assert_eq!(settings(&[]).expect("defaults").access.rate_limit_per_key_per_minute, 6000);
    assert_eq!(settings(&[(RATE_LIMIT_PER_MINUTE, "10")]).expect("valid").access.rate_limit_per_key_per_minute, 1000);
    assert_eq!(settings(&[(RATE_LIMIT_PER_KEY_PER_MINUTE, "0")]).expect("off").access.rate_limit_per_key_per_minute, 0);
    assert_eq!(settings(&[]).expect("defaults").access.rate_limit_lease, Duration::from_secs(1));
    assert_eq!(settings(&[(RATE_LIMIT_LEASE_MS, "0")]).expect("per request").access.rate_limit_lease, Duration::ZERO);
}

#[test]
fn kubernetes_requires_keys_and_defaults_to_json_logs() {
    let error = settings(&[(KUBERNETES_SERVICE_HOST, "10.0.0.1")]).expect_err("no api keys");
    assert_eq!(error.variable, API_KEYS);
    let error = settings(&[(KUBERNETES_SERVICE_HOST, "10.0.0.1"), (API_KEYS, "k")]).expect_err("no azure key");
    assert_eq!(error.variable, AZURE_SPEECH_KEY);
    let settings = settings(&[
        (KUBERNETES_SERVICE_HOST, "10.0.0.1"),
        (API_KEYS, "k1, k2"),
        (AZURE_SPEECH_KEY, "a"),
        (AZURE_SPEECH_REGION, "westeurope"),
        (GEMINI_API_KEY, "g"),
    ])
    .expect("complete kubernetes settings");
    assert!(settings.kubernetes);
    assert_eq!(settings.telemetry.log_format, LogFormat::Json);
    assert_eq!(settings.access.api_keys.len(), 2);
    assert!(matches!(&settings.upstreams.azure.target, AzureTarget::Cloud { base_url, transcription_url, .. }
        if base_url.as_str() == "https://westeurope.stt.speech.microsoft.com/"
            && transcription_url.as_str() == "https://westeurope.api.cognitive.microsoft.com/"));
}

#[test]
fn an_azure_key_needs_a_region_or_endpoint() {
    let error = settings(&[(AZURE_SPEECH_KEY, "a")]).expect_err("no region");
    assert_eq!(error.variable, AZURE_SPEECH_REGION);
    let ok = settings(&[(AZURE_SPEECH_KEY, "a"), (AZURE_SPEECH_ENDPOINT, "http://127.0.0.1:9999")]).expect("endpoint");
    assert!(
        matches!(&ok.upstreams.azure.target, AzureTarget::Cloud { transcription_url, .. }
        if transcription_url.as_str() == "http://127.0.0.1:9999/"),
        "a private endpoint serves both APIs"
    );
    let split = settings(&[
        (AZURE_SPEECH_KEY, "a"),
        (AZURE_SPEECH_REGION, "westeurope"),
        (AZURE_SPEECH_TRANSCRIPTION_ENDPOINT, "http://127.0.0.1:9998"),
    ])
    .expect("both");
    assert!(matches!(&split.upstreams.azure.target, AzureTarget::Cloud { base_url, transcription_url, .. }
        if base_url.host_str() == Some("westeurope.stt.speech.microsoft.com")
            && transcription_url.as_str() == "http://127.0.0.1:9998/"));
}

#[test]
fn the_playground_is_on_outside_kubernetes_off_in_it_and_the_variable_decides_either_way() {
    let playground = |kubernetes: bool, value: Option<&str>| {
        let mut pairs = vec![];
        if kubernetes {
            pairs.extend([
                (KUBERNETES_SERVICE_HOST, "10.0.0.1"),
                (API_KEYS, "k"),
                (AZURE_SPEECH_KEY, "a"),
                (AZURE_SPEECH_REGION, "westeurope"),
                (GEMINI_API_KEY, "g"),
            ]);
        }
        pairs.extend(value.map(|value| (PLAYGROUND_ENABLED, value)));
        settings(&pairs).expect("valid settings").server.playground_enabled
    };
    assert!(playground(false, None));
    assert!(!playground(true, None));
    assert!(!playground(false, Some("false")));
    assert!(playground(true, Some("true")));
}

#[test]
fn per_kind_ttls_override_the_default() {
    let settings = settings(&[(CACHE_TTL_SECONDS, "100"), (CACHE_TTL_ANALYSIS_SECONDS, "5")]).expect("valid");
    assert_eq!(settings.cache.ttl_transcription, Duration::from_secs(100));
    assert_eq!(settings.cache.ttl_analysis, Duration::from_secs(5));
}

#[test]
fn the_config_file_supplies_defaults_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("backend-ai.toml");
    std::fs::write(&path, "RATE_LIMIT_PER_MINUTE = 120\nPORT = 9000\nAPI_KEYS = [\"a\", \"b\"]\n").expect("write");
    let path = path.to_string_lossy().to_string();
    let settings = settings(&[(CONFIG_FILE, &path), (PORT, "9100")]).expect("valid");
    assert_eq!(settings.access.rate_limit_per_minute, 120);
    assert_eq!(settings.server.port, 9100);
    assert_eq!(settings.access.api_keys.len(), 2);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let settings = settings(&[(API_KEYS, "super-secret-key")]).expect("valid");
    assert!(!format!("{settings:?}").contains("super-secret-key"));
}

#[test]
fn contradictory_redis_settings_are_refused_naming_the_variable() {
    let cluster = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
    for (pairs, variable) in [
        (vec![(REDIS_URL, "redis://127.0.0.1:6379"), (REDIS_CLUSTER_NODES, cluster)], REDIS_CLUSTER_NODES),
        (vec![(REDIS_CLUSTER_NODES, cluster), (REDIS_SENTINELS, "redis://127.0.0.1:26379")], REDIS_SENTINELS),
        (vec![(REDIS_CLUSTER_NODES, "redis://127.0.0.1:7000/2")], REDIS_CLUSTER_NODES),
        (vec![(REDIS_CLUSTER_NODES, "redis://127.0.0.1:7000,rediss://127.0.0.1:7001")], REDIS_CLUSTER_NODES),
        (vec![(REDIS_CLUSTER_NODES, " , ")], REDIS_CLUSTER_NODES),
        (vec![(REDIS_SENTINELS, "redis://127.0.0.1:26379")], REDIS_SENTINEL_MASTER),
        (vec![(REDIS_SENTINEL_MASTER, "mymaster")], REDIS_SENTINEL_MASTER),
        (vec![(REDIS_KEY_PREFIX, "{tenant}:")], REDIS_KEY_PREFIX),
        (vec![(REDIS_CA_FILE, "/nonexistent/ca.pem")], REDIS_CA_FILE),
        (
            vec![(RATE_LIMIT_REDIS_URL, "redis://a:1"), (RATE_LIMIT_REDIS_CLUSTER_NODES, cluster)],
            RATE_LIMIT_REDIS_CLUSTER_NODES,
        ),
        (vec![(RATE_LIMIT_REDIS_URL, "http://limits")], RATE_LIMIT_REDIS_URL),
    ] {
        let error = settings(&pairs).expect_err(variable);
        assert_eq!(error.variable, variable, "{pairs:?}: {error}");
    }
}

#[test]
fn each_redis_topology_reads_as_set() {
    use crate::redis::Topology;
    let cluster =
        settings(&[(REDIS_CLUSTER_NODES, "rediss://:pw@10.0.0.1:7000, rediss://10.0.0.2:7000/0")]).expect("cluster");
    assert!(matches!(&cluster.redis.cache.topology, Topology::Cluster { seeds } if seeds.len() == 2));
    assert_eq!(cluster.redis.limits, None, "limits share the cache's store unless told otherwise");
    let sentinel = settings(&[
        (REDIS_SENTINELS, "redis://:data-pw@127.0.0.1:26379/3,redis://127.0.0.1:26380"),
        (REDIS_SENTINEL_MASTER, "mymaster"),
        (REDIS_SENTINEL_PASSWORD, "sentinel-pw"),
        (RATE_LIMIT_REDIS_URL, "redis://127.0.0.1:6380/0"),
    ])
    .expect("sentinel");
    match &sentinel.redis.cache.topology {
        Topology::Sentinel { sentinels, master, sentinel_password, password, db, tls } => {
            assert_eq!(sentinels, &["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"], "no password in addresses");
            assert_eq!((master.as_str(), *db, *tls), ("mymaster", 3, false));
            assert_eq!((sentinel_password.as_deref(), password.as_deref()), (Some("sentinel-pw"), Some("data-pw")));
        }
        other => panic!("not sentinel: {other:?}"),
    }
    let limits = sentinel.redis.limits.expect("a limits store");
    assert_eq!(limits.topology, Topology::Single { url: "redis://127.0.0.1:6380/0".to_string() });
    assert_eq!(settings(&[]).expect("defaults").redis.cache.key_prefix, "backend-ai:");
}

#[test]
fn the_wait_for_room_in_the_recordings_budget_is_whole_milliseconds_and_may_be_zero() {
    assert_eq!(settings(&[]).expect("defaults").audio.bytes_wait, Duration::from_millis(3000));
    assert_eq!(settings(&[(AUDIO_BYTES_WAIT_MS, "0")]).expect("refuse at once").audio.bytes_wait, Duration::ZERO);
    let error = settings(&[(AUDIO_BYTES_WAIT_MS, "2.5s")]).expect_err("not a number");
    assert_eq!(error.variable, AUDIO_BYTES_WAIT_MS);
}

#[test]
fn pronunciation_concurrency_defaults_to_four_and_must_be_positive() {
    assert_eq!(settings(&[]).expect("defaults").upstreams.azure.pronunciation_concurrency, 4);
    assert_eq!(
        settings(&[(PRONUNCIATION_CONCURRENCY, "8")]).expect("set").upstreams.azure.pronunciation_concurrency,
        8
    );
    assert!(settings(&[(PRONUNCIATION_CONCURRENCY, "0")]).is_err());
}
