//! Release gates: the assertions of a template's test cases, checked against
//! what a version renders.
//!
//! A test case's assertions are a JSON array of objects; every key of every
//! object is one assertion:
//!
//! | key | value | passes when |
//! |---|---|---|
//! | `contains` | string or array of strings | the output contains each |
//! | `not_contains` | string or array of strings | the output contains none |
//! | `matches` | regex (Rust syntax) | the regex matches somewhere in the output |
//! | `equals` | string | the output is exactly this |
//! | `max_length` | integer | the output has at most this many characters |
//! | `renders` | boolean | true: renders without error; false: rendering fails |
//! | `passes_guardrails` | boolean | true: no finding of a `block` guardrail; false: at least one |
//!
//! A render error fails every case except one asserting `"renders": false`.

use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// The assertion kinds, for messages.
pub const KINDS: [&str; 7] = ["contains", "not_contains", "matches", "equals", "max_length", "renders", "passes_guardrails"];

/// Largest compiled size of an assertion's regex.
const REGEX_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub enum Assertion {
    Contains(String),
    NotContains(String),
    Matches(Regex),
    Equals(String),
    MaxLength(usize),
    Renders(bool),
    PassesGuardrails(bool),
}

fn invalid(position: usize, key: &str, what: &str) -> Error {
    Error::invalid(format!("assertion {position} ({key}): {what}"))
}

fn strings(position: usize, key: &str, v: &Json) -> Result<Vec<String>> {
    match v {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| invalid(position, key, "expected strings")))
            .collect(),
        _ => Err(invalid(position, key, "expected a string or a non-empty array of strings")),
    }
}

