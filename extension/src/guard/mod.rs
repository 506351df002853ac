//! Guardrails: PII, secrets, prompt injection and toxic language found in
//! one linear-time pass, on text folded against evasions.
//!
//! A `Scanner` is built from the enabled guardrails: every pattern of every
//! guardrail goes into a set (`set::Set`; one for the folded text, one for
//! the English phrase rules' view of it, `phrases::view`, one for patterns
//! that need no case, read in small letters: see `Reads`), so a text is
//! read once to learn which patterns may occur; only those are then run on
//! their own to locate matches and check them (checksums, boundaries). Clean text — the common
//! case — costs one pass whatever the number of rules. Patterns bound their
//! repetitions, and the input size is capped, so the locating step stays
//! linear too.
//!
//! The text scanned is the folded view of the input (see `normalize`) plus
//! the decoded contents of base64, hex and percent-encoded runs (see
//! `decode`), two levels deep. Findings point into the original text, in
//! characters, 0-based with the end excluded (Presidio's convention).

mod codes;
pub mod decode;
mod hir;
pub mod indirect;
pub mod languages;
pub mod model;
pub mod normalize;
pub mod phone;
pub mod phrases;
pub mod pii;
pub mod set;
pub mod transform;
pub mod warm;

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

/// Compiled size allowed for one user-written pattern (regex and keywords
/// guardrails); the built-in detectors are measured in the tests.
pub const USER_PATTERN_LIMIT: usize = 1 << 20;
/// Compiled size allowed for the whole set of patterns.
const SET_LIMIT: usize = 256 << 20;
/// The lazy DFA's cache of one pattern, and of the set. The cache lives as
/// long as the session's scanner and grows with the variety of texts read;
/// bounded, it is cleared and refilled (or the search falls back to the
/// NFA) instead of growing into the render memory budget, which a long
/// session of scans of varied documents once reached (one 134 MB step).
const DFA_CACHE: usize = 16 << 20;
const SET_DFA_CACHE: usize = 64 << 20;
/// Scans `redact_until_clean` may make; each redaction removes text, so two
/// rarely find anything new.
const REDACT_PASSES: usize = 4;
/// The host's interrupt check (see `set_interrupts`).
static INTERRUPTS: std::sync::atomic::AtomicPtr<()> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Sets a function that scans call between patterns, every few hundred
/// matches and per decoded run, so a long scan can be cancelled (it may
/// panic to abort the scan). One regex pass over the text is not
/// interrupted; texts are bounded by pgprompt.max_scan_bytes.
pub fn set_interrupts(f: fn()) {
    INTERRUPTS.store(f as *mut (), std::sync::atomic::Ordering::Relaxed);
}

fn interrupts() {
    let f = INTERRUPTS.load(std::sync::atomic::Ordering::Relaxed);
    if !f.is_null() {
        // SAFETY: only `set_interrupts` stores here, always a `fn()`.
        let f: fn() = unsafe { std::mem::transmute::<*mut (), fn()>(f) };
        f();
    }
}

/// Texts longer than this are scanned in windows of this size, so a scan
/// can be interrupted between them (one regex pass cannot be): a window's
/// pass takes a few milliseconds, short enough for a cancel to land within
/// 100 ms on a loaded machine. Texts are at most pgprompt.max_scan_bytes
/// (1 MB unless a superuser raised it).
const WINDOW: usize = 1 << 18;
/// How far each window reaches into the next: findings are short (PII,
/// phrases, keywords; a user regex matching more than this across a window
/// boundary would be cut there).
const OVERLAP: usize = 4096;

/// How deep encoded runs inside decoded runs are followed.
const DECODE_DEPTH: usize = 2;
/// The entity of an encoded run left unscanned when the decoding budget
/// (`decode::BUDGET`) ran out.
pub const UNSCANNED: &str = "UNSCANNED_ENCODING";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pii,
    Injection,
    Toxicity,
    Regex,
    Keywords,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Log,
    Warn,
    Redact,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
    Both,
    /// A scan of content going into a prompt (a retrieved document, a web
    /// page, a tool's result): what input guardrails read, plus the rules
    /// for instructions addressed to the model (see `indirect`). Not a
    /// guardrail's direction.
    Context,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "pii" => Kind::Pii,
            "injection" => Kind::Injection,
            "toxicity" => Kind::Toxicity,
            "regex" => Kind::Regex,
            "keywords" => Kind::Keywords,
            _ => return Err(Error::invalid(format!("unknown guardrail kind \"{s}\"; expected pii, injection, toxicity, regex or keywords"))),
        })
    }
}

impl Action {
    pub fn parse(s: &str) -> Result<Action> {
        Ok(match s {
            "log" => Action::Log,
            "warn" => Action::Warn,
            "redact" => Action::Redact,
            "block" => Action::Block,
            _ => return Err(Error::invalid(format!("unknown guardrail action \"{s}\"; expected log, warn, redact or block"))),
        })
    }
}

impl Direction {
    /// A guardrail's direction.
    pub fn parse(s: &str) -> Result<Direction> {
        Ok(match s {
            "input" => Direction::Input,
            "output" => Direction::Output,
            "both" => Direction::Both,
            _ => return Err(Error::invalid(format!("unknown direction \"{s}\"; expected input, output or both"))),
        })
    }

