//! Templates as files, for review in git: front matter, then the body.
//!
//! ```text
//! ---
//! name: tutor
//! description: Explains a topic to a student
//! category: tutoring
//! kind: text
//! config: {"model": "gemini-2.5-flash", "temperature": 0.2}
//! labels: ["production"]
//! options: {"trim_blocks": true, "lstrip_blocks": true}
//! input_schema: {"required": ["topic", "grade"]}
//! ---
//! Explain {{ topic }} to a grade {{ grade }} student.
//! ```
//!
//! Every front matter line is `key: value`. `config` and `options` (the
//! render options; absent: the defaults) are JSON objects, `input_schema`
//! a JSON Schema (absent: none) and `labels` a
//! JSON array of strings; `name`, `description` and `category`
//! are the rest of the line, or a JSON string when they start with `"`
//! (for newlines or leading spaces). The body is everything after the
//! closing `---` line, byte for byte.

use serde_json::{Map, Value};

/// One template: what `export` writes and `import` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFile {
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub kind: String,
    pub config: Map<String, Value>,
    pub labels: Vec<String>,
    /// Render options as written (empty: the defaults).
    pub options: Map<String, Value>,
    /// The JSON Schema vars must match, if any.
    pub input_schema: Option<Value>,
    pub body: String,
}

/// The file name a template is exported to (`/` in names becomes `__`).
pub fn file_name(template: &str) -> String {
    format!("{}.prompt", template.replace('/', "__"))
}

fn text_value(v: &str) -> String {
    if v.is_empty() || v.contains('\n') || v.starts_with('"') || v.trim() != v {
        Value::String(v.to_string()).to_string()
    } else {
        v.to_string()
    }
}

/// The file's text.
pub fn write(t: &TemplateFile) -> String {
    let mut s = String::from("---\n");
    s.push_str(&format!("name: {}\n", text_value(&t.name)));
    if let Some(d) = &t.description {
        s.push_str(&format!("description: {}\n", text_value(d)));
    }
    if let Some(c) = &t.category {
        s.push_str(&format!("category: {}\n", text_value(c)));
    }
    s.push_str(&format!("kind: {}\n", t.kind));
    s.push_str(&format!("config: {}\n", Value::Object(t.config.clone())));
    s.push_str(&format!("labels: {}\n", Value::from(t.labels.clone())));
    if !t.options.is_empty() {
        s.push_str(&format!("options: {}\n", Value::Object(t.options.clone())));
    }
    if let Some(schema) = &t.input_schema {
        s.push_str(&format!("input_schema: {schema}\n"));
    }
    s.push_str("---\n");
    s.push_str(&t.body);
    s
}

