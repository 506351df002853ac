//! prompt_score and prompt_score_trace: a score attached to a logged call or
//! a trace (see sql/scores.sql for the tables and why they look so).
//!
//! Written in Rust because applications score at the rate they call: the
//! declarations are cached per session (dropped by invalidation), the call
//! and the score in force are found by one kept statement, and the deltas
//! are appended as heap tuples, so a score costs one lookup and its insert
//! (PL/pgSQL, a statement each, ran at 0.38 of a plain INSERT; see the
//! README's benchmark for what this gives).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};

use super::direct::{self, Outcome, Plain};
use super::invalidation::{self, Channel};
use super::probe;
use super::raise::{self, required, OrRaise};
use super::spi::{self, Kept};
use crate::error::{Error, ErrorKind};
use crate::scores::{self, Given, Kind, Value};
use crate::stats;

/// A score name's declaration, as cached.
struct Definition {
    kind: Kind,
    /// The bounds of a numeric score, as numeric text and as numbers.
    min: Option<(String, AnyNumeric)>,
    max: Option<(String, AnyNumeric)>,
}

/// The declarations looked up in this session (misses are not kept).
type Definitions = RefCell<HashMap<String, Rc<Definition>>>;

thread_local! {
    static DEFINITIONS: invalidation::Slot<Definitions> = const { RefCell::new(None) };
    static DEFINITION: Kept = const { Kept::new() };
    static PURGED: Kept = const { Kept::new() };
    static TRACE: Kept = const { Kept::new() };
    static CALL_AND_CURRENT: Kept = const { Kept::new() };
    static CURRENT_OF_TRACE: Kept = const { Kept::new() };
    static INSERT_CALL: Kept = const { Kept::new() };
    static INSERT_TRACE: Kept = const { Kept::new() };
    static DELTAS: Kept = const { Kept::new() };
}

/// What is scored.
#[derive(Clone, Copy)]
enum Target<'a> {
    Call(i64),
    Trace(&'a str),
}

