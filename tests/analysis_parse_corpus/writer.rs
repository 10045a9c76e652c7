//! Writes a sample analysis the ways Gemini has been seen to write one, corruption by corruption,
//! and notes where each leaf value ends in the text, so a cut can be judged by what it left.

use serde_json::{Value, json};

#[derive(Clone, Copy, Default, PartialEq)]
pub enum Quotes {
    #[default]
    Double,
    Single,
    Smart,
    Python,
}

/// `...` or `…` written bare where the model left items or members out.
#[derive(Clone, Copy)]
pub struct Ellipsis {
    pub token: &'static str,
    /// Between the first item and the rest (leaving out the second), or after all but the last.
    pub middle: bool,
    /// `a, ..., b` rather than `a ... b`.
    pub commas: bool,
    /// In objects (for members) as well as in arrays (for items).
    pub in_objects: bool,
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
    pub ellipsis: Option<Ellipsis>,
}

/// A scalar as written: where it sits in the analysis (a JSON pointer) and where it ends.
pub struct Leaf {
    pub pointer: String,
    pub value: Value,
    /// Byte offset just past the value (past its closing quote, for a string).
    pub end: usize,
    pub quoted: bool,
}

impl Leaf {
    /// Whether the text cut at `cut` shows this value complete: a string by its closing quote, a
    /// number or keyword by the character after it (`0.8` could be the start of `0.85`).
    pub fn held_by(&self, cut: usize) -> bool {
        if self.quoted { self.end <= cut } else { self.end < cut }
    }
}

/// The text plus every leaf it holds, by the pointer it has in the analysis the text holds
/// (an item left out for an ellipsis does not count, so the items after it move up).
pub struct Written {
    pub text: String,
    pub leaves: Vec<Leaf>,
}

impl Written {
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.text.insert_str(0, prefix);
        for leaf in &mut self.leaves {
            leaf.end += prefix.len();
        }
        self
    }
}

pub fn write(value: &Value, order: &[&'static str], style: Style) -> Written {
    let mut w = Writer { out: String::new(), style, path: Vec::new(), leaves: Vec::new() };
    let members: Vec<(&str, &Value)> = order.iter().map(|key| (*key, &value[*key])).collect();
    w.object(&members, 0);
    Written { text: w.out, leaves: w.leaves }
}

/// Members in the order the response schema gives them (what Gemini writes), extras after.
const SCHEMA_ORDER: [&str; 9] =
    ["type", "text", "correction", "explanation", "title", "description", "level", "confidence", "rationale"];

struct Writer {
    out: String,
    style: Style,
    path: Vec<String>,
    leaves: Vec<Leaf>,
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
        let start = self.out.len();
        match value {
            Value::Null if self.style.quotes == Quotes::Python => self.out.push_str("None"),
            Value::Bool(b) if self.style.quotes == Quotes::Python => {
                self.out.push_str(if *b { "True" } else { "False" })
            }
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                let items: Vec<(&str, &Value)> = items.iter().map(|item| ("", item)).collect();
                return self.container(&items, depth, false);
            }
            Value::Object(map) => {
                let mut members: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
                members.sort_by_key(|(key, _)| SCHEMA_ORDER.iter().position(|k| k == key).unwrap_or(usize::MAX));
                return self.object(&members, depth);
            }
            scalar => self.out.push_str(&scalar.to_string()),
        }
        debug_assert!(self.out.len() > start);
        self.leaves.push(Leaf {
            pointer: self.path.iter().map(|segment| format!("/{segment}")).collect(),
            value: value.clone(),
            end: self.out.len(),
            quoted: value.is_string(),
        });
    }

    fn object(&mut self, members: &[(&str, &Value)], depth: usize) {
        self.container(members, depth, true)
    }

    /// An array's items (keys unused) or an object's members, with the ellipsis where asked.
    fn container(&mut self, entries: &[(&str, &Value)], depth: usize, is_object: bool) {
        let n = entries.len();
        let ellipsis = self.style.ellipsis.filter(|e| (!is_object || e.in_objects) && n >= 2);
        // `None` is the token; `Some(i)` the entry at `i`.
        let slots: Vec<Option<usize>> = match ellipsis {
            Some(e) if e.middle => {
                let rest = if n >= 3 { 2 } else { 1 };
                [Some(0), None].into_iter().chain((rest..n).map(Some)).collect()
            }
            Some(_) => (0..n - 1).map(Some).chain([None]).collect(),
            None => (0..n).map(Some).collect(),
        };
        self.out.push(if is_object { '{' } else { '[' });
        let mut index = 0;
        for (i, slot) in slots.iter().enumerate() {
            if i > 0 {
                match (ellipsis, slots[i - 1].is_none() || slot.is_none()) {
                    (Some(e), true) => self.out.push_str(if e.commas { "," } else { " " }),
                    _ => self.comma(),
                }
            }
            self.newline(depth + 1);
            let Some(position) = *slot else {
                self.out.push_str(ellipsis.map_or("", |e| e.token));
                continue;
            };
            let (key, item) = entries[position];
            self.path.push(if is_object { escape(key) } else { index.to_string() });
            if is_object {
                self.key(key);
            }
            self.value(item, depth + 1);
            self.path.pop();
            index += 1;
        }
        if n > 0 && self.style.trailing_commas {
            self.out.push(',');
        }
        if n > 0 {
            self.newline(depth);
        }
        self.out.push(if is_object { '}' } else { ']' });
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

/// A key as a JSON-pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
