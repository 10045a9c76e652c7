//! Simulated OpenAI-compatible API (UPSTREAMS.md part B, 6 and 7): `POST /v1/chat/completions`
//! answering with the same deterministic analysis the simulated Gemini gives, and
//! `POST /v1/audio/transcriptions` answering `verbose_json` with the sentence the simulated
//! Azure would recognise in the same audio.
//!
//! Requests are read as strictly as OpenAI reads them: an unknown field (vLLM's legacy
//! `guided_json`, say) is a 400, so a client that drifted from the documented shape fails here
//! rather than being silently ignored as vLLM 0.12+ would. Faults are the simulator's usual
//! ones; a malformed reply here is the object encoded once more as a JSON string, as some
//! servers without strict schema support send it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{Fault, Simulator, azure, gemini};
use crate::analysis::prompt;

/// Like the simulated Azure: ample for any recording the service sends.
const MAX_AUDIO_BYTES: usize = 64 * 1024 * 1024;

pub fn router(simulator: Simulator) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/audio/transcriptions", post(transcriptions))
        .layer(DefaultBodyLimit::max(MAX_AUDIO_BYTES))
        .with_state(simulator)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    _seed: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<String>,
}

fn error(status: StatusCode, kind: &str, message: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message, None)
}

/// OpenAI's answer when a bearer token is sent but empty; no token at all is allowed, as on the
/// local servers this stands in for.
fn bad_key(headers: &HeaderMap) -> Option<Response> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().unwrap_or("");
    let key = value.strip_prefix("Bearer ").unwrap_or("").trim();
    key.is_empty().then(|| {
        error(StatusCode::UNAUTHORIZED, "invalid_request_error", "Incorrect API key provided.", Some("invalid_api_key"))
    })
}

/// The configured model faults (unavailable, retired), then a drawn one; `None` to answer.
async fn fault(simulator: &Simulator, model: &str) -> Option<Response> {
    let config = simulator.config();
    if config.retired_models.iter().any(|retired| retired == model) {
        return Some(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("The model `{model}` does not exist or you do not have access to it."),
            Some("model_not_found"),
        ));
    }
    if config.unavailable_models.iter().any(|down| down == model) {
        return Some(error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "The server is overloaded.", None));
    }
    match simulator.before_answer().await {
        Some(Fault::RateLimited) => {
            let seconds = config.retry_after_seconds;
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                &format!("Rate limit reached for {model} on requests per min (RPM). Please try again in {seconds}s."),
                Some("rate_limit_exceeded"),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Some(response)
        }
        Some(Fault::ServerError) => {
            Some(error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "The server is overloaded.", None))
        }
        Some(Fault::Malformed) | Some(Fault::Hang) | None => None,
    }
}