/// What the trace's calls used: one group per template version, one per
/// experiment variant, each at the hour (UTC) of its first call there.
const TRACE_GROUPS: &str = "
    SELECT jsonb_agg(g ORDER BY g ->> 'template_id', g ->> 'version', g ->> 'experiment', g ->> 'variant')
      FROM (SELECT jsonb_strip_nulls(jsonb_build_object(
                       'hour', to_char(date_trunc('hour', min(e.executed_at), 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00+00:00'),
                       'template_id', e.template_id, 'template_name', max(e.template_name), 'version', e.version,
                       'experiment', x.experiment, 'variant', x.variant)) AS g
              FROM pgprompt.prompt_executions e
             CROSS JOIN LATERAL (SELECT NULL::text, NULL::text
                                 UNION ALL SELECT e.experiment, e.variant WHERE e.experiment IS NOT NULL) AS x (experiment, variant)
             WHERE e.trace_id = $1
             GROUP BY e.template_id, e.version, x.experiment, x.variant) t";

/// The declaration of a score name, from the session's cache or the table.
fn definition(name: &str) -> Option<Rc<Definition>> {
    let cache = invalidation::cached(&DEFINITIONS, Channel::ScoreDefinitions, || {
        let relid: Option<i64> = spi::pinned(|| Spi::get_one("SELECT 'pgprompt.prompt_score_definitions'::regclass::oid::int8")).ok().flatten();
        invalidation::watch(Channel::ScoreDefinitions, relid.unwrap_or_default() as u32);
        Definitions::default()
    });
    if let Some(d) = cache.borrow().get(name) {
        return Some(d.clone());
    }
    let found = spi::pinned(|| Spi::connect(|_| {
        let plan = DEFINITION.with(|p| {
            p.plan(
                "SELECT kind, min_value::text, max_value::text, categories FROM pgprompt.prompt_score_definitions WHERE name = $1",
                &[pg_sys::TEXTOID],
            )
        });
        let mut args = spi::Args::with_capacity(1);
        args.push(Some(name));
        // SAFETY: the plan's one text argument. Not read-only: a name
        // declared earlier in the same statement is seen.
        unsafe { spi::first_row(plan, &mut args, false) }.map(|r| Definition {
            kind: Kind::new(&r.value::<String>(1).unwrap_or_default(), r.value::<Vec<String>>(4).unwrap_or_default()),
            min: r.value::<String>(2).and_then(|t| Some((t.clone(), AnyNumeric::try_from(t.as_str()).ok()?))),
            max: r.value::<String>(3).and_then(|t| Some((t.clone(), AnyNumeric::try_from(t.as_str()).ok()?))),
        })
    }))?;
    let found = Rc::new(found);
    if invalidation::may_cache() {
        let mut cache = cache.borrow_mut();
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(name.to_string(), found.clone());
    }
    Some(found)
}

/// A value as an overload received it.
enum Arg<'a> {
    /// From the numeric overloads, as PostgreSQL passed it.
    Numeric(AnyNumeric),
    Given(Given<'a>),
}

/// Scores `target` with `value`.
fn score(target: Target, name: Option<&str>, value: Option<Arg>, comment: Option<&str>, source: Option<&str>) -> i64 {
    let name = required(name, "name");
    let arg = value.unwrap_or_else(|| raise::raise(Error::null_argument("value")));
    let source = required(source, "source");
    if source.trim().is_empty() || source.chars().count() > 100 {
        raise::raise(Error::invalid("source must be a non-empty text of at most 100 characters"));
    }
    let Some(def) = definition(name) else {
        let defined: Option<String> =
            spi::pinned(|| Spi::get_one("SELECT string_agg(name, ', ' ORDER BY name) FROM pgprompt.prompt_score_definitions")).ok().flatten();
        raise::raise(
            Error::new(ErrorKind::UnknownObject, format!("score \"{name}\" is not defined"))
                .with_detail(defined.map_or("No score is defined yet.".into(), |d| format!("Defined: {d}.")))
                .with_hint("An administrator defines scores with prompt_score_define(name, kind, ...)."),
        )
    };
    let (value, given_number) = match arg {
        // A finite number for a numeric score needs no more checking than
        // its bounds (below): written out, it would be read back at once.
        Arg::Numeric(n) if matches!(def.kind, Kind::Numeric) && finite(&n) => (Value::Number(String::new()), Some(n)),
        Arg::Numeric(n) => (scores::check(name, &def.kind, Given::Number(&n.to_string())).or_raise(), Some(n)),
        Arg::Given(given) => (scores::check(name, &def.kind, given).or_raise(), None),
    };
    let number = match &value {
        Value::Number(n) => {
            // The number as given (the text of a number read as numeric).
            let n = given_number.or_else(|| AnyNumeric::try_from(n.as_str()).ok()).unwrap_or_else(|| {
                raise::raise(Error::invalid(format!("score \"{name}\" is numeric: '{n}' is not a number")))
            });
            let (min, max) = (def.min.as_ref(), def.max.as_ref());
            if min.is_some_and(|(_, m)| n < *m) || max.is_some_and(|(_, m)| n > *m) {
                raise::raise(Error::invalid(format!(
                    "score \"{name}\" must be between {} and {}, not {n}",
                    min.map_or("-∞", |(t, _)| t),
                    max.map_or("∞", |(t, _)| t)
                )));
            }
            Some(n)
        }
        _ => None,
    };
    // What the statistics count: the number, true as 1, a category as 0.
    let counted_value = match &value {
        Value::Number(_) => number.clone().unwrap_or_default(),
        Value::Bool(b) => AnyNumeric::from(i32::from(*b)),
        Value::Category(_) => AnyNumeric::from(0),
    };
    let category = match &value {
        Value::Category(c) => Some(c.as_str()),
        _ => None,
    };

    // Read the score in force and insert the new one superseding it. A
    // scorer who raced us to the same chain makes the insert do nothing
    // (the unique index of the chain, see sql/scores.sql): read again, now
    // seeing the winner, and supersede it. (Under REPEATABLE READ the
    // winner stays invisible and the insert raises 40001, to be retried.)
    let mut attempts = 0;
    let (id, groups, superseded) = loop {
        if let Some(scored) = try_score(target, name, &value, number.clone(), category, comment, source) {
            break scored;
        }
        attempts += 1;
        if attempts == 1000 {
            raise::raise(Error::new(
                ErrorKind::SerializationFailure,
                format!("score \"{name}\" could not be recorded: other scorers of the same call or trace kept correcting it"),
            ));
        }
    };

    // The new score counts; the one it supersedes no longer does.
    let mut deltas = vec![(groups, category.map(str::to_owned), 1, counted_value)];
    if let Some(old) = superseded {
        deltas.push((old.counted_for, old.category, -1, old.value));
    }
    append_deltas(name, deltas);

    super::stats::fold_now_and_then();
    id
}

/// One attempt of `score`: the new score's id, what it counts for and the
/// score it superseded; `None` when another scorer superseded that score
/// (or scored first) in the meantime.
fn try_score(
    target: Target,
    name: &str,
    value: &Value,
    number: Option<AnyNumeric>,
    category: Option<&str>,
    comment: Option<&str>,
    source: &str,
) -> Option<(i64, Groups, Option<InForce>)> {
    let (counted, current) = match target {
        Target::Call(id) => match probe_call(id, name) {
            Some(Some(found)) => found,
            Some(None) => spi::pinned(|| Spi::connect(|_| unknown_call(id))),
            None => spi::pinned(|| Spi::connect(|_| call_by_sql(id, name))),
        },
        Target::Trace(trace) => spi::pinned(|| Spi::connect(|_| trace_by_sql(trace, name))),
    };
    let mut args = spi::Args::with_capacity(10);
    args.push(Some(name))
        .push(match target {
            Target::Call(id) => Some(id),
            Target::Trace(_) => None,
        })
        .push(match target {
            Target::Trace(t) => Some(t),
            Target::Call(_) => None,
        })
        .push(number)
        .push(match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
        .push(category)
        .push(comment)
        .push(Some(source))
        .push(current.as_ref().map(|s| s.id))
        .push_datum(Some(jsonb_datum(&counted)));
    // The chain's unique index is the conflict: a concurrent scorer
    // superseded the same score (or scored first).
    let chain = match target {
        Target::Call(_) => c"prompt_scores_execution",
        Target::Trace(_) => c"prompt_scores_trace",
    };
    let direct = match (probe::relation(c"prompt_scores"), probe::relation(chain)) {
        (Some(table), Some(chain)) => direct::insert_unless_conflict(table, chain, &SCORE_COLUMNS, &args),
        _ => Outcome::Unsuitable,
    };
    let id = match direct {
        Outcome::Done(id) => id,
        Outcome::Conflict => None,
        Outcome::Unsuitable | Outcome::Moved => spi::pinned(|| Spi::connect(|_| insert_by_sql(target, &mut args))),
    }?;
    Some((id, counted, current))
}

/// The columns of a score `try_score` gives, in order.
const SCORE_COLUMNS: [(&str, pg_sys::Oid); 10] = [
    ("name", pg_sys::TEXTOID),
    ("execution_id", pg_sys::INT8OID),
    ("trace_id", pg_sys::TEXTOID),
    ("numeric_value", pg_sys::NUMERICOID),
    ("boolean_value", pg_sys::BOOLOID),
    ("category", pg_sys::TEXTOID),
    ("comment", pg_sys::TEXTOID),
    ("source", pg_sys::TEXTOID),
    ("supersedes", pg_sys::INT8OID),
    ("counted_for", pg_sys::JSONBOID),
];

/// The columns of a partition of prompt_executions a score reads: the
/// key of its primary key first.
const CALL_COLUMNS: [(&str, pg_sys::Oid); 7] = [
    ("id", pg_sys::INT8OID),
    ("executed_at", pg_sys::TIMESTAMPTZOID),
    ("template_id", pg_sys::INT8OID),
    ("template_name", pg_sys::TEXTOID),
    ("version", pg_sys::INT4OID),
    ("experiment", pg_sys::TEXTOID),
    ("variant", pg_sys::TEXTOID),
];

/// The columns of prompt_scores the score in force is read from: the
/// chain's leading columns first.
const CHAIN_COLUMNS: [(&str, pg_sys::Oid); 7] = [
    ("execution_id", pg_sys::INT8OID),
    ("name", pg_sys::TEXTOID),
    ("id", pg_sys::INT8OID),
    ("numeric_value", pg_sys::NUMERICOID),
    ("boolean_value", pg_sys::BOOLOID),
    ("category", pg_sys::TEXTOID),
    ("counted_for", pg_sys::JSONBOID),
];

/// What a score of the call counts for and the score in force, read
/// through the indexes (`probe`): `Some(None)` when no such call is
/// logged, `None` when the lookups must be SQL (an isolation level that
/// reads from one snapshot, row security, a table not as created).
fn probe_call(id: i64, name: &str) -> Option<Option<(Groups, Option<InForce>)>> {
    if probe::snapshot_per_transaction() {
        return None;
    }
    let (parent, scores, chain) = (
        probe::relation(c"prompt_executions")?,
        probe::relation(c"prompt_scores")?,
        probe::relation(c"prompt_scores_execution")?,
    );
    let parent = probe::Opened::table(parent);
    // Locked as the insert that follows locks them.
    let scores = probe::Opened::table_locked(scores, pg_sys::RowExclusiveLock);
    let chain = probe::Opened::index_locked(chain, pg_sys::RowExclusiveLock);
    // SAFETY: relations open and locked; keys of the types of the index
    // columns they are checked to be; values read as their columns' types.
    unsafe {
        if !probe::readable(parent.0) || !probe::readable(scores.0) {
            return None;
        }
        let snapshot = probe::Snapshot::take();
        let desc = pg_sys::RelationGetPartitionDesc(parent.0, true);
        if desc.is_null() {
            return None;
        }
        let mut call = None;
        for &oid in std::slice::from_raw_parts((*desc).oids, (*desc).nparts as usize) {
            let part = probe::Opened::table(oid);
            if (*(*part.0).rd_rel).relkind != pg_sys::RELKIND_RELATION as std::ffi::c_char {
                return None;
            }
            let at = probe::columns(part.0, &CALL_COLUMNS)?;
            let pk = probe::Opened::index(probe::primary_key(part.0)?);
            if !probe::leads_with(pk.0, part.0, &at[..1]) {
                return None;
            }
            let key = [probe::Key { column: 1, function: pg_sys::F_INT8EQ, value: pg_sys::Datum::from(id) }];
            call = probe::first(part.0, pk.0, &key, false, snapshot.get(), |row| {
                let hour = stats::utc_hour(row.datum(at[1]).map_or(0, |d| d.value() as i64));
                groups_of((
                    hour,
                    row.get::<i64>(at[2]).unwrap_or_default(),
                    row.get::<String>(at[3]).unwrap_or_default(),
                    row.get::<i32>(at[4]).unwrap_or_default(),
                    row.get::<String>(at[5]),
                    row.get::<String>(at[6]),
                ))
            });
            if call.is_some() {
                break;
            }
        }
        let Some(counted) = call else { return Some(None) };

        let at = probe::columns(scores.0, &CHAIN_COLUMNS)?;
        if !probe::leads_with(chain.0, scores.0, &at[..2]) {
            return None;
        }
        let keys = [
            probe::Key { column: 1, function: pg_sys::F_INT8EQ, value: pg_sys::Datum::from(id) },
            probe::Key { column: 2, function: pg_sys::F_TEXTEQ, value: name.into_datum()? },
        ];
        // The chain read backwards: its last score is the one in force.
        let current = probe::first(scores.0, chain.0, &keys, true, snapshot.get(), |row| {
            in_force(
                row.get::<i64>(at[2]),
                row.get::<AnyNumeric>(at[3]),
                row.get::<bool>(at[4]),
                row.get::<String>(at[5]),
                row.datum(at[6]).map(jsonb_value),
            )
        })
        .flatten();
        Some(Some((counted, current)))
    }
}

/// `probe_call` through SQL: the call and the score in force, in one
/// statement (SPI connected).
fn call_by_sql(id: i64, name: &str) -> (Groups, Option<InForce>) {
    let plan = CALL_AND_CURRENT.with(|p| {
        p.plan(
            "SELECT e.executed_at, e.template_id, e.template_name, e.version, e.experiment, e.variant,
                    s.id, s.numeric_value, s.boolean_value, s.category, s.counted_for
               FROM pgprompt.prompt_executions e
               LEFT JOIN LATERAL (SELECT * FROM pgprompt.prompt_scores s
                                   WHERE s.execution_id = e.id AND s.name = $2
                                   ORDER BY coalesce(s.supersedes, 0) DESC LIMIT 1) s ON true
              WHERE e.id = $1",
            &[pg_sys::INT8OID, pg_sys::TEXTOID],
        )
    });
    let mut args = spi::Args::with_capacity(2);
    args.push(Some(id)).push(Some(name));
    // SAFETY: the plan's argument types. Not read-only (as none of these
    // statements): a call logged earlier in the same statement
    // (prompt_score(prompt_log_execution(...))) must be seen, as a volatile
    // function's statements see it.
    let Some(row) = (unsafe { spi::first_row(plan, &mut args, false) }) else { unknown_call(id) };
    let counted = groups_of((
        stats::utc_hour(row.get(1).map_or(0, |d| d.value() as i64)),
        row.value::<i64>(2).unwrap_or_default(),
        row.value::<String>(3).unwrap_or_default(),
        row.value::<i32>(4).unwrap_or_default(),
        row.value::<String>(5),
        row.value::<String>(6),
    ));
    let current = in_force(row.value(7), row.value(8), row.value(9), row.value(10), row.value::<JsonB>(11).map(|j| Rc::new(j.0)));
    (counted, current)
}

/// What a score of the trace counts for and the score in force (SPI
/// connected).
fn trace_by_sql(trace: &str, name: &str) -> (Groups, Option<InForce>) {
    let plan = TRACE.with(|p| p.plan(TRACE_GROUPS, &[pg_sys::TEXTOID]));
    let mut args = spi::Args::with_capacity(1);
    args.push(Some(trace));
    // SAFETY (both): the plans' argument types; not read-only, as above.
    let groups = unsafe { spi::first_row(plan, &mut args, false) }.and_then(|r| r.value::<JsonB>(1));
    let Some(JsonB(counted)) = groups else {
        raise::raise(
            Error::new(ErrorKind::UnknownObject, format!("no logged call has trace_id '{}'", trace.replace('\'', "''")))
                .with_hint("Log the trace's calls with prompt_log_execution(trace_id => ...) first."),
        )
    };
    let plan = CURRENT_OF_TRACE.with(|p| {
        p.plan(
            "SELECT id, numeric_value, boolean_value, category, counted_for FROM pgprompt.prompt_scores
              WHERE trace_id = $1 AND name = $2 ORDER BY coalesce(supersedes, 0) DESC LIMIT 1",
            &[pg_sys::TEXTOID, pg_sys::TEXTOID],
        )
    });
    let mut args = spi::Args::with_capacity(2);
    args.push(Some(trace)).push(Some(name));
    let current = unsafe { spi::first_row(plan, &mut args, false) }.and_then(|r| in_force(r.value(1), r.value(2), r.value(3), r.value(4), r.value::<JsonB>(5).map(|j| Rc::new(j.0))));
    (Rc::new(counted), current)
}

/// Inserts the score of `args` (`SCORE_COLUMNS`) through SQL: its id, or
/// `None` on a conflict in the chain (SPI connected).
fn insert_by_sql(target: Target, args: &mut spi::Args) -> Option<i64> {
    let (kept, column) = match target {
        Target::Call(_) => (&INSERT_CALL, "execution_id"),
        Target::Trace(_) => (&INSERT_TRACE, "trace_id"),
    };
    let insert = kept.with(|p| {
        let names: Vec<&str> = SCORE_COLUMNS.iter().map(|c| c.0).collect();
        let params: Vec<String> = (1..=SCORE_COLUMNS.len()).map(|i| format!("${i}")).collect();
        let types: Vec<pg_sys::Oid> = SCORE_COLUMNS.iter().map(|c| c.1).collect();
        p.plan(
            &format!(
                "INSERT INTO pgprompt.prompt_scores ({}) VALUES ({})
                 ON CONFLICT ({column}, name, coalesce(supersedes, 0)) WHERE {column} IS NOT NULL DO NOTHING RETURNING id",
                names.join(", "),
                params.join(", ")
            ),
            &types,
        )
    });
    // SAFETY: arguments as the plan declares them.
    unsafe { spi::first_row(insert, args, false) }.and_then(|r| r.value::<i64>(1))
}

/// The score in force, as it counts.
struct InForce {
    id: i64,
    category: Option<String>,
    /// Its value as counted (true as 1, a category as 0).
    value: AnyNumeric,
    counted_for: Groups,
}

/// The score in force from its id, numeric_value, boolean_value, category
/// and counted_for; `None` when id is NULL (no score yet).
fn in_force(
    id: Option<i64>,
    number: Option<AnyNumeric>,
    boolean: Option<bool>,
    category: Option<String>,
    counted_for: Option<Groups>,
) -> Option<InForce> {
    let value = number.or_else(|| boolean.map(|b| AnyNumeric::from(i32::from(b)))).unwrap_or_default();
    Some(InForce { id: id?, category, value, counted_for: counted_for.unwrap_or_else(|| Rc::new(serde_json::Value::Null)) })
}

/// What a score counts for (see `scores::counted_for`), shared: the same
/// groups are written, read and counted.
type Groups = Rc<serde_json::Value>;

/// A call's hour, template id and name, version, experiment and variant.
type CallKey = (i64, i64, String, i32, Option<String>, Option<String>);

thread_local! {
    /// The groups of the last call scored, the jsonb written for the last
    /// groups and the groups of the last jsonb read: a session scores
    /// calls of the same hour and version over and over, and building the
    /// groups and converting them between JSON and jsonb cost more than
    /// the rest of the statistics.
    static CALL_GROUPS: RefCell<Option<(CallKey, Groups)>> = const { RefCell::new(None) };
    static WRITTEN: RefCell<Option<(Groups, Vec<u8>)>> = const { RefCell::new(None) };
    static READ: RefCell<Option<(Vec<u8>, Groups)>> = const { RefCell::new(None) };
}

/// The groups a score of a call with `key` counts for.
fn groups_of(key: CallKey) -> Groups {
    CALL_GROUPS.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((k, g)) = c.as_ref() {
            if *k == key {
                return g.clone();
            }
        }
        let (hour, template_id, template_name, version, experiment, variant) = &key;
        let groups = Rc::new(scores::counted_for(
            &stats::iso_hour(*hour),
            *template_id,
            template_name,
            *version,
            experiment.as_deref().zip(variant.as_deref()),
        ));
        *c = Some((key, groups.clone()));
        groups
    })
}

/// The groups as a jsonb datum.
fn jsonb_datum(groups: &Groups) -> pg_sys::Datum {
    WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        if !w.as_ref().is_some_and(|(g, _)| Rc::ptr_eq(g, groups) || **g == **groups) {
            let d = JsonB((**groups).clone()).into_datum().expect("a jsonb datum");
            // SAFETY: jsonb_in's result, a plain varlena.
            let bytes = unsafe { std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), pgrx::varlena::varsize_any(d.cast_mut_ptr())) };
            *w = Some((groups.clone(), bytes.to_vec()));
        }
        let bytes = &w.as_ref().expect("filled above").1;
        // SAFETY: a copy of a whole varlena, in the current memory context.
        unsafe {
            let p = pg_sys::palloc(bytes.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            pg_sys::Datum::from(p)
        }
    })
}

