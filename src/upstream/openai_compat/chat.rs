//! `POST {base}/chat/completions`: one system and one user message, a JSON-schema response
//! format, the first choice's content back.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::classify_error;
use super::{MAX_CHAT_REPLY_BYTES, OpenAiCompatClient, UPSTREAM, transport_error};
use crate::upstream::UpstreamError;
use crate::upstream::reply::read_capped;

/// One completion: the same prompt the Gemini link sends, in chat form.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: Cow<'static, str>,
    pub user: String,
    /// The whole `response_format` object (see [`super::json_schema`]).
    pub response_format: Arc<Value>,
    pub temperature: f32,
    pub max_tokens: u32,
}

/// Token counts as the server reported them; absent counts are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatUsage {
    pub prompt: u64,
    pub completion: u64,
    /// `completion_tokens_details.reasoning_tokens` (OpenAI's reasoning models), part of
    /// `completion`.
    pub reasoning: u64,
}

/// A usable reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    /// The first choice's text; may be cut short when `finish_reason` is `length`.
    pub text: String,
    pub finish_reason: Option<String>,
    /// The model the server says answered (an alias may resolve to a dated snapshot).
    pub model: Option<String>,
    pub usage: ChatUsage,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    temperature: f32,
    /// `max_tokens`, not `max_completion_tokens`: every server listed reads it (Ollama and
    /// llama.cpp do not all read the newer name); only OpenAI's reasoning models refuse it.
    max_tokens: u32,
    response_format: &'a Value,
    stream: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ReplyMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ReplyMessage {
    /// A string on every server seen; some proxies send an array of `{type, text}` parts.
    #[serde(default)]
    content: Option<Value>,
    /// OpenAI's structured-output refusal, in place of content.
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl OpenAiCompatClient {
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, UpstreamError> {
        let authorization = self.authorization()?;
        let body = Body {
            model: &request.model,
            messages: [
                Message { role: "system", content: &request.system },
                Message { role: "user", content: &request.user },
            ],
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            response_format: &request.response_format,
            stream: false,
        };
        let body = serde_json::to_vec(&body).expect("a request of strings and numbers serialises");
        let http = self.inner.http.lease();
        let mut call =
            http.post(self.inner.chat_url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        if let Some(authorization) = authorization {
            call = call.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = call.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = read_capped(response, MAX_CHAT_REPLY_BYTES, UPSTREAM, transport_error).await?;
        drop(http);
        if (200..300).contains(&status) {
            read_reply(&bytes)
        } else {
            Err(classify_error(status, &headers, &bytes, SystemTime::now()))
        }
    }
}

/// A 2xx body. A content filter or a refusal is a content decision (`Blocked`, not retried,
/// not handed over: the next model would be asked the same); a missing choice is unreadable.
fn read_reply(bytes: &[u8]) -> Result<ChatReply, UpstreamError> {
    let completion: Completion = serde_json::from_slice(bytes).map_err(|error| UpstreamError::InvalidResponse {
        upstream: UPSTREAM,
        message: format!("chat completion body: {error}"),
    })?;
    let usage = completion.usage.map_or_else(ChatUsage::default, |usage| ChatUsage {
        prompt: usage.prompt_tokens.unwrap_or(0),
        completion: usage.completion_tokens.unwrap_or(0),
        reasoning: usage.completion_tokens_details.and_then(|details| details.reasoning_tokens).unwrap_or(0),
    });
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(UpstreamError::InvalidResponse { upstream: UPSTREAM, message: "no choices".to_string() });
    };
    if choice.finish_reason.as_deref() == Some("content_filter") {
        return Err(UpstreamError::Blocked { upstream: UPSTREAM, reason: "content_filter".to_string() });
    }
    let message = choice.message.unwrap_or(ReplyMessage { content: None, refusal: None });
    if let Some(refusal) = message.refusal.filter(|refusal| !refusal.trim().is_empty()) {
        return Err(UpstreamError::Blocked { upstream: UPSTREAM, reason: format!("refusal: {refusal}") });
    }
    let text = match message.content {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect::<String>()
        }
        _ => String::new(),
    };
    Ok(ChatReply { text, finish_reason: choice.finish_reason, model: completion.model, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_completion_is_read_with_its_usage() {
        // The shape of OpenAI's documented chat completion object.
        let body = br#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"{\"errors\":[]}","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#;
        let reply = read_reply(body).expect("a reply");
        assert_eq!(reply.text, "{\"errors\":[]}");
        assert_eq!(reply.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(reply.usage, ChatUsage { prompt: 1117, completion: 46, reasoning: 0 });
    }

    #[test]
    fn a_refusal_or_a_content_filter_is_a_block() {
        let refusal = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I cannot assist with that request."},"finish_reason":"stop"}]}"#;
        assert!(matches!(read_reply(refusal), Err(UpstreamError::Blocked { .. })));
        let filtered = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}"#;
        assert!(matches!(read_reply(filtered), Err(UpstreamError::Blocked { .. })));
    }

    #[test]
    fn no_choices_is_unreadable_and_a_cut_reply_is_still_a_reply() {
        assert!(matches!(read_reply(br#"{"choices":[]}"#), Err(UpstreamError::InvalidResponse { .. })));
        assert!(matches!(read_reply(b"<html>"), Err(UpstreamError::InvalidResponse { .. })));
        // llama.cpp's server: usage without details, and a `timings` object beside it.
        let cut = br#"{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":"{\"errors\": [{\"type\""}}],"created":1,"model":"qwen2.5","object":"chat.completion","usage":{"completion_tokens":8,"prompt_tokens":30,"total_tokens":38},"timings":{"prompt_n":30}}"#;
        let reply = read_reply(cut).expect("parsed later, leniently");
        assert_eq!(reply.finish_reason.as_deref(), Some("length"));
        assert_eq!(reply.usage.completion, 8);
    }

    #[test]
    fn content_given_as_parts_is_joined() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"{\"a\":"},{"type":"text","text":"1}"}]},"finish_reason":"stop"}]}"#;
        assert_eq!(read_reply(body).expect("reply").text, "{\"a\":1}");
    }
}
