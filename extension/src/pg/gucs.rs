//! Settings, all prefixed `pgprompt.`. Sizes take units (`SET pgprompt.max_output_bytes = '2MB'`).
//!
//! The limits that protect the server (fuel, sizes, the cache) are set in
//! postgresql.conf. Any session may lower them; only a superuser may raise
//! one above the configured value (SET, set_config, a function's SET
//! clause, ALTER ROLE or DATABASE ... SET alike), or a template could buy
//! itself unbounded work and memory. The check hooks below enforce that.

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use pgrx::pg_sys;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::render::Limits;

/// Largest template body `prompt_save` accepts (the seeds' MaxPromptSizeBytes).
pub static MAX_TEMPLATE_BYTES: GucSetting<i32> = GucSetting::<i32>::new(16384);
/// VM instructions one render may execute.
pub static RENDER_FUEL: GucSetting<i32> = GucSetting::<i32>::new(1_000_000);
/// Largest rendered output.
pub static MAX_OUTPUT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1 << 20);
/// Largest vars document a render accepts.
pub static MAX_VARS_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1 << 20);
/// Memory one render may hold, in kB; beyond it the session ends (see alloc_guard).
pub static RENDER_MEMORY_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(128 * 1024);
/// Largest text a guardrail scan accepts.
pub static MAX_SCAN_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1 << 20);
/// Compiled template versions kept per backend.
pub static CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// The kill switch of execution logging (the seeds' DISABLE_PROMPT_LOGGING).
pub static LOG_EXECUTIONS: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Store logged prompts and responses without redacting them.
pub static STORE_RAW_TEXT: GucSetting<bool> = GucSetting::<bool>::new(false);
/// How far back (seconds) a call may be logged by a role that is not an
/// administrator: each month logged into takes a partition.
pub static LOG_WINDOW_PAST: GucSetting<i32> = GucSetting::<i32>::new(400 * 86_400);
/// How far ahead (seconds) a call may be logged by a role that is not an administrator.
pub static LOG_WINDOW_FUTURE: GucSetting<i32> = GucSetting::<i32>::new(86_400);
/// Every template needs an approval before a release (as if each had
/// requires_approval set). Superuser-only, so no session can lift it.
pub static REQUIRE_APPROVAL: GucSetting<bool> = GucSetting::<bool>::new(false);

/// A limit with its ceiling: the value the server's configuration gives
/// (postgresql.conf, the command line, or the built-in default).
struct Capped {
    name: &'static CStr,
    ceiling: AtomicI32,
}

/// Whether `newval` may be set from `source`: configuration sets the
/// ceiling; anyone may go up to it; above it takes a superuser, in the
/// session or for a database or role.
///
/// # Safety
/// Called by PostgreSQL's GUC machinery as a check hook.
unsafe fn check_capped(cap: &Capped, newval: c_int, source: pg_sys::GucSource::Type) -> bool {
    if source <= pg_sys::GucSource::PGC_S_ARGV {
        cap.ceiling.store(newval, Relaxed);
        return true;
    }
    // Values stored with ALTER DATABASE / ALTER ROLE ... SET were checked
    // when they were stored, as whoever stored them (PostgreSQL keeps
    // non-superusers from storing a value for a setting it does not know
    // yet), so one above the ceiling is a superuser's: it applies at login.
    if matches!(
        source,
        pg_sys::GucSource::PGC_S_DATABASE | pg_sys::GucSource::PGC_S_USER | pg_sys::GucSource::PGC_S_DATABASE_USER
    ) {
        return true;
    }
    let ceiling = cap.ceiling.load(Relaxed);
    // SAFETY: superuser() reads the catalog, which needs a transaction.
    if newval <= ceiling || unsafe { pg_sys::IsTransactionState() && pg_sys::superuser() } {
        return true;
    }
    let message = format!(
        "only a superuser may raise {} above {ceiling}, its value in the server's configuration",
        cap.name.to_string_lossy()
    );
    // SAFETY: the GUC machinery reports and frees these palloc'd strings.
    unsafe {
        pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as c_int);
        pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(std::ffi::CString::new(message).unwrap_or_default().as_ptr());
        pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(c"Lower values are always allowed; raise the limit in postgresql.conf.".as_ptr());
    }
    false
}

/// Defines a capped integer setting and its check hook.
macro_rules! capped {
    ($name:literal, $short:literal, $long:literal, $setting:expr, $min:expr, $max:expr, $flags:expr) => {{
        static CAP: Capped = Capped { name: $name, ceiling: AtomicI32::new(i32::MAX) };
        #[pgrx::pg_guard]
        unsafe extern "C-unwind" fn hook(newval: *mut c_int, _extra: *mut *mut c_void, source: pg_sys::GucSource::Type) -> bool {
            // SAFETY: PostgreSQL passes the proposed value.
            unsafe { check_capped(&CAP, *newval, source) }
        }
        // SAFETY: the hook is guarded and never panics.
        unsafe {
            GucRegistry::define_int_guc_with_hooks(
                $name, $short, $long, $setting, $min, $max, GucContext::Userset, $flags, Some(hook), None, None,
            )
        }
    }};
}