    /// What a scan reads: a guardrail's direction, or `context`.
    pub fn parse_scan(s: &str) -> Result<Direction> {
        match s {
            "context" => Ok(Direction::Context),
            _ => Direction::parse(s).map_err(|_| Error::invalid(format!("unknown direction \"{s}\"; expected input, output, both or context"))),
        }
    }

    /// Whether a guardrail for `self` applies to text going `way`: content
    /// goes into a prompt, so input guardrails read it.
    fn covers(self, way: Direction) -> bool {
        match way {
            Direction::Context => matches!(self, Direction::Input | Direction::Both),
            _ => self == Direction::Both || way == Direction::Both || self == way,
        }
    }
}

/// A guardrail as stored in prompt_guardrails (enabled ones only are scanned).
#[derive(Debug, Clone)]
pub struct Guardrail {
    pub name: String,
    pub kind: Kind,
    pub action: Action,
    pub direction: Direction,
    pub config: Json,
}

/// One finding: which guardrail, what, and where in the original text.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Index into the scanner's guardrails.
    pub guardrail: usize,
    pub entity: Cow<'static, str>,
    /// Character offsets into the original text, end excluded.
    pub start: usize,
    pub end: usize,
    /// Injection findings: the learned detector's probability that the
    /// text around the finding is an injection (`None` for other kinds).
    pub score: Option<f32>,
}

/// The entity of a run in a prompt that hides words in an encoding of
/// bytes (base64, base32, hex): what a person writes words in only so that
/// filters, and the model's safety training, read past them (injection
/// category `encoded`). What the words say is scanned too.
pub const ENCODED_TEXT: &str = "ENCODED_TEXT";

/// The entity of a finding of the learned injection detector: a window
/// of text it scores at or above the guardrail's threshold.
pub const LEARNED_INJECTION: &str = "PROMPT_INJECTION";

/// Letters a window needs for the learned detector to score it, and how
/// many different ones.
const WORDED: usize = 8;
const LETTERS: usize = 4;

/// Whether a window is words enough for the detector: `WORDED` letters, of
/// at least `LETTERS` different ones.
fn worded(window: &str) -> bool {
    let mut seen: Vec<char> = Vec::with_capacity(LETTERS);
    let mut letters = 0;
    for c in window.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if seen.len() < LETTERS && !seen.contains(&c) {
            seen.push(c);
        }
        if letters >= WORDED && seen.len() >= LETTERS {
            return true;
        }
    }
    false
}

/// How a match is narrowed and checked.
#[derive(Clone, Copy)]
enum Check {
    /// PII: boundaries, checksums, ranges.
    Pii(pii::Check),
    /// Keywords and cased phrases: the first capture group is the match;
    /// the character after it must not continue a word.
    Word,
    /// As `Word`, on the phrase view (`phrases::view`: lower case, letter
    /// stand-ins read as letters): the English phrase rules.
    Phrase,
    /// Phrases of stems (other languages), delimiters: the first capture
    /// group is the match, which may end inside a word.
    Stem,
    /// As `Stem`, for languages not written in the Latin alphabet: read
    /// only in texts with characters beyond ASCII, and compiled on the
    /// first such text of a session.
    Script,
    /// As `Stem`, but only in text scanned as content (direction
    /// `context`): instructions addressed to the model from a document.
    Content,
    /// User regex: the match as is.
    Plain,
}

struct Detector {
    guardrail: usize,
    entity: Cow<'static, str>,
    pattern: String,
    /// Compiled on first use: most patterns never match in a session, and
    /// compiling them all up front doubled the first scan's cost (~35 ms).
    regex: std::cell::OnceCell<Regex>,
    check: Check,
}

impl Detector {
    fn regex(&self) -> &Regex {
        self.regex.get_or_init(|| warm::regex(&self.pattern).unwrap_or_else(|| compile(&self.pattern).expect("the pattern compiled as part of the set")))
    }
}

fn compile(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).size_limit(SET_LIMIT).dfa_size_limit(DFA_CACHE).build()
}

/// What a group's set reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// The folded text.
    Text,
    /// The phrase view (`Check::Phrase`).
    Phrase,
    /// The folded text with ASCII capitals in small letters, for patterns
    /// of phrase rules that ask for `(?i)` and spell small ASCII letters only
    /// (`set::caseless`): their set reads them without `(?i)`, whose case
    /// folding of every letter was a fifth of what compiling the
    /// guardrails cost a session's first scan. Each pattern still runs on
    /// its own, with `(?i)`, on the text.
    Lower,
}

/// Detectors read alike, and the set that says which of them may match.
struct Group {
    reads: Reads,
    /// Read only in texts with characters beyond ASCII (`Check::Script`),
    /// and compiled on a session's first such text; the others compile
    /// with the scanner.
    beyond_ascii: bool,
    /// Their indices in `Scanner::detectors`, in set order.
    ids: Vec<usize>,
    set: std::cell::OnceCell<std::rc::Rc<set::Set>>,
}

