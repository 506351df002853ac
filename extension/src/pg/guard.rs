//! SQL functions of the guardrails: scan, redact, the pieces of enforce, and
//! the config check the table trigger runs.
//!
//! The enabled guardrails are compiled once per session (all of them for
//! scan, redact and enforce; the storage set for logging, each on first
//! use) and recompiled only after prompt_guardrails changed (see `invalidation`:
//! correct under concurrent edits in other sessions, at their commit).

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value as Json};

use super::gucs;
use super::invalidation::{self, Channel};
use super::raise::{required, OrRaise};
use crate::alloc_guard;
use crate::error::{Error, Result};
use crate::guard::{Action, Direction, Finding, Guardrail, Kind, Scanner};

/// What the session knows about prompt_guardrails beyond the scanner.
struct Compiled {
    scanner: Scanner,
    /// Per guardrail, parallel to `scanner.guardrails`: (id, kind, severity, action).
    meta: Vec<(i64, String, String, String)>,
}

/// Whether a guardrail's findings change what logging stores.
fn matters_for_storage(g: &Guardrail) -> bool {
    g.kind == Kind::Pii || matches!(g.action, Action::Log | Action::Redact)
}

thread_local! {
    /// Every enabled guardrail: what scan, redact and enforce apply.
    static COMPILED: invalidation::Slot<Compiled> = const { RefCell::new(None) };
    /// What execution logging scans for: only the guardrails whose findings
    /// change what is stored (PII, and actions log and redact). Warn and
    /// block phrases (injection, toxicity) are most of the patterns and say
    /// nothing about storage; leaving them out halves the scan of a logged
    /// prompt, and a session that only logs compiles 5 ms of patterns on
    /// its first call instead of 40.
    static STORAGE: invalidation::Slot<Compiled> = const { RefCell::new(None) };
}

/// The compiled enabled guardrails, recompiled if prompt_guardrails changed.
fn compiled() -> Rc<Compiled> {
    invalidation::cached(&COMPILED, Channel::Guardrails, || build(|_| true))
}

/// The storage set (see STORAGE), recompiled if prompt_guardrails changed.
fn storage() -> Rc<Compiled> {
    invalidation::cached(&STORAGE, Channel::Guardrails, || build(matters_for_storage))
}

/// Compiles the enabled guardrails that `keep` selects.
fn build(keep: fn(&Guardrail) -> bool) -> Compiled {
    let rows = load();
    let mut guardrails = Vec::with_capacity(rows.len());
    let mut meta = Vec::with_capacity(rows.len());
    for (id, name, kind, severity, action, direction, config, table) in rows {
        invalidation::watch(Channel::Guardrails, table);
        let g = Guardrail {
            name,
            kind: Kind::parse(&kind).or_raise(),
            action: Action::parse(&action).or_raise(),
            direction: Direction::parse(&direction).or_raise(),
            config,
        };
        if keep(&g) {
            guardrails.push(g);
            meta.push((id, kind, severity, action));
        }
    }
    Compiled { scanner: Scanner::new(guardrails).or_raise(), meta }
}

type Row = (i64, String, String, String, String, String, Json, u32);

fn load() -> Vec<Row> {
    Spi::connect(|client| {
        let table = client
            .select(
                "SELECT id, name, kind, severity, action, direction, config, tableoid::int8 \
                 FROM pgprompt.prompt_guardrails WHERE enabled ORDER BY name",
                None,
                &[],
            )
            .expect("reading prompt_guardrails");
        table
            .map(|row| {
                let text = |i: usize| row.get::<String>(i).ok().flatten().unwrap_or_default();
                (
                    row.get::<i64>(1).ok().flatten().unwrap_or_default(),
                    text(2),
                    text(3),
                    text(4),
                    text(5),
                    text(6),
                    row.get::<JsonB>(7).ok().flatten().map(|j| j.0).unwrap_or(Json::Null),
                    row.get::<i64>(8).ok().flatten().unwrap_or_default() as u32,
                )
            })
            .collect()
    })
}

fn direction(d: Option<&str>) -> Direction {
    Direction::parse_scan(required(d, "direction")).or_raise()
}

