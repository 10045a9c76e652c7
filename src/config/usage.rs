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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<UsageSettings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        usage_settings(&Vars { lookup: &lookup, file: HashMap::new() })
    }

    #[test]
    fn defaults_keep_35_days_with_budgets_off_at_gemini_flash_prices() {
        let settings = read(&[]).expect("defaults are valid");
        assert_eq!(settings, UsageSettings::default());
        assert_eq!(settings.budgets, Budgets { audio_seconds: 0, tokens: 0 });
        assert_eq!(settings.prices.tokens, TokenPrices::GEMINI_25_FLASH);
    }

    #[test]
    fn thinking_is_priced_as_output_unless_set() {
        let settings = read(&[(PRICE_OUTPUT_PER_MILLION_USD, "3")]).expect("valid");
        assert_eq!(settings.prices.tokens.thinking, 3.0);
        let settings =
            read(&[(PRICE_OUTPUT_PER_MILLION_USD, "3"), (PRICE_THINKING_PER_MILLION_USD, "1")]).expect("valid");
        assert_eq!(settings.prices.tokens.thinking, 1.0);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            (USAGE_RETENTION_DAYS, "0"),
            (USER_DAILY_TOKENS, "-5"),
            (USER_DAILY_AUDIO_SECONDS, "an hour"),
            (PRICE_AUDIO_HOUR_USD, "-1"),
            (PRICE_INPUT_PER_MILLION_USD, "inf"),
            (PRICE_MODELS, "gemini-2.5-pro"),
            (USAGE_BUFFER_MAX_ENTRIES, "0"),
        ] {
            let error = read(&[(name, value)]).expect_err(value);
            assert_eq!(error.variable, name, "{value}");
        }
    }
}
