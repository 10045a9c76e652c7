//! `backend-ai`: serve (default), `backend-ai healthcheck` (for container health checks) or
//! `backend-ai simulator [PORT]` (the upstream simulator alone, for benchmarks).

use std::process::ExitCode;

use backend_ai::app::App;
use backend_ai::config::Settings;
use backend_ai::{simulator, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("healthcheck") => healthcheck().await,
        Some("simulator") => run_simulator(args.get(1)).await,
        Some(other) => {
            eprintln!("backend-ai: unknown command {other:?}; use `serve`, `healthcheck` or `simulator [PORT]`");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("backend-ai: {error}");
            return ExitCode::from(2);
        }
    };
    let _logs = telemetry::init(settings.telemetry.log_format);
    let app = match App::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "start-up failed");
            eprintln!("backend-ai: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.local_addr() {
        Ok(address) => tracing::info!(%address, "listening"),
        Err(error) => tracing::warn!(%error, "listening on an unknown address"),
    }
    match app.run_until_stopped(stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM (Kubernetes, docker stop) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// GET http://127.0.0.1:$PORT/health; exit 0 when it answers 200. The runtime image has no curl.
async fn healthcheck() -> ExitCode {
    let port = std::env::var("PORT").ok().and_then(|port| port.parse::<u16>().ok()).unwrap_or(8000);
    let client = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build() {
        Ok(client) => client,
        Err(_) => return ExitCode::FAILURE,
    };
    match client.get(format!("http://127.0.0.1:{port}/health")).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

async fn run_simulator(port: Option<&String>) -> ExitCode {
    let _logs = telemetry::init(telemetry::LogFormat::Pretty);
    let port = match port.map(|port| port.parse::<u16>()) {
        None => 9000,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("backend-ai: simulator PORT must be a number");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("backend-ai: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("backend-ai: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port, "simulator listening");
    let simulator = simulator::Simulator::new(settings.upstreams.simulator.config());
    match simulator.serve(listener, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