/// Scans `content`, within the size cap and the memory budget.
fn scan(content: &str, way: Direction) -> (Rc<Compiled>, Vec<Finding>) {
    let max = gucs::MAX_SCAN_BYTES.get() as usize;
    if content.len() > max {
        super::raise::raise(Error::limit("content", content.len(), max, "pgprompt.max_scan_bytes"));
    }
    let c = compiled();
    let findings = c.scan(content, way);
    (c, findings)
}

impl Compiled {
    /// This set's findings in `content`, within the memory budget.
    fn scan(&self, content: &str, way: Direction) -> Vec<Finding> {
        alloc_guard::guarded(gucs::render_memory_limit_bytes(), || self.scanner.scan(content, way))
    }
}

/// Findings of `block` guardrails in a rendered prompt, as
/// ("guardrail: ENTITY at start..end", start) for test case reports. A text
/// too large to scan counts as one.
pub fn blocking(content: &str) -> Vec<(String, usize)> {
    let max = gucs::MAX_SCAN_BYTES.get() as usize;
    if content.len() > max {
        return vec![(format!("its size: {} bytes is more than pgprompt.max_scan_bytes ({max}) allows to scan", content.len()), 0)];
    }
    let (c, findings) = scan(content, Direction::Input);
    findings
        .iter()
        .filter(|f| c.scanner.guardrails[f.guardrail].action == Action::Block)
        .map(|f| (format!("{}: {} at {}..{}", c.scanner.guardrails[f.guardrail].name, f.entity, f.start, f.end), f.start))
        .collect()
}

/// Findings of the enabled guardrails in `content`: which guardrail, what,
/// where (character offsets into `content`, 0-based, end excluded), and for
/// injection findings the learned detector's score. Reads nothing but the
/// guardrails and writes nothing.
#[pg_extern(name = "prompt_guard_scan", stable, parallel_safe)]
fn prompt_guard_scan_scored(
    content: Option<&str>,
    direction: default!(Option<&str>, "'input'"),
) -> TableIterator<
    'static,
    (
        name!(guardrail, String),
        name!(kind, String),
        name!(entity, String),
        name!(start_pos, i32),
        name!(end_pos, i32),
        name!(severity, String),
        name!(action, String),
        name!(score, Option<f32>),
    ),
