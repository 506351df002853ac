//! The statistics triggers and the latency histogram functions.
//!
//! `_stats_capture` runs once per INSERT statement on prompt_executions
//! (see sql/executions.sql for why deltas). It reads the statement's new
//! rows straight from the transition table, adds them up per hour, template
//! version (or experiment variant) and latency bucket, and appends one row
//! per group to prompt_stats_pending through a kept plan. Reading the
//! tuplestore here rather than in PL/pgSQL saves a query plan per statement,
//! and lets the experiment trigger return at once when no row has an
//! experiment.

use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::{AnyNumeric, Array, FromDatum};

use super::raise;
use super::spi;
use crate::error::Error;
use crate::stats;

/// One statement in this many (chosen at random, so short sessions fold
/// too) folds the pending deltas. Folding scans prompt_stats_pending, dead
/// rows included until autovacuum reclaims them, so its cost grows with the
/// write rate; at 1 in 256, folding took 7% of a logging benchmark's CPU,
/// at 1 in 4096 under 1%, with a few thousand pending rows for readers to
/// add up at most.
const FOLD_EVERY: f64 = 4096.0;

/// The columns of prompt_executions the statistics read, by name, with the
/// type each is read as.
const COLUMNS: [(&str, pg_sys::Oid); 12] = {
    use pg_sys::{BOOLOID, INT4OID, INT8OID, NUMERICOID, TEXTOID, TIMESTAMPTZOID};
    [
        ("executed_at", TIMESTAMPTZOID),
        ("template_id", INT8OID),
        ("template_name", TEXTOID),
        ("version", INT4OID),
        ("experiment", TEXTOID),
        ("variant", TEXTOID),
        ("latency_ms", INT4OID),
        ("success", BOOLOID),
        ("input_tokens", INT8OID),
        ("output_tokens", INT8OID),
        ("cached_input_tokens", INT8OID),
        ("cost_usd", NUMERICOID),
    ]
};

#[derive(PartialEq, Eq, Hash)]
struct Key {
    hour: i64,
    template_id: i64,
    version: i32,
    experiment: Option<String>,
    variant: Option<String>,
    bucket: Option<i16>,
}

#[derive(Default)]
struct Sums {
    template_name: String,
    executions: i64,
    successes: i64,
    latency_sum_ms: i64,
    /// Sums of squares, for variances (experiments compare means).
    latency_sum_squares: i128,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    cost_usd: Option<AnyNumeric>,
    cost_sum_squares: Option<AnyNumeric>,
    priced: i64,
    /// Newest executed_at of the group (microseconds since 2000).
    last_executed_at: i64,
}

/// One new row of prompt_executions, as the statistics count it.
struct Call {
    executed_at: i64,
    template_id: i64,
    template_name: Option<String>,
    version: i32,
    experiment: Option<String>,
    variant: Option<String>,
    latency_ms: Option<i32>,
    success: bool,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    cost_usd: Option<AnyNumeric>,
}

/// Adds one call to its group.
fn add(groups: &mut HashMap<Key, Sums>, call: Call, experiments: bool) {
    if experiments && call.experiment.is_none() {
        return;
    }
    let key = Key {
        hour: stats::utc_hour(call.executed_at),
        template_id: call.template_id,
        version: call.version,
        variant: if experiments { call.variant } else { None },
        experiment: if experiments { call.experiment } else { None },
        bucket: call.latency_ms.map(|ms| stats::bucket(f64::from(ms)) as i16),
    };
    let sums = groups.entry(key).or_default();
    if sums.executions == 0 {
        sums.template_name = call.template_name.unwrap_or_default();
        sums.last_executed_at = i64::MIN;
    }
    sums.last_executed_at = sums.last_executed_at.max(call.executed_at);
    sums.executions += 1;
    sums.successes += i64::from(call.success);
    let ms = i64::from(call.latency_ms.unwrap_or(0));
    sums.latency_sum_ms += ms;
    sums.latency_sum_squares += i128::from(ms * ms);
    sums.input_tokens += call.input_tokens;
    sums.output_tokens += call.output_tokens;
    sums.cached_input_tokens += call.cached_input_tokens;
    if let Some(cost) = call.cost_usd {
        sums.priced += 1;
        let square = cost.clone() * cost.clone();
        sums.cost_usd = Some(match sums.cost_usd.take() {
            Some(total) => total + cost,
            None => cost,
        });
        sums.cost_sum_squares = Some(match sums.cost_sum_squares.take() {
            Some(total) => total + square,
            None => square,
        });
    }
}

