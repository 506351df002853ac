//! Statements prepared once per session and run with raw datums.
//!
//! Parsing and planning a statement costs more than running a simple one, so
//! the hot paths (resolving a template, logging a call, recording
//! statistics) keep their plans (SPI_keepplan). A kept plan is a cached plan:
//! PostgreSQL re-plans it by itself when a table it uses changes.

use std::cell::Cell;
use std::ffi::{c_char, CString};
use std::ptr::NonNull;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::IntoDatum;

/// A statement's plan, prepared on first use.
pub struct Kept(Cell<Option<NonNull<pg_sys::_SPI_plan>>>);

impl Kept {
    pub const fn new() -> Kept {
        Kept(Cell::new(None))
    }

    /// The plan of `sql` with argument types `types`. SPI must be connected.
    pub fn plan(&self, sql: &str, types: &[Oid]) -> NonNull<pg_sys::_SPI_plan> {
        if let Some(plan) = self.0.get() {
            return plan;
        }
        let text = CString::new(sql).expect("no NUL in a query");
        let mut types = types.to_vec();
        // SAFETY: SPI is connected; SPI_keepplan moves the plan out of SPI's memory.
        let plan = unsafe {
            let plan = pg_sys::SPI_prepare(text.as_ptr(), types.len() as i32, types.as_mut_ptr());
            let plan = NonNull::new(plan).unwrap_or_else(|| panic!("preparing failed: {sql}"));
            assert_eq!(pg_sys::SPI_keepplan(plan.as_ptr()), 0, "SPI_keepplan failed");
            plan
        };
        self.0.set(Some(plan));
        plan
    }
}

/// Arguments as SPI takes them: datums and a null flag each (`'n'` or `' '`).
#[derive(Default)]
pub struct Args {
    pub values: Vec<Datum>,
    pub nulls: Vec<c_char>,
}

impl Args {
    pub fn with_capacity(n: usize) -> Args {
        Args { values: Vec::with_capacity(n), nulls: Vec::with_capacity(n) }
    }

    /// Appends a value (NULL for `None`).
    pub fn push<T: IntoDatum>(&mut self, value: Option<T>) -> &mut Args {
        match value.and_then(IntoDatum::into_datum) {
            Some(d) => {
                self.values.push(d);
                self.nulls.push(b' ' as c_char);
            }
            None => {
                self.values.push(Datum::from(0));
                self.nulls.push(b'n' as c_char);
            }
        }
        self
    }

    /// Appends a datum as it is.
    pub fn push_datum(&mut self, value: Option<Datum>) -> &mut Args {
        self.values.push(value.unwrap_or(Datum::from(0)));
        self.nulls.push(if value.is_some() { b' ' } else { b'n' } as c_char);
        self
    }
}

/// Runs a kept plan and returns SPI's result code; the rows are in
/// SPI_tuptable. With `latest`, a read-only query runs under a snapshot
/// taken now instead of the statement's. SPI must be connected.
///
/// # Safety
/// `args` must match the plan's argument types.
pub unsafe fn run(plan: NonNull<pg_sys::_SPI_plan>, args: &mut Args, read_only: bool, latest: bool, limit: i64) -> i32 {
    unsafe {
        if latest {
            pg_sys::SPI_execute_snapshot(
                plan.as_ptr(),
                args.values.as_mut_ptr(),
                args.nulls.as_ptr(),
                pg_sys::GetLatestSnapshot(),
                std::ptr::null_mut(),
                read_only,
                false,
                limit,
            )
        } else {
            pg_sys::SPI_execute_plan(plan.as_ptr(), args.values.as_mut_ptr(), args.nulls.as_ptr(), read_only, limit)
        }
    }
}
