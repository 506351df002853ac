//! What Jinja2 templates expect from Python, where minijinja differs: the
//! `tojson` of `json.dumps` (as transformers renders chat templates), the
//! globals chat templates call (`raise_exception`, `strftime_now`), and
//! filters whose corner cases Python decides (`indent`, `int`).

use std::cell::Cell;

use minijinja::value::{Kwargs, StringInput, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// A template's `raise_exception(message)`: carried through minijinja as an
/// invalid operation whose detail starts with this marker, and reported
/// with its own SQLSTATE (see `render::runtime_error`).
pub const RAISED: &str = "\u{1}raise_exception\u{1}";

/// `raise_exception(message)`: ends the render with the template's message.
/// Messages longer than `MAX_RAISED_BYTES` are cut (they go to the client
/// and the server log).
pub fn raise_exception(message: Value) -> Result<Value, Error> {
    let mut text = message.as_str().map(str::to_string).unwrap_or_else(|| message.to_string());
    if text.len() > MAX_RAISED_BYTES {
        let cut = (0..=MAX_RAISED_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let more = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!(" [{more} more bytes]"));
    }
    Err(Error::new(ErrorKind::InvalidOperation, format!("{RAISED}{text}")))
}

/// The longest message `raise_exception` reports whole.
pub const MAX_RAISED_BYTES: usize = 8192;

thread_local! {
    /// The render's "now" (microseconds since the Unix epoch, UTC): the
    /// caller's transaction time, so a render is a function of its inputs
    /// within a statement.
    static NOW: Cell<i64> = const { Cell::new(0) };
}

/// Sets the time `strftime_now` formats for the renders that follow.
pub fn set_now(unix_micros: i64) {
    NOW.with(|n| n.set(unix_micros));
}

/// `strftime_now(format)`: the render's time in UTC, formatted like
/// Python's `datetime.strftime`.
pub fn strftime_now(format: &str) -> Result<Value, Error> {
    let now = NOW.with(Cell::get);
    let ts = jiff::Timestamp::from_microsecond(now)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: {e}")))?;
    jiff::fmt::strtime::format(format, ts)
        .map(Value::from)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("strftime_now({format:?}): {e}")))
}

/// `indent` as Jinja2 does it: a trailing newline stays, blank lines are
/// left alone unless `blank`, the first line unless `first`.
pub fn indent(value: StringInput, width: Option<Value>, first: Option<bool>, blank: Option<bool>, kwargs: Kwargs) -> Result<Value, Error> {
    let width = match width {
        Some(w) => Some(w),
        None => kwargs.get::<Option<Value>>("width")?,
    };
    let first = first.or(kwargs.get::<Option<bool>>("first")?).unwrap_or(false);
    let blank = blank.or(kwargs.get::<Option<bool>>("blank")?).unwrap_or(false);
    kwargs.assert_all_used()?;
    let prefix = match &width {
        None => "    ".to_string(),
        Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().to_string(),
        Some(w) => " ".repeat(usize::try_from(w.clone()).unwrap_or(0)),
    };
    // Python: s += "\n"; then splitlines. The appended newline makes a
    // trailing newline of the input come back out.
    let text = format!("{}\n", value.as_str());
    let lines: Vec<&str> = splitlines(&text);
    let mut out = String::with_capacity(text.len() + prefix.len() * lines.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indented = (i > 0 || first) && (blank || !line.is_empty());
        if indented {
            out.push_str(&prefix);
        }
        out.push_str(line);
    }
    Ok(Value::from(out))
}

