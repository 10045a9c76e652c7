//! `cargo +nightly fuzz run parse_analysis -- -max_total_time=60`
//! Any bytes (as lossy UTF-8, like the Gemini client's text) must give a complete analysis and
//! never panic, loop or overflow the stack.
#![no_main]

use backend_ai::analysis::parse::fallback_analysis;
use backend_ai::analysis::{CefrLevel, ParseQuality, parse_analysis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let outcome = parse_analysis(&text);
    let assessment = &outcome.analysis.cefr_assessment;
    assert!(CefrLevel::ALL.contains(&assessment.level));
    assert!(
        assessment
            .confidence
            .is_none_or(|c| (0.0..=1.0).contains(&c))
    );
    if outcome.parse == ParseQuality::Fallback {
        assert_eq!(outcome.analysis, fallback_analysis());
    }
});
