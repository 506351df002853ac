//! Which of many patterns occur in a text, in one pass.
//!
//! This is what `regex::RegexSet` answers, built for a session's first scan
//! to cost a third as much. The set is only asked which patterns may
//! match, never where: the caller runs each pattern it names on its own to
//! find (or not) the matches. So it needs one forward automaton without
//! capture groups — where a `RegexSet` also compiles a reverse automaton
//! and the engines that report positions — and its patterns may match more
//! than the originals: long bounded repetitions (`[^.!?]{0,40}`, a UTF-8
//! automaton copied 40 times) are compiled unbounded, which halves the
//! automaton. The lazy DFA answers; should it give up on a text, the
//! PikeVM over the same automaton does (slower, never wrong).

use std::cell::RefCell;

use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::nfa::thompson::pikevm::{Cache as VmCache, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::{Input, MatchKind, PatternSet};

pub struct Set {
    dfa: DFA,
    vm: PikeVM,
    /// Search state, reused from text to text (a scan asks one question at
    /// a time: the caller collects the answer before scanning further).
    caches: RefCell<(DfaCache, VmCache)>,
}

impl Set {
    /// Compiles `patterns` (the regex crate's syntax) into one automaton of
    /// at most `size_limit` bytes, whose lazy DFA caches at most
    /// `cache_limit` bytes. `Err` says why it did not compile.
    pub fn new<P: AsRef<str>>(patterns: &[P], size_limit: usize, cache_limit: usize) -> Result<Set, String> {
        let relaxed: Vec<String> = patterns.iter().map(|p| relax(p.as_ref())).collect();
        // Read by the small parser of the syntax the guardrails use where it
        // can (see `hir`), by regex-syntax's own elsewhere.
        let hirs = relaxed
            .iter()
            .map(|p| super::hir::parse(p).map(Ok).unwrap_or_else(|| regex_automata::util::syntax::parse(p)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().which_captures(WhichCaptures::None).nfa_size_limit(Some(size_limit)))
            .build_many_from_hir(&hirs)
            .map_err(|e| e.to_string())?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(cache_limit)
                    .skip_cache_capacity_check(true)
                    // Unicode `\b` (user patterns may use it): the DFA quits on
                    // a non-ASCII byte next to one, and the PikeVM answers.
                    .unicode_word_boundary(true),
            )
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let vm = PikeVM::builder().configure(PikeVM::config().match_kind(MatchKind::All)).build_from_nfa(nfa).map_err(|e| e.to_string())?;
        let caches = RefCell::new((dfa.create_cache(), vm.create_cache()));
        Ok(Set { dfa, vm, caches })
    }

    /// The indices of the patterns that match somewhere in `text`, in order.
    pub fn matches(&self, text: &str) -> Vec<usize> {
        let mut found = PatternSet::new(self.dfa.pattern_len());
        let input = Input::new(text);
        let mut caches = self.caches.borrow_mut();
        let (dfa_cache, vm_cache) = &mut *caches;
        if self.dfa.try_which_overlapping_matches(dfa_cache, &input, &mut found).is_err() {
            found.clear();
            self.vm.which_overlapping_matches(vm_cache, &input, &mut found);
        }
        found.iter().map(|p| p.as_usize()).collect()
    }
}

/// Repetitions bounded at 10 or more made unbounded: `{0,n}` as `*`,
/// `{1,n}` as `+`, `{m,n}` as `{m,}` (lazy ones stay lazy). A pattern so
/// relaxed matches wherever the original does, and more. Braces escaped or
/// inside a class are left alone.
pub(super) fn relax(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let (mut i, mut class, mut copied) = (0, 0usize, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => class += 1,
            b']' if class > 0 => class -= 1,
            b'{' if class == 0 => {
                let rest = &pattern[i + 1..];
                let close = rest.find('}').unwrap_or(0);
                if let Some((lo, hi)) = rest[..close].split_once(',') {
                    if let (Ok(lo), Ok(hi)) = (lo.parse::<usize>(), hi.parse::<usize>()) {
                        if hi >= 10 {
                            out.push_str(&pattern[copied..i]);
                            out.push_str(&match lo {
                                0 => "*".to_string(),
                                1 => "+".to_string(),
                                lo => format!("{{{lo},}}"),
                            });
                            i += close + 2;
                            copied = i;
                            continue;
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&pattern[copied..]);
    out
}

/// A pattern that asks for `(?i)` and could do without it on text whose
/// ASCII capitals are made small: the pattern after `(?i)`, if it spells
/// no capital (outside the class range `A-Z`), has no escape that case
/// changes (only `\b \d \s \w \x \n \t \r`), sets no other flag and
/// has no letter beyond ASCII that has a case. On text folded as scanned
/// (`normalize`: the two letters beyond ASCII that `(?i)` matches to ASCII
/// ones, the Kelvin sign and the long s, fold to `K` and `s`), it then
/// matches where the original matches in the original text, at the same
/// offsets. `None` for every other pattern.
pub fn caseless(pattern: &str) -> Option<&str> {
    let rest = pattern.strip_prefix("(?i)")?;
    let b = rest.as_bytes();
    let (mut i, mut class) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if b.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() && !b"bdswxntr".contains(n)) {
                    return None;
                }
                if b.get(i + 1) == Some(&b'x') {
                    // `\x41`, `\x{e9}`: a letter with a case, written in hex.
                    let hex = rest[i + 2..].strip_prefix('{').and_then(|h| h.split_once('}')).map_or_else(|| rest.get(i + 2..i + 4), |(h, _)| Some(h));
                    let c = hex.and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32)?;
                    if has_case(c) {
                        return None;
                    }
                }
                i += 2;
                continue;
            }
            b'[' => class += 1,
            b']' if class > 0 => class -= 1,
            // A range other than these may span the capitals and not the
            // small letters (`[@-`]`).
            b'-' if class > 0 && i > 0 && !matches!(b[i - 1], b'[' | b'^') && b.get(i + 1) != Some(&b']') => {
                if !matches!(&rest[i - 1..(i + 2).min(rest.len())], "a-z" | "0-9") {
                    return None;
                }
            }
            b'(' if b.get(i + 1) == Some(&b'?') && b.get(i + 2) != Some(&b':') => return None,
            b'A'..=b'Z' if class > 0 && rest[i..].starts_with("A-Z") && i > 0 && matches!(b[i - 1], b'[' | b'^' | b'z' | b'9') => {
                i += 3;
                continue;
            }
            b'A'..=b'Z' => return None,
            _ => {}
        }
        i += 1;
    }
    rest.chars().all(|c| c.is_ascii() || !has_case(c)).then_some(rest)
}