thread_local! {
    static APPEND: spi::Kept = const { spi::Kept::new() };
    static APPEND_UNSQUARED: spi::Kept = const { spi::Kept::new() };
}

#[pg_trigger]
fn _stats_capture<'a>(trigger: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let experiments = trigger.extra_args()?.first().is_some_and(|a| a == "experiment");
    let data = trigger.trigger_data();
    if data.tg_newtable.is_null() {
        return Ok(None);
    }
    // SAFETY: a statement trigger's transition table and its relation's
    // descriptor, valid for the duration of the call.
    let groups = unsafe {
        match positions((*data.tg_relation).rd_att) {
            Some(at) => read(data.tg_newtable, (*data.tg_relation).rd_att, &at, experiments),
            None => read_converted(data as *const pg_sys::TriggerData as *mut pg_sys::TriggerData, experiments),
        }
    };
    if !groups.is_empty() {
        if let Some(groups) = append_directly(groups) {
            append(groups);
        }
    }
    // SAFETY: PostgreSQL's global PRNG, seeded per backend.
    if !experiments {
        fold_now_and_then();
    }
    Ok(None)
}

/// One call in `FOLD_EVERY` (at random, so short sessions fold too) folds
/// the pending deltas of calls and scores, never failing the caller.
pub fn fold_now_and_then() {
    // SAFETY: PostgreSQL's global PRNG, seeded per backend.
    if unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) } * FOLD_EVERY < 1.0 {
        // (Pinned: prompt_score, whose path is not, calls this too.)
        super::spi::pinned(|| Spi::run("SELECT pgprompt._stats_compact_quietly()")).expect("folding statistics never raises");
    }
}

