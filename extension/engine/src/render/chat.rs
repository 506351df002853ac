//! Chat messages as providers accept them (OpenAI's Chat Completions
//! format, which the others' SDKs translate from): a role; content as a
//! string or a list of parts (`text`, and in user messages `image_url`,
//! `input_audio` and `file`); a `name`; an assistant's `tool_calls`; a tool
//! message's `tool_call_id`.
//!
//! In a chat template every string a provider would read as text or data
//! (content, a part's text, URL or data, a name, a tool call's id and
//! arguments, a tool_call_id) is a Jinja body; the rest (roles, part types,
//! `detail`, audio `format`) is literal and checked when the template is
//! saved (42601). Messages spliced from a variable by a placeholder are
//! checked the same way when the template renders (22023), so a malformed
//! history fails here rather than as a provider's 400 later.

use serde_json::{Map, Value as Json};

use super::CHAT_ROLES;

/// A step into a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Key(&'static str),
    Index(usize),
}

/// A templated string of a message: where it goes, its source, and how
/// error messages name it.
pub(super) struct RawSlot {
    pub path: Vec<Step>,
    pub source: String,
    pub label: String,
}

/// Whether strings are Jinja bodies (a template) or values (spliced).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Template,
    Spliced,
}

/// What a message is checked with: the mode, the slots found so far, and
/// how the message is named in errors.
struct Walk<'a> {
    mode: Mode,
    slots: Vec<RawSlot>,
    message: &'a str,
}

impl Walk<'_> {
    /// A string field: a slot in a template; in a spliced message, a string.
    fn text(&mut self, value: Option<&Json>, path: Vec<Step>, what: &str, required: bool) -> Result<(), String> {
        match value {
            None | Some(Json::Null) if !required => Ok(()),
            Some(Json::String(s)) => {
                if self.mode == Mode::Template {
                    self.slots.push(RawSlot { path, source: s.clone(), label: format!("{} {what}", self.message) });
                }
                Ok(())
            }
            None | Some(Json::Null) => Err(format!("{}: {what} is missing", self.message)),
            Some(_) => Err(format!("{}: {what} must be a string", self.message)),
        }
    }

    /// One of a fixed set of literal strings.
    fn literal(&self, value: Option<&Json>, what: &str, allowed: &[&str], required: bool) -> Result<(), String> {
        match value {
            None if !required => Ok(()),
            Some(Json::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
            _ => Err(format!("{}: {what} must be one of {}", self.message, allowed.join(", "))),
        }
    }

    fn content(&mut self, role: &str, content: Option<&Json>, may_be_empty: bool) -> Result<(), String> {
        let Some(Json::Array(parts)) = content else {
            return match content {
                None | Some(Json::Null) if may_be_empty => Ok(()),
                None | Some(Json::Null) => Err(format!("{} needs \"content\" (a string or a list of content parts)", self.message)),
                other => self.text(other, vec![Step::Key("content")], "content", true),
            };
        };
        if parts.is_empty() {
            return Err(format!("{}: content has no parts", self.message));
        }
        for (i, part) in parts.iter().enumerate() {
            let at = |k: &'static str| vec![Step::Key("content"), Step::Index(i), Step::Key(k)];
            let what = format!("content part {}", i + 1);
            let Json::Object(p) = part else {
                return Err(format!("{}: {what} must be an object", self.message));
            };
            let kind = p.get("type").and_then(Json::as_str).unwrap_or_default();
            let media = |name: &str| -> Result<(), String> {
                if role == "user" {
                    Ok(())
                } else {
                    Err(format!("{}: {what}: {name} parts go in user messages only", self.message))
                }
            };
            let field = |key: &str| -> Result<&Map<String, Json>, String> {
                p.get(key).and_then(Json::as_object).ok_or_else(|| format!("{}: {what}: \"{key}\" must be an object", self.message))
            };
            match kind {
                "text" => self.text(p.get("text"), at("text"), &format!("{what} text"), true)?,
                "image_url" | "input_audio" => {
                    // The templated key, and the literal one with its values.
                    let (part, key, literal, allowed, required): (&'static str, &'static str, &str, &[&str], bool) = match kind {
                        "image_url" => ("image_url", "url", "detail", &["auto", "low", "high"], false),
                        _ => ("input_audio", "data", "format", &["wav", "mp3"], true),
                    };
                    media(part)?;
                    let object = field(part)?;
                    let mut path = at(part);
                    path.push(Step::Key(key));
                    self.text(object.get(key), path, &format!("{what} {part}.{key}"), true)?;
                    self.literal(object.get(literal), &format!("{what} {part}.{literal}"), allowed, required)?;
                }
                "file" => {
                    media("file")?;
                    let file = field("file")?;
                    if !["file_id", "file_data"].iter().any(|k| file.contains_key(*k)) {
                        return Err(format!("{}: {what}: a file part needs file_id or file_data", self.message));
                    }
                    for key in ["file_id", "file_data", "filename"] {
                        let mut path = at("file");
                        path.push(Step::Key(key));
                        self.text(file.get(key), path, &format!("{what} file.{key}"), false)?;
                    }
                }
                other => {
                    return Err(format!(
                        "{}: {what} has unknown type \"{other}\"; expected text, image_url, input_audio or file",
                        self.message
                    ))
                }
            }
        }
        Ok(())
    }

    fn tool_calls(&mut self, calls: &Json) -> Result<(), String> {
        let Json::Array(calls) = calls else {
            return Err(format!("{}: tool_calls must be a list", self.message));
        };
        if calls.is_empty() {
            return Err(format!("{}: tool_calls is empty", self.message));
        }
        for (i, call) in calls.iter().enumerate() {
            let what = format!("tool call {}", i + 1);
            let Json::Object(c) = call else {
                return Err(format!("{}: {what} must be an object", self.message));
            };
            self.literal(c.get("type"), &format!("{what} type"), &["function"], true)?;
            let Some(Json::Object(f)) = c.get("function") else {
                return Err(format!("{}: {what} needs a \"function\" object with name and arguments", self.message));
            };
            let at = |k: &'static str| vec![Step::Key("tool_calls"), Step::Index(i), Step::Key(k)];
            self.text(c.get("id"), at("id"), &format!("{what} id"), true)?;
            let mut name = at("function");
            name.push(Step::Key("name"));
            self.text(f.get("name"), name, &format!("{what} function.name"), true)?;
            let mut arguments = at("function");
            arguments.push(Step::Key("arguments"));
            self.text(f.get("arguments"), arguments, &format!("{what} function.arguments"), true)?;
        }
        Ok(())
    }
}