/// Python's `str.splitlines()` for the separators templates meet.
fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or('\n');
        let n = c.len_utf8();
        if matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            lines.push(&s[start..i]);
            i += n;
            if c == '\r' && bytes.get(i) == Some(&b'\n') {
                i += 1;
            }
            start = i;
        } else {
            i += n;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `int` as Jinja2 does it: strings may carry surrounding whitespace, a
/// base, and underscores between digits; floats truncate; anything else is
/// the default.
pub fn int(value: &Value, default: Option<Value>, base: Option<u32>) -> Result<Value, Error> {
    let default = default.unwrap_or(Value::from(0));
    match value.kind() {
        ValueKind::Number => {
            if let Ok(i) = i64::try_from(value.clone()) {
                return Ok(Value::from(i));
            }
            match f64::try_from(value.clone()) {
                Ok(f) if f.is_finite() => Ok(Value::from(f.trunc() as i64)),
                _ => Ok(default),
            }
        }
        ValueKind::Bool => Ok(Value::from(i64::from(value.is_true()))),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default().trim();
            let digits = s.replace('_', "");
            let parsed = match base {
                Some(b) if (2..=36).contains(&b) => {
                    let body = digits.trim_start_matches(['+', '-']);
                    let body = match b {
                        16 => body.trim_start_matches("0x").trim_start_matches("0X"),
                        8 => body.trim_start_matches("0o").trim_start_matches("0O"),
                        2 => body.trim_start_matches("0b").trim_start_matches("0B"),
                        _ => body,
                    };
                    i64::from_str_radix(body, b).ok().map(|v| if digits.starts_with('-') { -v } else { v })
                }
                _ => digits.parse::<i64>().ok().or_else(|| digits.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f.trunc() as i64)),
            };
            Ok(parsed.map(Value::from).unwrap_or(default))
        }
        _ => Ok(default),
    }
}

/// `is iterable` as Python answers it: strings, lists, dicts, tuples and
/// other sequences, and Jinja2's Undefined (which iterates as empty); not
/// `none`, numbers or booleans.
pub fn is_iterable(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::Undefined)
}

/// `tojson` as `json.dumps` writes it (and transformers renders chat
/// templates with it): `", "` and `": "` between items and keys (`","` at
/// line ends when indented), keys in the order the map has unless
/// `sort_keys`, non-ASCII characters as they are unless `ensure_ascii`, no
/// HTML escaping. Positional argument: the indent (as Jinja2's `tojson`).
pub fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match &indent {
        None => None,
        Some(i) if i.is_none() => None,
        Some(i) if i.kind() == ValueKind::String => Some(i.as_str().unwrap_or_default().to_string()),
        Some(i) => Some(" ".repeat(usize::try_from(i.clone()).unwrap_or(0))),
    };
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let separators = match kwargs.get::<Option<Value>>("separators")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match &parts[..] {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => {
                    Some((a.as_str().unwrap_or_default().to_string(), b.as_str().unwrap_or_default().to_string()))
                }
                _ => return Err(Error::new(ErrorKind::InvalidOperation, "tojson: separators must be two strings")),
            }
        }
    };
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = separators.unwrap_or_else(|| (if indent.is_some() { "," } else { ", " }.to_string(), ": ".to_string()));
    let mut out = String::new();
    let dumper = Dumper { indent: indent.as_deref(), item_sep: &item_sep, key_sep: &key_sep, ensure_ascii, sort_keys };
    dumper.write(&mut out, value, 0)?;
    Ok(Value::from(out))
}

struct Dumper<'a> {
    indent: Option<&'a str>,
    item_sep: &'a str,
    key_sep: &'a str,
    ensure_ascii: bool,
    sort_keys: bool,
}

fn not_serializable(v: &Value) -> Error {
    let what = match v.kind() {
        ValueKind::Undefined => "Undefined".to_string(),
        ValueKind::Map | ValueKind::Plain => minijinja::hooks::python_type_name(v).to_string(),
        k => k.to_string(),
    };
    Error::new(ErrorKind::InvalidOperation, format!("tojson: Object of type {what} is not JSON serializable"))
}

