//! Vars passed as JSON text (SQL `text` or `json`), read the way Python's
//! `json.loads` reads them: object keys stay in the order the caller wrote
//! them, so `{% for k, v in tool.parameters|items %}` and `tojson` show a
//! tool schema as the application sent it (jsonb re-sorts keys before we
//! ever see them). A key written twice is refused rather than silently
//! collapsed: which of the two a renderer keeps differs between parsers.

use std::borrow::Cow;
use std::fmt;

use minijinja::value::Serde;
use minijinja::Value;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::{json_type, Printed, Vars};
use crate::error::{Error, ErrorKind, Result};

/// Vars given as JSON text, checked and indexed but not converted: the
/// top-level keys with the text of their values. Printing a string variable
/// borrows it from the text; the rest is converted when a template needs
/// it, by the same parser as `parse` (so both read numbers alike).
pub struct TextVars<'a> {
    /// The top-level pairs, in written order; `Err(type)` when the text is
    /// not an object.
    top: std::result::Result<Vec<(Cow<'a, str>, &'a RawValue)>, &'static str>,
    text: &'a str,
}

impl<'a> TextVars<'a> {
    /// Checks `text` as `parse` does (22P02, 22030, 54000) and indexes its
    /// top level.
    pub fn new(text: &'a str) -> Result<TextVars<'a>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let top = Top.deserialize(&mut de).and_then(|t| de.end().map(|()| t)).map_err(map_error)?;
        if let Ok(pairs) = &top {
            // The usual handful of keys is compared in place.
            let mut seen = (pairs.len() > 16).then(Seen::default);
            for (i, (key, value)) in pairs.iter().enumerate() {
                let repeated = match &mut seen {
                    Some(seen) => !seen.insert(key.clone()),
                    None => pairs[..i].iter().any(|(k, _)| k == key),
                };
                if repeated {
                    return Err(duplicate(&Json::String(key.to_string()).to_string()));
                }
                // Nested objects are checked for repeated keys too.
                if value.get().starts_with(['{', '[']) {
                    let mut de = serde_json::Deserializer::from_str(value.get());
                    Check.deserialize(&mut de).map_err(map_error)?;
                }
            }
        }
        Ok(TextVars { top, text })
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.top.as_ref().ok()?.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

impl Vars for TextVars<'_> {
    fn non_object(&self) -> Option<&'static str> {
        self.top.as_ref().err().copied()
    }

    fn printed(&self, name: &str) -> Result<Option<Printed<'_>>> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        let text = raw.get();
        // A string without escapes is printed as it stands in the text.
        if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if !inner.contains('\\') {
                return Ok(Some(Printed::Str(inner)));
            }
        }
        // An integer prints as written (JSON has no leading zeros; "-0" is
        // left to the parser, which reads it as a float).
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !text.starts_with("-0") && text.parse::<i64>().is_ok() {
            return Ok(Some(Printed::Str(text)));
        }
        match parse(text)? {
            Json::String(s) if s.contains('\0') => Err(super::nul_in_output()),
            Json::String(s) => Ok(Some(Printed::Owned(s))),
            v => Ok(Some(Printed::Owned(Value::from(Serde(&v)).to_string()))),
        }
    }

    fn get_json(&self, name: &str) -> Result<Option<Json>> {
        self.get(name).map(|raw| parse(raw.get())).transpose()
    }

    fn to_value(&self) -> Result<Value> {
        // Checked already: build the engine's values straight from the text,
        // keys in written order.
        let read = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).map_err(map_error);
        match &self.top {
            Ok(pairs) => Ok(Value::from_pairs(
                pairs.iter().map(|(k, v)| Ok((Value::from(k.as_ref()), read(v)?))).collect::<Result<Vec<_>>>()?,
            )),
            Err(_) => Ok(Value::from(Serde(&parse(self.text)?))),
        }
    }

    fn to_json(&self) -> Result<Json> {
        parse(self.text)
    }
}