/// The groups of a jsonb datum (a counted_for column).
fn jsonb_value(d: pg_sys::Datum) -> Groups {
    // SAFETY: `d` is a jsonb datum; detoasted if it was stored out of line
    // or compressed.
    let bytes = unsafe {
        let p = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        std::slice::from_raw_parts(p.cast::<u8>(), pgrx::varlena::varsize_any(p))
    };
    READ.with(|r| {
        let mut r = r.borrow_mut();
        if let Some((b, g)) = r.as_ref() {
            if b == bytes {
                return g.clone();
            }
        }
        // SAFETY: as above.
        let JsonB(v) = unsafe { JsonB::from_datum(d, false) }.expect("not NULL");
        let groups = Rc::new(v);
        *r = Some((bytes.to_vec(), groups.clone()));
        groups
    })
}

/// The columns of prompt_score_stats_pending the deltas fill.
const PENDING: [(&str, pg_sys::Oid); 11] = [
    ("hour", pg_sys::TIMESTAMPTZOID),
    ("template_id", pg_sys::INT8OID),
    ("template_name", pg_sys::TEXTOID),
    ("version", pg_sys::INT4OID),
    ("experiment", pg_sys::TEXTOID),
    ("variant", pg_sys::TEXTOID),
    ("score", pg_sys::TEXTOID),
    ("category", pg_sys::TEXTOID),
    ("scores", pg_sys::INT8OID),
    ("value_sum", pg_sys::NUMERICOID),
    ("value_sum_squares", pg_sys::NUMERICOID),
];