> {
    let content = required(content, "content");
    let (c, findings) = scan(content, self::direction(direction));
    let rows: Vec<_> = findings
        .into_iter()
        .map(|f| {
            let (_, kind, severity, action) = &c.meta[f.guardrail];
            (
                c.scanner.guardrails[f.guardrail].name.clone(),
                kind.clone(),
                f.entity.into_owned(),
                f.start as i32,
                f.end as i32,
                severity.clone(),
                action.clone(),
                f.score,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// 0.1.0's `prompt_guard_scan` (without the score), for databases whose
/// schema is not updated yet (the library is shared by every version's SQL).
#[pg_extern(stable, parallel_safe, sql = false)]
fn prompt_guard_scan(
    content: Option<&str>,
    direction: default!(Option<&str>, "'input'"),
) -> TableIterator<
    'static,
    (
        name!(guardrail, String),
        name!(kind, String),
        name!(entity, String),
        name!(start_pos, i32),
        name!(end_pos, i32),
        name!(severity, String),
        name!(action, String),
    ),
> {
    let rows: Vec<_> = prompt_guard_scan_scored(content, direction).map(|(g, k, e, s, n, sev, a, _)| (g, k, e, s, n, sev, a)).collect();
    TableIterator::new(rows)
}

/// Whether a finding is redacted: PII always, anything else when its
/// guardrail's action is redact.
fn redactable(c: &Compiled, f: &Finding) -> bool {
    let g = &c.scanner.guardrails[f.guardrail];
    g.kind == Kind::Pii || g.action == Action::Redact
}

/// `content` with PII (and whatever guardrails with action redact find)
/// replaced by `<ENTITY_TYPE>`, as Presidio's replace operator does.
#[pg_extern(stable, parallel_safe)]
fn prompt_guard_redact(content: Option<&str>, direction: default!(Option<&str>, "'both'")) -> String {
    let content = required(content, "content");
    let way = self::direction(direction);
    let (c, findings) = scan(content, way);
    redact(&c, content, way, &findings, |f| redactable(&c, f))
}

/// `content` with the chosen findings redacted until none is left, within
/// the render memory budget.
fn redact(c: &Compiled, content: &str, way: Direction, findings: &[Finding], chosen: impl Fn(&Finding) -> bool) -> String {
    alloc_guard::guarded(gucs::render_memory_limit_bytes(), || c.scanner.redact_until_clean(content, way, findings, chosen))
}

/// The work of prompt_guard_enforce (written in PL/pgSQL, which can raise
/// its own SQLSTATE): the findings as JSON (without the matched text) and
/// the content with what guardrails with action redact found replaced.
#[pg_extern(stable, parallel_safe)]
fn _guard_enforce(
    content: Option<&str>,
    direction: Option<&str>,
) -> TableIterator<'static, (name!(findings, JsonB), name!(redacted, String))> {
    let content = required(content, "content");
    let way = self::direction(direction);
    let (c, findings) = scan(content, way);
    let list: Vec<Json> = findings.iter().map(|f| finding_json(&c, f)).collect();
    let redacted = redact(&c, content, way, &findings, |f| c.scanner.guardrails[f.guardrail].action == Action::Redact);
    TableIterator::once((JsonB(Json::Array(list)), redacted))
}

/// A finding as _record_violations takes it: never the matched text.
fn finding_json(c: &Compiled, f: &Finding) -> Json {
    let (id, kind, severity, action) = &c.meta[f.guardrail];
    json!({
        "guardrail_id": id,
        "guardrail": c.scanner.guardrails[f.guardrail].name,
        "kind": kind,
        "entity": f.entity,
        "start_pos": f.start,
        "end_pos": f.end,
        "severity": severity,
        "action": action,
        "score": f.score,
    })
}

/// What execution logging keeps of a text.
pub struct Stored<'a> {
    /// The text to store: redacted unless raw; `None` when it was too
    /// large to scan and so could not be stored safely.
    pub text: Option<Cow<'a, str>>,
    /// Findings of guardrails with action log or redact, to record.
    pub findings: Vec<Json>,
}

/// Scans `content` for storage: PII and what redact guardrails find is
/// replaced (unless `raw`), and what log and redact guardrails find is
/// returned for the violations log.
pub fn for_storage(content: &str, way: Direction, raw: bool) -> Stored<'_> {
    if content.len() > gucs::MAX_SCAN_BYTES.get() as usize {
        return Stored { text: raw.then_some(Cow::Borrowed(content)), findings: Vec::new() };
    }
    let c = storage();
    let c = c.as_ref();
    let recorded = |g: &Guardrail| matches!(g.action, Action::Log | Action::Redact);
    if raw && !c.scanner.guardrails.iter().any(recorded) {
        // Stored as is, and nothing to record: no need to scan.
        return Stored { text: Some(Cow::Borrowed(content)), findings: Vec::new() };
    }
    let found = c.scan(content, way);
    let findings = found
        .iter()
        .filter(|f| recorded(&c.scanner.guardrails[f.guardrail]))
        .map(|f| finding_json(c, f))
        .collect();
    let text = if raw || !found.iter().any(|f| redactable(c, f)) {
        Cow::Borrowed(content)
    } else {
        Cow::Owned(redact(c, content, way, &found, |f| redactable(c, f)))
    };
    Stored { text: Some(text), findings }
}

/// Refuses an invalid guardrail definition with a message naming the
/// problem (run by the prompt_guardrails trigger on INSERT and UPDATE).
#[pg_extern(stable, parallel_safe)]
fn _guardrail_check(name: &str, kind: &str, action: &str, direction: &str, config: JsonB) {
    let check = || -> Result<()> {
        let g = Guardrail {
            name: name.to_string(),
            kind: Kind::parse(kind)?,
            action: Action::parse(action)?,
            direction: Direction::parse(direction)?,
            config: config.0,
        };
        crate::guard::validate(g)
    };
    alloc_guard::guarded(gucs::render_memory_limit_bytes(), check).or_raise();
}

/// The regular expressions the enabled guardrails compile to, one row per
/// pattern (Rust regex syntax), for review and for comparisons.
#[pg_extern(stable, parallel_safe)]
fn prompt_guard_patterns() -> TableIterator<'static, (name!(guardrail, String), name!(entity, String), name!(pattern, String))> {
    let c = compiled();
    let rows: Vec<_> = c
        .scanner
        .patterns()
        .map(|(g, entity, pattern)| (c.scanner.guardrails[g].name.clone(), entity.to_string(), pattern.to_string()))
        .collect();
    TableIterator::new(rows)
}