/// The top level: an object's pairs (values as text), or what it is instead.
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = std::result::Result<Vec<(Cow<'de, str>, &'de RawValue)>, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = std::result::Result<Vec<(Cow<'de, str>, &'de RawValue)>, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(Key(k)) = map.next_key()? {
            pairs.push((k, map.next_value::<&RawValue>()?));
        }
        Ok(Ok(pairs))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        // Checked like any value (a nesting beyond 128 is 54000 here too).
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(Err(json_type(&Json::Array(Vec::new()))))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::Bool(true))))
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::from(0))))
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::from(0))))
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::from(0))))
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::String(String::new()))))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Err(json_type(&Json::Null)))
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The keys of one object seen so far: a list while short, a hash set
/// beyond (an object of 100,000 keys must not cost 10^10 comparisons).
#[derive(Default)]
struct Seen<'a> {
    list: Vec<Cow<'a, str>>,
    set: Option<std::collections::HashSet<Cow<'a, str>>>,
}

impl<'a> Seen<'a> {
    /// False when `key` was seen before.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        if let Some(set) = &mut self.set {
            return set.insert(key);
        }
        if self.list.contains(&key) {
            return false;
        }
        self.list.push(key);
        if self.list.len() > 16 {
            self.set = Some(self.list.drain(..).collect());
        }
        true
    }
}

/// Walks a value checking that no object repeats a key, building nothing
/// but each object's key list.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen = Seen::default();
        while let Some(Key(k)) = map.next_key()? {
            if !seen.insert(k.clone()) {
                return Err(A::Error::custom(format!("{DUPLICATE}{}", Json::String(k.into_owned()))));
            }
            map.next_value_seed(Check)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
}

/// Parses `text` as one JSON value, keys in written order, duplicate keys
/// an error (22030), bad JSON an error (22P02), nesting deeper than 128 a
/// limit error (54000).
pub fn parse(text: &str) -> Result<Json> {
    let mut de = serde_json::Deserializer::from_str(text);
    Ordered.deserialize(&mut de).and_then(|v| de.end().map(|()| v)).map_err(map_error)
}

/// Our error for a serde_json error of reading vars.
fn map_error(e: serde_json::Error) -> Error {
    let text = e.to_string();
    if let Some(key) = text.strip_prefix(DUPLICATE) {
        duplicate(key.rsplit_once(" at line ").map_or(key, |(k, _)| k))
    } else if text.starts_with("recursion limit exceeded") {
        Error::new(ErrorKind::LimitExceeded, "vars nest deeper than 128 levels")
    } else {
        Error::new(ErrorKind::InvalidJson, format!("vars are not valid JSON: {e}"))
    }
}

fn duplicate(key: &str) -> Error {
    Error::new(ErrorKind::DuplicateKey, format!("vars repeat the key {key}"))
        .with_hint("Each key of a JSON object may appear once; pass jsonb to have the last one win.")
}

const DUPLICATE: &str = "duplicate key ";

/// Builds a `serde_json::Value` (whose maps keep insertion order in this
/// crate), checking each object's keys.
struct Ordered;

