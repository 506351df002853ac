//! Vars passed as JSON text (SQL `text` or `json`), read the way Python's
//! `json.loads` reads them: object keys stay in the order the caller wrote
//! them, so `{% for k, v in tool.parameters|items %}` and `tojson` show a
//! tool schema as the application sent it (jsonb re-sorts keys before we
//! ever see them). A key written twice is refused rather than silently
//! collapsed: which of the two a renderer keeps differs between parsers.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Result};

/// Parses `text` as one JSON value, keys in written order, duplicate keys
/// an error (22030), bad JSON an error (22P02), nesting deeper than 128 a
/// limit error (54000).
pub fn parse(text: &str) -> Result<Json> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Ordered.deserialize(&mut de).and_then(|v| de.end().map(|()| v)).map_err(|e| {
        if let Some(key) = e.to_string().strip_prefix(DUPLICATE) {
            let key = key.rsplit_once(" at line ").map_or(key, |(k, _)| k);
            Error::new(ErrorKind::DuplicateKey, format!("vars repeat the key {key}"))
                .with_hint("Each key of a JSON object may appear once; pass jsonb to have the last one win.")
        } else if e.to_string().starts_with("recursion limit exceeded") {
            Error::new(ErrorKind::LimitExceeded, "vars nest deeper than 128 levels")
        } else {
            Error::new(ErrorKind::InvalidJson, format!("vars are not valid JSON: {e}"))
        }
    })?;
    Ok(value)
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
    fn numbers_read_as_python_reads_them() {
        let v = parse("[1, -2, 1.5, 2.0, 1e3, 18446744073709551615]").unwrap();
        assert_eq!(v.to_string(), "[1,-2,1.5,2.0,1000.0,18446744073709551615]");
    }
}
