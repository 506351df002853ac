//! The guardrails' patterns read into regex-syntax's `Hir` by a small
//! parser of the part of the syntax they use.
//!
//! Why: a session's first scan compiles every pattern of its guardrails
//! into one set (`set::Set`), and regex-syntax's general parser — an
//! abstract syntax tree with positions for error messages, then its
//! translation — was two fifths of that (60 of 140 M instructions for the
//! shipped guardrails, callgrind). The patterns, most of them generated
//! from phrase lists, use a small part of the syntax: literals, escapes,
//! classes of characters and ranges, `\d \s \w`, groups, alternation,
//! repetition, `^ $ \b \B`, `.`. This parser reads exactly that part and
//! builds the `Hir` with regex-syntax's own constructors (which merge
//! literals, turn one-character classes into literals and so on, as its
//! translator does); for anything else — flags, named groups, Unicode
//! properties, nested classes and class operations, octal, any error —
//! it answers `None` and the general parser reads the pattern. The unit
//! tests hold it to the general parser's `Hir` for every shipped pattern
//! and for the syntax's corners.

use std::cell::OnceCell;

use regex_syntax::hir::{Capture, Class, ClassUnicode, ClassUnicodeRange, Dot, Hir, HirKind, Look, Repetition};

/// Deeper nesting is left to the general parser, which enforces its own
/// limit (250) with a proper error.
const MAX_DEPTH: u32 = 100;

