//! Writes that must survive the caller's transaction.
//!
//! When prompt_guard_enforce blocks a text it raises an ERROR, which rolls
//! back everything the caller's transaction wrote — including the record of
//! what was blocked, the one record a security team needs most. So blocked
//! findings are written by a short-lived background worker in a transaction
//! of its own. The worker is started on demand (no shared_preload_libraries
//! needed), receives its data through a dynamic shared memory segment, and
//! the caller waits for it to finish (a few milliseconds, only when blocking)
//! before raising the ERROR. If no worker slot is free, the findings go to
//! the server log with a WARNING instead.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value as Json};

/// Records `findings` (as _guard_enforce returns them) in
/// prompt_guardrail_violations, in a transaction of their own.
#[pg_extern(volatile, parallel_unsafe)]
fn _record_violations_detached(findings: JsonB, direction: &str, template: Option<&str>) {
    let payload = json!({
        "findings": findings.0,
        "direction": direction,
        "template": template,
        "actor": Spi::get_one::<String>("SELECT session_user::text").ok().flatten(),
        "application": Spi::get_one::<String>("SELECT nullif(current_setting('application_name', true), '')").ok().flatten(),
    })
    .to_string();
    if let Err(why) = run(&payload) {
        ereport!(
            PgLogLevel::WARNING,
            PgSqlErrorCode::ERRCODE_WARNING,
            format!("blocked findings could not be recorded in a separate transaction: {why}"),
            format!("findings: {payload}")
        );
    }
}

fn run(payload: &str) -> Result<(), String> {
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT relowner FROM pg_class WHERE oid = 'pgprompt.prompt_guardrail_violations'::regclass",
    )
    .map_err(|e| e.to_string())?
    .ok_or("prompt_guardrail_violations not found")?;
    // SAFETY: a segment of len + 8 bytes: the length, then the payload. It is
    // detached (and, with no other user left, destroyed) below, after the
    // worker has finished with it.
    unsafe {
        let len = payload.len();
        let seg = pg_sys::dsm_create(len + 8, 0);
        let base = pg_sys::dsm_segment_address(seg).cast::<u8>();
        base.cast::<u64>().write_unaligned(len as u64);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), base.add(8), len);
        let handle = pg_sys::dsm_segment_handle(seg);
        let extra = format!("{} {}", pg_sys::MyDatabaseId.to_u32(), owner.to_u32());
        let worker = BackgroundWorkerBuilder::new("pgprompt violation recorder")
            .set_type("pgprompt")
            .set_library("pgprompt")
            .set_function("pgprompt_record_violations_worker")
            .set_argument(Some(pg_sys::Datum::from(handle)))
            .set_extra(&extra)
            .enable_spi_access()
            .set_notify_pid(pg_sys::MyProcPid)
            .load_dynamic();
        let result = match worker {
            Err(_) => Err("no background worker slot is free (max_worker_processes)".to_string()),
            Ok(w) => match w.wait_for_startup() {
                Err(status) => Err(format!("the worker did not start: {status:?}")),
                Ok(_) => w.wait_for_shutdown().map_err(|status| format!("the worker failed: {status:?}")),
            },
        };
        pg_sys::dsm_detach(seg);
        result
    }
}

/// The background worker: reads the payload and records it.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pgprompt_record_violations_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let extra = BackgroundWorker::get_extra();
    let mut ids = extra.split_whitespace().map(|s| s.parse::<u32>().unwrap_or(0));
    let (db, role) = (ids.next().unwrap_or(0), ids.next().unwrap_or(0));
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), Some(pg_sys::Oid::from(role)));
    // SAFETY: the segment stays alive while the starting backend waits for us.
    let payload = unsafe {
        let seg = pg_sys::dsm_attach(arg.value() as pg_sys::dsm_handle);
        if seg.is_null() {
            return;
        }
        let base = pg_sys::dsm_segment_address(seg).cast::<u8>();
        let len = base.cast::<u64>().read_unaligned() as usize;
        let bytes = std::slice::from_raw_parts(base.add(8), len).to_vec();
        pg_sys::dsm_detach(seg);
        String::from_utf8(bytes).unwrap_or_default()
    };
    let Ok(p) = serde_json::from_str::<Json>(&payload) else { return };
    let text = |k: &str| p.get(k).and_then(Json::as_str).map(str::to_string);
    let (direction, template, actor, application) = (text("direction"), text("template"), text("actor"), text("application"));
    let findings = p.get("findings").cloned().unwrap_or(Json::Null);
    BackgroundWorker::transaction(move || {
        Spi::run_with_args(
            "SELECT pgprompt._record_violations($1, $2, $3, coalesce($4, 'unknown'), $5)",
            &[
                JsonB(findings).into(),
                direction.unwrap_or_else(|| "input".into()).into(),
                template.into(),
                actor.into(),
                application.into(),
            ],
        )
        .expect("recording blocked findings");
    });
}
