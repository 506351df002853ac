//! Templates as files, for review in git: one directory per template
//! (`/` in its name written as `__`), holding `template.json` and one file
//! per version, so a new version is a new file and a release a one-line
//! change.
//!
//! `template.json` (pretty, fields in a fixed order):
//!
//! ```text
//! {
//!   "name": "tutor",
//!   "description": "Explains a topic to a student",
//!   "category": "tutoring",
//!   "release": 2,
//!   "labels": {"staging": 3},
//!   "requires_approval": false,
//!   "protected_labels": [],
//!   "test_cases": [{"name": "short", "description": null, "vars": {...}, "assertions": [...]}]
//! }
//! ```
//!
//! `v2.prompt`: front matter, one `key: value` per line, then the body
//! after the closing `---` line, byte for byte.
//!
//! ```text
//! ---
//! version: 2
//! kind: text
//! author: ada
//! created_at: 2026-11-30T01:02:03.456789Z
//! parent: 1
//! message: "simpler"
//! config: {"model": "gpt-4o"}
//! options: {"undefined": "strict", "trim_blocks": false, "lstrip_blocks": false, "keep_trailing_newline": false}
//! input_schema: {"required": ["topic"]}
//! approvals: [{"by": "bo", "at": "2026-11-30T02:00:00.000000Z", "comment": "ok"}]
//! ---
//! Explain {{ topic }}.
//! ```
//!
//! `message` is a JSON string (or absent); `config`, `options`,
//! `input_schema` (absent: none) and `approvals` are JSON. Exporting,
//! importing into an empty database and exporting again gives the same
//! bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A template's `template.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    /// The released version (production).
    pub release: i32,
    /// The other labels.
    #[serde(default)]
    pub labels: BTreeMap<String, i32>,
    #[serde(default)]
    pub requires_approval: bool,
    #[serde(default)]
    pub protected_labels: Vec<String>,
    #[serde(default)]
    pub test_cases: Vec<TestCase>,
}

/// A test case, as `prompt_test_case_save` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub description: Option<String>,
    pub vars: Value,
    pub assertions: Value,
}

/// An approval a version had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub by: String,
    pub at: String,
    pub comment: Option<String>,
}

/// One version's file.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionFile {
    pub version: i32,
    pub kind: String,
    pub author: String,
    pub created_at: String,
    pub parent: Option<i32>,
    pub message: Option<String>,
    pub config: Value,
    pub options: Value,
    pub input_schema: Option<Value>,
    pub approvals: Vec<Approval>,
    pub body: String,
}

/// The directory a template is exported to (`/` in names becomes `__`).
pub fn dir_name(template: &str) -> String {
    template.replace('/', "__")
}

/// The file name of a version.
pub fn version_file_name(version: i32) -> String {
    format!("v{version}.prompt")
}

/// `template.json`'s text.
pub fn write_meta(meta: &TemplateMeta) -> String {
    serde_json::to_string_pretty(meta).expect("template metadata serializes") + "\n"
}

/// Reads `template.json`.
pub fn parse_meta(text: &str) -> Result<TemplateMeta, String> {
    let meta: TemplateMeta = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if meta.name.is_empty() {
        return Err("the template has no name".into());
    }
    Ok(meta)
}

/// A version file's text.
pub fn write_version(v: &VersionFile) -> String {
    let mut s = String::from("---\n");
    s.push_str(&format!("version: {}\n", v.version));
    s.push_str(&format!("kind: {}\n", v.kind));
    s.push_str(&format!("author: {}\n", Value::String(v.author.clone())));
    s.push_str(&format!("created_at: {}\n", v.created_at));
    if let Some(p) = v.parent {
        s.push_str(&format!("parent: {p}\n"));
    }
    if let Some(m) = &v.message {
        s.push_str(&format!("message: {}\n", Value::String(m.clone())));
    }
    s.push_str(&format!("config: {}\n", v.config));
    s.push_str(&format!("options: {}\n", v.options));
    if let Some(schema) = &v.input_schema {
        s.push_str(&format!("input_schema: {schema}\n"));
    }
    if !v.approvals.is_empty() {
        s.push_str(&format!("approvals: {}\n", serde_json::to_string(&v.approvals).expect("approvals serialize")));
    }
    s.push_str("---\n");
    s.push_str(&v.body);
    s
}

