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
            // PGPROMPT_TEST_VERSION runs a test against an older version of
            // the extension, to see a fixed failure come back.
            let create = match std::env::var("PGPROMPT_TEST_VERSION") {
                Ok(v) if !v.is_empty() => format!("CREATE EXTENSION pgprompt VERSION '{v}'"),
                _ => "CREATE EXTENSION pgprompt".to_string(),
            };
            db.connect().batch_execute(&create).expect("CREATE EXTENSION pgprompt");
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

    /// A session as a login role that is a member of `pgprompt_<role>`
    /// (app, admin or reader), named `<database>_<role>` and made on first
    /// use, with pgprompt on its search_path.
    pub fn login(&self, role: &str) -> Client {
        let name = format!("{}_{role}", self.name);
        self.connect()
            .batch_execute(&format!(
                "DO $$ BEGIN CREATE ROLE {name} LOGIN IN ROLE pgprompt_{role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            ))
            .expect("creating a login role");
        let mut cfg = config(&self.name);
        cfg.user(&name);
        let mut c = cfg.connect(NoTls).expect("connecting as a login role");
        c.batch_execute("SET search_path = pgprompt, public").expect("set search_path");
        c
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
    fingerprint_without(client, full_audit, &[])
}

/// `fingerprint` with the named columns left out of every row: the upgrade
/// test compares rows written by 0.1.0 leaving out the columns 0.2.0 added.
pub fn fingerprint_without(client: &mut Client, full_audit: bool, columns: &[&str]) -> String {
    let drop = format!("'{{{}}}'::text[]", columns.join(","));
    let audit = if full_audit {
        "coalesce((SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY id) FROM pgprompt.prompt_audit_logs a), '')"
    } else {
        "(SELECT count(*)::text FROM pgprompt.prompt_audit_logs)"
    };
    one(
        client,
        &format!(
            "SELECT concat_ws('|',
                coalesce((SELECT string_agg((to_jsonb(t) - {drop})::text, ',' ORDER BY id) FROM pgprompt.prompt_templates t), ''),
                coalesce((SELECT string_agg((to_jsonb(v) - {drop})::text, ',' ORDER BY id) FROM pgprompt.prompt_versions v), ''),
                coalesce((SELECT string_agg((to_jsonb(l) - {drop})::text, ',' ORDER BY template_id, label) FROM pgprompt.prompt_labels l), ''),
                coalesce((SELECT string_agg((to_jsonb(a) - {drop})::text, ',' ORDER BY id) FROM pgprompt.prompt_activations a), ''),
                coalesce((SELECT string_agg((to_jsonb(e) - {drop})::text, ',' ORDER BY id) FROM pgprompt.ab_test_experiments e), ''),
                coalesce((SELECT string_agg((to_jsonb(t) - {drop})::text, ',' ORDER BY id) FROM pgprompt.prompt_test_cases t), ''),
                coalesce((SELECT string_agg((to_jsonb(r) - {drop})::text, ',' ORDER BY id) FROM pgprompt.prompt_alert_rules r), ''),
                {audit})"
        ),
    )
}

/// A fingerprint of the logging side: prices, executions, statistics (the
/// rollup and the pending deltas as stored) and guardrail findings.
pub fn log_fingerprint(client: &mut Client) -> String {
    let stats: String = one(
        client,
        "SELECT concat_ws('|',
            coalesce((SELECT string_agg(to_jsonb(s)::text, ',' ORDER BY to_jsonb(s)::text) FROM pgprompt.prompt_stats_hourly s), ''),
            coalesce((SELECT string_agg(to_jsonb(s)::text, ',' ORDER BY to_jsonb(s)::text) FROM pgprompt.prompt_stats_pending s), ''))",
    );
    format!("{}|{stats}", calls_fingerprint(client))
}

