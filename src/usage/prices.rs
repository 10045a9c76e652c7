//! Prices for `estimated_cost_usd`, from `PRICE_*` variables. The defaults and their sources
//! (checked 2026-12-07; prices change, so set them from your own contract):
//!
//! - Gemini 2.5 Flash, paid tier: $0.30 per million input tokens (text), $2.50 per million output
//!   tokens, thinking included (Google's pricing page as cited on 2026-03-15 by
//!   <https://pocketlantern.dev/briefs/gemini-2-0-and-2-5-model-shutdowns-and-replacements-2026>;
//!   the same figures at <https://openrouter.ai/blog/gemini-25-flash-api-pricing-quickstart-provider-comparison>).
//!   They are the default for every model without its own entry in `PRICE_MODELS`.
//! - Azure Speech, standard speech to text: $1.00 per audio hour (Azure's pay-as-you-go list
//!   price for real-time and fast transcription; the pricing page,
//!   <https://azure.microsoft.com/pricing/details/cognitive-services/speech-services/>, could not
//!   be re-read for this release: verify it). Pronunciation assessment: $1.30 per audio hour,
//!   what a customer reports paying (Microsoft Q&A 5574771); prosody is an add-on billed on top.

use std::collections::HashMap;

use super::record::{Counts, field};
use crate::metrics::labels::Operation;

/// Per-million-token prices of one model, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenPrices {
    pub input: f64,
    pub output: f64,
    pub thinking: f64,
}

impl TokenPrices {
    /// Gemini 2.5 Flash (see the module's sources).
    pub const GEMINI_25_FLASH: Self = Self { input: 0.30, output: 2.50, thinking: 2.50 };

    /// `input/output/thinking`, e.g. `0.30/2.50/2.50`; `thinking` may be left out (= output).
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<f64> = text.split('/').map(|part| part.trim().parse::<f64>().ok()).collect::<Option<_>>()?;
        if parts.iter().any(|price| !price.is_finite() || *price < 0.0) {
            return None;
        }
        match parts[..] {
            [input, output] => Some(Self { input, output, thinking: output }),
            [input, output, thinking] => Some(Self { input, output, thinking }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// `PRICE_AUDIO_HOUR_USD`: transcription (short audio and fast transcription).
    pub audio_hour: f64,
    /// `PRICE_PRONUNCIATION_AUDIO_HOUR_USD`.
    pub pronunciation_audio_hour: f64,
    /// `PRICE_INPUT_PER_MILLION_USD`, `PRICE_OUTPUT_PER_MILLION_USD`,
    /// `PRICE_THINKING_PER_MILLION_USD`: any model without its own prices.
    pub tokens: TokenPrices,
    /// `PRICE_MODELS`: `model=input/output[/thinking]`, comma-separated.
    pub models: HashMap<String, TokenPrices>,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            audio_hour: 1.00,
            pronunciation_audio_hour: 1.30,
            tokens: TokenPrices::GEMINI_25_FLASH,
            models: HashMap::new(),
        }
    }
}

impl Prices {
    /// `PRICE_MODELS`' value; `None` names what is wrong.
    pub fn parse_models(text: &str) -> Result<HashMap<String, TokenPrices>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (model, prices) =
                    entry.split_once('=').ok_or_else(|| format!("{entry:?} is not model=input/output[/thinking]"))?;
                let prices = TokenPrices::parse(prices)
                    .ok_or_else(|| format!("{entry:?}: prices must be non-negative numbers like 0.30/2.50"))?;
                Ok((model.trim().to_owned(), prices))
            })
            .collect()
    }

    fn for_model(&self, model: &str) -> TokenPrices {
        self.models.get(model).copied().unwrap_or(self.tokens)
    }

    fn audio_hour(&self, operation: Operation) -> f64 {
        match operation {
            Operation::Pronunciation => self.pronunciation_audio_hour,
            Operation::Transcribe | Operation::Analyze => self.audio_hour,
        }
    }

    /// Estimated cost of one day's counts, in US dollars, rounded to a millionth.
    pub fn cost(&self, counts: &Counts) -> f64 {
        let mut cost = 0.0;
        for operation in Operation::ALL {
            let ms = counts.get(&field::op(operation.as_str(), field::AUDIO_MS)) as f64;
            cost += ms / 3_600_000.0 * self.audio_hour(operation);
        }
        for (name, count) in counts.iter() {
            let Some(rest) = name.strip_prefix("model:") else { continue };
            let Some((model, kind)) = rest.rsplit_once(':') else { continue };
            let prices = self.for_model(model);
            let per_million = match kind {
                "input" => prices.input,
                "output" => prices.output,
                "thinking" => prices.thinking,
                _ => continue,
            };
            cost += count as f64 / 1_000_000.0 * per_million;
        }
        (cost * 1_000_000.0).round() / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::record::{ModelTokens, Spend, TokenUsage};

    #[test]
    fn a_million_gemini_flash_tokens_each_way_cost_the_list_price() {
        let mut spend = Spend::new(Operation::Analyze, false);
        spend.add_tokens(ModelTokens {
            provider: "gemini",
            model: "gemini-2.5-flash".into(),
            usage: TokenUsage { input: 1_000_000, output: 1_000_000, thinking: 1_000_000 },
        });
        assert_eq!(Prices::default().cost(&spend.counts()), 0.30 + 2.50 + 2.50);
    }

    #[test]
    fn audio_is_priced_by_operation_and_models_by_their_own_entry() {
        let mut counts = Counts::default();
        let mut transcribe = Spend::new(Operation::Transcribe, false);
        transcribe.add_audio(3600.0);
        counts.merge(&transcribe.counts());
        let mut assess = Spend::new(Operation::Pronunciation, false);
        assess.add_audio(1800.0);
        counts.merge(&assess.counts());
        let mut analysis = Spend::new(Operation::Analyze, false);
        analysis.add_tokens(ModelTokens {
            provider: "openai_compatible",
            model: "llama3:8b".into(),
            usage: TokenUsage { input: 2_000_000, output: 0, thinking: 0 },
        });
        counts.merge(&analysis.counts());
        let prices =
            Prices { models: Prices::parse_models("llama3:8b=0.05/0.10").expect("valid"), ..Prices::default() };
        assert_eq!(prices.cost(&counts), 1.00 + 0.65 + 0.10);
    }

    #[test]
    fn model_prices_are_read_strictly() {
        assert_eq!(
            Prices::parse_models(" gemini-2.5-pro=1.25/10 ").expect("valid")["gemini-2.5-pro"],
            TokenPrices { input: 1.25, output: 10.0, thinking: 10.0 }
        );
        for bad in ["gemini", "m=1", "m=1/x", "m=-1/2", "m=1/2/3/4", "m=NaN/1"] {
            assert!(Prices::parse_models(bad).is_err(), "{bad}");
        }
    }
}
