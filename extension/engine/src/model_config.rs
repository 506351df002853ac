//! The shape of a version's model configuration: what the application
//! sends the provider with the rendered prompt, versioned with it.
//!
//! Known keys are checked so that a mistake fails when the version is
//! saved, not as a provider's 400 at call time: `model` (the seeds wrote
//! `model_name`, accepted and stored as `model`), `temperature`,
//! `max_tokens`, `top_p`, `stop`, `tools` (OpenAI function tools, each
//! `parameters` a JSON Schema), `tool_choice` (which must name a declared
//! tool) and `response_format` (`text`, `json_object`, or `json_schema`
//! with a valid schema). Any other key is kept as given (`provider`,
//! `max_output_tokens`, `seed`, ...): providers differ, and the database
//! does not second-guess them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::json_schema::{kind, Schema};

/// Names OpenAI accepts for functions and JSON schemas.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn invalid(path: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{path} {what}"))
        .with_hint("See the README's model configuration section for the keys pgprompt checks; other keys are kept as given.")
}

fn number_in(config: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<()> {
    match config.get(key) {
        None => Ok(()),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= min && x <= max) => Ok(()),
        Some(v) => Err(invalid(&format!("model_config.{key}"), format_args!("must be a number from {min} to {max}, not {v}"))),
    }
}

/// `config` checked and normalised (`model_name` becomes `model`), or a
/// 22023 error naming the path of what is wrong.
pub fn normalize(config: &Value) -> Result<Value> {
    let Value::Object(map) = config else {
        return Err(Error::invalid(format!("model_config must be a JSON object, not {}", kind(config)))
            .with_hint("For example: '{\"model\": \"gpt-4o\", \"temperature\": 0.2}'"));
    };
    let mut out = map.clone();

    // The model: `model`, or the seeds' `model_name`; both must agree.
    let model = match (map.get("model"), map.get("model_name")) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid("model_config.model", format_args!("({a}) and model_config.model_name ({b}) name different models")));
        }
        (Some(m), _) | (None, Some(m)) => Some(m),
        (None, None) => None,
    };
    if let Some(m) = model {
        match m.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= 200 => {}
            _ => return Err(invalid("model_config.model", format_args!("must be a model name (a non-empty text of at most 200 characters), not {m}"))),
        }
        let m = m.clone();
        out.shift_remove("model_name");
        out.insert("model".into(), m);
    }

    number_in(map, "temperature", 0.0, 2.0)?;
    number_in(map, "top_p", 0.0, 1.0)?;
    if let Some(v) = map.get("max_tokens") {
        if !v.as_u64().is_some_and(|n| n >= 1) {
            return Err(invalid("model_config.max_tokens", format_args!("must be a positive integer, not {v}")));
        }
    }
    match map.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::Array(items)) if items.iter().all(|s| s.as_str().is_some_and(|s| !s.is_empty())) => {}
        Some(v) => return Err(invalid("model_config.stop", format_args!("must be a non-empty text or a list of them, not {v}"))),
    }

    let tools = match map.get("tools") {
        None => Vec::new(),
        Some(t) => tool_names(t)?,
    };
    if let Some(choice) = map.get("tool_choice") {
        check_tool_choice(choice, &tools)?;
    }
    if let Some(format) = map.get("response_format") {
        check_response_format(format)?;
    }
    Ok(Value::Object(out))
}

