//! pgprompt: prompt management for LLM applications inside PostgreSQL.
//!
//! Pure logic (no pgrx) lives in modules named after their capability:
//! `render` (templates), `jsonb` (reading vars in place), `guard`
//! (guardrail scanning), `cost` (prices and exact costs), `stats` (latency
//! histograms), `bucket` (experiment assignment), `significance` (the
//! statistics of experiment results), `gate` (test case assertions),
//! `model_config` and `json_schema` (what a version's configuration and
//! input schema must look like), `error` (the error type and its SQLSTATEs) and `alloc_guard`
//! (the render memory budget). `pg` is the thin PostgreSQL layer. The
//! schema is plain SQL in the repository's `sql/` directory.

pub mod alloc_guard;
pub mod bucket;
pub mod cost;
pub mod gate;
pub mod guard;
pub mod jsonb;
pub mod pg;
pub mod scores;
pub mod sequential;
pub mod significance;
pub mod stats;

// The template engine and the error type live in their own crate, which
// the client shares.
pub use pgprompt_engine::{error, json_schema, model_config, render};

#[cfg(test)]
mod properties;

::pgrx::pg_module_magic!(name, version);

// Every Rust allocation of the extension goes through the render budget.
// Not in unit tests: they run in parallel threads, which a budget on
// process-wide counters would confuse.
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: alloc_guard::BudgetAllocator = alloc_guard::BudgetAllocator;

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Errors raised through Rust would capture a backtrace when the server
    // runs with RUST_BACKTRACE set (as development machines often do): it
    // takes tens of milliseconds per error and reaches the client in the
    // error's DETAIL. Unless the administrator asked for library
    // backtraces explicitly, errors carry none.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    pg::gucs::init();
    pg::invalidation::init();
    alloc_guard::set_handler(pg::raise::memory_exhausted);
    minijinja::hooks::set_tick(pg::raise::interrupts);
    minijinja::hooks::set_stack_check(pg::raise::stack_too_deep);
    guard::set_interrupts(pg::raise::interrupts);
    // Preloaded, the postmaster compiles the shipped guardrails once for
    // every session it will start (see guard::warm).
    // SAFETY: a flag PostgreSQL sets while it loads preloaded libraries.
    // Whatever goes wrong there only costs sessions the head start: the
    // server starts all the same (an error raised here would stop it).
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        match std::panic::catch_unwind(guard::warm::warm) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => pgrx::warning!("pgprompt: the shipped guardrails were not compiled in advance: {e}"),
            Err(_) => pgrx::warning!("pgprompt: the shipped guardrails were not compiled in advance"),
        }
    }
}

// The schema, in the order it must be created. Functions written in Rust are
// created between the bootstrap file and the rest.
pgrx::extension_sql_file!("../../sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("../../sql/triggers.sql", name = "triggers", requires = ["schema", _restoring]);
pgrx::extension_sql_file!(
    "../../sql/guardrails.sql",
    name = "guardrails",
    requires = ["triggers", _guardrail_check, _guard_enforce, _record_violations_detached, prompt_guard_scan_scored, prompt_guard_redact]
);
pgrx::extension_sql_file!(
    "../../sql/costs.sql",
    name = "costs",
    requires = ["triggers", _model_price_check, _model_price_id, prompt_cost]
);
pgrx::extension_sql_file!(
    "../../sql/executions.sql",
    name = "executions",
    requires = [
        "guardrails",
        prompt_log_execution_traced,
        _stats_capture,
        _hist_add,
        _hist_merge,
        _hist_of,
        _latency_bucket,
        prompt_latency_quantile
    ]
);
pgrx::extension_sql_file!("../../sql/traces.sql", name = "traces", requires = ["executions"]);
pgrx::extension_sql_file!(
    "../../sql/scores.sql",
    name = "scores",
    requires = [
        "traces",
        prompt_score_numeric,
        prompt_score_boolean,
        prompt_score_text,
        prompt_score_trace_numeric,
        prompt_score_trace_boolean,
        prompt_score_trace_text
    ]
);
pgrx::extension_sql_file!(
    "../../sql/experiments.sql",
    name = "experiments",
    requires = [
        "scores",
        prompt_compare_means,
        prompt_compare_rates,
        prompt_mean_interval,
        prompt_rate_interval,
        prompt_bucket,
        prompt_assign,
        prompt_render_for,
        prompt_wilson_interval,
        prompt_two_proportion_p,
        prompt_sample_ratio_p
    ]
);
pgrx::extension_sql_file!(
    "../../sql/gates.sql",
    name = "gates",
    requires = ["experiments", _test_case_check, prompt_run_tests]
);
pgrx::extension_sql_file!("../../sql/analytics.sql", name = "analytics", requires = ["gates"]);
pgrx::extension_sql_file!("../../sql/templates_api.sql", name = "templates_api", requires = ["analytics"]);
pgrx::extension_sql_file!("../../sql/includes.sql", name = "includes", requires = ["templates_api", _template_includes]);
pgrx::extension_sql_file!("../../sql/approvals.sql", name = "approvals", requires = ["includes", _approval_required]);
pgrx::extension_sql_file!("../../sql/imports.sql", name = "imports", requires = ["approvals"]);
pgrx::extension_sql_file!("../../sql/drivers.sql", name = "drivers", requires = ["imports"]);
pgrx::extension_sql_file!("../../sql/webhooks.sql", name = "webhooks", requires = ["drivers"]);
pgrx::extension_sql_file!("../../sql/roles.sql", name = "roles", finalize);