impl<'de> DeserializeSeed<'de> for Ordered {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Ordered {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(Ordered)? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("{DUPLICATE}{}", Json::String(key))));
            }
            let value = map.next_value_seed(Ordered)?;
            out.insert(key, value);
        }
        Ok(Json::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_written_order() {
        let v = parse(r#"{"zeta": 1, "alpha": {"b": 2, "a": [3, {"y": 4, "x": 5}]}}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"zeta":1,"alpha":{"b":2,"a":[3,{"y":4,"x":5}]}}"#);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [r#"{"a": 1, "a": 2}"#, r#"{"t": [{"k": 1, "j": 0, "k": 1}]}"#] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind, ErrorKind::DuplicateKey, "{text}");
        }
        assert_eq!(parse(r#"{"a": 1, "a": 2}"#).unwrap_err().message, "vars repeat the key \"a\"");
        // The same key in different objects is fine.
        assert!(parse(r#"{"a": {"a": {"a": 1}}}"#).is_ok());
        // Many keys: found through the hash set, and the last one repeated.
        let many: String = (0..50_000).map(|i| format!("\"k{i}\": {i}, ")).collect();
        assert!(TextVars::new(&format!("{{{many}\"x\": 0}}")).is_ok());
        assert!(TextVars::new(&format!("{{\"m\": {{{many}\"x\": 0}}}}")).is_ok());
        for text in [format!("{{{many}\"k49999\": 0}}"), format!("{{\"m\": {{{many}\"k7\": 0}}}}")] {
            assert_eq!(TextVars::new(&text).err().map(|e| e.kind), Some(ErrorKind::DuplicateKey));
        }
    }

    #[test]
    fn bad_json_and_deep_json_are_errors() {
        for text in ["", "{", "{'a': 1}", "{\"a\": NaN}", "{} {}", "[1,]"] {
            assert_eq!(parse(text).unwrap_err().kind, ErrorKind::InvalidJson, "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse(&deep).unwrap_err().kind, ErrorKind::LimitExceeded);
    }

    #[test]
    fn text_vars_check_like_parse_and_print_in_place() {
        for text in [r#"{"a": 1, "a": 2}"#, r#"{"t": [{"k": 1, "j": 0, "k": 1}]}"#, r#"{"\u0061": 1, "a": 2}"#] {
            assert_eq!(TextVars::new(text).err().map(|e| e.kind), Some(ErrorKind::DuplicateKey), "{text}");
        }
        for text in ["", "{", "{\"a\": 1,}", "{} {}"] {
            assert_eq!(TextVars::new(text).err().map(|e| e.kind), Some(ErrorKind::InvalidJson), "{text:?}");
        }
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(TextVars::new(&deep).err().map(|e| e.kind), Some(ErrorKind::LimitExceeded));
        assert_eq!(TextVars::new("[1]").unwrap().non_object(), Some("an array"));
        let v = TextVars::new(r#"{"s": "plain", "e": "tab\there", "n": 1e3, "i": -7, "b": true, "z": null, "l": [1, "a"], "m": {"y": 1, "x": 2}}"#).unwrap();
        let p = |k: &str| v.printed(k).unwrap().map(|p| p.as_str().to_string());
        assert!(matches!(v.printed("s").unwrap(), Some(Printed::Str("plain"))));
        assert_eq!(p("e").as_deref(), Some("tab\there"));
        assert_eq!(p("n").as_deref(), Some("1000.0"));
        assert_eq!(p("i").as_deref(), Some("-7"));
        assert_eq!(p("b").as_deref(), Some("True"));
        assert_eq!(p("z").as_deref(), Some("None"));
        assert_eq!(p("l").as_deref(), Some("[1, 'a']"));
        assert_eq!(p("m").as_deref(), Some("{'y': 1, 'x': 2}"));
        assert_eq!(p("missing"), None);
        assert_eq!(v.to_json().unwrap(), parse(v.text).unwrap());
        // The engine's values are those of the parsed JSON, in written order.
        assert_eq!(v.to_value().unwrap().to_string(), Value::from(Serde(&parse(v.text).unwrap())).to_string());
        assert_eq!(v.to_value().unwrap().to_string(), r#"{'s': 'plain', 'e': 'tab\there', 'n': 1000.0, 'i': -7, 'b': True, 'z': None, 'l': [1, 'a'], 'm': {'y': 1, 'x': 2}}"#);
        assert!(matches!(TextVars::new(r#"{"x": "a\u0000b"}"#).unwrap().printed("x"), Err(e) if e.kind == ErrorKind::InvalidOutput));
    }

    #[test]
    fn numbers_read_as_python_reads_them() {
        let v = parse("[1, -2, 1.5, 2.0, 1e3, 18446744073709551615]").unwrap();
        assert_eq!(v.to_string(), "[1,-2,1.5,2.0,1000.0,18446744073709551615]");
    }
}