impl Dumper<'_> {
    fn newline(&self, out: &mut String, level: usize) {
        if let Some(ind) = self.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    }

    fn write(&self, out: &mut String, v: &Value, level: usize) -> Result<(), Error> {
        match v.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&number(v)),
            ValueKind::String => self.string(out, v.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(self.item_sep);
                    }
                    self.newline(out, level + 1);
                    self.write(out, item, level + 1)?;
                }
                self.newline(out, level);
                out.push(']');
            }
            ValueKind::Map if minijinja::hooks::is_data_map(v) => {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                for key in v.try_iter()? {
                    let item = v.get_item(&key)?;
                    pairs.push((self.key(&key)?, item));
                }
                if self.sort_keys {
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                if pairs.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                out.push('{');
                for (i, (key, item)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(self.item_sep);
                    }
                    self.newline(out, level + 1);
                    self.string(out, key);
                    out.push_str(self.key_sep);
                    self.write(out, item, level + 1)?;
                }
                self.newline(out, level);
                out.push('}');
            }
            _ => return Err(not_serializable(v)),
        }
        Ok(())
    }

    /// A map key as json.dumps converts it.
    fn key(&self, k: &Value) -> Result<String, Error> {
        Ok(match k.kind() {
            ValueKind::String => k.as_str().unwrap_or_default().to_string(),
            ValueKind::Number => number(k),
            ValueKind::Bool => (if k.is_true() { "true" } else { "false" }).to_string(),
            ValueKind::None => "null".to_string(),
            _ => return Err(Error::new(ErrorKind::InvalidOperation, format!("tojson: keys must be str, int, float, bool or None, not {}", k.kind()))),
        })
    }

    fn string(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && (c as u32) > 0x7e) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A number as Python's `repr` writes it (what `json.dumps` uses).
pub fn number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) => float_repr(f),
        Err(_) => v.to_string(),
    }
}

/// A float as `json.dumps` writes it: Python's repr, with `NaN` and
/// `Infinity` for what JSON cannot say.
pub fn float_repr(f: f64) -> String {
    match f {
        f if f.is_nan() => "NaN".into(),
        f if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        f => minijinja::hooks::float_repr(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        for (f, want) in [
            (0.1, "0.1"),
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123.456, "123.456"),
            (-1.5e-7, "-1.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn lines_split_as_python_splits_them() {
        assert_eq!(splitlines("a\nb\r\nc\rd\n"), ["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n\nb"), ["a", "", "b"]);
        assert!(splitlines("").is_empty());
    }
}

/// Python's string methods that minijinja-contrib's pycompat lacks:
/// `rsplit`, `index`, `rindex`, `center`, `ljust`, `rjust`, `zfill`,
/// `partition`, `rpartition`, `removeprefix`, `removesuffix` and `swapcase`.
/// `None` for any other method. Widths are bounded by the caller.
pub fn str_method(s: &str, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    use minijinja::value::from_args;
    Some(match method {
        // pycompat splits on "" into characters; Python refuses it.
        "split" if matches!(args.first().and_then(Value::as_str), Some("")) => {
            Err(Error::new(ErrorKind::InvalidOperation, "empty separator"))
        }
        "rsplit" => from_args::<(Option<Option<&str>>, Option<i64>)>(args).and_then(|(sep, max)| rsplit(s, sep.flatten(), max.unwrap_or(-1))),
        "index" | "rindex" => from_args::<(&str,)>(args).and_then(|(sub,)| {
            let found = if method == "index" { s.find(sub) } else { s.rfind(sub) };
            found
                .map(|byte| Value::from(s[..byte].chars().count()))
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "substring not found"))
        }),
        "center" | "ljust" | "rjust" => from_args::<(usize, Option<&str>)>(args).and_then(|(width, fill)| {
            let fill = fill.unwrap_or(" ");
            let mut chars = fill.chars();
            let (Some(fill), None) = (chars.next(), chars.next()) else {
                return Err(Error::new(ErrorKind::InvalidOperation, "The fill character must be exactly one character long"));
            };
            Ok(Value::from(pad(s, width, fill, method)))
        }),
        "zfill" => from_args::<(usize,)>(args).map(|(width,)| {
            let len = s.chars().count();
            if width <= len {
                return Value::from(s);
            }
            let (sign, digits) = match s.chars().next() {
                Some(c @ ('+' | '-')) => (c.to_string(), &s[1..]),
                _ => (String::new(), s),
            };
            Value::from(format!("{sign}{}{digits}", "0".repeat(width - len)))
        }),
        "partition" | "rpartition" => from_args::<(&str,)>(args).and_then(|(sep,)| {
            if sep.is_empty() {
                return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
            }
            let found = if method == "partition" { s.find(sep) } else { s.rfind(sep) };
            let parts = match found {
                Some(i) => [&s[..i], sep, &s[i + sep.len()..]],
                None if method == "partition" => [s, "", ""],
                None => ["", "", s],
            };
            Ok(Value::from(minijinja::value::Tuple::from(parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>())))
        }),
        "removeprefix" => from_args::<(&str,)>(args).map(|(p,)| Value::from(s.strip_prefix(p).unwrap_or(s))),
        "removesuffix" => from_args::<(&str,)>(args).map(|(p,)| Value::from(s.strip_suffix(p).unwrap_or(s))),
        "swapcase" => from_args::<()>(args).map(|()| {
            Value::from(
                s.chars()
                    .flat_map(|c| if c.is_uppercase() { c.to_lowercase().collect::<Vec<_>>() } else { c.to_uppercase().collect() })
                    .collect::<String>(),
            )
        }),
        _ => return None,
    })
}

