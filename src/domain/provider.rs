//! Who made an answer: `meta.provider` on the wire.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Google Gemini `generateContent`.
    Gemini,
    /// A server of OpenAI's API (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, LiteLLM...).
    OpenaiCompatible,
    /// Azure Speech.
    Azure,
}

impl Provider {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gemini => "gemini",
            Self::OpenaiCompatible => "openai_compatible",
            Self::Azure => "azure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_spelling_is_the_label_spelling() {
        for provider in [Provider::Gemini, Provider::OpenaiCompatible, Provider::Azure] {
            assert_eq!(serde_json::to_value(provider).expect("serialises"), provider.as_str());
        }
    }
}