/// The names of the tools in `tools`, each checked: `{"type": "function",
/// "function": {"name", "description"?, "parameters"?, "strict"?}}`.
fn tool_names(tools: &Value) -> Result<Vec<String>> {
    let Value::Array(list) = tools else {
        return Err(invalid("model_config.tools", format_args!("must be a list of tool definitions, not {}", kind(tools))));
    };
    let mut names = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let path = format!("model_config.tools[{i}]");
        let Value::Object(t) = tool else {
            return Err(invalid(&path, format_args!("must be a tool definition (an object), not {}", kind(tool))));
        };
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(&format!("{path}.type"), "must be \"function\" (a function tool: {\"type\": \"function\", \"function\": {\"name\": ...}})"));
        }
        let Some(Value::Object(f)) = t.get("function") else {
            return Err(invalid(&format!("{path}.function"), "must be an object with the function's name, description and parameters"));
        };
        let name = match f.get("name") {
            Some(Value::String(n)) if valid_name(n) => n.clone(),
            other => {
                return Err(invalid(
                    &format!("{path}.function.name"),
                    format_args!("must be 1 to 64 letters, digits, _ or -, not {}", other.map_or("missing".into(), Value::to_string)),
                ));
            }
        };
        if names.contains(&name) {
            return Err(invalid(&format!("{path}.function.name"), format_args!("repeats the tool name \"{name}\"")));
        }
        if let Some(d) = f.get("description") {
            if !d.is_string() {
                return Err(invalid(&format!("{path}.function.description"), "must be a text"));
            }
        }
        if let Some(s) = f.get("strict") {
            if !s.is_boolean() {
                return Err(invalid(&format!("{path}.function.strict"), "must be true or false"));
            }
        }
        if let Some(p) = f.get("parameters") {
            if !p.is_object() {
                return Err(invalid(&format!("{path}.function.parameters"), format_args!("must be a JSON Schema object, not {}", kind(p))));
            }
            Schema::compile(p, &format!("{path}.function.parameters"))?;
        }
        names.push(name);
    }
    Ok(names)
}

/// `"none"`, `"auto"`, `"required"` or `{"type": "function", "function":
/// {"name": ...}}` naming one of `tools`.
fn check_tool_choice(choice: &Value, tools: &[String]) -> Result<()> {
    const PATH: &str = "model_config.tool_choice";
    match choice {
        Value::String(s) if s == "none" || s == "auto" => Ok(()),
        Value::String(s) if s == "required" && !tools.is_empty() => Ok(()),
        Value::String(s) if s == "required" => Err(invalid(PATH, "is \"required\" but model_config.tools declares no tool")),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
                Some(n) if tools.iter().any(|t| t == n) => Ok(()),
                Some(n) => Err(invalid(&format!("{PATH}.function.name"), format_args!("\"{n}\" is not one of model_config.tools"))),
                None => Err(invalid(&format!("{PATH}.function.name"), "is missing")),
            }
        }
        v => Err(invalid(PATH, format_args!("must be \"none\", \"auto\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, not {v}"))),
    }
}

