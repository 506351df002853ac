//! Whether the rows being written are history coming back, not new events.
//!
//! The audit triggers record every change, except rows the extension's own
//! scripts write (built-in guardrails, prices and alert rules) and rows a
//! restore brings back, which come with their own audit rows. What a caller
//! writes into a row (an old created_at, builtin = true) must not decide
//! that: only the session can, and only where it cannot be faked.

use pgrx::prelude::*;

/// True while CREATE or ALTER EXTENSION runs a script of this extension,
/// and in a superuser's session that is restoring: pg_restore's own session
/// (its application_name), or one replaying rows with
/// session_replication_role = replica. Anything else writes new events.
#[pg_extern(stable, parallel_safe)]
fn _restoring() -> bool {
    // SAFETY: plain reads of backend globals.
    unsafe {
        if pg_sys::creating_extension {
            return true;
        }
        if !pg_sys::superuser_arg(pg_sys::GetSessionUserId()) {
            return false;
        }
        if pg_sys::SessionReplicationRole == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32 {
            return true;
        }
        !pg_sys::application_name.is_null() && std::ffi::CStr::from_ptr(pg_sys::application_name).to_bytes() == b"pg_restore"
    }
}