/// `pattern` as regex-syntax (Unicode on, no flags) would read it, or
/// `None` when it uses syntax this parser leaves to it.
pub fn parse(pattern: &str) -> Option<Hir> {
    let (fold, pattern) = match pattern.strip_prefix("(?i)") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut p = Parser { chars: pattern.chars().collect(), at: 0, captures: 0, depth: 0, fold };
    let hir = p.alternation()?;
    // A `)` without its `(`: an error, reported by the general parser.
    (p.at == p.chars.len()).then_some(hir)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    /// Capture groups opened so far (regex-syntax numbers them from 1 in
    /// the order of their `(`).
    captures: u32,
    depth: u32,
    /// The pattern begins with `(?i)`: letters match in either case
    /// (regex-syntax's simple case folding, of literals and of classes
    /// before they are negated; Perl classes are closed under it).
    fold: bool,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let here = self.peek() == Some(c);
        self.at += here as usize;
        here
    }

    /// Branches separated by `|`, up to a `)` or the end.
    fn alternation(&mut self) -> Option<Hir> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Some(if branches.len() == 1 { branches.pop()? } else { Hir::alternation(branches) })
    }

    /// Repeated atoms up to a `|`, a `)` or the end.
    fn concat(&mut self) -> Option<Hir> {
        let mut items = Vec::new();
        // Plain characters in a row make one literal, built once (a `Hir`
        // per character, merged by `Hir::concat`, was most of the cost).
        let mut run = String::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let repeated = matches!(self.chars.get(self.at + 1), Some('?' | '*' | '+' | '{'));
            if !self.fold && !repeated && !"()[]{}\\^$.*+?|".contains(c) {
                run.push(c);
                self.at += 1;
                continue;
            }
            if !run.is_empty() {
                items.push(Hir::literal(std::mem::take(&mut run).into_bytes()));
            }
            let atom = self.atom()?;
            items.push(self.repetition(atom)?);
        }
        if !run.is_empty() {
            items.push(Hir::literal(run.into_bytes()));
        }
        Some(Hir::concat(items))
    }

    /// One atom: a group, a class, an escape, an assertion, `.` or a
    /// character.
    fn atom(&mut self) -> Option<Hir> {
        let c = self.peek()?;
        self.at += 1;
        Some(match c {
            '(' => return self.group(),
            '[' => return self.class(),
            '\\' => return self.escape(),
            '^' => Hir::look(Look::Start),
            '$' => Hir::look(Look::End),
            '.' => Hir::dot(Dot::AnyCharExceptLF),
            // A repetition with nothing to repeat, or a `{` that is not
            // one: errors or corners the general parser reports.
            '*' | '+' | '?' | '{' | '}' | ']' => return None,
            // Whitespace and `#` are literal (no `x` flag).
            c => self.literal(c),
        })
    }

    /// `(?:...)` or `(...)`; `(?` with anything else (flags, names) is left
    /// to the general parser.
    fn group(&mut self) -> Option<Hir> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let capture = if self.eat('?') {
            if !self.eat(':') {
                return None;
            }
            None
        } else {
            self.captures += 1;
            Some(self.captures)
        };
        let sub = self.alternation()?;
        if !self.eat(')') {
            return None;
        }
        self.depth -= 1;
        Some(match capture {
            Some(index) => Hir::capture(Capture { index, name: None, sub: Box::new(sub) }),
            None => sub,
        })
    }

    /// After an atom: `? * + {n} {n,} {n,m}`, each maybe lazy (`?`).
    fn repetition(&mut self, atom: Hir) -> Option<Hir> {
        let (min, max) = match self.peek() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('{') => {
                let close = self.chars[self.at..].iter().position(|&c| c == '}')? + self.at;
                let inside: String = self.chars[self.at + 1..close].iter().collect();
                let number = |s: &str| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u32>().ok() } else { None };
                let bounds = match inside.split_once(',') {
                    None => number(&inside).map(|n| (n, Some(n)))?,
                    Some((lo, "")) => (number(lo)?, None),
                    Some((lo, hi)) => (number(lo)?, Some(number(hi)?)),
                };
                if bounds.1.is_some_and(|hi| hi < bounds.0) {
                    return None;
                }
                self.at = close;
                bounds
            }
            _ => return Some(atom),
        };
        self.at += 1;
        // Repeating an assertion or an empty group: corners left to the
        // general parser.
        if matches!(atom.kind(), HirKind::Look(_) | HirKind::Empty) {
            return None;
        }
        let greedy = !self.eat('?');
        // A repetition of a repetition (`a**`, `a{2}{3}`): likewise.
        if matches!(self.peek(), Some('?' | '*' | '+' | '{')) {
            return None;
        }
        Some(Hir::repetition(Repetition { min, max, greedy, sub: Box::new(atom) }))
    }

    /// After `\` outside a class.
    fn escape(&mut self) -> Option<Hir> {
        let c = self.peek()?;
        match c {
            'b' => {
                self.at += 1;
                Some(Hir::look(Look::WordUnicode))
            }
            'B' => {
                self.at += 1;
                Some(Hir::look(Look::WordUnicodeNegate))
            }
            _ => match self.class_escape()? {
                Escaped::Char(c) => Some(self.literal(c)),
                Escaped::Class(class) => Some(Hir::class(Class::Unicode(class))),
            },
        }
    }

    /// After `\`, what may also stand in a class: a Perl class, a
    /// character written by its code (`\x22`, `\x{1F600}`), `\n \t \r`, or
    /// an escaped punctuation character.
    fn class_escape(&mut self) -> Option<Escaped> {
        let c = self.peek()?;
        self.at += 1;
        Some(match c {
            'd' | 's' | 'w' | 'D' | 'S' | 'W' => Escaped::Class(perl(c)),
            'n' => Escaped::Char('\n'),
            't' => Escaped::Char('\t'),
            'r' => Escaped::Char('\r'),
            'x' => Escaped::Char(self.hex()?),
            // What regex-syntax lets be escaped to stand for itself (not
            // `\<` and `\>`, word boundaries).
            c if regex_syntax::is_escapeable_character(c) => Escaped::Char(c),
            _ => return None,
        })
    }

    /// After `\x`: two hex digits, or hex digits in braces.
    fn hex(&mut self) -> Option<char> {
        let digits: String = if self.eat('{') {
            let close = self.chars[self.at..].iter().position(|&c| c == '}')? + self.at;
            let d = self.chars[self.at..close].iter().collect();
            self.at = close + 1;
            d
        } else {
            let d = self.chars.get(self.at..self.at + 2)?.iter().collect();
            self.at += 2;
            d
        };
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
    }

    /// After `[`: characters, ranges and escapes up to `]`, maybe negated.
    /// Nested classes, POSIX classes and the operators `&& -- ~~` are left
    /// to the general parser.
    fn class(&mut self) -> Option<Hir> {
        let negated = self.eat('^');
        let mut class = ClassUnicode::empty();
        let mut first = true;
        loop {
            let c = self.peek()?;
            if c == ']' && !first {
                self.at += 1;
                break;
            }
            first = false;
            if c == '[' || (matches!(c, '&' | '-' | '~') && self.chars.get(self.at + 1) == Some(&c)) {
                return None;
            }
            let start = match self.class_item()? {
                // `[\w-a]` is an error, reported by the general parser.
                Escaped::Class(_) if self.peek() == Some('-') && self.chars.get(self.at + 1) != Some(&']') => return None,
                Escaped::Class(perl) => {
                    class.union(&perl);
                    continue;
                }
                Escaped::Char(c) => c,
            };
            // `a-z`; a `-` first or before `]` is a literal.
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|&n| n != ']') {
                self.at += 1;
                let end = match self.class_item()? {
                    Escaped::Char(c) => c,
                    Escaped::Class(_) => return None,
                };
                if end < start {
                    return None;
                }
                class.push(ClassUnicodeRange::new(start, end));
            } else {
                class.push(ClassUnicodeRange::new(start, start));
            }
        }
        if self.fold {
            class.try_case_fold_simple().ok()?;
        }
        if negated {
            class.negate();
        }
        Some(Hir::class(Class::Unicode(class)))
    }

    /// A character; with `(?i)`, the class of its cases (one character's
    /// class is a literal).
    fn literal(&self, c: char) -> Hir {
        if !self.fold {
            let mut buf = [0; 4];
            return Hir::literal(c.encode_utf8(&mut buf).as_bytes());
        }
        let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
        class.case_fold_simple();
        Hir::class(Class::Unicode(class))
    }

    /// One character of a class, or an escape.
    fn class_item(&mut self) -> Option<Escaped> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\\' {
            return self.class_escape();
        }
        Some(Escaped::Char(c))
    }
}