impl Group {
    /// How a detector groups: what its set reads, and whether only in texts
    /// beyond ASCII.
    fn of(d: &Detector) -> (Reads, bool) {
        let beyond_ascii = matches!(d.check, Check::Script);
        // PII and user regexes stay with the text: a scanner of PII alone
        // (what logging uses) then reads one set, and no copy.
        let reads = match d.check {
            Check::Phrase => Reads::Phrase,
            Check::Stem | Check::Content | Check::Word if set::caseless(&d.pattern).is_some() => Reads::Lower,
            _ => Reads::Text,
        };
        (reads, beyond_ascii)
    }

    /// Its patterns as its set reads them.
    fn patterns<'a>(&self, detectors: &'a [Detector]) -> Vec<&'a str> {
        self.ids
            .iter()
            .map(|&i| {
                let p = detectors[i].pattern.as_str();
                if self.reads == Reads::Lower { set::caseless(p).expect("grouped as caseless") } else { p }
            })
            .collect()
    }

    /// The set of its patterns: compiled in advance (see `warm`), or now.
    fn compile(&self, detectors: &[Detector]) -> Result<std::rc::Rc<set::Set>> {
        let patterns = self.patterns(detectors);
        if let Some(set) = warm::set(&patterns) {
            return Ok(set);
        }
        set::Set::new(&patterns, SET_LIMIT, SET_DFA_CACHE)
            .map(std::rc::Rc::new)
            .map_err(|e| Error::new(ErrorKind::LimitExceeded, format!("the enabled guardrails do not compile together: {e}")))
    }
}

/// Spans of findings, for asking whether a range overlaps any: in order of
/// start, with the furthest end so far, so each question is a binary
/// search (a text of many card numbers and many phone numbers, or a
/// phrase repeated over a megabyte, is not compared pair by pair).
struct Spans {
    starts: Vec<usize>,
    /// The furthest end among the spans up to each one.
    reach: Vec<usize>,
}

impl Spans {
    fn new(spans: impl Iterator<Item = (usize, usize)>) -> Spans {
        let mut spans: Vec<(usize, usize)> = spans.collect();
        spans.sort_unstable();
        let mut reach = Vec::with_capacity(spans.len());
        for &(_, end) in &spans {
            reach.push(reach.last().map_or(end, |&r: &usize| r.max(end)));
        }
        Spans { starts: spans.into_iter().map(|(s, _)| s).collect(), reach }
    }

    /// The spans of `findings` of these entities.
    fn of(findings: &[Finding], entities: &[&str]) -> Spans {
        Spans::new(findings.iter().filter(|f| entities.contains(&f.entity.as_ref())).map(|f| (f.start, f.end)))
    }

    /// Whether any span overlaps `start..end`: one starting before `end`
    /// reaches past `start`.
    fn overlap(&self, start: usize, end: usize) -> bool {
        let before = self.starts.partition_point(|&s| s < end);
        before > 0 && self.reach[before - 1] > start
    }
}

/// All enabled guardrails, compiled.
pub struct Scanner {
    pub guardrails: Vec<Guardrail>,
    detectors: Vec<Detector>,
    allow: Vec<Vec<String>>,
    /// Per guardrail: what its config adds to the PII checks.
    options: Vec<pii::Options>,
    /// Which patterns may occur, by group of detectors read alike.
    groups: Vec<Group>,
    /// Every detector is a built-in PII pattern: a text `pii::may_match`
    /// says no to cannot match the set.
    pii_only: bool,
    /// Per guardrail: the learned detector's threshold, for injection
    /// guardrails that use it.
    thresholds: Vec<Option<f32>>,
    /// Per guardrail: whether it reports words hidden in an encoding
    /// (`ENCODED_TEXT`: injection guardrails with category `encoded`).
    encoded: Vec<bool>,
}

fn config_error(name: &str, what: impl Into<String>) -> Error {
    Error::invalid(format!("guardrail \"{name}\": {}", what.into()))
}

/// A list of strings from `config[key]`, or `None` when absent.
fn strings(name: &str, config: &Json, key: &str) -> Result<Option<Vec<String>>> {
    match config.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| config_error(name, format!("\"{key}\" must be a list of strings"))))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(config_error(name, format!("\"{key}\" must be a list of strings"))),
    }
}

fn check_keys(name: &str, config: &Json, allowed: &[&str]) -> Result<()> {
    let Json::Object(map) = config else {
        return Err(config_error(name, "config must be a JSON object"));
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(config_error(name, format!("unknown config key \"{k}\"; expected one of: {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// The chosen members of `all` (all of them when not chosen); `key` names
/// the config key and `one` a single member in messages.
fn pick<'a>(name: &str, chosen: Option<Vec<String>>, all: &[&'a str], key: &str, one: &str) -> Result<Vec<&'a str>> {
    match chosen {
        None => Ok(all.to_vec()),
        Some(list) if list.is_empty() => Err(config_error(name, format!("\"{key}\" is empty"))),
        Some(list) => list
            .iter()
            .map(|c| {
                all.iter().copied().find(|a| a == c).ok_or_else(|| {
                    config_error(name, format!("unknown {one} \"{c}\"; expected one of: {}", all.join(", ")))
                })
            })
            .collect(),
    }
}

fn user_regex(name: &str, pattern: &str, case_insensitive: bool) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(USER_PATTERN_LIMIT)
        .dfa_size_limit(USER_PATTERN_LIMIT)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("size limit") || matches!(e, regex::Error::CompiledTooBig(_)) {
                Error::new(ErrorKind::LimitExceeded, format!("guardrail \"{name}\": pattern {pattern:?} compiles larger than {USER_PATTERN_LIMIT} bytes"))
            } else {
                config_error(name, format!("invalid regex {pattern:?}: {}", msg.lines().last().unwrap_or(&msg).trim()))
            }
        })
}

