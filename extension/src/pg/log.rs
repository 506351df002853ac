//! prompt_log_execution: one LLM call into prompt_executions.
//!
//! Written in Rust because it is on every call's path: the template, the
//! price book and the month partitions are cached per session (each dropped
//! by its invalidation channel), the texts are scanned once, and the row
//! goes straight into its month partition (`direct`), or through a kept
//! INSERT when that cannot be done. The statistics triggers do the rest.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::LazyLock;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value as Json;

use super::cache::Selector;
use super::guard::{self, Stored};
use super::invalidation::{self, Channel};
use super::raise::{self, required, OrRaise};
use super::vars::JsonbArg;
use super::{cost, direct, experiments, gucs, spi, templates, worker};
use crate::cost::Usage;
use crate::error::{Error, ErrorKind};
use crate::guard::Direction;
use crate::stats;

/// What a (template, version) pair names.
struct Target {
    template_id: i64,
    version: i32,
    /// The version's model: model_config's `model`, else `model_name`.
    model: Option<String>,
}

type Targets = RefCell<HashMap<(String, Option<i32>), Rc<Target>>>;

/// Entries kept per session before the target cache starts over.
const MAX_TARGETS: usize = 10_000;

thread_local! {
    static TARGETS: invalidation::Slot<Targets> = const { RefCell::new(None) };
    static PARTITIONS: invalidation::Slot<Partitions> = const { RefCell::new(None) };
    static RESOLVE: spi::Kept = const { spi::Kept::new() };
    static INSERT: spi::Kept = const { spi::Kept::new() };
    static INSERT_UNTRACED: spi::Kept = const { spi::Kept::new() };
    static PARENT: spi::Kept = const { spi::Kept::new() };
    /// Models already warned about in this session: one WARNING each, not
    /// one per logged call.
    static WARNED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn target(name: &str, version: Option<i32>) -> Rc<Target> {
    let targets = invalidation::cached(&TARGETS, Channel::Templates, Targets::default);
    let key = (name.to_string(), version);
    if let Some(t) = targets.borrow().get(&key) {
        return t.clone();
    }
    let found = Spi::connect(|_| {
        let plan = RESOLVE.with(|p| {
            p.plan(
                // `model`, or the seeds' `model_name` (the examples' key).
                "SELECT t.id, v.version, coalesce(v.model_config ->> 'model', v.model_config ->> 'model_name'), t.tableoid::int8 \
                 FROM pgprompt.prompt_templates t \
                 JOIN pgprompt.prompt_versions v ON v.template_id = t.id AND v.version = coalesce($2, t.active_version) \
                 WHERE t.name = $1",
                &[pg_sys::TEXTOID, pg_sys::INT4OID],
            )
        });
        let mut args = spi::Args::with_capacity(2);
        args.push(Some(name)).push(version);
        // SAFETY: arguments as declared; under a snapshot taken now, so the
        // cache is never older than the invalidations accepted (see `invalidation`).
        unsafe {
            let rc = spi::run(plan, &mut args, true, true, 1);
            assert_eq!(rc, pg_sys::SPI_OK_SELECT as i32, "resolving the template failed");
            if pg_sys::SPI_processed == 0 {
                return None;
            }
            let table = &*pg_sys::SPI_tuptable;
            let tuple = *table.vals;
            let column = |n: i32| {
                let mut null = false;
                let d = pg_sys::SPI_getbinval(tuple, table.tupdesc, n, &mut null);
                (!null).then_some(d)
            };
            invalidation::watch(Channel::Templates, column(4).map_or(0, |d| d.value() as u32));
            Some(Target {
                template_id: column(1).map_or(0, |d| d.value() as i64),
                version: column(2).map_or(0, |d| d.value() as i32),
                model: column(3).and_then(|d| String::from_datum(d, false)),
            })
        }
    });
    let found = Rc::new(found.unwrap_or_else(|| {
        let sel = version.map_or(Selector::Active, Selector::Version);
        raise::raise(templates::not_found(name, &sel))
    }));
    let mut targets = targets.borrow_mut();
    if targets.len() >= MAX_TARGETS {
        targets.clear();
    }
    targets.insert(key, found.clone());
    found
}

/// prompt_executions and its month partitions, as far as this session knows.
struct Partitions {
    parent: pg_sys::Oid,
    /// Months (`stats::utc_month`) known to have a partition, with the
    /// partition once a row showed which it is.
    months: RefCell<HashMap<i64, Option<pg_sys::Oid>>>,
}

/// Makes sure prompt_executions has a partition for the month of `at`, and
/// keeps it so until the transaction ends: the parent is locked first (as
/// the insert will lock it), so a purge, whose DROP of a partition locks
/// the parent, cannot come between this check and the insert, and what the
/// lock's invalidations tell (a month dropped meanwhile) is seen below.
fn ensure_partition(at: i64) -> Rc<Partitions> {
    let mut known = partitions();
    loop {
        // SAFETY: locking a relation by OID inside a transaction.
        unsafe { pg_sys::LockRelationOid(known.parent, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE) };
        let now = partitions();
        if Rc::ptr_eq(&now, &known) {
            break;
        }
        known = now;
    }
    let month = stats::utc_month(at);
    if known.months.borrow().contains_key(&month) {
        return known;
    }
    let Some(Holder { held, whole, next_held }) = holder(at) else {
        // The schema is 0.1.0's (the library was updated, the extension not
        // yet): make the month as 0.1.0 did.
        Spi::run_with_args(
            "SELECT pgprompt._executions_partition($1)",
            &[TimestampWithTimeZone::try_from(at).expect("a valid timestamp").into()],
        )
        .expect("creating a partition");
        known.months.borrow_mut().insert(month, None);
        return known;
    };
    if !next_held {
        // Once per month: the first call that sees next month missing asks
        // for it, so that the first calls of next month need not wait.
        let _ = worker::make_partition(stats::next_month_start(at), true);
    }
    if !held {
        // Made by the worker, in a transaction of its own (see `worker`).
        match worker::make_partition(at, false) {
            worker::Made::Done => {}
            worker::Made::Refused(code, message, hint) => raise::raise_with(&code, message, hint),
            worker::Made::NoWorker => {
                Spi::run_with_args(
                    "SELECT pgprompt._executions_partition($1)",
                    &[TimestampWithTimeZone::try_from(at).expect("a valid timestamp").into()],
                )
                .expect("creating a partition");
            }
        }
    }
    // A month is remembered only when one partition holds all of it: a
    // partition of the user's own may hold part of a month only.
    if held && whole || !held && holder(at).is_some_and(|h| h.whole) {
        known.months.borrow_mut().insert(month, None);
    }
    known
}

/// What holds a call's month.
struct Holder {
    /// A partition holds the call's time.
    held: bool,
    /// One partition holds all of its month (UTC).
    whole: bool,
    /// A partition holds the start of the next month.
    next_held: bool,
}

/// What holds `at`, or `None` under 0.1.0's schema (no
/// `_executions_partition_of` yet).
fn holder(at: i64) -> Option<Holder> {
    let at = TimestampWithTimeZone::try_from(at).expect("a valid timestamp");
    Spi::connect(|client| {
        let exists = client
            .select("SELECT to_regprocedure('pgprompt._executions_partition_of(timestamptz)') IS NOT NULL", Some(1), &[])
            .ok()?
            .first()
            .get_one::<bool>()
            .ok()
            .flatten()?;
        if !exists {
            return None;
        }
        let rows = client
            .select(
                "WITH m AS (SELECT date_trunc('month', $1 AT TIME ZONE 'UTC') AS start)
                 SELECT pgprompt._executions_partition_of($1) IS NOT NULL,
                        pgprompt._executions_partition_of(m.start AT TIME ZONE 'UTC')
                            = pgprompt._executions_partition_of((m.start + interval '1 month') AT TIME ZONE 'UTC' - interval '1 microsecond'),
                        pgprompt._executions_partition_of((m.start + interval '1 month') AT TIME ZONE 'UTC') IS NOT NULL
                   FROM m",
                Some(1),
                &[at.into()],
            )
            .ok()?;
        let row = rows.first();
        let flag = |n: usize| row.get::<bool>(n).ok().flatten().unwrap_or(false);
        Some(Holder { held: flag(1), whole: flag(2), next_held: flag(3) })
    })
}

/// prompt_executions and the months known to have a partition.
fn partitions() -> Rc<Partitions> {
    invalidation::cached(&PARTITIONS, Channel::Executions, || {
        let parent = Spi::connect(|client| {
            client
                .select("SELECT 'pgprompt.prompt_executions'::regclass::oid::int8", Some(1), &[])
                .ok()
                .and_then(|t| t.first().get_one::<i64>().ok().flatten())
        })
        .unwrap_or_default();
        invalidation::watch(Channel::Executions, parent as u32);
        Partitions { parent: pg_sys::Oid::from(parent as u32), months: RefCell::default() }
    })
}

/// Refuses a call dated outside the logging window unless the caller (the
/// role calling prompt_log_execution, not its owner) administers pgprompt:
/// every month logged into takes a partition, which an application must
/// not be able to create without limit.
fn check_window(executed_at: i64) {
    // SAFETY: reads of the transaction's start time.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let past = i64::from(gucs::LOG_WINDOW_PAST.get()) * 1_000_000;
    let future = i64::from(gucs::LOG_WINDOW_FUTURE.get()) * 1_000_000;
    if executed_at >= now.saturating_sub(past) && executed_at <= now.saturating_add(future) {
        return;
    }
    // SAFETY: catalog lookups inside a transaction.
    let admin = unsafe {
        let caller = pg_sys::GetOuterUserId();
        let admins = pg_sys::get_role_oid(c"pgprompt_admin".as_ptr(), true);
        pg_sys::superuser_arg(caller) || (admins != pg_sys::Oid::INVALID && pg_sys::has_privs_of_role(caller, admins))
    };
    if !admin {
        raise::raise(
            Error::new(
                ErrorKind::DatetimeOutOfRange,
                format!(
                    "executed_at must lie within the last {} and the next {} (pgprompt.log_window_past, pgprompt.log_window_future)",
                    duration(past), duration(future)
                ),
            )
            .with_hint("Members of pgprompt_admin may log calls of any time, back-filling history."),
        );
    }
}

/// A window in whole days, hours or seconds, for messages.
fn duration(us: i64) -> String {
    let s = us / 1_000_000;
    match s {
        _ if s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        _ => format!("{s} seconds"),
    }
}

/// Scans a text for storage, warning when it is too large to be stored.
fn stored<'a>(text: Option<&'a str>, way: Direction, what: &str, raw: bool) -> Option<Stored<'a>> {
    let s = guard::for_storage(text?, way, raw);
    if s.text.is_none() {
        raise::warn(
            format!("{what} was not stored: {} bytes is more than pgprompt.max_scan_bytes allows to scan for PII", text?.len()),
            "Raise pgprompt.max_scan_bytes, or turn on pgprompt.store_raw_text to store texts unscanned.",
        );
    }
    Some(s)
}

