//! The second paths: the analysis chain after `GEMINI_MODEL` (`GEMINI_FALLBACK_MODELS`, then an
//! OpenAI-compatible model) and the transcription fallback after Azure.
//!
//! With no keys the built-in simulator speaks both OpenAI-compatible APIs too: naming a model
//! (`OPENAI_MODEL`, `TRANSCRIBE_FALLBACK_MODEL`) without a base URL while the primary upstream
//! is simulated sends that link to the simulator, so a fallback can be seen on a laptop.

use std::time::Duration;

use url::Url;

use crate::config::names::*;
use crate::config::vars::{ConfigError, Vars, invalid, parse_http_url};
use crate::secret::Secret;

/// `ANALYSIS_FALLBACK_AFTER_SECONDS`' default.
pub const DEFAULT_FALLBACK_AFTER_SECONDS: u64 = 10;
/// `TRANSCRIBE_FALLBACK_MODEL`'s default: OpenAI's name, which whisper.cpp's server ignores.
pub const DEFAULT_TRANSCRIBE_FALLBACK_MODEL: &str = "whisper-1";

/// Where an OpenAI-compatible link's calls go.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiTarget {
    /// `{base}` including its `/v1`; the key, when set, is sent as a Bearer token.
    Remote { base_url: Url, key: Option<Secret> },
    /// The built-in simulator's OpenAI-compatible endpoints.
    Simulator,
}

/// One OpenAI-compatible link: where, and which model.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiLink {
    pub target: OpenAiTarget,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FallbackSettings {
    /// `GEMINI_FALLBACK_MODELS`, in order, none equal to `GEMINI_MODEL` or to each other.
    pub gemini_models: Vec<String>,
    /// The analysis chain's last link.
    pub openai: Option<OpenAiLink>,
    /// `ANALYSIS_FALLBACK_AFTER_SECONDS`: how long a link that has a next one may take.
    pub after: Duration,
    /// `/api/transcribe`'s second path.
    pub transcribe: Option<OpenAiLink>,
}

impl FallbackSettings {
    /// Whether the analysis chain has more than its first link.
    pub fn has_analysis_fallback(&self) -> bool {
        !self.gemini_models.is_empty() || self.openai.is_some()
    }
}

/// `primary` is `GEMINI_MODEL`; `*_simulated` say whether that upstream runs on the simulator.
pub(in crate::config) fn fallback_settings(
    vars: &Vars<'_>,
    primary: &str,
    upstream_timeout: Duration,
    gemini_simulated: bool,
    azure_simulated: bool,
) -> Result<FallbackSettings, ConfigError> {
    let mut gemini_models: Vec<String> = Vec::new();
    for model in vars.get(GEMINI_FALLBACK_MODELS).unwrap_or_default().split(',').map(str::trim) {
        if model.is_empty() {
            continue;
        }
        if !model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(invalid(
                GEMINI_FALLBACK_MODELS,
                format!("{model:?} is not a model id such as gemini-2.5-flash-lite"),
            ));
        }
        if model == primary || gemini_models.iter().any(|known| known == model) {
            return Err(invalid(GEMINI_FALLBACK_MODELS, format!("lists {model} twice (or as GEMINI_MODEL too)")));
        }
        gemini_models.push(model.to_string());
    }
    let openai = link(vars, OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL, None, gemini_simulated)?;
    let transcribe = link(
        vars,
        TRANSCRIBE_FALLBACK_BASE_URL,
        TRANSCRIBE_FALLBACK_API_KEY,
        TRANSCRIBE_FALLBACK_MODEL,
        Some(DEFAULT_TRANSCRIBE_FALLBACK_MODEL),
        azure_simulated,
    )?;
    let after = vars.seconds(ANALYSIS_FALLBACK_AFTER_SECONDS, DEFAULT_FALLBACK_AFTER_SECONDS, 1)?;
    let settings = FallbackSettings { gemini_models, openai, after, transcribe };
    // Only a chain needs room for its second link: without one the variable means nothing, and
    // a short UPSTREAM_TIMEOUT_SECONDS that worked before must keep working.
    if settings.has_analysis_fallback() && after >= upstream_timeout {
        return Err(invalid(
            ANALYSIS_FALLBACK_AFTER_SECONDS,
            format!(
                "must be less than UPSTREAM_TIMEOUT_SECONDS ({}), or the next link never gets time to answer",
                upstream_timeout.as_secs()
            ),
        ));
    }
    Ok(settings)
}

