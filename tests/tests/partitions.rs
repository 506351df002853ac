//! Month partitions of prompt_executions: bounds in UTC whatever the
//! session's settings, a window that keeps applications from making
//! partitions without limit, creation that neither deadlocks nor holds
//! locks until the caller commits, months held under other names, and
//! purges racing with loggers.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use pgprompt_tests::*;

/// (partition, bounds) of prompt_executions, bounds as UTC text.
fn partitions(c: &mut Client) -> Vec<(String, String)> {
    c.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'").unwrap();
    c.query(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass ORDER BY 2",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn bounds_are_utc_months_whatever_the_session_settings() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}')").unwrap();
    c.batch_execute("SET DateStyle = 'Postgres'; SET TimeZone = 'Asia/Kolkata'").unwrap();
    // Around each month's first instant in UTC, a year of months.
    for m in 1..=12 {
        let start = format!("'2025-{m:02}-01 00:00:00+00'::timestamptz");
        for at in [start.clone(), format!("{start} - interval '1 microsecond'")] {
            c.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => {at})")).unwrap_or_else(|e| panic!("{at}: {e}"));
        }
    }
    c.batch_execute("SET timezone_abbreviations = 'India'; SET TimeZone = 'America/St_Johns'").unwrap();
    c.batch_execute("SELECT prompt_log_execution('t', executed_at => '2026-01-15 12:00:00+00')").unwrap();
    let parts = partitions(&mut c);
    let want: Vec<(String, String)> = (0..=13)
        .map(|i| {
            let (y, m) = (2024 + (i + 11) / 12, (i + 11) % 12 + 1);
            let (y2, m2) = (2024 + (i + 12) / 12, (i + 12) % 12 + 1);
            (
                format!("prompt_executions_{y}_{m:02}"),
                format!("FOR VALUES FROM ('{y}-{m:02}-01 00:00:00+00') TO ('{y2}-{m2:02}-01 00:00:00+00')"),
            )
        })
        .collect();
    // December 2024 to January 2026, and February 2026 made ahead of time.
    assert_eq!(&parts[..want.len()], &want[..]);
    // Every call sits in the month it belongs to.
    let misplaced: i64 = one(
        &mut c,
        "SELECT count(*) FROM prompt_executions e JOIN pg_class c ON c.oid = e.tableoid
          WHERE c.relname <> 'prompt_executions_' || to_char(e.executed_at AT TIME ZONE 'UTC', 'YYYY_MM')",
    );
    assert_eq!(misplaced, 0);
}

#[test]
fn applications_log_within_a_window_and_administrators_anytime() {
    let db = TestDb::new();
    db.connect().batch_execute("SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}')").unwrap();
    let mut app = db.login("app");
    for at in ["now() - interval '401 days'", "now() + interval '2 days'", "'1971-01-01'", "'8999-01-01'"] {
        let e = app.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => {at})")).unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("22008"), "{at}: {e:?}");
    }
    for at in ["now() - interval '399 days'", "now()", "now() + interval '23 hours'"] {
        app.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => {at})")).unwrap();
    }
    let mut admin = db.login("admin");
    admin.batch_execute("SELECT prompt_log_execution('t', executed_at => '2001-05-05')").unwrap();
    // The window is the server's to set.
    let e = app.batch_execute("SET pgprompt.log_window_past = '100 years'").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e:?}");
}

#[test]
fn creating_months_neither_deadlocks_nor_waits_for_other_transactions() {
    let db = TestDb::new();
    db.connect().batch_execute("SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}')").unwrap();
    // Two back-fills in opposite order, each holding its transaction open.
    let barrier = Arc::new(Barrier::new(2));
    let run = |first: &'static str, second: &'static str| {
        let barrier = barrier.clone();
        let mut c = db.connect();
        std::thread::spawn(move || {
            // A wait for the other transaction ends as an error, not a hang.
            c.batch_execute("SET statement_timeout = '10s'; BEGIN").unwrap();
            let t = Instant::now();
            let first = c.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => '{first}')"));
            let took_first = t.elapsed();
            barrier.wait();
            if let Err(e) = first {
                barrier.wait();
                return (Err(format!("first call: {e:?}")), took_first, Duration::ZERO);
            }
            let t = Instant::now();
            let second = c.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => '{second}')"));
            let took_second = t.elapsed();
            barrier.wait();
            c.batch_execute("COMMIT").unwrap();
            (second.map_err(|e| format!("{e:?}")), took_first, took_second)
        })
    };
    let a = run("2021-03-15", "2021-07-15");
    let b = run("2021-07-15", "2021-03-15");
    for r in [a.join().unwrap(), b.join().unwrap()] {
        let (second, took_first, took_second) = r;
        assert!(second.is_ok(), "{second:?}");
        // Neither waited for the other to commit (each holds its
        // transaction open until both are past the second call).
        assert!(took_first < Duration::from_secs(5) && took_second < Duration::from_secs(5), "{took_first:?} {took_second:?}");
    }
    let mut c = db.connect();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions"), 4);
}

