//! The scan on the shapes each of its rules is for.

use super::*;

fn scan(text: &str) -> String {
    let start = text.find('{').expect("test input has an object");
    first_object(text, start).expect("not too deep")
}

#[test]
fn the_first_balanced_object_ends_where_its_braces_balance_ignoring_strings_and_comments() {
    let text = r#"Sure: {"a": "}{", /* } */ "b": [1, {"c": 2}] # }
    } and then {"x": 1}"#;
    let body = scan(text);
    assert!(body.starts_with(r#"{"a": "}{""#));
    assert!(body.ends_with('}'));
    assert!(!body.contains("\"x\""));
}

#[test]
fn inner_quotes_that_are_not_followed_by_structure_are_escaped() {
    let body = scan(r#"{"e": "Use "went", not "go".", "b": 1}"#);
    assert_eq!(body, r#"{"e": "Use \"went\", not \"go\".", "b": 1}"#);
    let v: serde_json::Value = serde_json::from_str(&body).expect("valid after escaping");
    assert_eq!(v["e"], "Use \"went\", not \"go\".");
}

#[test]
fn apostrophes_inside_single_quoted_strings_are_escaped() {
    let body = scan("{'f': 'don't stop', 'g': 'x'}");
    assert_eq!(body, r"{'f': 'don\'t stop', 'g': 'x'}");
}

#[test]
fn truncation_keeps_complete_members_and_drops_the_partial_one() {
    let body = scan(r#"{"a": "done", "b": "half"#);
    assert_eq!(body, r#"{"a": "done"}"#);
}

#[test]
fn truncation_inside_an_array_element_keeps_the_members_it_completed() {
    let body = scan(r#"{"errors": [{"t": "x"}, {"t": "y", "c": "par"#);
    assert_eq!(body, r#"{"errors": [{"t": "x"}, {"t": "y"}]}"#);
}

#[test]
fn a_container_cut_before_any_complete_member_is_left_out_whole() {
    assert_eq!(scan(r#"{"a": "x", "errors": [{"ty"#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "errors": [{"type": "gram"#), r#"{"a": "x"}"#);
}

#[test]
fn a_number_or_keyword_running_into_the_cut_is_not_kept() {
    assert_eq!(scan(r#"{"a": "x", "confidence": 0.8"#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "flag": tru"#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "confidence": 0.8}"#), r#"{"a": "x", "confidence": 0.8}"#);
}

#[test]
fn a_quote_ending_the_text_that_may_open_or_close_an_inner_quotation_is_not_trusted() {
    // Cut from `"Use the past: "went", not "go"."`.
    assert_eq!(scan(r#"{"a": "x", "e": "Use the past: ""#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "e": "Use the past: "went""#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "e": "Use the past: "went","#), r#"{"a": "x"}"#);
    assert_eq!(scan(r#"{"a": "x", "e": "Use the past: "went", not "go"."#), r#"{"a": "x"}"#);
    // A pair of inner quotes closed, then the string's own quote: complete.
    let whole = r#"{"a": "x", "e": "Use "went"""#;
    assert_eq!(scan(whole), r#"{"a": "x", "e": "Use \"went\""}"#);
    // Single quotes: an apostrophe, or an inner quotation opening.
    assert_eq!(scan("{'a': 'x', 'e': 'You'"), "{'a': 'x'}");
    assert_eq!(scan("{'a': 'x', 'e': 'words like '"), "{'a': 'x'}");
}

fn value(text: &str) -> serde_json::Value {
    serde_json::from_str(&scan(text)).unwrap_or_else(|error| panic!("{text}: {error}"))
}

#[test]
fn an_ellipsis_for_items_left_out_goes_with_its_spare_comma() {
    let want = serde_json::json!({"s": ["a", "c"]});
    for text in [
        r#"{"s": ["a", ..., "c"]}"#,
        r#"{"s": ["a" ... "c"]}"#,
        r#"{"s": ["a", … "c"]}"#,
        r#"{"s": ["a" …, "c"]}"#,
        r#"{"s": [..., "a", "c"]}"#,
        r#"{"s": ["a", "c", ...]}"#,
        r#"{"s": ["a", "c" …]}"#,
    ] {
        assert_eq!(value(text), want, "{text}");
    }
}

#[test]
fn an_ellipsis_for_members_left_out_goes_too_and_one_for_a_value_reads_as_null() {
    let want = serde_json::json!({"level": "B1", "rationale": "r"});
    for text in [
        r#"{"level": "B1", ..., "rationale": "r"}"#,
        r#"{"level": "B1" … "rationale": "r"}"#,
        r#"{"level": "B1", "rationale": "r", ...}"#,
        r#"{..., "level": "B1", "rationale": "r"}"#,
    ] {
        assert_eq!(value(text), want, "{text}");
    }
    assert_eq!(value(r#"{"level": "B1", "rationale": ...}"#), serde_json::json!({"level": "B1", "rationale": null}));
}

#[test]
fn dots_inside_strings_or_numbers_are_not_an_ellipsis() {
    assert_eq!(value(r#"{"f": "Wait... what?", "n": 0.5}"#), serde_json::json!({"f": "Wait... what?", "n": 0.5}));
}

#[test]
fn truncation_inside_a_nested_object_keeps_its_complete_members() {
    let body = scan(r#"{"f": "x", "cefr": {"level": "B1", "confidence": 0.8"#);
    assert_eq!(body, r#"{"f": "x", "cefr": {"level": "B1"}}"#);
}

#[test]
fn raw_control_chars_inside_strings_are_escaped() {
    let body = scan("{\"a\": \"x\u{1}y\nz\"}");
    assert_eq!(body, r#"{"a": "x\u0001y\u000az"}"#);
}

#[test]
fn a_stray_closer_that_does_not_match_is_left_out() {
    let body = scan(r#"{"t": [{"type":]"x"}], "b": 1}"#);
    assert_eq!(body, r#"{"t": [{"type":"x"}], "b": 1}"#);
}

#[test]
fn nesting_beyond_the_limit_is_refused() {
    let text = "{\"a\":".repeat(MAX_DEPTH + 1);
    assert!(first_object(&text, 0).is_none());
}