/// The (entity, pattern, check) triples of one guardrail, validating its config.
fn detectors_of(g: &Guardrail) -> Result<Vec<(Cow<'static, str>, String, Check)>> {
    let name = &g.name;
    let c = &g.config;
    let mut out: Vec<(Cow<'static, str>, String, Check)> = Vec::new();
    match g.kind {
        Kind::Pii => {
            check_keys(name, c, &["entities", "allow_list", "regions"])?;
            pii_options(name, c)?;
            let names: Vec<&str> = pii::ENTITIES.iter().map(|e| e.name).collect();
            for entity in pick(name, strings(name, c, "entities")?, &names, "entities", "entity")? {
                let e = pii::entity(entity).expect("picked from the table");
                for p in e.patterns {
                    out.push((Cow::Borrowed(e.name), p.to_string(), Check::Pii(e.check)));
                }
            }
            strings(name, c, "allow_list")?;
        }
        Kind::Injection => {
            check_keys(name, c, &["categories", "languages", "phrases", "allow_list", "threshold"])?;
            threshold(name, c)?;
            let cats = injection_categories(name, c)?;
            // Whose phrase rules run (the detector reads every language):
            // fewer compile faster.
            let langs = pick(name, strings(name, c, "languages")?, &languages::CODES, "languages", "language")?;
            if langs.contains(&"en") {
                for (e, p) in phrases::injection(&cats) {
                    out.push((Cow::Borrowed(e), p, Check::Phrase));
                }
                for (e, p) in phrases::cased(&cats) {
                    out.push((Cow::Borrowed(e), p, Check::Word));
                }
            }
            for lang in &langs {
                for (e, p) in languages::injection(&cats, &[lang]) {
                    out.push((Cow::Borrowed(e), p, if languages::latin(lang) { Check::Stem } else { Check::Script }));
                }
            }
            for (e, p, content) in indirect::injection(&cats) {
                out.push((Cow::Borrowed(e), p, if content { Check::Content } else { Check::Stem }));
            }
            for p in strings(name, c, "phrases")?.unwrap_or_default() {
                if p.trim().is_empty() {
                    return Err(config_error(name, "an empty phrase"));
                }
                out.push((Cow::Borrowed("INSTRUCTION_OVERRIDE"), phrases::keyword(&p, false), Check::Word));
            }
            strings(name, c, "allow_list")?;
        }
        Kind::Toxicity => {
            check_keys(name, c, &["categories", "words", "allow_list"])?;
            let cats = pick(name, strings(name, c, "categories")?, &phrases::TOXICITY_CATEGORIES, "categories", "category")?;
            let extra = strings(name, c, "words")?.unwrap_or_default();
            if extra.iter().any(|w| w.trim().is_empty()) {
                return Err(config_error(name, "an empty word"));
            }
            for (e, p) in phrases::toxicity(&cats, &extra) {
                out.push((Cow::Borrowed(e), p, Check::Phrase));
            }
            strings(name, c, "allow_list")?;
        }
        Kind::Regex => {
            check_keys(name, c, &["patterns", "entity", "case_insensitive", "allow_list"])?;
            let patterns = strings(name, c, "patterns")?
                .ok_or_else(|| config_error(name, "a regex guardrail needs \"patterns\": [\"...\"]"))?;
            if patterns.is_empty() {
                return Err(config_error(name, "\"patterns\" is empty"));
            }
            let ci = c.get("case_insensitive").map(|v| v.as_bool().ok_or_else(|| config_error(name, "\"case_insensitive\" must be true or false"))).transpose()?.unwrap_or(false);
            let entity = entity_name(name, c, "CUSTOM")?;
            for p in patterns {
                if p.is_empty() {
                    return Err(config_error(name, "an empty pattern"));
                }
                user_regex(name, &p, ci)?;
                let p = if ci { format!("(?i:{p})") } else { p };
                out.push((Cow::Owned(entity.clone()), p, Check::Plain));
            }
            strings(name, c, "allow_list")?;
        }
        Kind::Keywords => {
            check_keys(name, c, &["keywords", "entity", "case_sensitive", "allow_list"])?;
            let keywords = strings(name, c, "keywords")?
                .ok_or_else(|| config_error(name, "a keywords guardrail needs \"keywords\": [\"...\"]"))?;
            if keywords.is_empty() {
                return Err(config_error(name, "\"keywords\" is empty"));
            }
            let cs = c.get("case_sensitive").map(|v| v.as_bool().ok_or_else(|| config_error(name, "\"case_sensitive\" must be true or false"))).transpose()?.unwrap_or(false);
            let entity = entity_name(name, c, "KEYWORD")?;
            for k in keywords {
                if k.trim().is_empty() {
                    return Err(config_error(name, "an empty keyword"));
                }
                let p = phrases::keyword(&k, cs);
                user_regex(name, &p, false)?;
                out.push((Cow::Owned(entity.clone()), p, Check::Word));
            }
            strings(name, c, "allow_list")?;
        }
    }
    Ok(out)
}

/// A `pii` guardrail's options: `config.regions`, the countries whose
/// national phone numbers it reads (ISO 3166-1 codes, any case).
fn pii_options(name: &str, c: &Json) -> Result<pii::Options> {
    let regions = match strings(name, c, "regions")? {
        None => phone::Regions::default(),
        Some(list) if list.is_empty() => return Err(config_error(name, "\"regions\" is empty")),
        Some(list) => phone::Regions::parse(&list).map_err(|bad| {
            config_error(name, format!("unknown region \"{bad}\": regions are ISO 3166-1 alpha-2 country codes such as GB, DE or IN"))
        })?,
    };
    Ok(pii::Options { regions })
}

/// An injection guardrail's `config.categories` (default: all but `encoded`).
fn injection_categories(name: &str, c: &Json) -> Result<Vec<&'static str>> {
    match strings(name, c, "categories")? {
        None => Ok(phrases::DEFAULT_INJECTION_CATEGORIES.to_vec()),
        chosen => pick(name, chosen, &phrases::INJECTION_CATEGORIES, "categories", "category"),
    }
}