enum Escaped {
    Char(char),
    Class(ClassUnicode),
}

thread_local! {
    /// Unicode's `\d`, `\s`, `\w` as regex-syntax defines them (read once
    /// per session by its parser: this module keeps no tables of its own).
    static PERL: [OnceCell<ClassUnicode>; 3] = const { [OnceCell::new(), OnceCell::new(), OnceCell::new()] };
}

/// The Perl class `\<c>` (`d s w`, negated as `D S W`).
fn perl(c: char) -> ClassUnicode {
    let (i, spelled) = match c.to_ascii_lowercase() {
        'd' => (0, r"\d"),
        's' => (1, r"\s"),
        _ => (2, r"\w"),
    };
    let mut class = PERL.with(|cells| {
        cells[i]
            .get_or_init(|| match regex_syntax::parse(spelled).map(|h| h.into_kind()) {
                Ok(HirKind::Class(Class::Unicode(class))) => class,
                other => unreachable!("regex-syntax reads {spelled} as a Unicode class, not {other:?}"),
            })
            .clone()
    });
    if c.is_ascii_uppercase() {
        class.negate();
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(p: &str) -> Option<Hir> {
        regex_automata::util::syntax::parse(p).ok()
    }

    /// Either left to the general parser, or read as it reads it.
    fn agrees(p: &str) -> bool {
        match parse(p) {
            None => true,
            Some(h) => general(p).as_ref() == Some(&h),
        }
    }

    #[test]
    fn every_shipped_pattern_is_read_as_the_general_parser_reads_it() {
        let scanner = super::super::Scanner::new(super::super::warm::shipped()).unwrap();
        let mut read = 0;
        for group in &scanner.groups {
            for p in group.patterns(&scanner.detectors) {
                for p in [p.to_string(), super::super::set::relax(p)] {
                    if let Some(h) = parse(&p) {
                        assert_eq!(Some(&h), general(&p).as_ref(), "{p}");
                        read += 1;
                    }
                }
            }
        }
        // The point is speed: nearly all of them must be read here.
        let total = scanner.groups.iter().map(|g| g.ids.len()).sum::<usize>() * 2;
        assert!(read * 10 >= total * 9, "read {read} of {total}");
    }

    #[test]
    fn corners_are_read_alike_or_left_to_the_general_parser() {
        let read = [
            "", "a", "abc", "a|b", "a|", "|a", "(?:)", "()", "(a)(b(c))", "(?:a|bc)+?", "a{3}", "a{2,}", "a{2,5}?", "a{0,1}",
            "[a]", "[abc]", "[a-z0-9_]", "[^a-z]", "[]a]", "[^]a]", "[-a]", "[a-]", "[\\-\\]\\\\]", "[\\x00-\\x1f]", "\\x{1F600}", "\\ ", "\\#",
            "\\x22", "[\\s\\d]", "[^\\w.]", "\\S+\\D\\W", "\\bword\\b", "\\Bx", "^a$", ".", "a.b*", "é+", "日本", "\\.\\*\\?",
            "# not a comment", "a b", "[ _.\\-*/|'\\x22]{1,3}", "(?:^|[^a-z0-9])(ignore(?:[ _.]{1,3}all)?)", "x{0}", "x{1}",
        ];
        for p in read {
            assert!(parse(p).is_some(), "{p:?} should be read here");
            assert!(agrees(p), "{p:?}");
        }
        let folded = ["(?i)a", "(?i)abc|Kelvin", "(?i)[a-z]+", "(?i)[^a-z]", "(?i)[^\\w.]x", "(?i)ß", "(?i)\\x4B", "(?i)[k]", "(?i)(a)|[^0-9]*?"];
        for p in folded {
            assert!(parse(p).is_some(), "{p:?} should be read here");
            assert!(agrees(p), "{p:?}");
        }
        let left = [
            "(?i:a)", "a(?i)b", "(?i)(?i)a", "(?is)a", "(?-i)a", "(?P<n>a)", "(?<n>a)", "\\pL", "\\p{Greek}", "[[:alpha:]]", "[a&&b]", "[a--b]", "[a~~b]", "[[a]]",
            "\\1", "\\A", "\\z", "\\<", "*a", "a**", "a{2}{3}", "a{3,2}", "a{,3}", "a{", "a}", "(a", "a)", "[a", "[]", "[z-a]",
            "\\q", "\\x4", "\\x{}", "\\x{110000}", "^*", "(?:)+", "[\\w-a]", "[a-\\d]", "[\\b]",
        ];
        for p in left {
            assert!(agrees(p), "{p:?}");
        }
        // Deep nesting is left to the general parser's limit.
        let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
        assert!(parse(&deep).is_none());
    }
}