/// How many values `s.split(...)`, `s.rsplit(...)` or `s.splitlines()`
/// makes, counted without making them; `None` for other methods.
pub fn pieces(s: &str, method: &str, args: &[Value]) -> Option<usize> {
    let sep = args.first().and_then(Value::as_str);
    let max = args.get(1).and_then(|m| i64::try_from(m.clone()).ok()).filter(|m| *m >= 0);
    let n = match method {
        "split" | "rsplit" => match sep {
            Some("") => 0,
            Some(sep) => s.matches(sep).count() + 1,
            None => s.split_whitespace().count(),
        },
        "splitlines" => s.lines().count(),
        _ => return None,
    };
    Some(max.map_or(n, |m| n.min(m as usize + 1)))
}

/// `str.rsplit(sep, maxsplit)`: splits from the right; with no separator,
/// on runs of whitespace.
fn rsplit(s: &str, sep: Option<&str>, max: i64) -> Result<Value, Error> {
    let max = if max < 0 { usize::MAX } else { max as usize };
    let mut parts: Vec<Value> = match sep {
        Some("") => return Err(Error::new(ErrorKind::InvalidOperation, "empty separator")),
        Some(sep) => s.rsplitn(max.saturating_add(1), sep).map(Value::from).collect(),
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_end();
            while !rest.is_empty() {
                if out.len() == max {
                    out.push(Value::from(rest));
                    break;
                }
                let start = rest.rfind(char::is_whitespace).map_or(0, |i| i + rest[i..].chars().next().map_or(1, char::len_utf8));
                out.push(Value::from(&rest[start..]));
                rest = rest[..start].trim_end();
            }
            out
        }
    };
    parts.reverse();
    Ok(Value::from(parts))
}

/// `center`, `ljust` and `rjust`, with Python's rule for where the odd
/// fill character of `center` goes.
fn pad(s: &str, width: usize, fill: char, how: &str) -> String {
    let len = s.chars().count();
    if width <= len {
        return s.to_string();
    }
    let marg = width - len;
    let left = match how {
        "ljust" => 0,
        "rjust" => marg,
        _ => marg / 2 + (marg & width & 1),
    };
    let fill = |n: usize| std::iter::repeat(fill).take(n).collect::<String>();
    format!("{}{s}{}", fill(left), fill(marg - left))
}
