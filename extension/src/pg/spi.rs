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

/// The columns of the first row a kept plan returned (1-based, as SPI
/// numbers them), read as datums that live until SPI disconnects.
pub struct Row {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl Row {
    /// Column `n`, or `None` when it is NULL.
    pub fn get(&self, n: i32) -> Option<Datum> {
        let mut null = false;
        // SAFETY: the tuple and its descriptor belong to the connected SPI's last result.
        let d = unsafe { pg_sys::SPI_getbinval(self.tuple, self.desc, n, &mut null) };
        (!null).then_some(d)
    }

    /// Column `n` as a Rust value.
    pub fn value<T: pgrx::FromDatum>(&self, n: i32) -> Option<T> {
        // SAFETY: the caller asks for the column's own type.
        self.get(n).and_then(|d| unsafe { T::from_datum(d, false) })
    }
}

/// Runs a kept plan and returns its first row, if any (SPI must be connected).
///
/// # Safety
/// `args` must match the plan's argument types.
pub unsafe fn first_row(plan: NonNull<pg_sys::_SPI_plan>, args: &mut Args, read_only: bool) -> Option<Row> {
    unsafe {
        let rc = run(plan, args, read_only, false, 1);
        assert!(rc >= 0, "a kept statement failed: {rc}");
        if pg_sys::SPI_processed == 0 || pg_sys::SPI_tuptable.is_null() {
            return None;
        }
        let table = &*pg_sys::SPI_tuptable;
        Some(Row { tuple: *table.vals, desc: table.tupdesc })
    }
}

/// Runs `f` with search_path set to `pgprompt, pg_catalog, pg_temp` and
/// restores the caller's after (also when `f` raises), as a function's
/// `SET search_path` would. For the SECURITY DEFINER functions that resolve
/// no name on their usual path (prompt_score: direct index lookups and
/// inserts, see `direct` and `probe`), so pay for the setting, which is a
/// twentieth of a score's cost, only around the SQL they run now and then.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: pops the GUC nest level `pinned` pushed.
            unsafe { pg_sys::AtEOXact_GUC(true, self.0) };
        }
    }
    // SAFETY: what fmgr does for a function's SET clause: a new GUC nest
    // level, the value set in it, the level popped when done.
    let _restore = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        let restore = Restore(level);
        let context = if pg_sys::superuser() { pg_sys::GucContext::PGC_SUSET } else { pg_sys::GucContext::PGC_USERSET };
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pgprompt, pg_catalog, pg_temp".as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        restore
    };
    f()
}
