//! pgprompt's background worker: writes that must commit on their own.
//!
//! Two things cannot happen in the caller's transaction:
//!
//! * recording what a guardrail blocked: the ERROR that blocks the text
//!   rolls back everything the transaction wrote, the record included;
//! * making a month partition of prompt_executions: attaching one locks
//!   the table until commit, so two sessions back-filling months in
//!   opposite order deadlocked, and one session's new month held up every
//!   other session's until it committed.
//!
//! Both go to one long-lived worker through a queue of files in the data
//! directory (`pgprompt/queue/<database oid>/`), so at most one worker slot
//! is used for all sessions (0.1.0 started a worker per blocked call, which
//! lost records and starved parallel queries once the slots ran out). A
//! worker serves one database; when another database has requests waiting
//! it hands over to a successor for that database. It leaves after a short
//! idle time, so it never keeps a database from being dropped for long.
//!
//! Who runs: the worker holds an exclusive `flock` on `pgprompt/worker.lock`
//! (the kernel drops it if the worker dies) and writes its pid there. A
//! caller writes its request first, then tries that lock: taken means a
//! worker runs, and the caller wakes it through its latch; free means none
//! does, and the caller starts one. A worker leaving releases the lock
//! before it looks at the queue a last time, so a request is either seen by
//! that look or finds the lock free: none is stranded.
//!
//! Blocked findings are written to disk (fsync) before the ERROR is raised
//! and are recorded within milliseconds; if no worker can start (no free
//! slot), they wait in the queue for the next one. A partition request
//! waits for the worker's answer; should the worker be unavailable, the
//! caller makes the partition itself, as 0.1.0 did.

use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgTryBuilder};
use serde_json::{json, Value as Json};

/// How long a worker with nothing to do stays.
const IDLE: Duration = Duration::from_secs(2);
/// How long a new worker waits for the lock its predecessor is releasing.
const HANDOVER: Duration = Duration::from_secs(5);
/// How long a caller waits for its partition before making it itself.
const PARTITION_WAIT: Duration = Duration::from_secs(15);
/// How long a blocked call waits for its findings to be recorded (they are
/// queued on disk, so a longer wait would only delay the caller).
const RECORD_WAIT: Duration = Duration::from_secs(2);

/// `pgprompt/` in the data directory.
fn home() -> PathBuf {
    // SAFETY: DataDir is set for every backend and worker.
    let data = unsafe { CStr::from_ptr(pg_sys::DataDir) }.to_string_lossy().into_owned();
    Path::new(&data).join("pgprompt")
}

fn queue(db: u32) -> PathBuf {
    home().join("queue").join(db.to_string())
}

fn replies() -> PathBuf {
    home().join("replies")
}

fn lock_path() -> PathBuf {
    home().join("worker.lock")
}

fn my_database() -> u32 {
    // SAFETY: set once connected.
    unsafe { pg_sys::MyDatabaseId.to_u32() }
}

fn my_pid() -> i32 {
    // SAFETY: set at process start.
    unsafe { pg_sys::MyProcPid }
}

/// Wakes the process `pid` (a backend or the worker) through its latch.
fn wake(pid: i32) {
    // SAFETY: BackendPidGetProc takes ProcArrayLock; a PGPROC's latch stays valid.
    unsafe {
        let proc_ = pg_sys::BackendPidGetProc(pid);
        if !proc_.is_null() {
            pg_sys::SetLatch(&raw mut (*proc_).procLatch);
        }
    }
}

/// Sleeps until the latch is set or `timeout` passes, answering interrupts
/// (a cancel or terminate raises here).
fn nap(timeout: Duration) {
    // SAFETY: the standard latch wait of a backend.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            timeout.as_millis() as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    pgrx::check_for_interrupts!();
}

// ---------------------------------------------------------------------------
// The callers' side
// ---------------------------------------------------------------------------

/// Writes a request for database `db`; with `durable`, it survives a crash.
/// Returns the request's name.
fn enqueue(db: u32, request: &Json, durable: bool) -> std::io::Result<String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = queue(db);
    fs::create_dir_all(&dir)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
    let name = format!("{now:020}-{:010}-{:08}", my_pid(), SEQ.fetch_add(1, Relaxed));
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(request.to_string().as_bytes())?;
    if durable {
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(format!("{name}.json")))?;
    if durable {
        File::open(&dir)?.sync_all()?;
    }
    Ok(name)
}

