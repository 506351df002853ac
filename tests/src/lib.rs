//! Helpers for the integration tests: every test gets its own database with
//! the extension installed, on the cluster the environment points at
//! (DATABASE_URL, or the libpq variables; `make test` sets them).

use std::sync::atomic::{AtomicUsize, Ordering};

pub use postgres;
pub use postgres::{Client, NoTls};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Settings of the cluster under test, for database `dbname`.
pub fn config(dbname: &str) -> postgres::Config {
    let mut cfg = pgprompt_client::config(None).expect("DATABASE_URL or PGHOST/PGPORT must point at the test cluster");
    cfg.dbname(dbname);
    cfg.application_name("pgprompt-tests");
    cfg
}

/// A connection string for database `dbname` (for the CLI).
pub fn admin_url(dbname: &str) -> String {
    let cfg = config(dbname);
    let user = cfg.get_user().unwrap_or("postgres");
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    match cfg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => format!("postgresql://{user}@{h}:{port}/{dbname}"),
        _ => format!("postgresql://{user}@127.0.0.1:{port}/{dbname}"),
    }
}

/// A database of its own, with pgprompt installed; dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        Self::with_setup(true)
    }

    /// A database without the extension.
    pub fn empty() -> TestDb {
        Self::with_setup(false)
    }

    fn with_setup(extension: bool) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pgprompt_test_{}_{}", std::process::id(), n);
        let mut admin = config("postgres").connect(NoTls).expect("connect to the test cluster");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
        let db = TestDb { name };
        if extension {
            db.connect().batch_execute("CREATE EXTENSION pgprompt").expect("CREATE EXTENSION pgprompt");
        }
        db
    }

    /// A new session on this database.
    pub fn connect(&self) -> Client {
        let mut c = config(&self.name).connect(NoTls).expect("connect to the test database");
        c.batch_execute("SET search_path = pgprompt, public").expect("set search_path");
        c
    }

    /// A session whose notices and warnings are collected as (SQLSTATE, message).
    pub fn connect_with_notices(&self) -> (Client, Notices) {
        let notices = Notices::default();
        let sink = notices.clone();
        let mut cfg = config(&self.name);
        cfg.notice_callback(move |n| sink.0.lock().unwrap().push((n.code().code().to_string(), n.message().to_string())));
        let mut c = cfg.connect(NoTls).expect("connect to the test database");
        c.batch_execute("SET search_path = pgprompt, public").expect("set search_path");
        (c, notices)
    }

    /// A connection string for this database.
    pub fn url(&self) -> String {
        admin_url(&self.name)
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = config("postgres").connect(NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Notices a session received, in order.
#[derive(Clone, Default)]
pub struct Notices(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl Notices {
    /// The notices so far, emptying the list.
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The SQLSTATE of a failed statement (panics if it succeeded).
pub fn sqlstate<T: std::fmt::Debug>(result: Result<T, postgres::Error>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match e.as_db_error() {
            Some(db) => db.code().code().to_string(),
            None => panic!("expected a server error, got {e}"),
        },
    }
}

/// The server's message of a failed statement.
pub fn message<T: std::fmt::Debug>(result: Result<T, postgres::Error>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()),
    }
}

/// Runs `sql` expecting SQLSTATE `code`; returns the message.
pub fn expect_error(client: &mut Client, sql: &str, code: &str) -> String {
    let result = client.batch_execute(sql);
    let err = result.expect_err(&format!("expected {code} from: {sql}"));
    let db = err.as_db_error().unwrap_or_else(|| panic!("not a server error: {err}"));
    assert_eq!(db.code().code(), code, "wrong SQLSTATE for {sql}: {}", db.message());
    db.message().to_string()
}

/// One value from a query.
pub fn one<T>(client: &mut Client, sql: &str) -> T
where
    T: for<'a> postgres::types::FromSql<'a>,
{
    client.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// A fingerprint of every row of the extension's tables, to prove that a
/// failed call changed nothing: templates|versions|labels|activations|experiments|test cases|alert rules|audit
/// (the audit's row count; its rows too with `full_audit`).
pub fn fingerprint(client: &mut Client, full_audit: bool) -> String {
    let audit = if full_audit {
        "coalesce((SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY id) FROM pgprompt.prompt_audit_logs a), '')"
    } else {
        "(SELECT count(*)::text FROM pgprompt.prompt_audit_logs)"
    };
    one(
        client,
        &format!(
            "SELECT concat_ws('|',
                coalesce((SELECT string_agg(to_jsonb(t)::text, ',' ORDER BY id) FROM pgprompt.prompt_templates t), ''),
                coalesce((SELECT string_agg(to_jsonb(v)::text, ',' ORDER BY id) FROM pgprompt.prompt_versions v), ''),
                coalesce((SELECT string_agg(to_jsonb(l)::text, ',' ORDER BY template_id, label) FROM pgprompt.prompt_labels l), ''),
                coalesce((SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY id) FROM pgprompt.prompt_activations a), ''),
                coalesce((SELECT string_agg(to_jsonb(e)::text, ',' ORDER BY id) FROM pgprompt.ab_test_experiments e), ''),
                coalesce((SELECT string_agg(to_jsonb(t)::text, ',' ORDER BY id) FROM pgprompt.prompt_test_cases t), ''),
                coalesce((SELECT string_agg(to_jsonb(r)::text, ',' ORDER BY id) FROM pgprompt.prompt_alert_rules r), ''),
                {audit})"
        ),
    )
}

/// A fingerprint of the logging side: prices, executions, statistics (the
/// rollup and the pending deltas as stored) and guardrail findings.
pub fn log_fingerprint(client: &mut Client) -> String {
    one(
        client,
        "SELECT concat_ws('|',
            coalesce((SELECT string_agg(to_jsonb(p)::text, ',' ORDER BY id) FROM pgprompt.prompt_model_prices p), ''),
            coalesce((SELECT string_agg(to_jsonb(e)::text, ',' ORDER BY id) FROM pgprompt.prompt_executions e), ''),
            coalesce((SELECT string_agg(to_jsonb(s)::text, ',' ORDER BY to_jsonb(s)::text) FROM pgprompt.prompt_stats_hourly s), ''),
            coalesce((SELECT string_agg(to_jsonb(s)::text, ',' ORDER BY to_jsonb(s)::text) FROM pgprompt.prompt_stats_pending s), ''),
            coalesce((SELECT string_agg(to_jsonb(v)::text, ',' ORDER BY id) FROM pgprompt.prompt_guardrail_violations v), ''),
            (SELECT last_value FROM pgprompt.prompt_executions_id_seq))",
    )
}

/// `fingerprint` with the audit log counted.
pub fn snapshot(client: &mut Client) -> String {
    fingerprint(client, false)
}

/// Loads sql/examples.sql, as `make run` does.
pub fn load_examples(client: &mut Client) {
    let examples = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/examples.sql"))
        .expect("sql/examples.sql is readable");
    client.batch_execute(&examples).expect("the examples load");
}

/// A small deterministic generator (xorshift): generated corpora and
/// workloads are the same on every run, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
