//! Which of many patterns occur in a text, in one pass.
//!
//! This is what `regex::RegexSet` answers, built for a session's first scan
//! to cost half as much: the set is only asked which patterns match, never
//! where, so it needs one forward automaton without capture groups — where
//! a `RegexSet` also compiles a reverse automaton and the engines that
//! report positions. The lazy DFA answers; should it give up on a text,
//! the PikeVM over the same automaton does (slower, never wrong).

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
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().which_captures(WhichCaptures::None).nfa_size_limit(Some(size_limit)))
            .build_many(patterns)
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
    fn a_set_too_large_is_refused() {
        assert!(Set::new(&[r"\w{1000}\w{1000}"], 1 << 16, 1 << 20).is_err());
    }
}