/// `{"type": "text"}`, `{"type": "json_object"}` or `{"type":
/// "json_schema", "json_schema": {"name", "schema", "description"?,
/// "strict"?}}` with a valid schema.
fn check_response_format(format: &Value) -> Result<()> {
    const PATH: &str = "model_config.response_format";
    let kind_of = format.get("type").and_then(Value::as_str);
    match kind_of {
        Some("text") | Some("json_object") => Ok(()),
        Some("json_schema") => {
            let Some(Value::Object(js)) = format.get("json_schema") else {
                return Err(invalid(&format!("{PATH}.json_schema"), "must be an object with a name and a schema"));
            };
            match js.get("name") {
                Some(Value::String(n)) if valid_name(n) => {}
                _ => return Err(invalid(&format!("{PATH}.json_schema.name"), "must be 1 to 64 letters, digits, _ or -")),
            }
            if let Some(s) = js.get("strict") {
                if !s.is_boolean() {
                    return Err(invalid(&format!("{PATH}.json_schema.strict"), "must be true or false"));
                }
            }
            match js.get("schema") {
                Some(s) => Schema::compile(s, &format!("{PATH}.json_schema.schema")).map(|_| ()),
                None => Err(invalid(&format!("{PATH}.json_schema.schema"), "is missing")),
            }
        }
        _ => Err(invalid(&format!("{PATH}.type"), "must be \"text\", \"json_object\" or \"json_schema\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        let e = normalize(&v).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        e.message
    }

    #[test]
    fn model_name_becomes_model_and_other_keys_stay() {
        let out = normalize(&json!({"model_name": "gemini-2.5-flash", "provider": "vertex_ai", "max_output_tokens": 512})).unwrap();
        assert_eq!(out, json!({"model": "gemini-2.5-flash", "provider": "vertex_ai", "max_output_tokens": 512}));
        assert_eq!(normalize(&json!({"model": "a", "model_name": "a"})).unwrap(), json!({"model": "a"}));
        assert_eq!(normalize(&json!({})).unwrap(), json!({}));
        assert!(err(json!({"model": "a", "model_name": "b"})).contains("name different models"));
        assert!(err(json!({"model": ""})).starts_with("model_config.model must be"));
        assert!(err(json!([])).contains("must be a JSON object, not an array"));
    }

    #[test]
    fn sampling_settings_are_checked() {
        let ok = json!({"model": "gpt-4o", "temperature": 0.2, "top_p": 1, "max_tokens": 300, "stop": ["\n\n", "END"]});
        assert_eq!(normalize(&ok).unwrap(), ok);
        assert!(err(json!({"temperature": 3})).starts_with("model_config.temperature must be a number from 0 to 2"));
        assert!(err(json!({"temperature": "hot"})).starts_with("model_config.temperature"));
        assert!(err(json!({"top_p": -0.1})).starts_with("model_config.top_p"));
        assert!(err(json!({"max_tokens": 0})).starts_with("model_config.max_tokens"));
        assert!(err(json!({"max_tokens": 1.5})).starts_with("model_config.max_tokens"));
        assert!(err(json!({"stop": [""]})).starts_with("model_config.stop"));
        assert!(err(json!({"stop": 4})).starts_with("model_config.stop"));
    }

    #[test]
    fn tools_are_function_definitions_with_schemas() {
        let weather = json!({"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
        let ok = json!({"tools": [weather.clone()], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
        assert_eq!(normalize(&ok).unwrap(), ok);
        assert!(normalize(&json!({"tools": [weather.clone()], "tool_choice": "required"})).is_ok());
        assert!(err(json!({"tools": {"name": "x"}})).starts_with("model_config.tools must be a list of tool definitions"));
        assert!(err(json!({"tools": ["get_weather"]})).starts_with("model_config.tools[0] must be a tool definition"));
        assert!(err(json!({"tools": [{"type": "retrieval"}]})).starts_with("model_config.tools[0].type"));
        assert!(err(json!({"tools": [{"type": "function", "function": {"name": "has space"}}]})).starts_with("model_config.tools[0].function.name"));
        assert!(err(json!({"tools": [weather.clone(), weather.clone()]})).contains("repeats the tool name"));
        let bad = json!({"tools": [weather, {"type": "function", "function": {"name": "f", "parameters": {"type": "obj"}}}]});
        assert!(err(bad).starts_with("model_config.tools[1].function.parameters is not a valid JSON Schema at /type"));
        assert!(err(json!({"tool_choice": "required"})).contains("declares no tool"));
        assert!(err(json!({"tool_choice": {"type": "function", "function": {"name": "nope"}}})).contains("\"nope\" is not one of"));
        assert!(err(json!({"tool_choice": "sometimes"})).starts_with("model_config.tool_choice must be"));
    }

    #[test]
    fn response_formats_name_valid_schemas() {
        for ok in [
            json!({"response_format": {"type": "json_object"}}),
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "topics", "strict": true,
                "schema": {"type": "object", "properties": {"topics": {"type": "array", "items": {"type": "string"}}}}}}}),
        ] {
            assert_eq!(normalize(&ok).unwrap(), ok);
        }
        assert!(err(json!({"response_format": {"type": "yaml"}})).starts_with("model_config.response_format.type"));
        assert!(err(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "t"}}})).contains("schema is missing"));
        let bad = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": {"required": "topics"}}}});
        assert!(err(bad).starts_with("model_config.response_format.json_schema.schema is not a valid JSON Schema at /required"));
    }
}