/// The learned detector's threshold of an injection guardrail:
/// `config.threshold` (a probability; 1 turns the detector off), else the
/// model's own. `None`: off.
fn threshold(name: &str, c: &Json) -> Result<Option<f32>> {
    let t = match c.get("threshold") {
        None | Some(Json::Null) => model::builtin().threshold,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) && t > 0.0 => t as f32,
            _ => return Err(config_error(name, "\"threshold\" must be a number above 0 and at most 1 (1 turns the learned detector off)")),
        },
    };
    Ok((t < 1.0).then_some(t))
}

fn entity_name(name: &str, c: &Json, default: &str) -> Result<String> {
    match c.get("entity") {
        None => Ok(default.to_string()),
        Some(Json::String(s)) if !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') => Ok(s.clone()),
        Some(_) => Err(config_error(name, "\"entity\" must be an upper-case name such as ORDER_ID")),
    }
}

impl Scanner {
    /// Compiles the guardrails. Fails with a message naming the guardrail
    /// and the problem when one is invalid.
    pub fn new(guardrails: Vec<Guardrail>) -> Result<Scanner> {
        let mut detectors = Vec::new();
        let mut allow = Vec::new();
        let mut options = Vec::new();
        let mut thresholds = Vec::new();
        let mut encoded = Vec::new();
        for (i, g) in guardrails.iter().enumerate() {
            thresholds.push(if g.kind == Kind::Injection { threshold(&g.name, &g.config)? } else { None });
            encoded.push(g.kind == Kind::Injection && injection_categories(&g.name, &g.config)?.contains(&"encoded"));
            for (entity, pattern, check) in detectors_of(g)? {
                detectors.push(Detector { guardrail: i, entity, pattern, regex: std::cell::OnceCell::new(), check });
            }
            allow.push(strings(&g.name, &g.config, "allow_list")?.unwrap_or_default());
            options.push(if g.kind == Kind::Pii { pii_options(&g.name, &g.config)? } else { pii::Options::default() });
        }
        let mut groups = Vec::new();
        for (reads, beyond_ascii) in [(Reads::Text, false), (Reads::Lower, false), (Reads::Phrase, false), (Reads::Text, true)] {
            let ids: Vec<usize> = (0..detectors.len()).filter(|&i| Group::of(&detectors[i]) == (reads, beyond_ascii)).collect();
            if ids.is_empty() {
                continue;
            }
            let group = Group { reads, beyond_ascii, ids, set: std::cell::OnceCell::new() };
            if !beyond_ascii {
                let _ = group.set.set(group.compile(&detectors)?);
            }
            groups.push(group);
        }
        let pii_only = !detectors.is_empty() && detectors.iter().all(|d| matches!(d.check, Check::Pii(_)));
        Ok(Scanner { guardrails, detectors, allow, options, groups, pii_only, thresholds, encoded })
    }

    /// (guardrail index, entity, regex) of every pattern, in set order.
    pub fn patterns(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.detectors.iter().map(|d| (d.guardrail, d.entity.as_ref(), d.pattern.as_str()))
    }