/// Where a call sits in the application's work: its trace (one request or
/// turn), the call that caused it, and the user's session.
#[derive(Default)]
struct Trace<'a> {
    trace_id: Option<&'a str>,
    parent_id: Option<i64>,
    session_id: Option<&'a str>,
}

/// prompt_log_execution of 0.1.0's schema (sixteen arguments, no trace
/// columns): what its SQL declaration calls until ALTER EXTENSION UPDATE.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn prompt_log_execution(
    template: Option<&str>,
    version: Option<i32>,
    model: Option<&str>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    latency_ms: Option<i32>,
    success: Option<bool>,
    user_id: Option<&str>,
    rendered_prompt: Option<&str>,
    response: Option<&str>,
    error_message: Option<&str>,
    cached_input_tokens: Option<i64>,
    experiment: Option<&str>,
    variant: Option<&str>,
    metadata: Option<JsonbArg>,
    executed_at: Option<TimestampWithTimeZone>,
) -> Option<i64> {
    log_call(
        template, version, model, input_tokens, output_tokens, latency_ms, success, user_id, rendered_prompt, response,
        error_message, cached_input_tokens, experiment, variant, metadata, executed_at, None,
    )
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, name = "prompt_log_execution")]
fn prompt_log_execution_traced(
    template: Option<&str>,
    version: default!(Option<i32>, "NULL"),
    model: default!(Option<&str>, "NULL"),
    input_tokens: default!(Option<i64>, 0),
    output_tokens: default!(Option<i64>, 0),
    latency_ms: default!(Option<f64>, "NULL"),
    success: default!(Option<bool>, true),
    user_id: default!(Option<&str>, "NULL"),
    rendered_prompt: default!(Option<&str>, "NULL"),
    response: default!(Option<&str>, "NULL"),
    error_message: default!(Option<&str>, "NULL"),
    cached_input_tokens: default!(Option<i64>, 0),
    experiment: default!(Option<&str>, "NULL"),
    variant: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbArg>, "'{}'"),
    executed_at: default!(Option<TimestampWithTimeZone>, "now()"),
    trace_id: default!(Option<&str>, "NULL"),
    parent_id: default!(Option<i64>, "NULL"),
    session_id: default!(Option<&str>, "NULL"),
) -> Option<i64> {
    log_call(
        template, version, model, input_tokens, output_tokens, latency_ms.map(whole_milliseconds), success, user_id, rendered_prompt,
        response, error_message, cached_input_tokens, experiment, variant, metadata, executed_at,
        Some(Trace { trace_id, parent_id, session_id }),
    )
}