#[test]
fn months_held_under_other_names_or_detached_are_used_or_reported() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}');
         CREATE TABLE pgprompt.my_may PARTITION OF pgprompt.prompt_executions
             FOR VALUES FROM ('2025-05-01 00:00:00+00') TO ('2025-06-01 00:00:00+00');",
    )
    .unwrap();
    for _ in 0..3 {
        let mut s = db.connect();
        s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-05-10')").unwrap();
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM pgprompt.my_may"), 3);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM pg_class WHERE relname = 'prompt_executions_2025_05'"), 0);
    // April's next month is May: held, nothing to make.
    c.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-04-10')").unwrap();
    // A detached month is reported, with how to attach it back.
    c.batch_execute(
        "SELECT prompt_log_execution('t', executed_at => '2025-08-10');
         ALTER TABLE pgprompt.prompt_executions DETACH PARTITION pgprompt.prompt_executions_2025_08;",
    )
    .unwrap();
    let mut s = db.connect();
    let e = s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-08-11')").unwrap_err();
    let db_error = e.as_db_error().unwrap();
    assert_eq!(db_error.code().code(), "55000", "{e:?}");
    assert!(db_error.hint().unwrap_or_default().contains("ATTACH PARTITION pgprompt.prompt_executions_2025_08"), "{e:?}");
    // The month before, whose next month is the detached one, logs quietly.
    s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-07-10')").unwrap();
    // A partition of the user's own that covers half of October: logging in
    // September still works (October is not made ahead of time, with a
    // warning), and early October, which no partition holds and none can
    // be made for, is a clear error, never swallowed.
    c.batch_execute(
        "CREATE TABLE pgprompt.my_mid_october PARTITION OF pgprompt.prompt_executions
             FOR VALUES FROM ('2025-10-15 00:00:00+00') TO ('2025-11-15 00:00:00+00')",
    )
    .unwrap();
    let mut s = db.connect();
    s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-09-10')").unwrap();
    s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-10-20')").unwrap();
    let e = s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-10-05')").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42P17"), "{e:?}");
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM pgprompt.my_mid_october"), 1);
    // Attached back, the month logs again.
    c.batch_execute(
        "ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.prompt_executions_2025_08
             FOR VALUES FROM ('2025-08-01 00:00:00+00') TO ('2025-09-01 00:00:00+00')",
    )
    .unwrap();
    let mut s = db.connect();
    s.batch_execute("SELECT prompt_log_execution('t', executed_at => '2025-08-12')").unwrap();
}

#[test]
fn purging_while_loggers_write_that_month_fails_no_caller() {
    let db = TestDb::new();
    db.connect().batch_execute("SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}')").unwrap();
    // Last month: inside the loggers' window, and old enough to purge.
    let month: String = one(&mut db.connect(), "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM-15')");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loggers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = db.login("app");
            let (stop, month) = (stop.clone(), month.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match c.batch_execute(&format!("SELECT prompt_log_execution('t', executed_at => '{month}')")) {
                        Ok(()) => n += 1,
                        Err(e) => errors.push(format!("{e:?}")),
                    }
                }
                (n, errors)
            })
        })
        .collect();
    let mut c = db.connect();
    let mut purged = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        purged += c.query("SELECT * FROM prompt_purge_executions('0 days')", &[]).unwrap().len();
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut logged = 0;
    for l in loggers {
        let (n, errors) = l.join().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        logged += n;
    }
    assert!(purged >= 5 && logged >= 20, "purged {purged} partitions, logged {logged} calls");
}