    /// Every finding in `text` for guardrails covering `direction`, ordered
    /// by position.
    pub fn scan(&self, text: &str, direction: Direction) -> Vec<Finding> {
        let mut findings = Vec::new();
        if (self.detectors.is_empty() && self.thresholds.iter().all(Option::is_none)) || text.is_empty() {
            return findings;
        }
        let mut budget = decode::BUDGET;
        if text.len() <= WINDOW {
            self.scan_view(&normalize::fold(text), text, None, direction, 0, true, &mut budget, &mut findings);
        } else {
            self.scan_windows(text, direction, &mut budget, &mut findings);
        }
        findings.sort_by(|a, b| (a.start, a.end, a.guardrail).cmp(&(b.start, b.end, b.guardrail)));
        findings.dedup_by(|a, b| {
            let same = a.guardrail == b.guardrail && a.entity == b.entity && a.start < b.end && b.start < a.end;
            if same {
                b.score = match (a.score, b.score) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    (x, y) => x.or(y),
                };
            }
            same
        });
        // Digit groups inside a card number, an IBAN or an IP address also
        // look like a phone number, and an IBAN's digits like a card: the
        // entity with the stronger check wins.
        let over_phone = Spans::of(&findings, &["CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"]);
        let over_card = Spans::of(&findings, &["IBAN_CODE"]);
        findings.retain(|f| match f.entity.as_ref() {
            "PHONE_NUMBER" => !over_phone.overlap(f.start, f.end),
            "CREDIT_CARD" => !over_card.overlap(f.start, f.end),
            _ => true,
        });
        findings
    }

    /// Scans a long text window by window (see `WINDOW`), checking for
    /// interrupts between windows. Each window reaches `OVERLAP` bytes into
    /// the next and keeps the findings that start before the next begins,
    /// so a finding across a boundary is found whole, in the window where
    /// it starts.
    fn scan_windows(&self, text: &str, direction: Direction, budget: &mut usize, out: &mut Vec<Finding>) {
        let boundary = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i += 1;
            }
            i
        };
        let (mut start, mut start_chars) = (0usize, 0usize);
        while start < text.len() {
            interrupts();
            let next = boundary(start + WINDOW);
            let window = &text[start..boundary(next + OVERLAP)];
            let next_chars = start_chars + text[start..next].chars().count();
            let mut found = Vec::new();
            let before = *budget;
            self.scan_view(&normalize::fold(window), window, None, direction, 0, true, budget, &mut found);
            // Encoded runs in the overlap are decoded again by the next
            // window: they count once against the decoding budget, so a
            // text of at most `decode::BUDGET` bytes is decoded whole
            // however it is cut.
            *budget += (before - *budget).min(window.len() - (next - start));
            out.extend(found.into_iter().filter_map(|mut f| {
                f.start += start_chars;
                f.end += start_chars;
                (f.start < next_chars).then_some(f)
            }));
            (start, start_chars) = (next, next_chars);
        }
    }

    /// Scans one view, folded from `original`. `span`: when the view is
    /// decoded from an encoded run, the run's place in the original, to
    /// which all its findings point.
    /// `budget`: bytes of encoded runs still to decode in this scan.
    /// `pii`: whether PII detectors read this view (not in rewritten text:
    /// reversing or spacing out changes no address, and a number read
    /// backwards is no finding).
    #[allow(clippy::too_many_arguments)]
    fn scan_view(
        &self,
        view: &normalize::View,
        original: &str,
        span: Option<(usize, usize)>,
        direction: Direction,
        depth: usize,
        pii: bool,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        let text = view.text.as_str();
        let first = out.len();
        // Most stored texts have no PII: when that is all there is to find,
        // the prefilter says so faster than the set.
        let possible = !self.pii_only || pii::may_match(text);
        let phrase_text = self.groups.iter().any(|g| g.reads == Reads::Phrase).then(|| phrases::view(text));
        let lower_text = self.groups.iter().any(|g| g.reads == Reads::Lower).then(|| text.to_ascii_lowercase());
        let mut matched = Vec::new();
        for g in self.groups.iter().filter(|g| possible && (!g.beyond_ascii || !text.is_ascii())) {
            let set = g.set.get_or_init(|| g.compile(&self.detectors).expect("the built-in rules of every language compile (languages.rs tests)"));
            let read = match g.reads {
                Reads::Text => text,
                Reads::Phrase => phrase_text.as_deref().unwrap_or(text),
                Reads::Lower => lower_text.as_deref().unwrap_or(text),
            };
            matched.extend(set.matches(read).into_iter().map(|i| g.ids[i]));
        }
        matched.sort_unstable();
        for i in matched {
            interrupts();
            let d = &self.detectors[i];
            let g = &self.guardrails[d.guardrail];
            if !g.direction.covers(direction)
                || (!pii && matches!(d.check, Check::Pii(_)))
                || (direction != Direction::Context && matches!(d.check, Check::Content))
            {
                continue;
            }
            let mut found = 0usize;
            let mut push = |s: usize, e: usize| {
                found += 1;
                if found % 256 == 0 {
                    interrupts();
                }
                if self.allowed(d.guardrail, &text[s..e]) {
                    return;
                }
                let (start, end) = span.unwrap_or_else(|| view.original_range(s, e));
                out.push(Finding { guardrail: d.guardrail, entity: d.entity.clone(), start, end, score: None });
            };
            match d.check {
                Check::Plain => {
                    for m in d.regex().find_iter(text).filter(|m| !m.is_empty()) {
                        push(m.start(), m.end());
                    }
                }
                Check::Pii(check) => {
                    let source = pii::Text::new(view, original);
                    for (n, m) in d.regex().find_iter(text).enumerate() {
                        // A check may take microseconds (libphonenumber):
                        // a long text of candidates stays cancellable.
                        if n % 16 == 15 {
                            interrupts();
                        }
                        if let Some((s, e)) = check(&source, m.start(), m.end(), &self.options[d.guardrail]) {
                            push(s, e);
                        }
                    }
                }
                Check::Stem | Check::Script | Check::Content => {
                    for c in d.regex().captures_iter(text) {
                        let m = c.get(1).expect("phrase patterns capture the phrase");
                        push(m.start(), m.end());
                    }
                }
                Check::Word | Check::Phrase => {
                    // The phrase view has the text's length: its offsets
                    // are the text's, and idioms are read in the text.
                    let read = match (d.check, phrase_text.as_deref()) {
                        (Check::Phrase, Some(p)) => p,
                        _ => text,
                    };
                    for c in d.regex().captures_iter(read) {
                        let m = c.get(1).expect("phrase patterns capture the phrase");
                        if !read[m.end()..].starts_with(|ch: char| ch.is_alphanumeric())
                            && !m.is_empty()
                            && !phrases::idiom(&d.entity, &text[m.start()..m.end()], &text[m.end()..])
                        {
                            push(m.start(), m.end());
                        }
                    }
                }
            }
        }
        let own = first..out.len();
        if depth < DECODE_DEPTH {
            let runs = decode::decode_runs(text, budget);
            for (s, e, decoded, encoding) in runs.decoded {
                interrupts();
                let run = span.unwrap_or_else(|| view.original_range(s, e));
                self.hidden_words(&text[s..e], &decoded, encoding, run, direction, out);
                self.scan_view(&normalize::fold(&decoded), &decoded, Some(run), direction, depth + 1, pii, budget, out);
            }
            // Spaced-out letters, HTML references, base32, wrapped base64,
            // and rot13 or reversed text where the text asks for it (read
            // by phrase rules and the detector only: not when PII is all
            // there is to find, as when logging redacts).
            let mut unscanned = runs.unscanned;
            let rewrites = if self.pii_only { Vec::new() } else { transform::rewrites(text, &runs.spans) };
            for (s, e, rewritten, encoding) in rewrites {
                interrupts();
                if rewritten.len() > *budget {
                    *budget = 0;
                    unscanned.push((s, e));
                    continue;
                }
                *budget -= rewritten.len();
                let run = span.unwrap_or_else(|| view.original_range(s, e));
                self.hidden_words(&text[s..e], &rewritten, encoding, run, direction, out);
                self.scan_view(&normalize::fold(&rewritten), &rewritten, Some(run), direction, depth + 1, false, budget, out);
            }
            // Runs the budget did not reach could hide anything: every
            // guardrail that reads decoded text reports them (fail closed).
            for (s, e) in unscanned {
                let (start, end) = span.unwrap_or_else(|| view.original_range(s, e));
                for (i, _) in self.guardrails.iter().enumerate().filter(|(_, g)| g.direction.covers(direction)) {
                    out.push(Finding { guardrail: i, entity: Cow::Borrowed(UNSCANNED), start, end, score: None });
                }
            }
        }
        // After the decoded and rewritten runs: what the rules found in
        // them counts as found in the windows holding them.
        self.learned(view, span, direction, own, out);
    }

    /// Whether guardrail `i`'s allow list has `matched` (any case).
    fn allowed(&self, i: usize, matched: &str) -> bool {
        self.allow[i].iter().any(|a| a.eq_ignore_ascii_case(matched))
    }

    /// A run in a prompt (direction input or both) written in an encoding of
    /// bytes that decodes to words: an `ENCODED_TEXT` finding at `run` for
    /// each injection guardrail with category `encoded` covering the
    /// direction, unless its allow list has the run. Content (direction
    /// context) is left to what the words say: mail and documents carry
    /// base64 bodies by design.
    fn hidden_words(&self, written: &str, decoded: &str, encoding: decode::Encoding, run: (usize, usize), direction: Direction, out: &mut Vec<Finding>) {
        if !self.encoded.contains(&true) || encoding != decode::Encoding::Bytes || !matches!(direction, Direction::Input | Direction::Both) || !decode::words(decoded) {
            return;
        }
        for (i, g) in self.guardrails.iter().enumerate() {
            if self.encoded[i] && g.direction.covers(direction) && !self.allowed(i, written) {
                out.push(Finding { guardrail: i, entity: Cow::Borrowed(ENCODED_TEXT), start: run.0, end: run.1, score: None });
            }
        }
    }

    /// The learned detector on one view, for the injection guardrails
    /// covering `direction`: windows scoring at or above a guardrail's
    /// threshold become findings (overlapping ones merged, with the higher
    /// score) unless the guardrail found something in them already (in
    /// this view or in the runs decoded from it: `out` from `own.start`
    /// on); the rule findings of this view (`own`) carry the score of the
    /// windows they fall in.
    fn learned(&self, view: &normalize::View, span: Option<(usize, usize)>, direction: Direction, own: std::ops::Range<usize>, out: &mut Vec<Finding>) {
        let first = own.start;
        let users: Vec<(usize, Option<f32>)> = self
            .guardrails
            .iter()
            .enumerate()
            .filter(|(_, g)| g.kind == Kind::Injection && g.direction.covers(direction))
            .map(|(i, _)| (i, self.thresholds[i]))
            .collect();
        if users.is_empty() || view.text.is_empty() {
            return;
        }
        interrupts();
        // Each window placed in the original text, its score to three
        // decimals (what a reader of the findings can use). A window of
        // fewer than `WORDED` letters says nothing to a model (a run of
        // punctuation scored 0.9: attacks in the training data shout), nor
        // one of a letter or two repeated (a run of `x` scored 0.98 when
        // weights were summed per occurrence), so it scores 0.
        let placed: Vec<(usize, usize, f32)> = model::builtin()
            .scores(&view.text, interrupts)
            .into_iter()
            .map(|(s, e, p)| {
                let (a, b) = span.unwrap_or_else(|| view.original_range(s, e));
                (a, b, if worded(&view.text[s..e]) { (p * 1000.0).round() / 1000.0 } else { 0.0 })
            })
            .collect();
        // Windows come in order of start and of end: those around a
        // finding are a run of them, found by binary search.
        for f in out[own].iter_mut().filter(|f| users.iter().any(|&(i, _)| i == f.guardrail)) {
            let from = placed.partition_point(|&(_, b, _)| b <= f.start);
            let to = placed.partition_point(|&(a, _, _)| a < f.end.max(f.start + 1));
            f.score = Some(placed[from..to.max(from)].iter().fold(0f32, |m, &(_, _, p)| m.max(p)));
        }
        for &(i, threshold) in &users {
            let Some(threshold) = threshold else { continue };
            // Windows where the guardrail's rules found something already
            // say so with its score; the detector adds what they missed.
            // (A run left undecoded is no rule's finding: the detector
            // still reads the window holding it.)
            let ruled = Spans::new(out[first..].iter().filter(|f| f.guardrail == i && f.entity != UNSCANNED).map(|f| (f.start, f.end)));
            let mut merged: Option<Finding> = None;
            for &(a, b, p) in placed.iter().filter(|w| w.2 >= threshold && !ruled.overlap(w.0, w.1)) {
                match &mut merged {
                    Some(m) if a <= m.end => {
                        m.end = m.end.max(b);
                        m.score = m.score.map(|s| s.max(p));
                    }
                    _ => {
                        out.extend(merged.take());
                        merged = Some(Finding { guardrail: i, entity: Cow::Borrowed(LEARNED_INJECTION), start: a, end: b, score: Some(p) });
                    }
                }
            }
            out.extend(merged);
        }
    }

    /// `text` with the findings `chosen` selects redacted, scanning the
    /// result again until none is left (at most `REDACT_PASSES` scans): one
    /// finding can hide another, as a phone number glued to a social
    /// security number is dropped as an overlap of it and shows once the
    /// number beside it is gone. `first` are the findings of `text`.
    pub fn redact_until_clean(&self, text: &str, direction: Direction, first: &[Finding], chosen: impl Fn(&Finding) -> bool) -> String {
        let picked: Vec<&Finding> = first.iter().filter(|f| chosen(f)).collect();
        if picked.is_empty() {
            return text.to_string();
        }
        let mut out = Scanner::redact(text, &picked);
        for _ in 1..REDACT_PASSES {
            let more: Vec<Finding> = self.scan(&out, direction).into_iter().filter(|f| chosen(f)).collect();
            if more.is_empty() {
                break;
            }
            out = Scanner::redact(&out, &more.iter().collect::<Vec<_>>());
        }
        out
    }

    /// `text` with the spans of `findings` replaced by `<ENTITY>`
    /// (Presidio's replace operator). Overlapping findings merge; the
    /// earliest, then longest, names the replacement.
    pub fn redact(text: &str, findings: &[&Finding]) -> String {
        let mut spans: Vec<(usize, usize, &str)> = findings.iter().map(|f| (f.start, f.end, f.entity.as_ref())).collect();
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut merged: Vec<(usize, usize, &str)> = Vec::new();
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.0 < last.1 => last.1 = last.1.max(s.1),
                _ => merged.push(s),
            }
        }
        let mut out = String::with_capacity(text.len());
        // Character offsets to byte offsets, walking forward (the spans are
        // in order) and interruptible: texts run to hundreds of megabytes.
        let mut chars = text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len()));
        let (mut char_at, mut byte_at) = (0usize, chars.next().unwrap_or(0));
        let mut byte_of = |char_offset: usize| {
            while char_at < char_offset {
                match chars.next() {
                    Some(b) => byte_at = b,
                    None => break,
                }
                char_at += 1;
                if char_at % 65_536 == 0 {
                    interrupts();
                }
            }
            byte_at
        };
        let mut at = 0usize;
        for (start, end, entity) in merged {
            let (bs, be) = (byte_of(start), byte_of(end));
            if bs < at {
                continue;
            }
            out.push_str(&text[at..bs]);
            out.push('<');
            out.push_str(entity);
            out.push('>');
            at = be;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Validates one guardrail definition (what the table trigger runs).
pub fn validate(g: Guardrail) -> Result<()> {
    Scanner::new(vec![g]).map(|_| ())
}

#[cfg(test)]
mod tests;
