//! The `generateContent` request body, assembled from shared pieces.
//!
//! All of a body but the learner's text is the same from call to call: the system prompt and
//! the response schema, about 3.5 KB of JSON. Serialising that per call cost string escaping on
//! every miss and a private copy per call in flight, which adds up with thousands of calls
//! waiting on the model. So the body goes out as three chunks: a constant opening, the learner's
//! text as a JSON string, and the rest, serialised once and shared. The bytes on the wire are
//! exactly what serialising the whole request would give (tested below).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use parking_lot::Mutex;

use super::GenerateRequest;
use super::wire;

/// How every body starts: `contents` is the first field and holds the one user turn.
const OPENING: &[u8] = br#"{"contents":[{"role":"user","parts":[{"text":"#;

/// What follows the learner's text, for one set of constant fields.
#[derive(Debug)]
struct Tail {
    request: GenerateRequest,
    bytes: Bytes,
}

impl Tail {
    fn new(request: &GenerateRequest) -> Self {
        let template = GenerateRequest { user_text: String::new(), ..request.clone() };
        let whole = serde_json::to_vec(&wire_request(&template)).expect("the wire request always serialises");
        // `"text":""` with the empty text: the tail starts after its two quotes.
        let start = OPENING.len() + 2;
        debug_assert!(whole.starts_with(OPENING) && whole[OPENING.len()..start] == *b"\"\"");
        Self { request: template, bytes: Bytes::copy_from_slice(&whole[start..]) }
    }

    /// Whether `request` differs from the template only in its text.
    fn fits(&self, request: &GenerateRequest) -> bool {
        let (template, other) = (&self.request, request);
        template.system_instruction == other.system_instruction
            && template.temperature.to_bits() == other.temperature.to_bits()
            && template.max_output_tokens == other.max_output_tokens
            && template.thinking_budget == other.thinking_budget
            && match (&template.response_schema, &other.response_schema) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            }
    }
}

/// The whole request as serde would write it.
pub(super) fn wire_request(request: &GenerateRequest) -> wire::GenerateContentRequest<'_> {
    wire::GenerateContentRequest {
        contents: [wire::Content { role: Some("user"), parts: [wire::TextPart { text: &request.user_text }] }],
        system_instruction: wire::Content { role: None, parts: [wire::TextPart { text: &request.system_instruction }] },
        generation_config: wire::GenerationConfig {
            temperature: request.temperature,
            max_output_tokens: request.max_output_tokens,
            response_mime_type: request.response_schema.as_ref().map(|_| "application/json"),
            response_schema: request.response_schema.as_deref(),
            thinking_config: request.thinking_budget.map(|thinking_budget| wire::ThinkingConfig { thinking_budget }),
        },
    }
}

/// Builds bodies, keeping the tail of the last request shape it saw (the service sends one).
#[derive(Debug, Clone, Default)]
pub(super) struct BodyBuilder {
    last: Arc<Mutex<Option<Arc<Tail>>>>,
}

impl BodyBuilder {
    pub(super) fn body(&self, request: &GenerateRequest) -> Chunks {
        let tail = {
            let mut last = self.last.lock();
            match last.as_ref() {
                Some(tail) if tail.fits(request) => tail.clone(),
                _ => {
                    let tail = Arc::new(Tail::new(request));
                    *last = Some(tail.clone());
                    tail
                }
            }
        };
        let text = serde_json::to_vec(&request.user_text).expect("a string always serialises");
        Chunks::new([Bytes::from_static(OPENING), Bytes::from(text), tail.bytes.clone()])
    }
}

/// A body of a few ready chunks, with its exact length (so it goes out with `Content-Length`).
#[derive(Debug)]
pub(super) struct Chunks {
    chunks: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: std::collections::VecDeque<Bytes> = chunks.into_iter().filter(|chunk| !chunk.is_empty()).collect();
        let remaining = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        Self { chunks, remaining }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.chunks.pop_front().map(|chunk| {
            self.remaining -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use serde_json::json;

    use super::*;

    fn request(text: &str, instruction: &'static str, schema: Option<Arc<serde_json::Value>>) -> GenerateRequest {
        GenerateRequest {
            system_instruction: instruction.into(),
            user_text: text.to_string(),
            response_schema: schema,
            temperature: 0.2,
            max_output_tokens: 2048,
            thinking_budget: Some(0),
        }
    }

    async fn bytes(body: Chunks) -> Vec<u8> {
        let hint = http_body::Body::size_hint(&body).exact();
        let collected = body.collect().await.expect("infallible").to_bytes().to_vec();
        assert_eq!(hint, Some(collected.len() as u64), "the length announced is the length sent");
        collected
    }

    #[tokio::test]
    async fn the_body_is_byte_for_byte_what_serde_writes_for_the_whole_request() {
        let schema = Arc::new(json!({"type": "OBJECT", "properties": {"level": {"type": "STRING"}}}));
        let builder = BodyBuilder::default();
        let texts = ["I go to school yesterday.", "", "quote \" backslash \\ newline \n tab \t", "émoji 🎉 \u{0001}"];
        let requests = [
            request(texts[0], "You are a tutor.", Some(schema.clone())),
            request(texts[1], "You are a tutor.", Some(schema.clone())),
            // The constant part changes: the shared tail must follow, not be reused.
            request(texts[2], "You are a \"strict\" tutor.\n", Some(schema.clone())),
            request(texts[3], "You are a \"strict\" tutor.\n", None),
            GenerateRequest { temperature: 0.7, thinking_budget: None, ..request(texts[0], "x", None) },
            GenerateRequest { max_output_tokens: 10, ..request(texts[0], "x", None) },
            request(texts[0], "You are a tutor.", Some(Arc::new((*schema).clone()))),
        ];
        for request in &requests {
            let expected = serde_json::to_vec(&wire_request(request)).expect("serialises");
            assert_eq!(
                String::from_utf8(bytes(builder.body(request)).await).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8"),
            );
        }
    }

    #[test]
    fn calls_of_one_shape_share_one_tail() {
        let builder = BodyBuilder::default();
        let first = builder.body(&request("a", "You are a tutor.", None));
        let second = builder.body(&request("b", "You are a tutor.", None));
        assert_eq!(first.chunks[2].as_ptr(), second.chunks[2].as_ptr(), "the tail is shared, not copied");
    }
}
