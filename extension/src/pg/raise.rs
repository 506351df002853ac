//! Reporting our `Error` to PostgreSQL with its SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::error::{Error, ErrorKind};

fn code(kind: ErrorKind) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match kind {
        ErrorKind::NullArgument => ERRCODE_NULL_VALUE_NOT_ALLOWED,
        ErrorKind::InvalidArgument => ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::UnknownObject => ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::InvalidTemplate => ERRCODE_SYNTAX_ERROR,
        ErrorKind::MissingVariable => ERRCODE_UNDEFINED_PARAMETER,
        ErrorKind::WrongKind => ERRCODE_WRONG_OBJECT_TYPE,
        ErrorKind::LimitExceeded => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::FuelExhausted => ERRCODE_STATEMENT_TOO_COMPLEX,
        ErrorKind::RenderFailed => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        ErrorKind::InvalidOutput => ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
        ErrorKind::OutOfRange => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::DatetimeOutOfRange => ERRCODE_DATETIME_FIELD_OVERFLOW,
        ErrorKind::InvalidJson => ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::DuplicateKey => ERRCODE_DUPLICATE_JSON_OBJECT_KEY_VALUE,
        ErrorKind::SerializationFailure => ERRCODE_T_R_SERIALIZATION_FAILURE,
        // PL/pgSQL's RAISE EXCEPTION code: handlers catch it as raise_exception.
        ErrorKind::Raised => ERRCODE_RAISE_EXCEPTION,
    }
}

/// The error code of a five-character SQLSTATE (MAKE_SQLSTATE: six bits per
/// character, the first lowest). Only codes PostgreSQL defines map; others
/// become XX000.
fn sqlstate(code: &str) -> PgSqlErrorCode {
    let n = code.bytes().take(5).enumerate().fold(0i32, |n, (i, c)| n | ((i32::from(c.wrapping_sub(b'0')) & 0x3F) << (6 * i)));
    PgSqlErrorCode::from(n)
}

/// Raises `e` as an ERROR. Never returns.
#[track_caller]
pub fn raise(e: Error) -> ! {
    let mut report = ErrorReport::new(code(e.kind), e.message, "pgprompt");
    if let Some(d) = e.detail {
        report = report.set_detail(d);
    }
    if let Some(h) = e.hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// `result.or_raise()`: the value, or the error raised to the client.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, Error> {
    #[track_caller]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

/// A required argument, or a 22004 error naming it.
#[track_caller]
pub fn required<T>(value: Option<T>, name: &str) -> T {
    match value {
        Some(v) => v,
        None => raise(Error::null_argument(name)),
    }
}

/// Ends the session when a render exceeds its memory budget (see alloc_guard).
/// FATAL exits the backend cleanly, so the postmaster sees a normal exit and
/// no other session is touched.
pub fn memory_exhausted(live: usize, limit: usize) -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!(
            "template rendering needed more than {} kB of memory; terminating this session",
            limit / 1024
        ),
        "pgprompt",
    )
    .set_detail(format!("{} bytes were requested in one render.", live))
    .set_hint("The limit is pgprompt.render_memory_limit. Templates that grow strings exponentially hit it.")
    .report(PgLogLevel::FATAL);
    unreachable!("FATAL does not return")
}

/// Called from long-running work (the render VM every thousand or so
/// instructions and as filters work, guardrail scans between patterns):
/// a cancel, a statement timeout or a terminate raises here, and a Rust
/// path recursing too deep gets PostgreSQL's stack-depth error instead of
/// overflowing the stack. The ERROR unwinds the render like any error.
pub fn interrupts() {
    pgrx::check_for_interrupts!();
    // SAFETY: compares the stack pointer with max_stack_depth; raises 54001.
    unsafe { pgrx::pg_sys::check_stack_depth() };
}

/// Whether the stack is nearly as deep as max_stack_depth allows (for
/// recursive code that returns an error rather than raising).
pub fn stack_too_deep() -> bool {
    // SAFETY: compares the stack pointer with the configured limit.
    unsafe { pgrx::pg_sys::stack_is_too_deep() }
}

/// Raises a WARNING with a hint; returns.
pub fn warn(message: String, hint: &str) {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, message, "pgprompt").set_hint(hint).report(PgLogLevel::WARNING);
}

/// Raises an ERROR with a SQLSTATE given as its five characters (an error
/// reported by another process, such as the worker). Never returns.
#[track_caller]
pub fn raise_with(sqlstate: &str, message: String, hint: Option<String>) -> ! {
    let mut report = ErrorReport::new(self::sqlstate(sqlstate), message, "pgprompt");
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