/// A latency as the column keeps it: whole milliseconds, rounded half away
/// from zero. Taken as double precision because that is what drivers send
/// for a measured duration (Python's `time.perf_counter() * 1000`, a
/// JavaScript `performance.now()` difference); an integer converts to it
/// implicitly.
fn whole_milliseconds(ms: f64) -> i32 {
    if ms < 0.0 {
        raise::raise(Error::invalid(format!("latency_ms must not be negative (got {ms})")));
    }
    if !ms.is_finite() || ms.round() > f64::from(i32::MAX) {
        raise::raise(Error::invalid(format!("latency_ms must be a finite number of milliseconds up to {} (got {ms})", i32::MAX)));
    }
    ms.round() as i32
}

/// Longest trace or session id accepted (they are the application's keys,
/// such as UUIDs or W3C trace ids, not texts).
const MAX_ID_CHARS: usize = 200;

/// Checks a trace or session id.
fn check_id(id: Option<&str>, what: &str) {
    if let Some(id) = id {
        if id.trim().is_empty() {
            raise::raise(Error::invalid(format!("{what} must not be empty")));
        }
        if id.chars().count() > MAX_ID_CHARS {
            raise::raise(Error::invalid(format!("{what} must be at most {MAX_ID_CHARS} characters")));
        }
    }
}