/// Whether `c` has another case.
fn has_case(c: char) -> bool {
    !(c.to_lowercase().eq([c]) && c.to_uppercase().eq([c]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_a_regex_set_does() {
        let patterns = [r"(?i)ignore (all )?previous", r"[0-9]{4}", r"\bcat\b", r"é+", r"x"];
        let set = Set::new(&patterns, 1 << 20, 1 << 20).unwrap();
        let reference = regex::RegexSet::new(patterns).unwrap();
        for text in ["IGNORE previous, 2024", "a cat and a dog", "café ééé", "", "nothing", "xx 1234 cat"] {
            assert_eq!(set.matches(text), reference.matches(text).into_iter().collect::<Vec<_>>(), "{text}");
        }
    }

    #[test]
    fn a_text_the_dfa_gives_up_on_is_answered_by_the_pikevm() {
        // A Unicode word boundary makes the lazy DFA quit on non-ASCII text.
        let set = Set::new(&[r"\bkatze\b", r"ü"], 1 << 20, 1 << 20).unwrap();
        let (mut cache, mut found) = (set.dfa.create_cache(), PatternSet::new(2));
        assert!(set.dfa.try_which_overlapping_matches(&mut cache, &Input::new("die katze über"), &mut found).is_err(), "the DFA quits");
        assert_eq!(set.matches("die katze über"), [0, 1]);
        assert_eq!(set.matches("über"), [1]);
    }

    #[test]
    fn long_repetitions_are_relaxed_and_nothing_else() {
        assert_eq!(relax(r"a[^.!?]{0,40}b"), r"a[^.!?]*b");
        assert_eq!(relax(r"a.{0,30}?b"), r"a.*?b");
        assert_eq!(relax(r"sk-[A-Za-z0-9]{20,256}"), r"sk-[A-Za-z0-9]{20,}");
        assert_eq!(relax(r"x{1,64}@"), r"x+@");
        assert_eq!(relax(r"[0-9]{1,3}\.[a-z]{2}"), r"[0-9]{1,3}\.[a-z]{2}");
        assert_eq!(relax(r"\{0,99\}[{0,99}]"), r"\{0,99\}[{0,99}]");
        // What the relaxed pattern matches, the original may not; the
        // other way round always.
        let set = Set::new(&[r"ignore[^.]{0,10}rules"], 1 << 20, 1 << 20).unwrap();
        assert_eq!(set.matches("ignore all the previous rules"), [0]);
        assert!(set.matches("ignore. rules").is_empty());
    }

    #[test]
    fn patterns_without_capitals_drop_case_insensitivity() {
        assert_eq!(caseless(r"(?i)(?:^|[^a-zA-Z0-9])(ignor\w* (?:alle|all)[^.!?。]{0,30}?regeln)"), Some(r"(?:^|[^a-zA-Z0-9])(ignor\w* (?:alle|all)[^.!?。]{0,30}?regeln)"));
        assert_eq!(caseless(r#"(?i)say[ \x22'-]+yes[a-z0-9._%+-]"#), Some(r#"say[ \x22'-]+yes[a-z0-9._%+-]"#));
        for p in [
            r"ignore",                     // not (?i)
            r"(?i)\[/?INST\]",            // a capital
            r"(?i)a[A-F]",                 // a capital range other than A-Z
            r"(?i)x\Bz",                   // an escape case changes
            r"(?i)\p{greek}",              // a class by property
            r"(?i)a(?-i:b)",               // another flag
            r"(?i)straße|über",            // letters beyond ASCII with case
            r"(?i)\x41b|\x{e9}",            // the same, in hex
            r"(?i)[@-`]x",                 // a range over the capitals only
            r"(?i)[!-Z]",
        ] {
            assert_eq!(caseless(p), None, "{p}");
        }
        // The letters beyond ASCII that (?i) matches to ASCII ones do not
        // survive folding.
        let folded = crate::guard::normalize::fold("\u{212A}elvin \u{17F}ign").text;
        assert_eq!(folded, "Kelvin sign");
        // On text with ASCII capitals in small letters, the pattern matches
        // where the original matches the original, at the same offsets.
        let p = r"(?i)(?:^|[^a-zA-Z0-9])((?:respond|reply) only with[^.!?]{0,20}?kelvin)";
        let (original, relaxed) = (regex::Regex::new(p).unwrap(), regex::Regex::new(caseless(p).unwrap()).unwrap());
        for text in ["RESPOND ONLY WITH the word Kelvin.", "Reply Only With: KELVIN", "respond only with nothing.", "x,REPLY only WITH 5 kelvin"] {
            let lower = text.to_ascii_lowercase();
            assert_eq!(original.find(text).map(|m| m.range()), relaxed.find(&lower).map(|m| m.range()), "{text}");
        }
    }

    #[test]
    fn a_set_too_large_is_refused() {
        assert!(Set::new(&[r"\w{1000}\w{10}"], 1 << 16, 1 << 20).is_err());
    }
}
