//! `USAGE_*`, `USER_DAILY_*` and `PRICE_*`: usage accounting, budgets and prices.

use super::names::*;
use super::vars::{Vars, invalid};
use crate::config::ConfigError;
use crate::usage::{Budgets, Prices, TokenPrices, UsageSettings};

pub(super) fn usage_settings<F: Fn(&str) -> Option<String>>(vars: &Vars<'_, F>) -> Result<UsageSettings, ConfigError> {
    let defaults = Prices::default();
    let price = |name: &'static str, default: f64| -> Result<f64, ConfigError> {
        match vars.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
                _ => Err(invalid(name, format!("must be a price in US dollars, 0 or more (got {raw:?})"))),
            },
        }
    };
    let output = price(PRICE_OUTPUT_PER_MILLION_USD, defaults.tokens.output)?;
    let prices = Prices {
        audio_hour: price(PRICE_AUDIO_HOUR_USD, defaults.audio_hour)?,
        pronunciation_audio_hour: price(PRICE_PRONUNCIATION_AUDIO_HOUR_USD, defaults.pronunciation_audio_hour)?,
        tokens: TokenPrices {
            input: price(PRICE_INPUT_PER_MILLION_USD, defaults.tokens.input)?,
            output,
            // Thinking is billed as output unless said otherwise.
            thinking: price(PRICE_THINKING_PER_MILLION_USD, output)?,
        },
        models: match vars.get(PRICE_MODELS) {
            None => defaults.models,
            Some(raw) => Prices::parse_models(&raw).map_err(|message| invalid(PRICE_MODELS, message))?,
        },
    };
    Ok(UsageSettings {
        retention_days: vars.number(USAGE_RETENTION_DAYS, 35u32, 1)?,
        budgets: Budgets {
            audio_seconds: vars.number(USER_DAILY_AUDIO_SECONDS, 0u64, 0)?,
            tokens: vars.number(USER_DAILY_TOKENS, 0u64, 0)?,
        },
        prices,
        buffer_max_entries: vars.number(USAGE_BUFFER_MAX_ENTRIES, 10_000usize, 1)?,
    })
}