/// Reads a file; `default_name` (from the file name) applies when the front
/// matter has no name. Errors name the line.
pub fn parse(default_name: &str, text: &str) -> Result<TemplateFile, String> {
    let rest = text.strip_prefix("---\n").ok_or("line 1: expected front matter starting with a line \"---\"")?;
    let end = rest.find("\n---\n").map(|i| (i, i + 5)).or_else(|| rest.strip_suffix("\n---").map(|r| (r.len(), rest.len())));
    let (matter, body) = match (rest.starts_with("---\n"), end) {
        (true, _) => ("", &rest[4..]),
        (false, Some((e, b))) => (&rest[..e], &rest[b..]),
        (false, None) => return Err("the front matter has no closing \"---\" line".into()),
    };
    let mut t = TemplateFile {
        name: default_name.to_string(),
        description: None,
        category: None,
        kind: "text".into(),
        config: Map::new(),
        labels: Vec::new(),
        options: Map::new(),
        input_schema: None,
        body: body.to_string(),
    };
    for (i, line) in matter.lines().enumerate() {
        let n = i + 2;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(':').ok_or_else(|| format!("line {n}: expected \"key: value\", got {line:?}"))?;
        let value = value.trim();
        let text = || -> Result<String, String> {
            if value.starts_with('"') {
                serde_json::from_str::<String>(value).map_err(|e| format!("line {n}: {key}: not a JSON string: {e}"))
            } else {
                Ok(value.to_string())
            }
        };
        match key.trim() {
            "name" => t.name = text()?,
            "description" => t.description = Some(text()?),
            "category" => t.category = Some(text()?),
            "kind" => match value {
                "text" | "chat" => t.kind = value.to_string(),
                other => return Err(format!("line {n}: kind must be text or chat, not {other:?}")),
            },
            "config" => match serde_json::from_str(value) {
                Ok(Value::Object(m)) => t.config = m,
                Ok(_) => return Err(format!("line {n}: config must be a JSON object")),
                Err(e) => return Err(format!("line {n}: config is not valid JSON: {e}")),
            },
            "labels" => match serde_json::from_str::<Vec<String>>(value) {
                Ok(l) => t.labels = l,
                Err(_) => return Err(format!("line {n}: labels must be a JSON array of strings, e.g. [\"production\"]")),
            },
            "options" => {
                let json: Value = serde_json::from_str(value).map_err(|e| format!("line {n}: options is not valid JSON: {e}"))?;
                pgprompt_engine::render::Options::from_json(&json).map_err(|e| format!("line {n}: {}", e.message))?;
                t.options = json.as_object().cloned().unwrap_or_default();
            }
            "input_schema" => match serde_json::from_str::<Value>(value) {
                Ok(v @ (Value::Object(_) | Value::Bool(_))) => t.input_schema = Some(v),
                Ok(_) => return Err(format!("line {n}: input_schema must be a JSON Schema (an object)")),
                Err(e) => return Err(format!("line {n}: input_schema is not valid JSON: {e}")),
            },
            other => {
                return Err(format!(
                    "line {n}: unknown key {other:?} (name, description, category, kind, config, labels, options, input_schema)"
                ))
            }
        }
    }
    if t.name.is_empty() {
        return Err("the template has no name".into());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> TemplateFile {
        TemplateFile {
            name: "nlu/topics".into(),
            description: Some("Finds \"topics\"\nin questions".into()),
            category: Some("nlu".into()),
            kind: "chat".into(),
            config: json!({"model": "gpt-4o", "temperature": 0.2}).as_object().unwrap().clone(),
            labels: vec!["production".into()],
            options: json!({"trim_blocks": true, "undefined": "lenient"}).as_object().unwrap().clone(),
            input_schema: Some(json!({"required": ["x"]})),
            body: "---\n{{ x }}\n---\n".into(),
        }
    }

    #[test]
    fn files_round_trip() {
        let t = sample();
        let text = write(&t);
        assert!(text.starts_with("---\nname: nlu/topics\ndescription: \"Finds \\\"topics\\\"\\nin questions\"\ncategory: nlu\nkind: chat\n"), "{text}");
        assert_eq!(parse("ignored", &text).unwrap(), t);
        assert_eq!(file_name("nlu/topics"), "nlu__topics.prompt");
        let bare = parse("greeting", "---\n---\nHello").unwrap();
        assert_eq!((bare.name.as_str(), bare.kind.as_str(), bare.body.as_str()), ("greeting", "text", "Hello"));
    }

    #[test]
    fn malformed_front_matter_names_the_line() {
        for (text, says) in [
            ("Hello", "line 1: expected front matter"),
            ("---\nname: x\nHello", "no closing"),
            ("---\nname x\n---\nbody", "line 2: expected \"key: value\""),
            ("---\nconfig: {oops}\n---\nbody", "line 2: config is not valid JSON"),
            ("---\nconfig: [1]\n---\nbody", "config must be a JSON object"),
            ("---\nkind: html\n---\nbody", "kind must be text or chat"),
            ("---\nlabels: production\n---\nbody", "labels must be a JSON array"),
            ("---\ncolour: red\n---\nbody", "unknown key \"colour\""),
            ("---\noptions: {\"trim\": true}\n---\nbody", "line 2: unknown render option \"trim\""),
            ("---\noptions: {\"undefined\": 1}\n---\nbody", "line 2: render option \"undefined\" must be"),
            ("---\noptions: [1]\n---\nbody", "line 2: render options must be a JSON object"),
            ("---\ndescription: \"unterminated\n---\nbody", "not a JSON string"),
        ] {
            let e = parse("t", text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
