//! The analysis schema as OpenAI's structured outputs want it.
//!
//! Gemini's `responseSchema` is an OpenAPI subset (upper-case types, `propertyOrdering`);
//! `response_format.json_schema.schema` is JSON Schema. With `strict: true` OpenAI also requires
//! every object to list all its properties as required and to forbid others, so an optional
//! field (`severity`, `minutes`, `sub_scores`) becomes required-but-nullable: the model writes
//! `null` where it has nothing. vLLM, llama.cpp and Ollama enforce the same schema by grammar.

use serde_json::{Map, Value, json};

/// `response_format` for a chat completion whose reply must match `schema` (Gemini's subset).
pub fn json_schema(name: &str, schema: &Value) -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": name, "schema": convert(schema), "strict": true}
    })
}

fn convert(schema: &Value) -> Value {
    let Value::Object(object) = schema else { return schema.clone() };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => {
                out.insert(
                    "type".into(),
                    value.as_str().map_or(value.clone(), |t| Value::from(t.to_ascii_lowercase())),
                );
            }
            "propertyOrdering" | "nullable" => {}
            "items" => {
                out.insert("items".into(), convert(value));
            }
            "properties" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(Value::Object(properties)) = object.get("properties") {
        let required: Vec<&str> =
            object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut converted = Map::new();
        for (name, property) in properties {
            let mut property = convert(property);
            if !required.contains(&name.as_str()) {
                nullable(&mut property);
            }
            converted.insert(name.clone(), property);
        }
        out.insert("required".into(), Value::from(properties.keys().cloned().collect::<Vec<_>>()));
        out.insert("properties".into(), Value::Object(converted));
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// `{"type": "string", "enum": [...]}` → `{"type": ["string", "null"], "enum": [..., null]}`.
fn nullable(property: &mut Value) {
    let Value::Object(object) = property else { return };
    if let Some(Value::String(kind)) = object.get("type").cloned() {
        object.insert("type".into(), json!([kind, "null"]));
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::prompt::response_schema;

    /// Every object of a strict schema lists all its properties as required and forbids others;
    /// no Gemini-only keyword or upper-case type is left.
    fn assert_strict(schema: &Value, path: &str) {
        let text = schema.to_string();
        assert!(!text.contains("propertyOrdering") && !text.contains("\"OBJECT\""), "{path}: {text}");
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> =
                schema["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
            assert_eq!(required.len(), properties.len(), "{path}");
            assert_eq!(schema["additionalProperties"], json!(false), "{path}");
            for (name, property) in properties {
                assert_strict(property, &format!("{path}.{name}"));
            }
        }
        if let Some(items) = schema.get("items") {
            assert_strict(items, &format!("{path}[]"));
        }
    }

    #[test]
    fn the_analysis_schema_becomes_a_strict_json_schema() {
        let format = json_schema("analysis", &response_schema());
        assert_eq!(format["type"], "json_schema");
        assert_eq!(format["json_schema"]["strict"], true);
        let schema = &format["json_schema"]["schema"];
        assert_strict(schema, "$");
        assert_eq!(schema["type"], "object");
        // Optional extras stay optional in meaning: nullable, not invented.
        let severity = &schema["properties"]["errors"]["items"]["properties"]["severity"];
        assert_eq!(severity["type"], json!(["string", "null"]));
        assert!(severity["enum"].as_array().expect("enum").contains(&Value::Null));
        // Contract fields stay non-null.
        assert_eq!(schema["properties"]["feedback"]["type"], "string");
        assert!(!format.to_string().contains("guided_json"));
    }
}