/// Where each of `COLUMNS` is in the table, if every one has the type it
/// is read as; `None` when one is missing or was given another type.
///
/// # Safety
/// `desc` is a valid tuple descriptor.
unsafe fn positions(desc: pg_sys::TupleDesc) -> Option<[usize; COLUMNS.len()]> {
    let mut at = [usize::MAX; COLUMNS.len()];
    unsafe {
        for (i, attr) in super::direct::desc_attrs(desc).iter().enumerate() {
            if attr.attisdropped {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(attr.attname.data.as_ptr()).to_str().unwrap_or_default();
            if let Some(k) = COLUMNS.iter().position(|(c, _)| *c == name) {
                if attr.atttypid != COLUMNS[k].1 {
                    return None;
                }
                at[k] = i;
            }
        }
    }
    at.iter().all(|&i| i != usize::MAX).then_some(at)
}

/// Adds up the rows of a transition table, reading the datums in place.
///
/// # Safety
/// `rows` must be a live tuplestore of tuples described by `desc`, whose
/// columns are where `at` says, of the types of `COLUMNS`.
unsafe fn read(rows: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc, at: &[usize; COLUMNS.len()], experiments: bool) -> HashMap<Key, Sums> {
    let last = at.iter().copied().max().unwrap_or(0) + 1;
    let mut groups: HashMap<Key, Sums> = HashMap::new();
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
        // A read pointer of our own, so other triggers reading the same
        // transition table are not disturbed.
        let pointer = pg_sys::tuplestore_alloc_read_pointer(rows, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(rows, pointer);
        pg_sys::tuplestore_rescan(rows);
        while pg_sys::tuplestore_gettupleslot(rows, true, false, slot) {
            pg_sys::slot_getsomeattrs_int(slot, last as i32);
            let values = (*slot).tts_values;
            let nulls = (*slot).tts_isnull;
            let get = |k: usize| (!*nulls.add(at[k])).then(|| *values.add(at[k]));
            let text = |k: usize| get(k).and_then(|d| String::from_datum(d, false));
            let int8 = |k: usize| get(k).map_or(0, |d| d.value() as i64);
            let call = Call {
                executed_at: int8(0),
                template_id: int8(1),
                template_name: text(2),
                version: get(3).map_or(0, |d| d.value() as i32),
                experiment: text(4),
                variant: text(5),
                latency_ms: get(6).map(|d| d.value() as i32),
                success: get(7).is_some_and(|d| d.value() != 0),
                input_tokens: int8(8),
                output_tokens: int8(9),
                cached_input_tokens: int8(10),
                cost_usd: get(11).and_then(|d| AnyNumeric::from_datum(d, false)),
            };
            add(&mut groups, call, experiments);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
    groups
}

/// Adds up the rows of the transition table through SQL, each column cast
/// to the type it is counted as: the table's owner changed a column's type
/// (cost_usd to double precision, say). A value that cannot be cast is an
/// ordinary error.
///
/// # Safety
/// `data` is the trigger's data, valid for the duration of the call.
unsafe fn read_converted(data: *mut pg_sys::TriggerData, experiments: bool) -> HashMap<Key, Sums> {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(c, ty)| {
            let ty = match *ty {
                pg_sys::TIMESTAMPTZOID => "timestamptz",
                pg_sys::INT8OID => "int8",
                pg_sys::INT4OID => "int4",
                pg_sys::BOOLOID => "bool",
                pg_sys::NUMERICOID => "numeric",
                _ => "text",
            };
            format!("{c}::{ty}")
        })
        .collect();
    let sql = format!("SELECT {} FROM new_rows", columns.join(", "));
    Spi::connect(|client| {
        // SAFETY: makes the trigger's transition tables visible to this query.
        unsafe { pg_sys::SPI_register_trigger_data(data) };
        let mut groups = HashMap::new();
        let rows = client.select(&sql, None, &[]).unwrap_or_else(|e| raise::raise(Error::invalid(format!("the statistics could not read the new calls: {e}"))));
        for row in rows {
            let int8 = |n: usize| row.get::<i64>(n).ok().flatten().unwrap_or(0);
            let call = Call {
                executed_at: row.get::<TimestampWithTimeZone>(1).ok().flatten().map_or(0, i64::from),
                template_id: int8(2),
                template_name: row.get::<String>(3).ok().flatten(),
                version: row.get::<i32>(4).ok().flatten().unwrap_or(0),
                experiment: row.get::<String>(5).ok().flatten(),
                variant: row.get::<String>(6).ok().flatten(),
                latency_ms: row.get::<i32>(7).ok().flatten(),
                success: row.get::<bool>(8).ok().flatten().unwrap_or(false),
                input_tokens: int8(9),
                output_tokens: int8(10),
                cached_input_tokens: int8(11),
                cost_usd: row.get::<AnyNumeric>(12).ok().flatten(),
            };
            add(&mut groups, call, experiments);
        }
        groups
    })
}

/// The columns of prompt_stats_pending and the types `pending_row` gives.
const PENDING_TYPES: [(&str, pg_sys::Oid); 16] = {
    use pg_sys::{INT2OID, INT4OID, INT8OID, NUMERICOID, TEXTOID, TIMESTAMPTZOID};
    [
        ("hour", TIMESTAMPTZOID),
        ("template_id", INT8OID),
        ("template_name", TEXTOID),
        ("version", INT4OID),
        ("experiment", TEXTOID),
        ("variant", TEXTOID),
        ("latency_bucket", INT2OID),
        ("executions", INT8OID),
        ("successes", INT8OID),
        ("latency_sum_ms", INT8OID),
        ("input_tokens", INT8OID),
        ("output_tokens", INT8OID),
        ("cached_input_tokens", INT8OID),
        ("cost_usd", NUMERICOID),
        ("priced_executions", INT8OID),
        ("last_executed_at", TIMESTAMPTZOID),
    ]
};

/// Columns of 0.2.0's prompt_stats_pending that 0.1.0's lacks: written
/// when the table has them.
const PENDING_SQUARES: [(&str, pg_sys::Oid); 2] = [("latency_sum_squares", pg_sys::NUMERICOID), ("cost_sum_squares", pg_sys::NUMERICOID)];

/// The pending row of a group, column by column (names as in the table):
/// those of `PENDING_TYPES`, then those of `PENDING_SQUARES`.
fn pending_row(key: Key, sums: Sums) -> [(&'static str, Option<pg_sys::Datum>); 18] {
    [
        ("hour", Some(pg_sys::Datum::from(key.hour))),
        ("template_id", key.template_id.into_datum()),
        ("template_name", sums.template_name.into_datum()),
        ("version", key.version.into_datum()),
        ("experiment", key.experiment.into_datum()),
        ("variant", key.variant.into_datum()),
        ("latency_bucket", key.bucket.into_datum()),
        ("executions", sums.executions.into_datum()),
        ("successes", sums.successes.into_datum()),
        ("latency_sum_ms", sums.latency_sum_ms.into_datum()),
        ("input_tokens", sums.input_tokens.into_datum()),
        ("output_tokens", sums.output_tokens.into_datum()),
        ("cached_input_tokens", sums.cached_input_tokens.into_datum()),
        ("cost_usd", sums.cost_usd.unwrap_or_default().into_datum()),
        ("priced_executions", sums.priced.into_datum()),
        ("last_executed_at", Some(pg_sys::Datum::from(sums.last_executed_at))),
        ("latency_sum_squares", AnyNumeric::from(sums.latency_sum_squares).into_datum()),
        ("cost_sum_squares", sums.cost_sum_squares.unwrap_or_default().into_datum()),
    ]
}

/// Appends the groups to prompt_stats_pending as heap tuples (see
/// `direct::Plain`; it also means loggers need no privilege on the table).
/// Gives the groups back when the table is not that plain any more, for
/// `append`.
fn append_directly(groups: HashMap<Key, Sums>) -> Option<HashMap<Key, Sums>> {
    let Some(mut table) = super::direct::Plain::open(c"prompt_stats_pending", &PENDING_TYPES, &PENDING_SQUARES) else {
        return Some(groups);
    };
    for (key, sums) in groups {
        // SAFETY: the datums are of the columns' types (PENDING_TYPES, PENDING_SQUARES).
        unsafe { table.append(&pending_row(key, sums)) };
    }
    None
}

/// Appends one prompt_stats_pending row per group through the executor
/// (which converts each value to its column's type, or raises); the sums
/// of squares only when the table has their columns (0.2.0's).
fn append(groups: HashMap<Key, Sums>) {
    let sql = |columns: &[(&str, pg_sys::Oid)]| {
        format!(
            "INSERT INTO pgprompt.prompt_stats_pending ({}) VALUES ({})",
            columns.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
            (1..=columns.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        )
    };
    Spi::connect(|client| {
        let squares = client
            .select(
                "SELECT count(*) = 2 FROM pg_attribute WHERE attrelid = 'pgprompt.prompt_stats_pending'::regclass
                    AND attname IN ('latency_sum_squares', 'cost_sum_squares') AND NOT attisdropped",
                Some(1),
                &[],
            )
            .ok()
            .and_then(|t| t.first().get_one::<bool>().ok().flatten())
            .unwrap_or(false);
        let columns: Vec<(&str, pg_sys::Oid)> =
            PENDING_TYPES.iter().chain(if squares { &PENDING_SQUARES[..] } else { &[] }).copied().collect();
        let types: Vec<pg_sys::Oid> = columns.iter().map(|c| c.1).collect();
        let plan = if squares {
            APPEND.with(|p| p.plan(&sql(&columns), &types))
        } else {
            APPEND_UNSQUARED.with(|p| p.plan(&sql(&columns), &types))
        };
        for (key, sums) in groups {
            let mut args = spi::Args::with_capacity(columns.len());
            for (_, value) in pending_row(key, sums).into_iter().take(columns.len()) {
                args.push_datum(value);
            }
            // SAFETY: arguments in the order and types the plan declares.
            let rc = unsafe { spi::run(plan, &mut args, false, false, 0) };
            assert_eq!(rc, pg_sys::SPI_OK_INSERT as i32, "appending statistics failed");
        }
    });
}

fn histogram(h: Option<Array<'_, i64>>) -> Vec<i64> {
    h.map(|a| a.iter().map(|x| x.unwrap_or(0)).collect()).unwrap_or_default()
}

#[pg_extern(immutable, parallel_safe)]
fn _hist_add(state: Option<Array<'_, i64>>, bucket: Option<i16>, calls: Option<i64>) -> Vec<i64> {
    let mut h = histogram(state);
    if let (Some(b), Some(n)) = (bucket, calls) {
        stats::add(&mut h, b.max(0) as usize, n);
    }
    h
}

#[pg_extern(immutable, parallel_safe, strict)]
fn _latency_bucket(latency_ms: i32) -> i16 {
    stats::bucket(f64::from(latency_ms)) as i16
}

#[pg_extern(immutable, parallel_safe)]
fn _hist_merge(a: Option<Array<'_, i64>>, b: Option<Array<'_, i64>>) -> Vec<i64> {
    stats::merge(&histogram(a), &histogram(b))
}

#[pg_extern(immutable, parallel_safe)]
fn _hist_of(bucket: Option<i16>, calls: i64) -> Vec<i64> {
    _hist_add(None, bucket, Some(calls))
}

#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_latency_quantile(histogram: Array<'_, i64>, q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        raise::raise(Error::invalid(format!("q must be between 0 and 1 (got {q})")));
    }
    let h: Vec<i64> = histogram.iter().map(|x| x.unwrap_or(0)).collect();
    if h.iter().any(|c| *c < 0) {
        raise::raise(Error::invalid("a latency histogram cannot hold negative counts"));
    }
    stats::quantile(&h, q)
}