thread_local! {
    /// The groups last read by `keys_of`, and what they were read as.
    static KEYS: RefCell<Option<(Groups, Option<Rc<[CallKey]>>)>> = const { RefCell::new(None) };
}

/// Each group of `counted` as hour, template id and name, version,
/// experiment and variant; `None` when one is not in the form
/// `scores::counted_for` writes.
fn keys_of(counted: &Groups) -> Option<Rc<[CallKey]>> {
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if let Some((g, keys)) = k.as_ref() {
            if Rc::ptr_eq(g, counted) || **g == **counted {
                return keys.clone();
            }
        }
        let text = |g: &serde_json::Value, key: &str| g.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let int = |g: &serde_json::Value, key: &str| g.get(key).and_then(serde_json::Value::as_i64);
        let keys: Option<Rc<[CallKey]>> = counted
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                Some((
                    text(g, "hour").as_deref().and_then(stats::parse_iso_hour)?,
                    int(g, "template_id")?,
                    text(g, "template_name").unwrap_or_default(),
                    i32::try_from(int(g, "version")?).ok()?,
                    text(g, "experiment"),
                    text(g, "variant"),
                ))
            })
            .collect();
        *k = Some((counted.clone(), keys.clone()));
        keys
    })
}

/// Appends one delta per group a score counts for (`n` = 1 adds it, -1
/// takes it back): as heap tuples while the table is plain, else by SQL.
fn append_deltas(name: &str, deltas: Vec<(Groups, Option<String>, i64, AnyNumeric)>) {
    // One row per group and category: a correction's deltas for the same
    // group (a call's always are) go in as one row, or none when the value
    // did not change.
    type Group = (CallKey, Option<String>);
    let mut sums: Vec<(Group, i64, AnyNumeric, AnyNumeric)> = Vec::new();
    for (counted, category, n, value) in &deltas {
        let Some(keys) = keys_of(counted) else {
            return append_deltas_by_sql(name, deltas);
        };
        for key in keys.iter() {
            let n_value = match n {
                1 => value.clone(),
                -1 => -value.clone(),
                _ => AnyNumeric::from(*n) * value.clone(),
            };
            let squares = n_value.clone() * value.clone();
            let group = (key.clone(), category.clone());
            match sums.iter_mut().find(|(k, ..)| *k == group) {
                Some((_, count, sum, sum_squares)) => {
                    *count += n;
                    *sum = sum.clone() + n_value;
                    *sum_squares = sum_squares.clone() + squares;
                }
                None => sums.push((group, *n, n_value, squares)),
            }
        }
    }
    let zero = AnyNumeric::from(0);
    sums.retain(|(_, count, sum, sum_squares)| *count != 0 || *sum != zero || *sum_squares != zero);
    if sums.is_empty() {
        return;
    }
    let rows: Vec<_> = sums
        .into_iter()
        .map(|(((hour, template_id, template_name, version, experiment, variant), category), count, sum, sum_squares)| {
            [
                ("hour", Some(pg_sys::Datum::from(hour))),
                ("template_id", template_id.into_datum()),
                ("template_name", template_name.into_datum()),
                ("version", version.into_datum()),
                ("experiment", experiment.into_datum()),
                ("variant", variant.into_datum()),
                ("score", name.into_datum()),
                ("category", category.into_datum()),
                ("scores", count.into_datum()),
                ("value_sum", sum.into_datum()),
                ("value_sum_squares", sum_squares.into_datum()),
            ]
        })
        .collect();
    let Some(mut table) = Plain::open(c"prompt_score_stats_pending", &PENDING, &[]) else {
        return append_deltas_by_sql(name, deltas);
    };
    for row in &rows {
        // SAFETY: each datum of its column's type (PENDING).
        unsafe { table.append(row) };
    }
}

