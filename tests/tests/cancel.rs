//! Every render, scan and redaction can be cancelled: statement_timeout,
//! pg_cancel_backend and pg_terminate_backend end a long one within 100 ms
//! (a terminated one: gone from pg_stat_activity).
//! The work runs as a superuser with the limits raised, so that it lasts
//! long enough to be cancelled at 1 s.

use std::time::{Duration, Instant};

use pgprompt_tests::*;

/// Work that runs for many seconds once the limits are raised.
const LONG: [(&str, &str); 4] = [
    ("a loop of instructions", "SELECT prompt_render_text('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}')"),
    (
        "filters that sort and join",
        "SELECT prompt_render_text('{% set l = range(100000)|list|reverse %}{% for i in range(100000) %}{% set s = l|sort|join(\",\") %}{% endfor %}')",
    ),
    ("a guardrail scan", "SELECT count(*) FROM prompt_guard_scan(repeat('call 415 555 0100 or jane@example.com, ', 2000000))"),
    ("a redaction", "SELECT length(prompt_guard_redact(repeat('call 415 555 0100 or jane@example.com, ', 2000000)))"),
];

const RAISED: &str = "SET pgprompt.render_fuel = 2147483647; SET pgprompt.max_scan_bytes = '1GB'; SET pgprompt.render_memory_limit = '2GB'";

/// How long after `at` the statement ended, and its SQLSTATE.
fn ended(result: Result<Vec<postgres::SimpleQueryMessage>, postgres::Error>, at: Instant) -> (Duration, String) {
    let took = at.elapsed();
    let code = match result {
        Ok(_) => "finished".to_string(),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("{e}")),
    };
    (took, code)
}

#[test]
fn statement_timeout_stops_long_work_at_once() {
    let db = TestDb::new();
    for (what, sql) in LONG {
        let mut c = db.connect();
        c.batch_execute(RAISED).unwrap();
        c.batch_execute("SET statement_timeout = '1s'").unwrap();
        let start = Instant::now();
        let (took, code) = ended(c.simple_query(sql), start);
        assert_eq!(code, "57014", "{what}");
        eprintln!("{what}: timeout after {took:?}");
        assert!(took < Duration::from_millis(1100), "{what}: the timeout at 1 s ended it after {took:?}");
    }
}

#[test]
fn cancel_and_terminate_stop_long_work_at_once() {
    let db = TestDb::new();
    for (what, sql) in LONG {
        for terminate in [false, true] {
            let mut c = db.connect();
            c.batch_execute(RAISED).unwrap();
            let pid: i32 = one(&mut c, "SELECT pg_backend_pid()");
            let mut other = db.connect();
            let stopper = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                let f = if terminate { "pg_terminate_backend" } else { "pg_cancel_backend" };
                let at = Instant::now();
                other.batch_execute(&format!("SELECT {f}({pid})")).unwrap();
                // A terminated backend has stopped working when it leaves
                // pg_stat_activity: its FATAL path has run. The client sees
                // the socket close only once the kernel has taken the
                // process's memory down too, which for a backend holding a
                // gigabyte took over a second on a loaded machine.
                let mut left = None;
                while terminate && left.is_none() && at.elapsed() < Duration::from_secs(30) {
                    if one::<i64>(&mut other, &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")) == 0 {
                        left = Some(Instant::now());
                    }
                }
                (at, left)
            });
            let result = c.simple_query(sql);
            let done = Instant::now();
            let (sent, left) = stopper.join().unwrap();
            let (_, code) = ended(result, done);
            let took = left.unwrap_or(done).saturating_duration_since(sent);
            let want = if terminate { "57P01" } else { "57014" };
            // A terminated backend sends its FATAL report and exits; on a
            // loaded machine the client may see the socket close before it
            // reads the report. Either way the work stopped: what matters
            // is when (below), and that the session is gone.
            assert!(code == want || terminate && code == "connection closed", "{what}: {code}, not {want}");
            assert!(!terminate || left.is_some(), "{what}: the terminated backend is still in pg_stat_activity");
            eprintln!("{what}: {code} {took:?} after the request");
            assert!(took < Duration::from_millis(100), "{what}: {code} came {took:?} after the request");
            if terminate {
                assert!(c.simple_query("SELECT 1").is_err(), "{what}: the terminated session is gone");
            } else {
                assert_eq!(one::<i32>(&mut c, "SELECT 1"), 1, "{what}: the session goes on after a cancel");
            }
        }
    }
}
