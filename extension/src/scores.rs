//! Feedback scores: a value given to `prompt_score` checked against the kind
//! its name was declared with (the range of numeric scores is checked
//! exactly, in numeric, by the caller).

use crate::error::{Error, ErrorKind};

/// What a score name was declared as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Boolean,
    Categorical(Vec<String>),
}

impl Kind {
    /// From prompt_score_definitions' kind and categories.
    pub fn new(kind: &str, categories: Vec<String>) -> Kind {
        match kind {
            "numeric" => Kind::Numeric,
            "boolean" => Kind::Boolean,
            _ => Kind::Categorical(categories),
        }
    }
}

/// A value as the caller gave it, by overload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Given<'a> {
    /// The numeric overload (the number as PostgreSQL writes it).
    Number(&'a str),
    Bool(bool),
    /// The text overload: a category, or a number or boolean written out.
    Text(&'a str),
}

impl Given<'_> {
    /// The value as messages quote it.
    fn quoted(&self) -> String {
        match self {
            Given::Number(n) => (*n).to_string(),
            Given::Bool(b) => b.to_string(),
            Given::Text(t) => format!("'{}'", t.replace('\'', "''")),
        }
    }
}

/// A checked value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A numeric score, as text for the caller to read as numeric.
    Number(String),
    Bool(bool),
    Category(String),
}

/// Checks `given` against a score's kind.
pub fn check(name: &str, kind: &Kind, given: Given) -> Result<Value, Error> {
    let wrong = |what: String| Error::new(ErrorKind::InvalidArgument, what);
    match (kind, given) {
        (Kind::Numeric, Given::Number(n)) => finite(name, n).map(|n| Value::Number(n.to_string())),
        (Kind::Numeric, Given::Text(t)) => {
            let t = t.trim();
            if !is_number(t) {
                return Err(wrong(format!("score \"{name}\" is numeric: {} is not a number", given.quoted())));
            }
            finite(name, t).map(|n| Value::Number(n.to_string()))
        }
        (Kind::Numeric, Given::Bool(_)) => Err(wrong(format!("score \"{name}\" is numeric: give a number, not {}", given.quoted()))),
        (Kind::Boolean, Given::Bool(b)) => Ok(Value::Bool(b)),
        (Kind::Boolean, Given::Text(t)) => {
            parse_bool(t).map(Value::Bool).ok_or_else(|| wrong(format!("score \"{name}\" is boolean: give true or false, not {}", given.quoted())))
        }
        (Kind::Boolean, Given::Number(_)) => Err(wrong(format!("score \"{name}\" is boolean: give true or false, not {}", given.quoted()))),
        (Kind::Categorical(categories), Given::Text(t)) if categories.iter().any(|c| c == t) => Ok(Value::Category(t.to_string())),
        (Kind::Categorical(categories), _) => {
            Err(wrong(format!("score \"{name}\" is one of {}, not {}", categories.join(", "), given.quoted())))
        }
    }
}

/// The number unless it is NaN or infinite (numeric has both).
fn finite<'a>(name: &str, n: &'a str) -> Result<&'a str, Error> {
    let lower = n.trim().trim_start_matches(['+', '-']).to_ascii_lowercase();
    if lower == "nan" || lower == "infinity" || lower == "inf" {
        return Err(Error::new(ErrorKind::InvalidArgument, format!("score \"{name}\" must be a finite number, not {n}")));
    }
    Ok(n.trim())
}