pub fn init() {
    capped!(
        c"pgprompt.max_template_bytes",
        c"Largest template body prompt_save accepts.",
        c"Bodies over this size are refused with SQLSTATE 54000.",
        &MAX_TEMPLATE_BYTES,
        1,
        i32::MAX,
        GucFlags::UNIT_BYTE
    );
    capped!(
        c"pgprompt.render_fuel",
        c"Template instructions one render may execute.",
        c"A render that needs more fails with SQLSTATE 54001, so an endless loop cannot hang a session.",
        &RENDER_FUEL,
        100,
        i32::MAX,
        GucFlags::default()
    );
    capped!(
        c"pgprompt.max_output_bytes",
        c"Largest output one render may produce.",
        c"A render producing more fails with SQLSTATE 54000.",
        &MAX_OUTPUT_BYTES,
        1,
        i32::MAX,
        GucFlags::UNIT_BYTE
    );
    capped!(
        c"pgprompt.max_vars_bytes",
        c"Largest vars document one render accepts.",
        c"Larger vars fail with SQLSTATE 54000 before any work is done.",
        &MAX_VARS_BYTES,
        1,
        i32::MAX,
        GucFlags::UNIT_BYTE
    );
    GucRegistry::define_int_guc(
        c"pgprompt.render_memory_limit",
        c"Memory one render may hold.",
        c"A template that needs more (only runaway string growth does) ends its session with FATAL; the server is unaffected.",
        &RENDER_MEMORY_LIMIT,
        1024,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    capped!(
        c"pgprompt.max_scan_bytes",
        c"Largest text a guardrail scan accepts.",
        c"Longer texts fail with SQLSTATE 54000 before any work is done.",
        &MAX_SCAN_BYTES,
        1,
        i32::MAX,
        GucFlags::UNIT_BYTE
    );
    capped!(
        c"pgprompt.cache_size",
        c"Compiled template versions kept per session.",
        c"Least recently used versions are dropped beyond this number.",
        &CACHE_SIZE,
        1,
        1_000_000,
        GucFlags::default()
    );
    GucRegistry::define_bool_guc(
        c"pgprompt.log_executions",
        c"Whether prompt_log_execution writes anything.",
        c"Off: prompt_log_execution writes nothing and returns NULL (a kill switch for logging).",
        &LOG_EXECUTIONS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgprompt.log_window_past",
        c"How long ago a call may have been made to be logged by a role that is not an administrator.",
        c"Older executed_at values are refused with SQLSTATE 22008 unless the caller is a member of pgprompt_admin: every month logged into takes a partition.",
        &LOG_WINDOW_PAST,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgprompt.log_window_future",
        c"How far in the future a call may be dated to be logged by a role that is not an administrator.",
        c"Later executed_at values are refused with SQLSTATE 22008 unless the caller is a member of pgprompt_admin.",
        &LOG_WINDOW_FUTURE,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"pgprompt.require_approval",
        c"Whether every template needs an approval before a release.",
        c"On: releasing a version (activating it, labelling it production or a protected label, an experiment serving it) takes an approval by a role other than its author (prompt_approve) and membership in pgprompt_releaser, as for templates with requires_approval. Only a superuser may change it (postgresql.conf, ALTER DATABASE or ALTER ROLE ... SET).",
        &REQUIRE_APPROVAL,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pgprompt.store_raw_text",
        c"Whether logged prompts and responses are stored without redaction.",
        c"Off (the default): PII, and whatever guardrails with action redact find, is replaced by <ENTITY> before a prompt or response is stored.",
        &STORE_RAW_TEXT,
        GucContext::Suset,
        GucFlags::default(),
    );
}

pub fn limits() -> Limits {
    // SAFETY: the transaction's start time; PostgreSQL counts from 2000.
    let since_2000 = unsafe { pgrx::pg_sys::GetCurrentTransactionStartTimestamp() };
    Limits {
        fuel: RENDER_FUEL.get() as u64,
        max_output_bytes: MAX_OUTPUT_BYTES.get() as usize,
        now: since_2000 + 946_684_800_000_000,
    }
}

pub fn render_memory_limit_bytes() -> usize {
    RENDER_MEMORY_LIMIT.get() as usize * 1024
}

/// `pgprompt.require_approval`, for the release checks in SQL. A C
/// function, so that reading it loads the library first: a value a
/// non-superuser set before the library defined the setting (a
/// placeholder) is then refused, not believed.
#[pgrx::pg_extern(stable, parallel_safe)]
fn _approval_required() -> bool {
    REQUIRE_APPROVAL.get()
}