/// A fingerprint of prices, executions and guardrail findings.
pub fn calls_fingerprint(client: &mut Client) -> String {
    one(
        client,
        "SELECT concat_ws('|',
            coalesce((SELECT string_agg(to_jsonb(p)::text, ',' ORDER BY id) FROM pgprompt.prompt_model_prices p), ''),
            -- Without NULL columns: 0.2.0's trace columns are NULL in calls
            -- 0.1.0 logged, and its scores in findings 0.1.0 recorded.
            coalesce((SELECT string_agg(jsonb_strip_nulls(to_jsonb(e))::text, ',' ORDER BY id) FROM pgprompt.prompt_executions e), ''),
            coalesce((SELECT string_agg(jsonb_strip_nulls(to_jsonb(v))::text, ',' ORDER BY id) FROM pgprompt.prompt_guardrail_violations v), ''),
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

/// The extension's objects as they are defined in the catalog, one sorted
/// line per object or part of one: what the extension owns, every relation
/// with its columns, constraints, indexes, triggers and privileges, every
/// function with its full definition (settings such as the pinned
/// search_path included), types, sequences, the schema, what pg_dump keeps
/// and the roles. Two databases whose lines are equal hold the same schema
/// object for object; the upgrade test compares an updated database with a
/// fresh install this way.
pub fn catalog(client: &mut Client) -> Vec<String> {
    const SQL: &str = r#"
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pgprompt'),
members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (SELECT objid AS oid FROM members WHERE classid = 'pg_class'::regclass
         UNION SELECT t.typrelid FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
                WHERE t.typrelid <> 0)
SELECT line FROM (
    SELECT format('member %s %s', o.type, o.identity) AS line
      FROM members m, pg_identify_object(m.classid, m.objid, m.objsubid) o
    UNION ALL
    SELECT format('relation %s kind=%s persistence=%s options=%s rls=%s acl=%s comment=%s', c.oid::regclass, c.relkind,
                  c.relpersistence, c.reloptions, c.relrowsecurity, c.relacl, obj_description(c.oid, 'pg_class'))
      FROM pg_class c JOIN rels USING (oid)
    UNION ALL
    SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s acl=%s comment=%s',
                  a.attrelid::regclass, a.attname, row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity,
                  a.attgenerated, a.attacl, col_description(a.attrelid, a.attnum))
      FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s.%s %s deferrable=%s deferred=%s comment=%s', co.conrelid::regclass, co.conname,
                  pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, obj_description(co.oid, 'pg_constraint'))
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT format('index %s comment=%s', pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class'))
      FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s enabled=%s comment=%s', pg_get_triggerdef(t.oid), t.tgenabled, obj_description(t.oid, 'pg_trigger'))
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('rule %s', pg_get_ruledef(ru.oid)) FROM pg_rewrite ru JOIN rels r ON r.oid = ru.ev_class
    UNION ALL
    SELECT format('policy %s on %s', pol.polname, pol.polrelid::regclass) FROM pg_policy pol JOIN rels r ON r.oid = pol.polrelid
    UNION ALL
    SELECT format('sequence %s %s start=%s increment=%s max=%s min=%s cycle=%s', s.seqrelid::regclass,
                  format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcycle)
      FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
    UNION ALL
    SELECT format('function %s owner-secdef=%s acl=%s comment=%s def=%s', p.oid::regprocedure, p.prosecdef, p.proacl,
                  obj_description(p.oid, 'pg_proc'),
                  CASE WHEN p.prokind = 'a'
                       THEN (SELECT format('aggregate sfunc=%s stype=%s final=%s init=%s', a.aggtransfn,
                                           format_type(a.aggtranstype, NULL), a.aggfinalfn, a.agginitval)
                               FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                       ELSE pg_get_functiondef(p.oid) END)
      FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT format('type %s kind=%s acl=%s comment=%s', t.oid::regtype, t.typtype, t.typacl, obj_description(t.oid, 'pg_type'))
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('schema %s acl=%s comment=%s', n.nspname, n.nspacl, obj_description(n.oid, 'pg_namespace'))
      FROM pg_namespace n WHERE n.nspname = 'pgprompt'
    UNION ALL
    SELECT format('dumped %s where=%s', x.cfg::regclass, x.cond)
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) x(cfg, cond) WHERE e.extname = 'pgprompt'
    UNION ALL
    SELECT format('role %s login=%s member of %s', r.rolname, r.rolcanlogin,
                  (SELECT array_agg(b.rolname ORDER BY b.rolname) FROM pg_auth_members am JOIN pg_roles b ON b.oid = am.roleid
                    WHERE am.member = r.oid AND b.rolname LIKE 'pgprompt\_%'))
      FROM pg_roles r WHERE r.rolname LIKE 'pgprompt\_%' AND NOT r.rolcanlogin
) lines ORDER BY line COLLATE "C""#;
    client.query(SQL, &[]).expect("reading the catalog").iter().map(|r| r.get(0)).collect()
}

/// What differs between two `catalog`s: lines only in `a` (-) or only in `b` (+).
pub fn catalog_diff(a: &[String], b: &[String]) -> Vec<String> {
    let (sa, sb): (std::collections::BTreeSet<&String>, std::collections::BTreeSet<&String>) = (a.iter().collect(), b.iter().collect());
    sa.difference(&sb).map(|l| format!("- {l}")).chain(sb.difference(&sa).map(|l| format!("+ {l}"))).collect()
}

/// Runs `script` (a file of tests/oracle/) with the oracles' Python
/// (PGPROMPT_ORACLE_PYTHON, which `make test` sets up with the packages of
/// tests/oracle/requirements.txt) and returns the JSON object of each line
/// it prints.
pub fn oracle_lines(script: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let python = std::env::var("PGPROMPT_ORACLE_PYTHON")
        .expect("PGPROMPT_ORACLE_PYTHON names the oracles' Python (tests/oracle/requirements.txt; make test sets it up)");
    let path = format!("{}/oracle/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(&python).arg(&path).args(args).output().unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(out.status.success(), "the oracle {script} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}
