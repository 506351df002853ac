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

use super::direct::Plain;
use super::invalidation::{self, Channel};
use super::raise::{self, required, OrRaise};
use super::spi::{self, Kept};
use crate::error::{Error, ErrorKind};
use crate::scores::{self, Given, Kind, Value};
use crate::stats;

/// A score name's declaration, as cached.
struct Definition {
    kind: Kind,
    /// The bounds of a numeric score, as numeric text.
    min: Option<String>,
    max: Option<String>,
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
        let relid: Option<i64> = Spi::get_one("SELECT 'pgprompt.prompt_score_definitions'::regclass::oid::int8").ok().flatten();
        invalidation::watch(Channel::ScoreDefinitions, relid.unwrap_or_default() as u32);
        Definitions::default()
    });
    if let Some(d) = cache.borrow().get(name) {
        return Some(d.clone());
    }
    let found = Spi::connect(|_| {
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
            min: r.value::<String>(2),
            max: r.value::<String>(3),
        })
    })?;
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

fn score(target: Target, name: Option<&str>, given: Option<Given>, comment: Option<&str>, source: Option<&str>) -> i64 {
    let name = required(name, "name");
    let given = given.unwrap_or_else(|| raise::raise(Error::null_argument("value")));
    let source = required(source, "source");
    if source.trim().is_empty() || source.chars().count() > 100 {
        raise::raise(Error::invalid("source must be a non-empty text of at most 100 characters"));
    }
    let Some(def) = definition(name) else {
        let defined: Option<String> = Spi::get_one("SELECT string_agg(name, ', ' ORDER BY name) FROM pgprompt.prompt_score_definitions").ok().flatten();
        raise::raise(
            Error::new(ErrorKind::UnknownObject, format!("score \"{name}\" is not defined"))
                .with_detail(defined.map_or("No score is defined yet.".into(), |d| format!("Defined: {d}.")))
                .with_hint("An administrator defines scores with prompt_score_define(name, kind, ...)."),
        )
    };
    let value = scores::check(name, &def.kind, given).or_raise();
    let numeric = |t: &str| AnyNumeric::try_from(t).ok();
    let number = match &value {
        Value::Number(n) => {
            let n = numeric(n).unwrap_or_else(|| raise::raise(Error::invalid(format!("score \"{name}\" is numeric: '{n}' is not a number"))));
            let (min, max) = (def.min.as_deref().and_then(numeric), def.max.as_deref().and_then(numeric));
            if min.as_ref().is_some_and(|m| n < *m) || max.as_ref().is_some_and(|m| n > *m) {
                raise::raise(Error::invalid(format!(
                    "score \"{name}\" must be between {} and {}, not {n}",
                    def.min.as_deref().unwrap_or("-∞"),
                    def.max.as_deref().unwrap_or("∞")
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
) -> Option<(i64, serde_json::Value, Option<InForce>)> {
    Spi::connect(|_| {
        // SAFETY (each unsafe block): kept plans run with the argument types
        // they were prepared with, inside this connection. None runs
        // read-only: a call logged earlier in the same statement
        // (prompt_score(prompt_log_execution(...))) must be seen, as a
        // volatile function's statements see it.
        let mut args = spi::Args::with_capacity(2);
        let (counted, current) = match target {
            Target::Call(id) => {
                // The call and the score in force, in one statement.
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
                args.push(Some(id)).push(Some(name));
                let Some(row) = (unsafe { spi::first_row(plan, &mut args, false) }) else { unknown_call(id) };
                let at = stats::utc_hour(row.get(1).map_or(0, |d| d.value() as i64));
                let (experiment, variant) = (row.value::<String>(5), row.value::<String>(6));
                let counted = scores::counted_for(
                    &stats::iso_hour(at),
                    row.value::<i64>(2).unwrap_or_default(),
                    &row.value::<String>(3).unwrap_or_default(),
                    row.value::<i32>(4).unwrap_or_default(),
                    experiment.as_deref().zip(variant.as_deref()),
                );
                (counted, in_force(&row, 7))
            }
            Target::Trace(trace) => {
                let plan = TRACE.with(|p| p.plan(TRACE_GROUPS, &[pg_sys::TEXTOID]));
                args.push(Some(trace));
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
                (counted, unsafe { spi::first_row(plan, &mut args, false) }.and_then(|r| in_force(&r, 1)))
            }
        };

        // The chain's unique index is the conflict: a concurrent scorer
        // superseded the same score (or scored first).
        const COLUMNS: &str = "INSERT INTO pgprompt.prompt_scores (name, execution_id, trace_id, numeric_value, boolean_value, category,
                                                                    comment, source, supersedes, counted_for)
                               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        const TYPES: [pg_sys::Oid; 10] = [
            pg_sys::TEXTOID,
            pg_sys::INT8OID,
            pg_sys::TEXTOID,
            pg_sys::NUMERICOID,
            pg_sys::BOOLOID,
            pg_sys::TEXTOID,
            pg_sys::TEXTOID,
            pg_sys::TEXTOID,
            pg_sys::INT8OID,
            pg_sys::JSONBOID,
        ];
        let (kept, column) = match target {
            Target::Call(_) => (&INSERT_CALL, "execution_id"),
            Target::Trace(_) => (&INSERT_TRACE, "trace_id"),
        };
        let insert = kept.with(|p| {
            p.plan(
                &format!("{COLUMNS} ON CONFLICT ({column}, name, coalesce(supersedes, 0)) WHERE {column} IS NOT NULL DO NOTHING RETURNING id"),
                &TYPES,
            )
        });
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
            .push(Some(JsonB(counted.clone())));
        let id = unsafe { spi::first_row(insert, &mut args, false) }.and_then(|r| r.value::<i64>(1))?;
        Some((id, counted, current))
    })
}

/// The score in force, as it counts.
struct InForce {
    id: i64,
    category: Option<String>,
    /// Its value as counted (true as 1, a category as 0).
    value: AnyNumeric,
    counted_for: serde_json::Value,
}

/// The score in force from columns id, numeric_value, boolean_value,
/// category and counted_for starting at `first`; `None` when id is NULL.
fn in_force(row: &spi::Row, first: i32) -> Option<InForce> {
    let id = row.value::<i64>(first)?;
    let value = row
        .value::<AnyNumeric>(first + 1)
        .or_else(|| row.value::<bool>(first + 2).map(|b| AnyNumeric::from(i32::from(b))))
        .unwrap_or_default();
    Some(InForce {
        id,
        category: row.value::<String>(first + 3),
        value,
        counted_for: row.value::<JsonB>(first + 4).map_or(serde_json::Value::Null, |j| j.0),
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

/// Appends one delta per group a score counts for (`n` = 1 adds it, -1
/// takes it back): as heap tuples while the table is plain, else by SQL.
fn append_deltas(name: &str, deltas: Vec<(serde_json::Value, Option<String>, i64, AnyNumeric)>) {
    let text = |g: &serde_json::Value, key: &str| g.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let int = |g: &serde_json::Value, key: &str| g.get(key).and_then(serde_json::Value::as_i64);
    let mut rows = Vec::new();
    for (counted, category, n, value) in &deltas {
        for g in counted.as_array().into_iter().flatten() {
            let hour = text(g, "hour").as_deref().and_then(stats::parse_iso_hour);
            let (Some(hour), Some(template_id), Some(version)) = (hour, int(g, "template_id"), int(g, "version")) else {
                return append_deltas_by_sql(name, deltas);
            };
            let n_value = AnyNumeric::from(*n) * value.clone();
            let squares = n_value.clone() * value.clone();
            rows.push([
                ("hour", Some(pg_sys::Datum::from(hour))),
                ("template_id", template_id.into_datum()),
                ("template_name", text(g, "template_name").unwrap_or_default().into_datum()),
                ("version", (version as i32).into_datum()),
                ("experiment", text(g, "experiment").into_datum()),
                ("variant", text(g, "variant").into_datum()),
                ("score", name.into_datum()),
                ("category", category.clone().into_datum()),
                ("scores", n.into_datum()),
                ("value_sum", n_value.into_datum()),
                ("value_sum_squares", squares.into_datum()),
            ]);
        }
    }
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
fn append_deltas_by_sql(name: &str, deltas: Vec<(serde_json::Value, Option<String>, i64, AnyNumeric)>) {
    Spi::connect(|_| {
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
            args.push(Some(JsonB(counted))).push(Some(name)).push(category).push(Some(n)).push(Some(value));
            // SAFETY: arguments as the plan declares them.
            let rc = unsafe { spi::run(plan, &mut args, false, false, 0) };
            assert_eq!(rc, pg_sys::SPI_OK_INSERT as i32, "recording score statistics failed");
        }
    });
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

fn number(n: Option<AnyNumeric>) -> Option<String> {
    n.map(|n| n.to_string())
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
    let value = number(value);
    score(Target::Call(execution), name, value.as_deref().map(Given::Number), comment, source)
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
    score(Target::Call(execution), name, value.map(Given::Bool), comment, source)
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
    score(Target::Call(execution), name, value.map(Given::Text), comment, source)
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
    let value = number(value);
    score(Target::Trace(trace), name, value.as_deref().map(Given::Number), comment, source)
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
    score(Target::Trace(trace), name, value.map(Given::Bool), comment, source)
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
    score(Target::Trace(trace), name, value.map(Given::Text), comment, source)
}
