//! Composition: `{% include "persona@production" %}` renders another stored
//! template, pinned by label (`production` is the release, `latest` the
//! newest version) or by version (`persona@3`), with the including
//! template's variables and render options.
//!
//! Templates are otherwise self-contained: the target is a literal naming a
//! stored template (never a file, never a variable), and `import`, `from`
//! and `extends` are refused. Finding the targets is the tokenizer's job,
//! so text, strings and comments never match. The host resolves each
//! target and hands its source to `Engine::provide_include` before a
//! render; dependencies, cycles and depth are the host's to check.

use minijinja::machinery::{tokenize, Token};

use crate::error::{Error, ErrorKind, Result};

/// Longest chain of includes followed when rendering.
pub const MAX_DEPTH: usize = 5;

/// An include target as written: `template@selector`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Include {
    /// What the statement says, and the name it is registered under.
    pub name: String,
    pub template: String,
    /// A label, `production`, `latest`, or a version number.
    pub selector: String,
}

impl Include {
    /// `template@selector` with a template name and a label or a version.
    pub fn parse(target: &str) -> Option<Include> {
        let (template, selector) = target.rsplit_once('@')?;
        let name_ok = !template.is_empty()
            && template.len() <= 200
            && template.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && template.chars().all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c));
        let selector_ok = (1..=63).contains(&selector.len())
            && selector.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && selector.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        (name_ok && selector_ok).then(|| Include { name: target.to_string(), template: template.into(), selector: selector.into() })
    }

    /// The version number, when pinned by version.
    pub fn version(&self) -> Option<i32> {
        self.selector.parse().ok().filter(|v| *v >= 1)
    }
}

fn refused(label: Option<&str>, line: u16, col: u16, what: &str) -> Error {
    let prefix = label.map(|l| format!("{l}: ")).unwrap_or_default();
    Error::new(ErrorKind::InvalidTemplate, format!("{prefix}{what} at line {line}, column {}", u32::from(col) + 1)).with_hint(
        "Include a stored template by a literal name and label or version: {% include \"persona@production\" %}. \
         import, from and extends are not available.",
    )
}

/// The includes `source` makes, in order; 42601 for a statement reaching
/// anywhere else.
pub fn scan(source: &str, label: Option<&str>) -> Result<Vec<Include>> {
    let tokens: Vec<_> = tokenize(source, false, Default::default()).map_while(|t| t.ok()).collect();
    let mut found = Vec::new();
    for (i, (tok, span)) in tokens.iter().enumerate() {
        let Token::Ident(word) = tok else { continue };
        if !matches!(i.checked_sub(1).map(|p| &tokens[p].0), Some(Token::BlockStart)) {
            continue;
        }
        match *word {
            "import" | "from" | "extends" => {
                return Err(refused(label, span.start_line, span.start_col, &format!("{{% {word} %}} is not available")));
            }
            "include" => {
                let target = match tokens.get(i + 1).map(|t| &t.0) {
                    Some(Token::Str(s)) => Some(s.to_string()),
                    Some(Token::String(s)) => Some(s.to_string()),
                    _ => None,
                };
                let closed = matches!(tokens.get(i + 2).map(|t| &t.0), Some(Token::BlockEnd));
                match target.as_deref().map(Include::parse) {
                    Some(Some(inc)) if closed => found.push(inc),
                    _ => {
                        return Err(refused(
                            label,
                            span.start_line,
                            span.start_col,
                            "{% include %} must name a stored template as \"name@label\" or \"name@version\", alone",
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_stored_templates_pinned_by_label_or_version() {
        let inc = Include::parse("persona@production").unwrap();
        assert_eq!((inc.template.as_str(), inc.selector.as_str(), inc.version()), ("persona", "production", None));
        assert_eq!(Include::parse("nlu/topics:v2@12").unwrap().version(), Some(12));
        for bad in ["persona", "@production", "persona@", "persona@Prod", "../etc/passwd@1", "a b@x"] {
            assert!(Include::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scanning_finds_includes_and_refuses_the_rest() {
        let found = scan("{% include \"a@production\" %} {# {% include 'x' %} #} {{ '{% include x %}' }} {%- include 'b@3' -%}", None).unwrap();
        assert_eq!(found.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["a@production", "b@3"]);
        for bad in [
            "{% include 'persona' %}",
            "{% include name %}",
            "{% include 'a@1' ignore missing %}",
            "{% include ['a@1', 'b@1'] %}",
            "{% import 'a@1' as m %}",
            "{% from 'a@1' import m %}",
            "{% extends 'a@1' %}",
        ] {
            let e = scan(bad, Some("message 1")).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidTemplate, "{bad}");
            assert!(e.message.starts_with("message 1: "), "{bad}: {}", e.message);
        }
    }
}