/// Makes sure a worker will see the queue of `db`: wakes the running one,
/// or starts one. False when none runs and none could be started.
fn ensure_worker(db: u32) -> bool {
    let Ok(lock) = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(lock_path()) else {
        return false;
    };
    match lock.try_lock() {
        Ok(()) => {
            // No worker holds it: start one (it takes the lock after us).
            drop(lock);
            start_once(db)
        }
        Err(_) => {
            let mut holder = String::new();
            let _ = (&lock).read_to_string(&mut holder);
            if let Some(pid) = holder.split_whitespace().next().and_then(|p| p.parse().ok()) {
                wake(pid);
            }
            true
        }
    }
}

/// `pgprompt/starting`: exists from a worker's registration until it holds
/// the lock, so that callers arriving meanwhile start no second one.
fn starting_path() -> PathBuf {
    home().join("starting")
}

/// Starts a worker for database `db` unless one is starting already (then
/// it will see this database's queue). One who creates the `starting` file
/// starts it; a file older than a worker's start could take is from a
/// start that failed, and is replaced.
fn start_once(db: u32) -> bool {
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(starting_path()) {
            Ok(_) => {
                if start(db) {
                    return true;
                }
                let _ = fs::remove_file(starting_path());
                return false;
            }
            Err(_) => {
                let age = fs::metadata(starting_path()).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                match age {
                    Some(age) if age > HANDOVER * 2 => {
                        let _ = fs::remove_file(starting_path());
                    }
                    _ => return true,
                }
            }
        }
    }
    false
}

/// Registers a worker for database `db`.
fn start(db: u32) -> bool {
    BackgroundWorkerBuilder::new("pgprompt worker")
        .set_type("pgprompt worker")
        .set_library("pgprompt")
        .set_function("pgprompt_worker_main")
        .set_extra(&db.to_string())
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic()
        .is_ok()
}

/// Records blocked findings in a transaction of their own, through the
/// worker. Waits (briefly) for the record to be committed, so the caller
/// can read it at once; the record is safe on disk before that anyway.
#[pg_extern(volatile, parallel_unsafe)]
fn _record_violations_detached(findings: JsonB, direction: &str, template: Option<&str>) {
    let request = json!({
        "kind": "violations",
        "reply_to": my_pid(),
        "findings": findings.0,
        "direction": direction,
        "template": template,
        "actor": Spi::get_one::<String>("SELECT session_user::text").ok().flatten(),
        "application": Spi::get_one::<String>("SELECT nullif(current_setting('application_name', true), '')").ok().flatten(),
    });
    let db = my_database();
    match enqueue(db, &request, true) {
        Err(e) => warn_lost(&format!("they could not be queued ({e})"), &request),
        Ok(name) if ensure_worker(db) => {
            wait_reply(&name, RECORD_WAIT);
        }
        Ok(_) => ereport!(
            PgLogLevel::WARNING,
            PgSqlErrorCode::ERRCODE_WARNING,
            "blocked findings are queued until a background worker slot is free",
            "They are recorded in prompt_guardrail_violations by the next pgprompt worker; raise max_worker_processes if this persists."
        ),
    }
}

fn warn_lost(why: &str, request: &Json) {
    ereport!(
        PgLogLevel::WARNING,
        PgSqlErrorCode::ERRCODE_WARNING,
        format!("blocked findings could not be recorded: {why}"),
        format!("findings: {request}")
    );
}

/// What became of a partition request.
pub enum Made {
    /// The worker made it (or found it made) and committed.
    Done,
    /// The worker refused, with this SQLSTATE, message and hint.
    Refused(String, String, Option<String>),
    /// No worker answered in time: the caller makes it itself.
    NoWorker,
}

