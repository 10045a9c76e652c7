//! Writes a sample analysis the ways Gemini has been seen to write one, corruption by corruption.

use serde_json::{Value, json};

#[derive(Clone, Copy, Default, PartialEq)]
pub enum Quotes {
    #[default]
    Double,
    Single,
    Smart,
    Python,
}

/// How to write a value: each flag is one corruption; combinations make the mixed cases.
#[derive(Clone, Copy, Default)]
pub struct Style {
    pub pretty: bool,
    pub quotes: Quotes,
    pub unquoted_keys: bool,
    pub inner_quotes_raw: bool,
    pub raw_control: bool,
    pub trailing_commas: bool,
    pub comment: Option<&'static str>,
}

/// The text plus where each top-level member's value ends, to judge truncations.
pub struct Written {
    pub text: String,
    pub member_ends: Vec<(&'static str, usize)>,
}

pub fn write(value: &Value, order: &[&'static str], style: Style) -> Written {
    let mut w = Writer { out: String::new(), style };
    let mut member_ends = Vec::new();
    w.out.push('{');
    for (i, key) in order.iter().enumerate() {
        if i > 0 {
            w.comma();
        }
        w.newline(1);
        w.key(key);
        w.value(&value[*key], 1);
        member_ends.push((*key, w.out.len()));
    }
    if w.style.trailing_commas {
        w.out.push(',');
    }
    w.newline(0);
    w.out.push('}');
    Written { text: w.out, member_ends }
}

struct Writer {
    out: String,
    style: Style,
}

impl Writer {
    fn newline(&mut self, depth: usize) {
        if self.style.pretty {
            self.out.push('\n');
            self.out.push_str(&"  ".repeat(depth));
        }
    }

    fn comma(&mut self) {
        self.out.push(',');
        if let Some(comment) = self.style.comment {
            self.out.push(' ');
            self.out.push_str(comment);
            if !comment.starts_with("/*") {
                self.out.push('\n');
            }
        }
    }

    fn key(&mut self, key: &str) {
        if self.style.unquoted_keys {
            self.out.push_str(key);
        } else {
            self.string(key);
        }
        self.out.push_str(": ");
    }

    fn value(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Null if self.style.quotes == Quotes::Python => self.out.push_str("None"),
            Value::Bool(b) if self.style.quotes == Quotes::Python => {
                self.out.push_str(if *b { "True" } else { "False" })
            }
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.comma();
                    }
                    self.newline(depth + 1);
                    self.value(item, depth + 1);
                }
                self.close(!items.is_empty(), depth, ']');
            }
            Value::Object(map) => {
                self.out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        self.comma();
                    }
                    self.newline(depth + 1);
                    self.key(key);
                    self.value(item, depth + 1);
                }
                self.close(!map.is_empty(), depth, '}');
            }
            scalar => self.out.push_str(&scalar.to_string()),
        }
    }

    fn close(&mut self, non_empty: bool, depth: usize, bracket: char) {
        if non_empty && self.style.trailing_commas {
            self.out.push(',');
        }
        if non_empty {
            self.newline(depth);
        }
        self.out.push(bracket);
    }

    fn string(&mut self, s: &str) {
        let (open, close, escape_apostrophe) = match self.style.quotes {
            Quotes::Double => ('"', '"', false),
            Quotes::Smart => ('“', '”', false),
            Quotes::Single => ('\'', '\'', false),
            // Python's repr: double quotes when that avoids escaping, else `\'`.
            Quotes::Python if s.contains('\'') && !s.contains('"') => ('"', '"', false),
            Quotes::Python => ('\'', '\'', true),
        };
        let raw_double = self.style.inner_quotes_raw || open == '\'';
        self.out.push(open);
        for c in s.chars() {
            match c {
                '"' if raw_double => self.out.push('"'),
                '"' => self.out.push_str("\\\""),
                '\'' if escape_apostrophe => self.out.push_str("\\'"),
                '\\' => self.out.push_str("\\\\"),
                '\n' | '\t' | '\r' if self.style.raw_control => self.out.push(c),
                '\n' => self.out.push_str("\\n"),
                '\t' => self.out.push_str("\\t"),
                '\r' => self.out.push_str("\\r"),
                c if (c as u32) < 0x20 => self.out.push_str(&format!("\\u{:04x}", c as u32)),
                c => self.out.push(c),
            }
        }
        self.out.push(close);
    }
}

/// Keys renamed to aliases Gemini has been seen to drift to; values kept.
pub fn drifted(value: &Value) -> Value {
    let mut v = value.clone();
    let rename = |map: &mut serde_json::Map<String, Value>, from: &str, to: &str| {
        if let Some(x) = map.remove(from) {
            map.insert(to.to_owned(), x);
        }
    };
    if let Some(top) = v.as_object_mut() {
        rename(top, "errors", "grammar_errors");
        rename(top, "feedback", "overall_feedback");
        rename(top, "improvement_areas", "improvementAreas");
        rename(top, "cefr_assessment", "cefr");
        if let Some(Value::Array(errors)) = top.get_mut("grammar_errors") {
            for e in errors.iter_mut().filter_map(Value::as_object_mut) {
                rename(e, "text", "original");
                rename(e, "correction", "suggestion");
                rename(e, "type", "category");
            }
        }
        if let Some(Value::Object(cefr)) = top.get_mut("cefr") {
            rename(cefr, "level", "cefr_level");
            // Percent as a string: "0.8" -> "80%".
            if let Some(Value::Number(n)) = cefr.get("confidence").cloned() {
                let percent = n.as_f64().unwrap_or_default() * 100.0;
                cefr.insert("confidence".into(), json!(format!("{percent}%")));
            }
        }
    }
    v
}