/// `append_deltas` through the executor (the table got an index, a
/// trigger or a policy, or a group is not in the form written here).
fn append_deltas_by_sql(name: &str, deltas: Vec<(Groups, Option<String>, i64, AnyNumeric)>) {
    spi::pinned(|| Spi::connect(|_| {
        let plan = DELTAS.with(|p| {
            p.plan(
                "INSERT INTO pgprompt.prompt_score_stats_pending
                 SELECT (g ->> 'hour')::timestamptz, (g ->> 'template_id')::int8, g ->> 'template_name', (g ->> 'version')::int4,
                        g ->> 'experiment', g ->> 'variant', $2, $3, $4, $4 * $5, $4 * $5 * $5
                   FROM jsonb_array_elements($1) g",
                &[pg_sys::JSONBOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::NUMERICOID],
            )
        });
        for (counted, category, n, value) in deltas {
            let mut args = spi::Args::with_capacity(5);
            args.push(Some(JsonB((*counted).clone()))).push(Some(name)).push(category).push(Some(n)).push(Some(value));
            // SAFETY: arguments as the plan declares them.
            let rc = unsafe { spi::run(plan, &mut args, false, false, 0) };
            assert_eq!(rc, pg_sys::SPI_OK_INSERT as i32, "recording score statistics failed");
        }
    }));
}

