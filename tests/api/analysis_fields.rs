//! What Gemini puts in an analysis reaches the learner as Gemini wrote it: the contract's fields
//! typed and always present, anything Gemini added beside them passed on, nothing made up. Fresh
//! and from the cache alike (cached entries are the serialised analysis, read back).

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{GEMINI_PATH, TestApp, spawn_app_against};

fn gemini_reply(analysis: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "candidates": [{"content": {"parts": [{"text": analysis.to_string()}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80, "totalTokenCount": 200},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc"
    }))
}

async fn analyze(app: &TestApp) -> Value {
    let response = app.post_json("/api/analyze", &json!({"text": "I go to the store yesterday."})).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("json")
}

/// An instance whose Gemini answers `analysis`, once: a second answer must come from the cache.
async fn app_answering(analysis: &Value) -> (TestApp, MockServer) {
    let (azure, gemini) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(gemini_reply(analysis))
        .expect(1)
        .mount(&gemini)
        .await;
    (spawn_app_against(&azure, &gemini, &[]).await, gemini)
}

#[tokio::test]
async fn fields_gemini_adds_reach_the_learner_fresh_and_from_the_cache() {
    let analysis = json!({
        "errors": [{"type": "grammar", "text": "go", "correction": "went", "explanation": "Past tense after yesterday.",
                    "severity": "high"}],
        "feedback": "Good effort.", "strengths": ["Clear meaning"], "improvement_areas": ["Past tense"],
        "recommended_tasks": [{"type": "grammar", "title": "Past simple", "description": "Write five sentences.",
                               "minutes": 10, "url": "https://example.org/past-simple"}],
        "cefr_assessment": {"level": "A2", "confidence": 0.7, "rationale": "Simple sentences.",
                            "sub_scores": {"grammar": 0.5, "vocabulary": 0.75}}
    });
    let (app, gemini) = app_answering(&analysis).await;

    let fresh = analyze(&app).await;
    assert_eq!(fresh["meta"]["cached"], false);
    assert_eq!(fresh["meta"]["parse"], "clean");
    assert_eq!(fresh["data"], analysis);

    let cached = analyze(&app).await;
    assert_eq!(cached["meta"]["cached"], true);
    assert_eq!(cached["data"], analysis);
    gemini.verify().await;
}

#[tokio::test]
async fn an_alias_is_read_into_its_contract_field_once_and_a_missing_description_stays_missing() {
    let analysis = json!({
        "errors": [{"category": "spelling", "original": "recieve", "suggestion": "receive", "explanation": "i before e.",
                    "severity": "low"}],
        "feedback": "Nice.", "strengths": [], "improvement_areas": [],
        "recommended_tasks": [{"type": "reading", "title": "Short story", "minutes": 15}],
        "cefr_assessment": {"level": "B1", "confidence": 0.6, "rationale": "Clear."}
    });
    let (app, gemini) = app_answering(&analysis).await;

    for body in [analyze(&app).await, analyze(&app).await] {
        assert_eq!(
            body["data"]["errors"][0],
            json!({"type": "spelling", "text": "recieve", "correction": "receive", "explanation": "i before e.",
                   "severity": "low"})
        );
        assert_eq!(
            body["data"]["recommended_tasks"][0],
            json!({"type": "reading", "title": "Short story", "minutes": 15})
        );
        assert_eq!(body["meta"]["parse"], "repaired");
    }
    gemini.verify().await;
}