/// Completes a call's trace from its parent: the parent must be a logged
/// call, and the call belongs to the parent's trace and session (taken from
/// it when left out, refused when contradicted).
fn complete_trace<'a>(trace: &mut Trace<'a>, inherited: &'a mut (Option<String>, Option<String>)) {
    check_id(trace.trace_id, "trace_id");
    check_id(trace.session_id, "session_id");
    let Some(parent) = trace.parent_id else { return };
    let found = Spi::connect(|_| {
        let plan = PARENT.with(|p| {
            p.plan("SELECT trace_id, session_id FROM pgprompt.prompt_executions WHERE id = $1", &[pg_sys::INT8OID])
        });
        let mut args = spi::Args::with_capacity(1);
        args.push(Some(parent));
        // SAFETY: arguments as declared.
        unsafe {
            let rc = spi::run(plan, &mut args, true, true, 1);
            assert_eq!(rc, pg_sys::SPI_OK_SELECT as i32, "looking up the parent call failed");
            if pg_sys::SPI_processed == 0 {
                return None;
            }
            let table = &*pg_sys::SPI_tuptable;
            let text = |n: i32| {
                let mut null = false;
                let d = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, n, &mut null);
                String::from_datum(d, null)
            };
            Some((text(1), text(2)))
        }
    });
    let Some(found) = found else {
        raise::raise(
            Error::invalid(format!("parent_id {parent} is not a logged call"))
                .with_hint("parent_id is the id prompt_log_execution returned for the call that caused this one."),
        )
    };
    *inherited = found;
    let inherited: &'a (Option<String>, Option<String>) = inherited;
    for (given, of_parent, what) in
        [(&mut trace.trace_id, &inherited.0, "trace_id"), (&mut trace.session_id, &inherited.1, "session_id")]
    {
        match (given.as_deref(), of_parent.as_deref()) {
            (None, p) => *given = p,
            (Some(g), Some(p)) if g != p => raise::raise(Error::invalid(format!(
                "{what} \"{g}\" contradicts the parent call's ({parent}): \"{p}\""
            ))),
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn log_call(
    template: Option<&str>,
    version: Option<i32>,
    model: Option<&str>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    latency_ms: Option<i32>,
    success: Option<bool>,
    user_id: Option<&str>,
    rendered_prompt: Option<&str>,
    response: Option<&str>,
    error_message: Option<&str>,
    cached_input_tokens: Option<i64>,
    experiment: Option<&str>,
    variant: Option<&str>,
    metadata: Option<JsonbArg>,
    executed_at: Option<TimestampWithTimeZone>,
    trace: Option<Trace>,
) -> Option<i64> {
    if !gucs::LOG_EXECUTIONS.get() {
        return None;
    }
    // SAFETY: a plain status query.
    if unsafe { pg_sys::RecoveryInProgress() } {
        ErrorReport::new(PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION, "cannot log executions on a read-only standby", "pgprompt")
            .set_hint("Log on the primary; render, assign and scan work here.")
            .report(PgLogLevel::ERROR);
    }
    let name = required(template, "template");
    let usage = Usage::new(
        required(input_tokens, "input_tokens"),
        required(output_tokens, "output_tokens"),
        required(cached_input_tokens, "cached_input_tokens"),
    )
    .or_raise();
    if let Some(ms) = latency_ms.filter(|ms| *ms < 0) {
        raise::raise(Error::invalid(format!("latency_ms must not be negative (got {ms})")));
    }
    let success = required(success, "success");
    let executed_at: i64 = required(executed_at, "executed_at").into();
    // Calls happen in real time: infinity or a date out of any month
    // partition's reach is a caller's bug, not a call.
    const YEAR_1970: i64 = -946_684_800_000_000;
    const YEAR_9000: i64 = 221_051_952_000_000_000;
    if !(YEAR_1970..YEAR_9000).contains(&executed_at) {
        raise::raise(Error::new(ErrorKind::DatetimeOutOfRange, "executed_at must be a time between 1970 and 9000"));
    }
    check_window(executed_at);
    if variant.is_some() && experiment.is_none() {
        raise::raise(Error::invalid("a variant needs its experiment: pass experiment too"));
    }
    if experiment.is_some() && variant.is_none() && user_id.is_none() {
        raise::raise(
            Error::invalid("a call in an experiment needs its variant or its user")
                .with_hint("Pass user_id (the variant is the user's) or variant, as prompt_render_for returned them."),
        );
    }
    let metadata = metadata.unwrap_or_else(|| raise::raise(Error::null_argument("metadata")));
    match metadata.type_name().or_raise() {
        "an object" => {}
        other => raise::raise(Error::invalid(format!("metadata must be a JSON object, not {other}"))),
    }
    let mut inherited = (None, None);
    let mut trace = trace;
    if let Some(t) = trace.as_mut() {
        complete_trace(t, &mut inherited);
    }

    // A call in an experiment: the variant names the version, and both must
    // belong to the template, or the results would count it wrongly.
    let mut version = version;
    let mut tested = None;
    let mut variant = variant.map(str::to_owned);
    if let Some(e) = experiment {
        let exp = experiments::experiments().named(e);
        // A user's calls count for the variant their bucket owns: derived
        // when not given, and a contradiction is refused rather than
        // counted for the wrong variant.
        if let Some(user) = user_id {
            let (owned, _) = exp.assign(user);
            match &variant {
                None => variant = Some(owned.clone()),
                Some(v) if v != owned => raise::raise(
                    Error::invalid(format!("user \"{user}\" is in variant \"{owned}\" of experiment \"{e}\", not \"{v}\""))
                        .with_hint("Log the variant prompt_render_for or prompt_assign gave this user, or leave it out."),
                ),
                Some(_) => {}
            }
        }
        let v = variant.as_deref().expect("given or derived above");
        let Some(of_variant) = exp.version_of(v) else {
            let names: Vec<&str> = exp.variants.iter().map(|v| v.0.as_str()).collect();
            raise::raise(
                Error::invalid(format!("experiment \"{e}\" has no variant \"{v}\""))
                    .with_detail(format!("Variants: {}.", names.join(", "))),
            )
        };
        if version.is_some_and(|n| n != of_variant) {
            raise::raise(Error::invalid(format!(
                "variant \"{v}\" of experiment \"{e}\" is version {of_variant}, not {}",
                version.unwrap_or_default()
            )));
        }
        version = Some(of_variant);
        tested = Some(exp);
    }
    let target = target(name, version);
    if tested.is_some_and(|exp| exp.template_id != target.template_id) {
        raise::raise(Error::invalid(format!(
            "experiment \"{}\" does not test template \"{name}\"",
            experiment.unwrap_or_default()
        )));
    }
    let model = match model.map(str::trim) {
        Some("") => raise::raise(Error::invalid("model must not be empty")),
        Some(m) => m.to_string(),
        None => target.model.clone().unwrap_or_else(|| {
            raise::raise(
                Error::null_argument("model")
                    .with_hint(format!("Version {} of \"{name}\" names no model (model or model_name) in its model_config; pass one.", target.version)),
            )
        }),
    };

    let cost = cost::cost_at(&model, usage, executed_at).or_raise();
    if cost.is_none() && WARNED.with(|w| w.borrow_mut().insert(model.clone())) {
        cost::warn_unknown(&model);
    }

    let raw = gucs::STORE_RAW_TEXT.get();
    let prompt = stored(rendered_prompt, Direction::Input, "rendered_prompt", raw);
    let answer = stored(response, Direction::Output, "response", raw);
    // Error messages quote what the provider saw, PII included: redacted
    // like the response (the reader role sees them in v_recent_execution_errors).
    let failure = stored(error_message, Direction::Output, "error_message", raw);

    let partitions = ensure_partition(executed_at);
    let id = insert(&partitions, &Row {
        executed_at,
        target: &target,
        name,
        experiment,
        variant: variant.as_deref(),
        user_id,
        model: &model,
        usage,
        cost: cost.map(cost::numeric),
        latency_ms,
        success,
        error_message: failure.as_ref().and_then(|s| s.text.as_deref()),
        prompt: prompt.as_ref().and_then(|s| s.text.as_deref()),
        response: answer.as_ref().and_then(|s| s.text.as_deref()),
        metadata: &metadata,
        trace: trace.as_ref(),
    });

    for (s, direction) in [(prompt, "input"), (answer, "output"), (failure, "output")] {
        if let Some(s) = s.filter(|s| !s.findings.is_empty()) {
            Spi::run_with_args(
                "SELECT pgprompt._record_violations($1, $2, $3, p_execution_id => $4)",
                &[JsonB(Json::Array(s.findings)).into(), direction.into(), name.into(), id.into()],
            )
            .expect("recording guardrail findings");
        }
    }
    Some(id)
}

struct Row<'a> {
    executed_at: i64,
    target: &'a Target,
    name: &'a str,
    experiment: Option<&'a str>,
    variant: Option<&'a str>,
    user_id: Option<&'a str>,
    model: &'a str,
    usage: Usage,
    cost: Option<pgrx::AnyNumeric>,
    latency_ms: Option<i32>,
    success: bool,
    error_message: Option<&'a str>,
    prompt: Option<&'a str>,
    response: Option<&'a str>,
    metadata: &'a JsonbArg,
    /// `None` under 0.1.0's schema, which has no trace columns.
    trace: Option<&'a Trace<'a>>,
}

/// The columns `insert` fills and their types, in the order of `Row::args`;
/// the last three (the trace) only under 0.2.0's schema.
const COLUMNS: [(&str, pg_sys::Oid); 21] = {
    use pg_sys::{BOOLOID, INT4OID, INT8OID, JSONBOID, NUMERICOID, TEXTOID, TIMESTAMPTZOID};
    [
        ("executed_at", TIMESTAMPTZOID),
        ("template_id", INT8OID),
        ("template_name", TEXTOID),
        ("version", INT4OID),
        ("experiment", TEXTOID),
        ("variant", TEXTOID),
        ("user_id", TEXTOID),
        ("model", TEXTOID),
        ("input_tokens", INT8OID),
        ("output_tokens", INT8OID),
        ("cached_input_tokens", INT8OID),
        ("cost_usd", NUMERICOID),
        ("latency_ms", INT4OID),
        ("success", BOOLOID),
        ("error_message", TEXTOID),
        ("rendered_prompt", TEXTOID),
        ("response", TEXTOID),
        ("metadata", JSONBOID),
        ("trace_id", TEXTOID),
        ("parent_id", INT8OID),
        ("session_id", TEXTOID),
    ]
};

/// Columns of 0.1.0's prompt_executions.
const UNTRACED: usize = 18;

/// The kept INSERT of the first `n` of `COLUMNS`; `tableoid` tells the partition.
fn insert_sql(n: usize) -> String {
    let columns = &COLUMNS[..n];
    format!(
        "INSERT INTO pgprompt.prompt_executions ({}) VALUES ({}) RETURNING id::int8, tableoid",
        columns.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
        (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    )
}
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| insert_sql(COLUMNS.len()));
static INSERT_UNTRACED_SQL: LazyLock<String> = LazyLock::new(|| insert_sql(UNTRACED));

impl Row<'_> {
    /// The values of `COLUMNS`, as datums.
    fn args(&self) -> spi::Args {
        let mut args = spi::Args::with_capacity(COLUMNS.len());
        args.push_datum(Some(pg_sys::Datum::from(self.executed_at)))
            .push(Some(self.target.template_id))
            .push(Some(self.name))
            .push(Some(self.target.version))
            .push(self.experiment)
            .push(self.variant)
            .push(self.user_id)
            .push(Some(self.model))
            .push(Some(self.usage.input))
            .push(Some(self.usage.output))
            .push(Some(self.usage.cached))
            .push(self.cost.clone())
            .push(self.latency_ms)
            .push(Some(self.success))
            .push(self.error_message)
            .push(self.prompt)
            .push(self.response)
            .push_datum(Some(self.metadata.datum()));
        if let Some(t) = self.trace {
            args.push(t.trace_id).push(t.parent_id).push(t.session_id);
        }
        args
    }

    /// The columns `args` fills.
    fn columns(&self) -> &'static [(&'static str, pg_sys::Oid)] {
        if self.trace.is_some() { &COLUMNS } else { &COLUMNS[..UNTRACED] }
    }
}