/// Checks one message; returns the templated strings (none when spliced).
fn walk(message: &Map<String, Json>, label: &str, mode: Mode) -> Result<Vec<RawSlot>, String> {
    let mut w = Walk { mode, slots: Vec::new(), message: label };
    let role = match message.get("role") {
        Some(Json::String(r)) if CHAT_ROLES.contains(&r.as_str()) => r.as_str(),
        Some(Json::String(r)) => return Err(format!("{label}: unknown role \"{r}\"; expected one of {}", CHAT_ROLES.join(", "))),
        _ => return Err(format!("{label} needs a \"role\" string")),
    };
    let calls = message.get("tool_calls").filter(|c| !c.is_null());
    match (role, calls) {
        ("assistant", Some(calls)) => w.tool_calls(calls)?,
        (_, Some(_)) => return Err(format!("{label}: only assistant messages have tool_calls")),
        _ => {}
    }
    w.content(role, message.get("content"), role == "assistant" && calls.is_some())?;
    w.text(message.get("name"), vec![Step::Key("name")], "name", false)?;
    match (role, message.get("tool_call_id")) {
        ("tool", id) => w.text(id, vec![Step::Key("tool_call_id")], "tool_call_id", true)?,
        (_, Some(_)) => return Err(format!("{label}: only tool messages have a tool_call_id")),
        _ => {}
    }
    if mode == Mode::Template {
        const KEYS: [&str; 5] = ["role", "content", "name", "tool_calls", "tool_call_id"];
        if let Some(k) = message.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("{label}: unknown key \"{k}\""));
        }
    }
    Ok(w.slots)
}

/// A message of a chat template: its templated strings, or why it is not
/// one (the caller reports 42601).
pub(super) fn template_message(message: &Map<String, Json>, label: &str) -> Result<Vec<RawSlot>, String> {
    walk(message, label, Mode::Template)
}