/// Parses and checks a test case's assertions: 22023 naming the first problem.
pub fn parse(assertions: &Json) -> Result<Vec<Assertion>> {
    let items = assertions
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid(r#"assertions must be a non-empty JSON array of objects, e.g. [{"contains": "photosynthesis"}, {"max_length": 2000}]"#))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let position = i + 1;
        let object = item
            .as_object()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| Error::invalid(format!("assertion {position} must be a non-empty JSON object")))?;
        for (key, value) in object {
            match key.as_str() {
                "contains" => out.extend(strings(position, key, value)?.into_iter().map(Assertion::Contains)),
                "not_contains" => out.extend(strings(position, key, value)?.into_iter().map(Assertion::NotContains)),
                "matches" => {
                    let pattern = value.as_str().ok_or_else(|| invalid(position, key, "expected a regular expression as a string"))?;
                    let regex = RegexBuilder::new(pattern)
                        .size_limit(REGEX_LIMIT)
                        .dfa_size_limit(REGEX_LIMIT)
                        .build()
                        .map_err(|e| invalid(position, key, &format!("invalid regular expression: {e}")))?;
                    out.push(Assertion::Matches(regex));
                }
                "equals" => out.push(Assertion::Equals(
                    value.as_str().ok_or_else(|| invalid(position, key, "expected a string"))?.to_string(),
                )),
                "max_length" => {
                    let n = value
                        .as_u64()
                        .filter(|n| *n <= i32::MAX as u64)
                        .ok_or_else(|| invalid(position, key, "expected a non-negative integer (characters)"))?;
                    out.push(Assertion::MaxLength(n as usize));
                }
                "renders" => out.push(Assertion::Renders(value.as_bool().ok_or_else(|| invalid(position, key, "expected true or false"))?)),
                "passes_guardrails" => out.push(Assertion::PassesGuardrails(
                    value.as_bool().ok_or_else(|| invalid(position, key, "expected true or false"))?,
                )),
                other => {
                    return Err(Error::invalid(format!(
                        "assertion {position}: unknown kind \"{other}\"; expected one of: {}",
                        KINDS.join(", ")
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// Up to `width` characters of `text` around character `at`, quoted, with
/// ellipses where it was cut.
pub fn excerpt(text: &str, at: usize, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = at.saturating_sub(width / 2).min(chars.len());
    let end = (start + width).min(chars.len());
    let mut s = String::from("\"");
    if start > 0 {
        s.push('…');
    }
    s.extend(chars[start..end].iter().flat_map(|c| c.escape_debug()));
    if end < chars.len() {
        s.push('…');
    }
    s.push('"');
    s
}

fn char_at(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// What a version did with a test case's variables.
pub enum Outcome<'a> {
    Rendered(&'a str),
    Failed(&'a str),
}

/// The failed assertions, each described with the relevant part of the
/// output. `blocking` lists the findings of block guardrails in a text
/// ("pii_detection_basic: EMAIL_ADDRESS at 10..26").
pub fn check(assertions: &[Assertion], outcome: Outcome, blocking: &dyn Fn(&str) -> Vec<(String, usize)>) -> Vec<String> {
    const W: usize = 60;
    let output = match outcome {
        Outcome::Failed(message) => {
            return if assertions.iter().any(|a| matches!(a, Assertion::Renders(false))) {
                Vec::new()
            } else {
                vec![format!("renders: failed: {message}")]
            };
        }
        Outcome::Rendered(output) => output,
    };
    let mut failures = Vec::new();
    for a in assertions {
        match a {
            Assertion::Contains(s) if !output.contains(s.as_str()) => {
                failures.push(format!("contains: {:?} not found in {}", s, excerpt(output, 0, W)));
            }
            Assertion::NotContains(s) => {
                if let Some(at) = output.find(s.as_str()) {
                    let c = char_at(output, at);
                    failures.push(format!("not_contains: {:?} found at character {c}: {}", s, excerpt(output, c, W)));
                }
            }
            Assertion::Matches(r) if !r.is_match(output) => {
                failures.push(format!("matches: /{}/ does not match {}", r.as_str(), excerpt(output, 0, W)));
            }
            Assertion::Equals(s) if output != s => {
                let at = output.chars().zip(s.chars()).take_while(|(a, b)| a == b).count();
                failures.push(format!(
                    "equals: differs at character {at}: expected {}, got {}",
                    excerpt(s, at, W),
                    excerpt(output, at, W)
                ));
            }
            Assertion::MaxLength(n) => {
                let len = output.chars().count();
                if len > *n {
                    failures.push(format!("max_length: {len} characters, more than {n}; from character {n}: {}", excerpt(output, *n, W)));
                }
            }
            Assertion::Renders(false) => failures.push(format!("renders: expected an error, got {}", excerpt(output, 0, W))),
            Assertion::PassesGuardrails(expect_pass) => {
                let found = blocking(output);
                match (expect_pass, found.is_empty()) {
                    (true, false) => {
                        let list: Vec<String> = found.iter().map(|(what, at)| format!("{what} {}", excerpt(output, *at, W))).collect();
                        failures.push(format!("passes_guardrails: blocked by {}", list.join("; ")));
                    }
                    (false, true) => failures.push("passes_guardrails: expected a blocking finding, found none".to_string()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &str) -> Vec<(String, usize)> {
        Vec::new()
    }

    fn run(assertions: Json, output: &str) -> Vec<String> {
        check(&parse(&assertions).unwrap(), Outcome::Rendered(output), &none)
    }

    #[test]
    fn passing_assertions_report_nothing() {
        let a = json!([{"contains": ["gravity", "grade 8"], "not_contains": "homework", "matches": "(?i)^explain", "max_length": 100},
                       {"equals": "Explain gravity for grade 8."}, {"renders": true}, {"passes_guardrails": true}]);
        assert_eq!(run(a, "Explain gravity for grade 8."), Vec::<String>::new());
    }

    #[test]
    fn failures_say_which_assertion_and_show_the_output() {
        let out = "Explain gravity for grade 8. Do the homework yourself.";
        let f = run(json!([{"contains": "photosynthesis"}]), out);
        assert_eq!(f, [r#"contains: "photosynthesis" not found in "Explain gravity for grade 8. Do the homework yourself.""#]);
        let f = run(json!([{"not_contains": "homework"}]), out);
        assert!(f[0].starts_with(r#"not_contains: "homework" found at character 36: ""#), "{f:?}");
        assert!(f[0].contains("homework yourself"), "{f:?}");
        let f = run(json!([{"matches": "^Describe"}]), out);
        assert!(f[0].starts_with("matches: /^Describe/ does not match"), "{f:?}");
        let f = run(json!([{"equals": "Explain gravity for grade 9."}]), "Explain gravity for grade 8.");
        assert!(f[0].starts_with("equals: differs at character 26"), "{f:?}");
        let f = run(json!([{"max_length": 10}]), out);
        assert!(f[0].starts_with("max_length: 54 characters, more than 10"), "{f:?}");
        let f = run(json!([{"renders": false}]), out);
        assert!(f[0].starts_with("renders: expected an error"), "{f:?}");
        let f = run(json!([{"passes_guardrails": false}]), out);
        assert_eq!(f, ["passes_guardrails: expected a blocking finding, found none"]);
    }

    #[test]
    fn render_errors_fail_unless_expected() {
        let a = parse(&json!([{"contains": "x"}])).unwrap();
        assert_eq!(check(&a, Outcome::Failed("missing variable topic"), &none), ["renders: failed: missing variable topic"]);
        let a = parse(&json!([{"renders": false}])).unwrap();
        assert!(check(&a, Outcome::Failed("missing variable topic"), &none).is_empty());
    }

    #[test]
    fn guardrail_findings_are_shown() {
        let a = parse(&json!([{"passes_guardrails": true}])).unwrap();
        let blocking = |_: &str| vec![("pii_detection_basic: EMAIL_ADDRESS".to_string(), 9)];
        let f = check(&a, Outcome::Rendered("write to ada@example.com"), &blocking);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("passes_guardrails: blocked by pii_detection_basic: EMAIL_ADDRESS \"write to ada@example.com\""), "{f:?}");
    }

    #[test]
    fn bad_assertions_are_refused_with_the_reason() {
        for (a, says) in [
            (json!({"contains": "x"}), "non-empty JSON array"),
            (json!([]), "non-empty JSON array"),
            (json!(["contains"]), "assertion 1 must be a non-empty JSON object"),
            (json!([{"contains": "x"}, {"sounds_good": true}]), "assertion 2: unknown kind \"sounds_good\""),
            (json!([{"matches": "(unclosed"}]), "assertion 1 (matches): invalid regular expression"),
            (json!([{"matches": "x{100000}{100000}"}]), "invalid regular expression"),
            (json!([{"max_length": -1}]), "non-negative integer"),
            (json!([{"max_length": 1.5}]), "non-negative integer"),
            (json!([{"contains": 3}]), "expected a string"),
            (json!([{"contains": []}]), "non-empty array"),
            (json!([{"renders": "yes"}]), "true or false"),
        ] {
            let e = parse(&a).expect_err(&a.to_string());
            assert_eq!(e.sqlstate(), "22023");
            assert!(e.to_string().contains(says), "{a}: {e}");
        }
    }

    #[test]
    fn excerpts_are_cut_around_the_place() {
        assert_eq!(excerpt("abcdef", 0, 3), "\"abc…\"");
        assert_eq!(excerpt("abcdef", 5, 2), "\"…ef\"");
        assert_eq!(excerpt("a\nb", 0, 10), "\"a\\nb\"");
        assert_eq!(excerpt("", 3, 10), "\"\"");
    }
}