/// Whether numeric's input function reads `t` as a number (digits with an
/// optional sign, point and exponent; or NaN and the infinities, which
/// `finite` refuses with their own message).
fn is_number(t: &str) -> bool {
    let lower = t.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if ["nan", "infinity", "inf"].contains(&lower.as_str()) {
        return true;
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// PostgreSQL's boolean input: true, yes, on, 1 and false, no, off, 0, in
/// any case, surrounding space ignored, and any unambiguous prefix of the
/// words (t, ye, of ...; "o" alone is ambiguous).
pub fn parse_bool(t: &str) -> Option<bool> {
    let t = t.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    match t.as_str() {
        "1" => return Some(true),
        "0" => return Some(false),
        "o" => return None,
        _ => {}
    }
    for (word, value) in [("true", true), ("yes", true), ("on", true), ("false", false), ("no", false), ("off", false)] {
        if word.starts_with(&t) && !(t.len() < 2 && word.starts_with('o')) {
            return Some(value);
        }
    }
    None
}

/// The jsonb `counted_for` of a call's score: the call's template version,
/// and its experiment variant when it had one (`hour` in ISO 8601, UTC).
pub fn counted_for(hour: &str, template_id: i64, template_name: &str, version: i32, experiment: Option<(&str, &str)>) -> serde_json::Value {
    let group = |e: Option<(&str, &str)>| {
        let mut g = serde_json::json!({"hour": hour, "template_id": template_id, "template_name": template_name, "version": version});
        if let Some((experiment, variant)) = e {
            g["experiment"] = experiment.into();
            g["variant"] = variant.into();
        }
        g
    };
    serde_json::Value::Array(std::iter::once(group(None)).chain(experiment.map(|e| group(Some(e)))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_kind() {
        let cats = Kind::Categorical(vec!["math".into(), "art".into()]);
        assert_eq!(check("q", &Kind::Numeric, Given::Number("4.5")), Ok(Value::Number("4.5".into())));
        assert_eq!(check("q", &Kind::Numeric, Given::Text(" 3 ")), Ok(Value::Number("3".into())));
        assert_eq!(check("q", &Kind::Numeric, Given::Text("1e3")), Ok(Value::Number("1e3".into())));
        assert!(check("q", &Kind::Numeric, Given::Text("many")).unwrap_err().message.contains("'many' is not a number"));
        assert!(check("q", &Kind::Numeric, Given::Text("NaN")).unwrap_err().message.contains("finite"));
        assert!(check("q", &Kind::Numeric, Given::Number("-Infinity")).unwrap_err().message.contains("finite"));
        assert!(check("q", &Kind::Numeric, Given::Bool(true)).unwrap_err().message.contains("is numeric"));
        assert_eq!(check("t", &Kind::Boolean, Given::Text("yes")), Ok(Value::Bool(true)));
        assert!(check("t", &Kind::Boolean, Given::Number("1")).unwrap_err().message.contains("is boolean"));
        assert!(check("t", &Kind::Boolean, Given::Text("maybe")).unwrap_err().message.contains("is boolean"));
        assert_eq!(check("c", &cats, Given::Text("art")), Ok(Value::Category("art".into())));
        assert!(check("c", &cats, Given::Text("bio")).unwrap_err().message.contains("is one of math, art, not 'bio'"));
        assert!(check("c", &cats, Given::Number("3")).unwrap_err().message.contains("not 3"));
        assert_eq!(check("c", &cats, Given::Text("it's")).unwrap_err().message, "score \"c\" is one of math, art, not 'it''s'");
    }

    #[test]
    fn booleans_read_as_postgresql_reads_them() {
        // PostgreSQL's boolin (src/backend/utils/adt/bool.c).
        for t in ["t", "TRUE", " yes ", "y", "on", "1", "tr"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["f", "false", "NO", "n", "off", "of", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "o", "2", "truth", "yess", "maybe"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_read_as_numeric_reads_them() {
        for n in ["1", "-2.5", ".5", "5.", "1e-3", "+7"] {
            assert!(is_number(n), "{n}");
        }
        for bad in ["", ".", "e3", "1e", "1.2.3", "0x10", "one", "1_000"] {
            assert!(!is_number(bad), "{bad}");
        }
    }

    #[test]
    fn a_calls_score_counts_for_its_version_and_variant() {
        let c = counted_for("2026-01-01T10:00:00+00:00", 3, "tutor", 2, Some(("tone", "b")));
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[1]["variant"], "b");
        assert!(c[0].get("experiment").is_none());
        assert_eq!(counted_for("x", 1, "t", 1, None).as_array().unwrap().len(), 1);
    }
}