/// Asks the worker to make the month partition holding `at` (and the
/// next, ahead of time) and waits for the answer. With `ahead`, only the
/// month of `at`, and only if that needs no waiting for locks: a month made
/// ahead of time.
pub fn make_partition(at: i64, ahead: bool) -> Made {
    let db = my_database();
    let kind = if ahead { "partition_ahead" } else { "partition" };
    let request = json!({"kind": kind, "at": at, "reply_to": my_pid()});
    let Ok(name) = enqueue(db, &request, false) else { return Made::NoWorker };
    if !ensure_worker(db) {
        let _ = fs::remove_file(queue(db).join(format!("{name}.json")));
        return Made::NoWorker;
    }
    let Some(answer) = wait_reply(&name, PARTITION_WAIT) else {
        // Withdraw the request if the worker has not taken it.
        let _ = fs::remove_file(queue(db).join(format!("{name}.json")));
        return Made::NoWorker;
    };
    // SAFETY: the new partition's relcache entries come with the worker's
    // commit; take them now, not at the next lock.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    match answer.get("error") {
        None => Made::Done,
        Some(e) => Made::Refused(
            e["sqlstate"].as_str().unwrap_or("XX000").to_string(),
            e["message"].as_str().unwrap_or("the partition could not be made").to_string(),
            e["hint"].as_str().map(str::to_string),
        ),
    }
}

/// The worker's answer to request `name`, waiting at most `timeout`.
fn wait_reply(name: &str, timeout: Duration) -> Option<Json> {
    let reply = replies().join(name);
    let until = Instant::now() + timeout;
    loop {
        if let Ok(text) = fs::read_to_string(&reply) {
            let _ = fs::remove_file(&reply);
            return Some(serde_json::from_str(&text).unwrap_or(Json::Null));
        }
        if Instant::now() >= until {
            return None;
        }
        nap(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

/// The worker's entry point (`bgw_function_name`).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pgprompt_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Ok(db) = BackgroundWorker::get_extra().trim().parse::<u32>() else { return };
    // The lock first: a worker that is not needed leaves before it connects.
    let lock = take_lock(db);
    let _ = fs::remove_file(starting_path());
    let Some(lock) = lock else { return };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), None);
    sweep(db);
    let mut idle_since = Instant::now();
    loop {
        if drain(db) {
            idle_since = Instant::now();
        }
        if BackgroundWorker::sigterm_received() {
            break;
        }
        // Another database's requests wait: hand over.
        if waiting_databases().iter().any(|&d| d != db) {
            forget_dropped_databases();
            if waiting_databases().iter().any(|&d| d != db) {
                break;
            }
        }
        if idle_since.elapsed() >= IDLE {
            break;
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(200))) {
            break;
        }
    }
    // Leave: release the lock, then look once more (see the module's note).
    drop(lock);
    let waiting = waiting_databases();
    let next = if waiting.contains(&db) { Some(db) } else { waiting.first().copied() };
    if let Some(next) = next {
        start_once(next);
    }
}