async fn chat(State(simulator): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = bad_key(&headers) {
        return refusal;
    }
    let request: ChatBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse_error) => return bad_request(&format!("Invalid request body: {parse_error}")),
    };
    if request.stream == Some(true) {
        return bad_request("The simulator does not stream.");
    }
    if request.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return bad_request("Invalid 'temperature': expected a number from 0 to 2.");
    }
    if request.max_tokens.is_some() && request.max_completion_tokens.is_some() {
        return bad_request("Set max_tokens or max_completion_tokens, not both.");
    }
    if let Some(format) = &request.response_format {
        let kind = format.get("type").and_then(Value::as_str).unwrap_or("");
        let schema_ok = format.pointer("/json_schema/schema").is_some_and(Value::is_object)
            && format.pointer("/json_schema/name").is_some_and(Value::is_string);
        let accepted = matches!(kind, "text" | "json_object") || (kind == "json_schema" && schema_ok);
        if !accepted {
            return bad_request(
                "Invalid 'response_format': expected text, json_object, or json_schema with a name and a schema.",
            );
        }
    }
    if let Some(role) = request
        .messages
        .iter()
        .map(|m| m.role.as_str())
        .find(|r| !matches!(*r, "system" | "developer" | "user" | "assistant"))
    {
        return bad_request(&format!("Invalid value for 'messages.role': {role:?}."));
    }
    if let Some(refusal) = fault(&simulator, &request.model).await {
        return refusal;
    }
    let user: String = request
        .messages
        .iter()
        .filter(|message| message.role == "user")
        .filter_map(|message| message.content.as_deref())
        .collect();
    let learner_text = prompt::learner_text_from_prompt(&user).unwrap_or_else(|| user.clone());
    let analysis = gemini::teacher::assess(&learner_text);
    let json_text = serde_json::to_string(&analysis).unwrap_or_default();
    // Drawn again rather than kept from `fault`: a malformed reply is still a 200.
    let content = if rand::random::<f64>() < simulator.config().malformed_rate {
        Value::String(json_text.clone()).to_string()
    } else {
        json_text
    };
    let prompt_tokens = (user.chars().count() as u64).div_ceil(4);
    let completion_tokens = (content.chars().count() as u64).div_ceil(4);
    let id: String = uuid::Uuid::new_v4().simple().to_string();
    let body = json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": 0}
        }
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn transcriptions(State(simulator): State<Simulator>, headers: HeaderMap, mut form: Multipart) -> Response {
    if let Some(refusal) = bad_key(&headers) {
        return refusal;
    }
    let (mut file, mut model, mut format, mut language) = (None, None, None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(multipart_error) => return bad_request(&format!("Invalid multipart body: {multipart_error}")),
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let Ok(bytes) = field.bytes().await else { return bad_request("Invalid multipart body") };
        match name.as_str() {
            "file" => file = Some((file_name.unwrap_or_default(), bytes)),
            "model" => model = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "response_format" => format = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "language" => language = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "prompt" | "temperature" | "timestamp_granularities[]" => {}
            other => return bad_request(&format!("Unrecognized request argument supplied: {other}")),
        }
    }
    let Some((file_name, audio)) = file else { return bad_request("Missing required parameter: 'file'.") };
    let Some(model) = model else { return bad_request("Missing required parameter: 'model'.") };
    let known = ["flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"];
    let extension = file_name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    if !known.contains(&extension.as_str()) {
        return bad_request(&format!("Invalid file format. Supported formats: {known:?}"));
    }
    if language.as_deref().is_some_and(|code| code.len() != 2 || !code.bytes().all(|b| b.is_ascii_lowercase())) {
        return bad_request("Invalid language: expected an ISO-639-1 code such as 'en'.");
    }
    if let Some(refusal) = fault(&simulator, &model).await {
        return refusal;
    }
    let text = azure::sentence_for(&audio);
    // Roughly: 16 kHz 16-bit mono WAV, else a guess from the size; the service reads either.
    let duration = if extension == "wav" {
        audio.len().saturating_sub(44) as f64 / 32_000.0
    } else {
        audio.len() as f64 / 4_000.0
    };
    let duration = (duration * 100.0).round() / 100.0;
    let verbose = format.as_deref() == Some("verbose_json");
    let body = if verbose {
        json!({
            "task": "transcribe",
            "language": "english",
            "duration": duration,
            "text": text,
            "segments": [{
                "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": format!(" {text}"),
                "tokens": [], "temperature": 0.0, "avg_logprob": -0.12, "compression_ratio": 1.1, "no_speech_prob": 0.01
            }]
        })
    } else {
        json!({"text": text})
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::simulator::SimConfig;

    async fn post_json(simulator: Simulator, body: Value) -> (StatusCode, Value) {
        let request = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let response = router(simulator).oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    fn chat_body(model: &str) -> Value {
        json!({
            "model": model,
            "messages": [
                {"role": "system", "content": prompt::system_instruction()},
                {"role": "user", "content": prompt::user_prompt("I go to the store yesterday.")}
            ],
            "temperature": 0.2,
            "max_tokens": 8192,
            "response_format": crate::upstream::openai_compat::json_schema("analysis", &prompt::response_schema()),
            "stream": false
        })
    }

    #[tokio::test]
    async fn a_chat_completion_carries_the_analysis_as_its_content() {
        let (status, body) = post_json(Simulator::default(), chat_body("sim-chat")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["model"], "sim-chat");
        let content = body["choices"][0]["message"]["content"].as_str().expect("content");
        let analysis: Value = serde_json::from_str(content).expect("json");
        assert!(analysis["errors"].is_array() && analysis["cefr_assessment"].is_object(), "{analysis}");
    }

    #[tokio::test]
    async fn the_legacy_guided_json_is_refused_not_ignored() {
        let mut body = chat_body("sim-chat");
        body["guided_json"] = json!({"type": "object"});
        let (status, answer) = post_json(Simulator::default(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }

    #[tokio::test]
    async fn configured_models_are_unavailable_or_retired() {
        let simulator = Simulator::new(SimConfig {
            unavailable_models: vec!["down".into()],
            retired_models: vec!["gone".into()],
            ..SimConfig::default()
        });
        assert_eq!(post_json(simulator.clone(), chat_body("down")).await.0, StatusCode::SERVICE_UNAVAILABLE);
        let (status, body) = post_json(simulator, chat_body("gone")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("model_not_found")));
    }
}