/// An OpenAI-compatible link from its base URL, key and model variables. `default_model`
/// applies once a base URL is set; without one, a model named explicitly while the primary is
/// simulated means the simulator.
fn link(
    vars: &Vars<'_>,
    base_var: &'static str,
    key_var: &'static str,
    model_var: &'static str,
    default_model: Option<&str>,
    primary_simulated: bool,
) -> Result<Option<OpenAiLink>, ConfigError> {
    let base = vars.get(base_var).filter(|raw| !raw.trim().is_empty());
    let named = vars.get(model_var).map(|raw| raw.trim().to_string()).filter(|model| !model.is_empty());
    if let Some(model) = &named
        && (model.len() > 200 || model.chars().any(char::is_control))
    {
        return Err(invalid(model_var, "must be a model id of at most 200 printable characters"));
    }
    let target = match (&base, &named) {
        (Some(raw), _) => OpenAiTarget::Remote {
            base_url: parse_http_url(base_var, raw)?,
            key: vars.get(key_var).map(|key| key.trim().to_string()).filter(|key| !key.is_empty()).map(Secret::new),
        },
        (None, Some(_)) if primary_simulated => OpenAiTarget::Simulator,
        (None, Some(_)) if default_model.is_none() => {
            return Err(invalid(base_var, format!("is required when {model_var} is set")));
        }
        (None, _) => return Ok(None),
    };
    let model = match (named, default_model) {
        (Some(model), _) => model,
        (None, Some(default)) => default.to_string(),
        (None, None) => return Err(invalid(model_var, format!("is required when {base_var} is set"))),
    };
    Ok(Some(OpenAiLink { target, model }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)], simulated: bool) -> Result<FallbackSettings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| map.get(name).cloned();
        let vars = Vars { lookup: &lookup, file: HashMap::new() };
        fallback_settings(&vars, "gemini-2.5-flash", Duration::from_secs(30), simulated, simulated)
    }

    #[test]
    fn nothing_set_is_no_fallback_at_all() {
        let settings = parse(&[], true).expect("valid");
        assert!(!settings.has_analysis_fallback());
        assert_eq!((settings.openai, settings.transcribe), (None, None));
        assert_eq!(settings.after, Duration::from_secs(10));
    }

    #[test]
    fn the_chain_is_read_in_order_with_its_openai_link() {
        let settings = parse(
            &[
                (GEMINI_FALLBACK_MODELS, " gemini-2.5-flash-lite , gemini-2.0-flash,"),
                (OPENAI_BASE_URL, "http://127.0.0.1:11434/v1"),
                (OPENAI_MODEL, "llama3.2:3b"),
                (TRANSCRIBE_FALLBACK_BASE_URL, "http://127.0.0.1:8080/v1"),
            ],
            false,
        )
        .expect("valid");
        assert_eq!(settings.gemini_models, ["gemini-2.5-flash-lite", "gemini-2.0-flash"]);
        let openai = settings.openai.expect("a link");
        assert_eq!(openai.model, "llama3.2:3b");
        assert!(matches!(openai.target, OpenAiTarget::Remote { key: None, .. }));
        assert_eq!(settings.transcribe.expect("a link").model, "whisper-1");
    }

    #[test]
    fn bad_or_incomplete_values_name_their_variable() {
        for (pairs, variable) in [
            (vec![(GEMINI_FALLBACK_MODELS, "gemini-2.5-flash")], GEMINI_FALLBACK_MODELS),
            (vec![(GEMINI_FALLBACK_MODELS, "a,b,a")], GEMINI_FALLBACK_MODELS),
            (vec![(GEMINI_FALLBACK_MODELS, "gemini/../x")], GEMINI_FALLBACK_MODELS),
            (vec![(OPENAI_BASE_URL, "ftp://x/v1"), (OPENAI_MODEL, "m")], OPENAI_BASE_URL),
            (vec![(OPENAI_BASE_URL, "http://127.0.0.1/v1")], OPENAI_MODEL),
            (
                vec![(GEMINI_FALLBACK_MODELS, "b"), (ANALYSIS_FALLBACK_AFTER_SECONDS, "30")],
                ANALYSIS_FALLBACK_AFTER_SECONDS,
            ),
            (vec![(ANALYSIS_FALLBACK_AFTER_SECONDS, "0")], ANALYSIS_FALLBACK_AFTER_SECONDS),
        ] {
            let error = parse(&pairs, false).expect_err(variable);
            assert_eq!(error.variable, variable, "{error}");
        }
        // A model named for a cloud primary needs its base URL.
        assert_eq!(parse(&[(OPENAI_MODEL, "gpt-4o-mini")], false).expect_err("no base").variable, OPENAI_BASE_URL);
    }

    #[test]
    fn a_long_wait_without_a_fallback_changes_nothing() {
        parse(&[(ANALYSIS_FALLBACK_AFTER_SECONDS, "60")], false).expect("no chain, no constraint");
    }

    #[test]
    fn a_model_named_without_a_base_url_goes_to_the_simulator_when_the_primary_does() {
        let settings =
            parse(&[(OPENAI_MODEL, "sim-chat"), (TRANSCRIBE_FALLBACK_MODEL, "sim-whisper")], true).expect("valid");
        assert_eq!(settings.openai.expect("link").target, OpenAiTarget::Simulator);
        assert_eq!(settings.transcribe.expect("link").target, OpenAiTarget::Simulator);
        let key = parse(
            &[(OPENAI_BASE_URL, "https://api.openai.com/v1"), (OPENAI_MODEL, "gpt-4o-mini"), (OPENAI_API_KEY, "sk-x")],
            true,
        )
        .expect("valid");
        assert!(!format!("{key:?}").contains("sk-x"));
    }
}