/// Takes the worker lock for database `db`, waiting for a predecessor
/// that is leaving.
fn take_lock(db: u32) -> Option<File> {
    fs::create_dir_all(home()).ok()?;
    let until = Instant::now() + HANDOVER;
    loop {
        let mut f = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(lock_path()).ok()?;
        if f.try_lock().is_ok() {
            f.set_len(0).ok()?;
            f.write_all(format!("{} {db}", my_pid()).as_bytes()).ok()?;
            return Some(f);
        }
        if Instant::now() >= until || BackgroundWorker::sigterm_received() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes what callers left behind: answers nobody waited for any more,
/// and requests a caller never finished writing.
fn sweep(db: u32) {
    for dir in [replies(), queue(db)] {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let stale = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|a| a > Duration::from_secs(60));
            if stale && path.extension().is_none_or(|e| e != "json") {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// Databases with requests waiting, oldest request first.
fn waiting_databases() -> Vec<u32> {
    let Ok(dirs) = fs::read_dir(home().join("queue")) else { return Vec::new() };
    let mut found: Vec<(String, u32)> = dirs
        .flatten()
        .filter_map(|d| {
            let db = d.file_name().to_str()?.parse::<u32>().ok()?;
            let oldest = requests(&d.path()).into_iter().next()?;
            Some((oldest.file_name()?.to_str()?.to_string(), db))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, db)| db).collect()
}

/// The requests in a queue directory, oldest first.
fn requests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Drops the queues of databases that are gone (or refuse connections):
/// no worker could ever serve them.
fn forget_dropped_databases() {
    let alive: Vec<u32> = BackgroundWorker::transaction(|| {
        Spi::connect(|c| {
            c.select("SELECT oid::int8 FROM pg_database WHERE datallowconn", None, &[])
                .map(|rows| rows.filter_map(|r| r.get::<i64>(1).ok().flatten()).map(|o| o as u32).collect())
                .unwrap_or_default()
        })
    });
    if alive.is_empty() {
        return;
    }
    for db in waiting_databases().into_iter().filter(|d| !alive.contains(d)) {
        let _ = fs::remove_dir_all(queue(db));
    }
}

/// Handles every request waiting for this database. True if there were any.
fn drain(db: u32) -> bool {
    let files = requests(&queue(db));
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else { continue };
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let request: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let outcome = in_transaction(|| handle(&request));
        if let (Err(e), Some("violations")) = (&outcome, request["kind"].as_str()) {
            pgrx::warning!("pgprompt worker: blocked findings could not be recorded: {e}; request: {text}");
        }
        let _ = fs::remove_file(file);
        // The caller may be waiting; it reads the answer if it still is.
        if let Some(pid) = request["reply_to"].as_i64() {
            let answer = match &outcome {
                Ok(()) => json!({}),
                Err(e) => json!({"error": e}),
            };
            let _ = fs::create_dir_all(replies());
            let tmp = replies().join(format!("{name}.tmp"));
            if fs::write(&tmp, answer.to_string()).is_ok() {
                let _ = fs::rename(&tmp, replies().join(&name));
            }
            wake(pid as i32);
        }
    }
    !files.is_empty()
}

/// Carries out one request.
fn handle(request: &Json) {
    Spi::run("SET LOCAL search_path = pgprompt, pg_catalog, pg_temp; SET LOCAL lock_timeout = '5s'").expect("settings");
    match request["kind"].as_str() {
        Some("violations") => {
            let text = |k: &str| request[k].as_str().map(str::to_string);
            Spi::run_with_args(
                "SELECT pgprompt._record_violations($1, $2, $3, coalesce($4, 'unknown'), $5)",
                &[
                    JsonB(request["findings"].clone()).into(),
                    text("direction").unwrap_or_else(|| "input".into()).into(),
                    text("template").into(),
                    text("actor").into(),
                    text("application").into(),
                ],
            )
            .expect("recording findings");
        }
        Some(kind @ ("partition" | "partition_ahead")) => {
            let at = request["at"].as_i64().unwrap_or_default();
            let sql = if kind == "partition" {
                "SELECT pgprompt._executions_partition($1)"
            } else {
                "SELECT pgprompt._executions_create_partition($1, false)"
            };
            Spi::run_with_args(sql, &[TimestampWithTimeZone::try_from(at).expect("a valid time").into()]).expect("making a partition");
        }
        other => panic!("unknown request {other:?}"),
    }
}

/// Runs `f` in a transaction of its own, committed; an error rolls it back
/// and comes back as {sqlstate, message, hint}.
fn in_transaction(f: impl FnOnce() + std::panic::UnwindSafe + std::panic::RefUnwindSafe) -> Result<(), Json> {
    // SAFETY: the worker's own transaction, begun and ended here.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(|| {
        f();
        Ok(())
    })
    .catch_others(|e| {
        Err(match e {
            pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => json!({
                "sqlstate": sqlstate(r.sql_error_code()),
                "message": r.message(),
                "hint": r.hint(),
            }),
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => json!({
                "sqlstate": "XX000",
                "message": ereport.message(),
            }),
        })
    })
    .execute();
    // SAFETY: as above; after an error only an abort is allowed.
    unsafe {
        match outcome {
            Ok(()) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    outcome
}

/// The five-character SQLSTATE of an error code.
fn sqlstate(code: PgSqlErrorCode) -> String {
    let mut n = code as i32;
    (0..5)
        .map(|_| {
            let c = ((n & 0x3F) as u8 + b'0') as char;
            n >>= 6;
            c
        })
        .collect()
}