/// Inserts the row and returns its id: straight into its month partition
/// once a row showed which that is (see `direct`), otherwise through the
/// kept INSERT, which routes it.
fn insert(partitions: &Partitions, r: &Row) -> i64 {
    let mut args = r.args();
    let month = stats::utc_month(r.executed_at);
    let known = partitions.months.borrow().get(&month).copied().flatten();
    if let Some(part) = known {
        match direct::insert(partitions.parent, part, r.columns(), &args) {
            direct::Outcome::Done(id) => return id.unwrap_or_default(),
            direct::Outcome::Unsuitable | direct::Outcome::Conflict => {}
            direct::Outcome::Moved => {
                partitions.months.borrow_mut().insert(month, None);
            }
        }
    }
    let (id, part) = Spi::connect(|_| {
        let types: Vec<pg_sys::Oid> = r.columns().iter().map(|c| c.1).collect();
        let plan = if r.trace.is_some() {
            INSERT.with(|p| p.plan(&INSERT_SQL, &types))
        } else {
            INSERT_UNTRACED.with(|p| p.plan(&INSERT_UNTRACED_SQL, &types))
        };
        // SAFETY: arguments in the order and types the plan declares.
        unsafe {
            let rc = spi::run(plan, &mut args, false, false, 0);
            if rc != pg_sys::SPI_OK_INSERT_RETURNING as i32 || pg_sys::SPI_processed != 1 {
                raise::raise(Error::new(ErrorKind::InvalidArgument, "the execution could not be logged"));
            }
            let table = &*pg_sys::SPI_tuptable;
            let mut null = false;
            let id = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, 1, &mut null).value() as i64;
            let part = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, 2, &mut null).value() as u32;
            (id, pg_sys::Oid::from(part))
        }
    });
    if part != pg_sys::Oid::INVALID && partitions.months.borrow().get(&month) == Some(&None) {
        partitions.months.borrow_mut().insert(month, Some(part));
    }
    id
}