/// Reads a version file. Errors name the line.
pub fn parse_version(text: &str) -> Result<VersionFile, String> {
    let rest = text.strip_prefix("---\n").ok_or("line 1: expected front matter starting with a line \"---\"")?;
    let (matter, body) = match rest.find("\n---\n") {
        Some(i) => (&rest[..i], &rest[i + 5..]),
        None => match rest.strip_suffix("\n---") {
            Some(m) => (m, ""),
            None => return Err("the front matter has no closing \"---\" line".into()),
        },
    };
    let mut v = VersionFile {
        version: 0,
        kind: "text".into(),
        author: String::new(),
        created_at: String::new(),
        parent: None,
        message: None,
        config: Value::Object(Default::default()),
        options: Value::Object(Default::default()),
        input_schema: None,
        approvals: Vec::new(),
        body: body.to_string(),
    };
    for (i, line) in matter.lines().enumerate() {
        let n = i + 2;
        let (key, value) = line.split_once(": ").ok_or_else(|| format!("line {n}: expected \"key: value\", got {line:?}"))?;
        let json = || serde_json::from_str::<Value>(value).map_err(|e| format!("line {n}: {key} is not valid JSON: {e}"));
        let int = || value.parse::<i32>().map_err(|_| format!("line {n}: {key} must be a number"));
        match key {
            "version" => v.version = int()?,
            "kind" => match value {
                "text" | "chat" => v.kind = value.to_string(),
                other => return Err(format!("line {n}: kind must be text or chat, not {other:?}")),
            },
            "author" => v.author = serde_json::from_str(value).map_err(|e| format!("line {n}: author must be a JSON string: {e}"))?,
            "created_at" => v.created_at = value.to_string(),
            "parent" => v.parent = Some(int()?),
            "message" => v.message = Some(serde_json::from_str(value).map_err(|e| format!("line {n}: message must be a JSON string: {e}"))?),
            "config" => match json()? {
                c @ Value::Object(_) => v.config = c,
                _ => return Err(format!("line {n}: config must be a JSON object")),
            },
            "options" => {
                let o = json()?;
                pgprompt_engine::render::Options::from_json(&o).map_err(|e| format!("line {n}: {}", e.message))?;
                v.options = o;
            }
            "input_schema" => v.input_schema = Some(json()?),
            "approvals" => {
                v.approvals = serde_json::from_str(value).map_err(|e| format!("line {n}: approvals must be a list of {{by, at, comment}}: {e}"))?
            }
            other => {
                return Err(format!(
                    "line {n}: unknown key {other:?} (version, kind, author, created_at, parent, message, config, options, input_schema, approvals)"
                ))
            }
        }
    }
    if v.version < 1 {
        return Err("the file names no version (version: N)".into());
    }
    if v.author.is_empty() || v.created_at.is_empty() {
        return Err("the file names no author or created_at".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> VersionFile {
        VersionFile {
            version: 2,
            kind: "chat".into(),
            author: "ada lovelace".into(),
            created_at: "2026-11-30T01:02:03.456789Z".into(),
            parent: Some(1),
            message: Some("two\nlines".into()),
            config: json!({"model": "gpt-4o", "temperature": 0.2}),
            options: json!({"trim_blocks": true, "undefined": "lenient"}),
            input_schema: Some(json!({"required": ["x"]})),
            approvals: vec![Approval { by: "bo".into(), at: "2026-11-30T02:00:00.000000Z".into(), comment: None }],
            body: "---\n{{ x }}\n---\n".into(),
        }
    }

    #[test]
    fn version_files_round_trip() {
        let v = sample();
        let text = write_version(&v);
        assert!(text.starts_with("---\nversion: 2\nkind: chat\nauthor: \"ada lovelace\"\n"), "{text}");
        assert_eq!(parse_version(&text).unwrap(), v);
        let bare = VersionFile { parent: None, message: None, input_schema: None, approvals: vec![], body: String::new(), ..sample() };
        assert_eq!(parse_version(&write_version(&bare)).unwrap(), bare);
        assert_eq!(dir_name("nlu/topics"), "nlu__topics");
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, why) in [
            ("no front matter", "line 1"),
            ("---\nversion: 1\n", "no closing"),
            ("---\nversion: x\n---\n", "line 2: version must be a number"),
            ("---\nversion: 1\nkind: poem\n---\n", "line 3: kind must be text or chat"),
            ("---\nversion: 1\nconfig: {oops}\n---\n", "line 3: config is not valid JSON"),
            ("---\nversion: 1\noptions: {\"trim\": true}\n---\n", "line 3: unknown render option \"trim\""),
            ("---\nversion: 1\nlabels: []\n---\n", "line 3: unknown key \"labels\""),
            ("---\nkind: text\n---\n", "no version"),
            ("---\nversion: 1\n---\n", "no author"),
        ] {
            let e = parse_version(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert!(parse_meta("{\"name\": \"t\", \"release\": 1, \"extra\": 1}").unwrap_err().contains("unknown field"));
    }
}
