//! JSON Schema, as tool parameters, response formats and input schemas use
//! it (the `jsonschema` crate, which follows the drafts' test suite).
//!
//! A schema is checked against its draft's meta-schema (2020-12 unless
//! `$schema` names another) and then compiled, which catches what the
//! meta-schema cannot (a `pattern` that is not a regular expression, a
//! `$ref` to nowhere). Compiled schemas run patterns with the `regex` crate,
//! whose matching is linear, so a stored pattern cannot make a validation
//! backtrack for ever inside a backend; and they resolve references only
//! within the document: nothing is read from files or the network.

use serde_json::Value;

use crate::error::{Error, Result};

/// A compiled schema (shared: compiled templates are cloned).
#[derive(Clone)]
pub struct Schema(std::sync::Arc<jsonschema::Validator>);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

/// Where in a document a JSON pointer points, in words.
fn at(pointer: &str) -> String {
    if pointer.is_empty() {
        "at the top level".to_string()
    } else {
        format!("at {pointer}")
    }
}

impl Schema {
    /// Checks `schema` and compiles it; `what` names it in errors (e.g.
    /// `model_config.tools[0].function.parameters`). Invalid: 22023.
    pub fn compile(schema: &Value, what: &str) -> Result<Schema> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(Error::invalid(format!("{what} must be a JSON Schema (an object or a boolean), not {}", kind(schema))));
        }
        if let Err(e) = jsonschema::meta::validate(schema) {
            return Err(Error::invalid(format!("{what} is not a valid JSON Schema {}: {e}", at(&e.instance_path().to_string()))));
        }
        jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(schema)
            .map(|v| Schema(std::sync::Arc::new(v)))
            .map_err(|e| Error::invalid(format!("{what} is not a valid JSON Schema: {e}")))
    }

    /// `Ok` when `instance` matches; otherwise the first mismatch, with the
    /// JSON pointer of where it is in `instance` (22023), `what` naming it.
    pub fn check(&self, instance: &Value, what: &str) -> Result<()> {
        match self.0.validate(instance) {
            Ok(()) => Ok(()),
            Err(e) => {
                let path = e.instance_path().to_string();
                Err(Error::invalid(format!("{what} do not match the input schema {}: {e}", at(&path)))
                    .with_detail(format!("path: {}", if path.is_empty() { "/" } else { &path })))
            }
        }
    }
}

/// What a JSON value is, in words.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_schemas_are_refused_with_where() {
        let e = Schema::compile(&json!({"type": "objekt"}), "s").unwrap_err();
        assert!(e.message.starts_with("s is not a valid JSON Schema at /type"), "{}", e.message);
        let e = Schema::compile(&json!({"properties": {"a": {"minimum": "x"}}}), "s").unwrap_err();
        assert!(e.message.contains("/properties/a/minimum"), "{}", e.message);
        assert!(Schema::compile(&json!("string"), "s").unwrap_err().message.contains("not a string"));
        // Look-around needs backtracking: refused rather than run unbounded.
        assert!(Schema::compile(&json!({"pattern": "a(?=b)"}), "s").is_err());
        // Nothing outside the document is read.
        for r in ["file:///etc/passwd", "https://example.com/s.json"] {
            assert!(Schema::compile(&json!({"$ref": r}), "s").is_err(), "{r}");
        }
        assert!(Schema::compile(&json!(true), "s").is_ok());
        assert!(Schema::compile(&json!({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}), "s").is_ok());
    }

    #[test]
    fn mismatches_name_the_path() {
        let s = Schema::compile(
            &json!({"type": "object", "properties": {"grade": {"type": "integer", "maximum": 10},
                    "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["grade"]}),
            "s",
        )
        .unwrap();
        assert!(s.check(&json!({"grade": 3, "tags": ["a"]}), "vars").is_ok());
        let e = s.check(&json!({"grade": 12}), "vars").unwrap_err();
        assert_eq!(e.message, "vars do not match the input schema at /grade: 12 is greater than the maximum of 10");
        let e = s.check(&json!({"grade": 1, "tags": ["a", 5]}), "vars").unwrap_err();
        assert!(e.message.contains("at /tags/1"), "{}", e.message);
        let e = s.check(&json!({}), "vars").unwrap_err();
        assert!(e.message.contains("at the top level") && e.message.contains("\"grade\" is a required property"), "{}", e.message);
    }
}