/// Why a call cannot be scored: its month was purged, or it never was.
fn unknown_call(id: i64) -> ! {
    let plan = PURGED.with(|p| {
        p.plan(
            "SELECT to_char(range_start AT TIME ZONE 'UTC', 'YYYY-MM'), partition, purged_at::text
               FROM pgprompt.prompt_executions_purged WHERE $1 BETWEEN min_id AND max_id ORDER BY purged_at DESC LIMIT 1",
            &[pg_sys::INT8OID],
        )
    });
    let mut args = spi::Args::with_capacity(1);
    args.push(Some(id));
    // SAFETY: the plan's one int8 argument.
    if let Some(r) = unsafe { spi::first_row(plan, &mut args, false) } {
        raise::raise(
            Error::new(
                ErrorKind::UnknownObject,
                format!("execution {id} is no longer logged: its month ({}) was purged", r.value::<String>(1).unwrap_or_default()),
            )
            .with_detail(format!(
                "prompt_purge_executions dropped {} on {}.",
                r.value::<String>(2).unwrap_or_default(),
                r.value::<String>(3).unwrap_or_default()
            )),
        )
    }
    raise::raise(
        Error::new(ErrorKind::UnknownObject, format!("no logged call has id {id}")).with_hint("Score the id prompt_log_execution returned."),
    )
}