/// The messages a placeholder splices from `variable`, checked (22023).
pub(super) fn spliced(variable: &str, list: &Json) -> Result<Vec<Json>, String> {
    let Json::Array(items) = list else {
        return Err(format!(
            "variable \"{variable}\" fills a message placeholder and must be an array of messages, not {}",
            super::json_type(list)
        ));
    };
    for (i, m) in items.iter().enumerate() {
        let label = format!("message {} of variable \"{variable}\"", i + 1);
        let Json::Object(m) = m else {
            return Err(format!("{label} must be an object"));
        };
        walk(m, &label, Mode::Spliced)?;
    }
    Ok(items.clone())
}

/// Puts `value` where `path` points in `doc` (a path `walk` found in it).
pub(super) fn fill(doc: &mut Json, path: &[Step], value: String) {
    let mut at = doc;
    for step in path {
        at = match step {
            Step::Key(k) => &mut at[*k],
            Step::Index(i) => &mut at[*i],
        };
    }
    *at = Json::String(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slots(m: Json) -> Result<Vec<String>, String> {
        template_message(m.as_object().unwrap(), "message 1").map(|s| s.into_iter().map(|s| s.label).collect())
    }

    #[test]
    fn every_text_a_provider_reads_is_a_slot() {
        let m = json!({"role": "user", "name": "{{ who }}", "content": [
            {"type": "text", "text": "Look at {{ what }}"},
            {"type": "image_url", "image_url": {"url": "{{ url }}", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "{{ audio }}", "format": "wav"}},
            {"type": "file", "file": {"file_id": "{{ file }}"}}]});
        assert_eq!(
            slots(m).unwrap(),
            [
                "message 1 content part 1 text",
                "message 1 content part 2 image_url.url",
                "message 1 content part 3 input_audio.data",
                "message 1 content part 4 file.file_id",
                "message 1 name"
            ]
        );
        let call = json!({"role": "assistant", "tool_calls": [{"id": "call_{{ n }}", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\": \"{{ city }}\"}"}}]});
        assert_eq!(slots(call).unwrap().len(), 3);
        assert_eq!(slots(json!({"role": "tool", "tool_call_id": "call_{{ n }}", "content": "{{ result }}"})).unwrap().len(), 2);
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        for (m, why) in [
            (json!({"role": "user", "content": [{"type": "video", "video": {}}]}), "unknown type \"video\""),
            (json!({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}), "user messages only"),
            (json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x", "detail": "max"}}]}), "detail"),
            (json!({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}), "format"),
            (json!({"role": "user", "content": [{"type": "file", "file": {"filename": "a.pdf"}}]}), "file_id or file_data"),
            (json!({"role": "user", "content": []}), "no parts"),
            (json!({"role": "user"}), "needs \"content\""),
            (json!({"role": "assistant"}), "needs \"content\""),
            (json!({"role": "tool", "content": "x"}), "tool_call_id is missing"),
            (json!({"role": "user", "content": "x", "tool_call_id": "c"}), "only tool messages"),
            (json!({"role": "user", "content": "x", "tool_calls": []}), "only assistant"),
            (json!({"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}), "id is missing"),
            (json!({"role": "wizard", "content": "x"}), "unknown role"),
            (json!({"role": "user", "content": "x", "extra": 1}), "unknown key"),
        ] {
            let e = slots(m.clone()).unwrap_err();
            assert!(e.contains(why), "{m}: {e}");
        }
    }

    #[test]
    fn spliced_history_is_checked_but_may_carry_extra_keys() {
        let ok = json!([{"role": "user", "content": "hi"},
                        {"role": "assistant", "content": null, "refusal": null,
                         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                        {"role": "tool", "tool_call_id": "c1", "content": "42"}]);
        assert_eq!(spliced("history", &ok).unwrap().len(), 3);
        assert!(spliced("history", &json!([{"role": "bot", "content": "x"}])).unwrap_err().contains("message 1 of variable \"history\": unknown role"));
        assert!(spliced("history", &json!([{"role": "user", "content": "x"}, {"role": "user"}])).unwrap_err().contains("message 2"));
        assert!(spliced("history", &json!({"role": "user"})).unwrap_err().contains("must be an array"));
    }

    #[test]
    fn fill_puts_rendered_text_in_place() {
        let mut doc = json!({"role": "user", "content": [{"type": "text", "text": ""}]});
        fill(&mut doc, &[Step::Key("content"), Step::Index(0), Step::Key("text")], "hello".into());
        assert_eq!(doc["content"][0]["text"], "hello");
    }
}
