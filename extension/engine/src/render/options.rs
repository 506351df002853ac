//! How a template renders, stored with each version: Jinja2's whitespace
//! switches and what a missing variable does.

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};

/// The render options of a version. Defaults are Jinja2's for whitespace
/// (all off) and pgprompt's for undefined variables (strict).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Options {
    /// Remove the first newline after a block tag (`{% ... %}`).
    pub trim_blocks: bool,
    /// Strip spaces and tabs from the start of a line up to a block tag.
    pub lstrip_blocks: bool,
    /// Keep the body's final newline (Jinja2 drops it).
    pub keep_trailing_newline: bool,
    /// What a missing variable does.
    pub undefined: Undefined,
}

/// What a variable missing from the vars does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Undefined {
    /// Printing, iterating or measuring it is an error naming it; tests,
    /// comparisons and `default` treat it as Jinja2 does.
    #[default]
    Strict,
    /// Jinja2's default `Undefined`: it prints as nothing and iterates as
    /// empty.
    Lenient,
}

const KEYS: [&str; 4] = ["trim_blocks", "lstrip_blocks", "keep_trailing_newline", "undefined"];

impl Options {
    /// Reads options from a JSON object; missing keys take their defaults.
    pub fn from_json(json: &Json) -> Result<Options> {
        let Json::Object(map) = json else {
            return Err(Error::invalid(format!("render options must be a JSON object, not {}", super::json_type(json)))
                .with_hint("For example: '{\"trim_blocks\": true, \"lstrip_blocks\": true, \"undefined\": \"lenient\"}'"));
        };
        if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(Error::invalid(format!("unknown render option \"{k}\"; expected one of: {}", KEYS.join(", "))));
        }
        let flag = |name: &str| -> Result<bool> {
            match map.get(name) {
                None | Some(Json::Null) => Ok(false),
                Some(Json::Bool(b)) => Ok(*b),
                Some(other) => Err(Error::invalid(format!("render option \"{name}\" must be true or false, not {}", super::json_type(other)))),
            }
        };
        let undefined = match map.get("undefined") {
            None | Some(Json::Null) => Undefined::Strict,
            Some(Json::String(s)) if s == "strict" => Undefined::Strict,
            Some(Json::String(s)) if s == "lenient" => Undefined::Lenient,
            Some(other) => {
                return Err(Error::invalid(format!("render option \"undefined\" must be \"strict\" or \"lenient\", not {other}")))
            }
        };
        Ok(Options {
            trim_blocks: flag("trim_blocks")?,
            lstrip_blocks: flag("lstrip_blocks")?,
            keep_trailing_newline: flag("keep_trailing_newline")?,
            undefined,
        })
    }

    /// Every option, as stored with a version and shown by `prompt_get`.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("trim_blocks".into(), Json::Bool(self.trim_blocks));
        m.insert("lstrip_blocks".into(), Json::Bool(self.lstrip_blocks));
        m.insert("keep_trailing_newline".into(), Json::Bool(self.keep_trailing_newline));
        m.insert(
            "undefined".into(),
            Json::String(match self.undefined {
                Undefined::Strict => "strict",
                Undefined::Lenient => "lenient",
            }
            .into()),
        );
        Json::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_and_write_json() {
        assert_eq!(Options::from_json(&json!({})).unwrap(), Options::default());
        let o = Options::from_json(&json!({"trim_blocks": true, "lstrip_blocks": true, "undefined": "lenient"})).unwrap();
        assert!(o.trim_blocks && o.lstrip_blocks && !o.keep_trailing_newline && o.undefined == Undefined::Lenient);
        assert_eq!(Options::from_json(&o.to_json()).unwrap(), o);
        assert_eq!(
            Options::default().to_json(),
            json!({"trim_blocks": false, "lstrip_blocks": false, "keep_trailing_newline": false, "undefined": "strict"})
        );
    }

    #[test]
    fn bad_options_are_named() {
        for (bad, says) in [
            (json!({"trim": true}), "unknown render option \"trim\""),
            (json!({"trim_blocks": "yes"}), "must be true or false, not a string"),
            (json!({"undefined": "chainable"}), "must be \"strict\" or \"lenient\""),
            (json!([1]), "must be a JSON object, not an array"),
        ] {
            let e = Options::from_json(&bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }
}