/// Whether a numeric is neither NaN nor infinite.
fn finite(n: &AnyNumeric) -> bool {
    let d = n.clone().into_datum().expect("a numeric datum");
    // SAFETY: a numeric datum, in the current memory context.
    unsafe { !pg_sys::numeric_is_nan(d.cast_mut_ptr()) && !pg_sys::numeric_is_inf(d.cast_mut_ptr()) }
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score")]
fn prompt_score_numeric(
    execution: Option<i64>,
    name: Option<&str>,
    value: Option<AnyNumeric>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let execution = required(execution, "execution");
    score(Target::Call(execution), name, value.map(Arg::Numeric), comment, source)
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score")]
fn prompt_score_boolean(
    execution: Option<i64>,
    name: Option<&str>,
    value: Option<bool>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let execution = required(execution, "execution");
    score(Target::Call(execution), name, value.map(|v| Arg::Given(Given::Bool(v))), comment, source)
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score")]
fn prompt_score_text(
    execution: Option<i64>,
    name: Option<&str>,
    value: Option<&str>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let execution = required(execution, "execution");
    score(Target::Call(execution), name, value.map(|v| Arg::Given(Given::Text(v))), comment, source)
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score_trace")]
fn prompt_score_trace_numeric(
    trace_id: Option<&str>,
    name: Option<&str>,
    value: Option<AnyNumeric>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let trace = required(trace_id, "trace_id");
    score(Target::Trace(trace), name, value.map(Arg::Numeric), comment, source)
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score_trace")]
fn prompt_score_trace_boolean(
    trace_id: Option<&str>,
    name: Option<&str>,
    value: Option<bool>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let trace = required(trace_id, "trace_id");
    score(Target::Trace(trace), name, value.map(|v| Arg::Given(Given::Bool(v))), comment, source)
}

#[pg_extern(volatile, parallel_unsafe, name = "prompt_score_trace")]
fn prompt_score_trace_text(
    trace_id: Option<&str>,
    name: Option<&str>,
    value: Option<&str>,
    comment: default!(Option<&str>, "NULL"),
    source: default!(Option<&str>, "'api'"),
) -> i64 {
    let trace = required(trace_id, "trace_id");
    score(Target::Trace(trace), name, value.map(|v| Arg::Given(Given::Text(v))), comment, source)
}
