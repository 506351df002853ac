//! The limits that protect the server are not the caller's to raise: any
//! session may lower them, only a superuser may raise one above the value
//! the server's configuration gives.

use pgprompt_tests::*;

/// Each capped setting and its value in the server's configuration (here
/// the built-in default, as the test cluster's postgresql.conf sets none).
const CAPPED: [(&str, i64); 6] = [
    ("pgprompt.render_fuel", 1_000_000),
    ("pgprompt.max_template_bytes", 16384),
    ("pgprompt.max_output_bytes", 1 << 20),
    ("pgprompt.max_vars_bytes", 1 << 20),
    ("pgprompt.max_scan_bytes", 1 << 20),
    ("pgprompt.cache_size", 1000),
];

/// A session as `role`, with the library loaded (as any pgprompt call loads it).
fn login(db: &TestDb, role: &str) -> Client {
    let mut c = db.login(role);
    c.batch_execute("SELECT pgprompt.prompt_bucket('u')").unwrap();
    c
}

/// The setting's current value in its base unit (bytes, not kB).
fn value(c: &mut Client, name: &str) -> i64 {
    one(c, &format!("SELECT setting::int8 FROM pg_settings WHERE name = '{name}'"))
}

#[test]
fn only_a_superuser_raises_a_limit_above_the_configuration() {
    let db = TestDb::new();
    let mut app = login(&db, "app");
    let mut admin = login(&db, "admin");
    for (name, configured) in CAPPED {
        for c in [&mut app, &mut admin] {
            assert_eq!(value(c, name), configured, "{name}");
            // Raising, every way a session can: refused with 42501.
            for sql in [
                format!("SET {name} = {}", configured + 1),
                format!("SELECT set_config('{name}', '{}', false)", configured * 1000),
                format!("SET LOCAL {name} = {}", configured + 1),
            ] {
                let e = c.batch_execute(&format!("BEGIN; {sql}; COMMIT")).unwrap_err();
                assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{sql}: {e:?}");
                c.batch_execute("ROLLBACK").unwrap();
                assert_eq!(value(c, name), configured, "{sql}");
            }
            // A function of one's own that sets it is refused (when created).
            let e = c
                .batch_execute(&format!(
                    "CREATE FUNCTION pg_temp.sneaky() RETURNS int LANGUAGE sql SET {name} = {} AS 'SELECT 1'",
                    configured + 1
                ))
                .unwrap_err();
            assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{name} in a function: {e:?}");
            // Lowering is always allowed, and going back up to the configured value.
            c.batch_execute(&format!("SET {name} = {}", configured / 2)).unwrap();
            assert_eq!(value(c, name), configured / 2);
            c.batch_execute(&format!("SET {name} = {configured}")).unwrap();
            assert_eq!(value(c, name), configured);
        }
        // A role cannot store a value above the ceiling for itself, with
        // the library loaded or not.
        let role = format!("{}_app", db.name);
        let e = app.batch_execute(&format!("ALTER ROLE {role} SET {name} = {}", configured * 10)).unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42501"), "ALTER ROLE SET as the role: {e:?}");
        let mut fresh = db.login("app");
        let e = fresh.batch_execute(&format!("ALTER ROLE {role} SET {name} = {}", configured * 10)).unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42501"), "ALTER ROLE SET before loading: {e:?}");
        // A superuser may raise it for a role or a database: it applies at login.
        let mut su = db.connect();
        su.batch_execute("SELECT pgprompt.prompt_bucket('u')").unwrap();
        for (set, reset) in [
            (format!("ALTER ROLE {role} SET {name} = {}", configured * 10), format!("ALTER ROLE {role} RESET {name}")),
            (format!("ALTER DATABASE {} SET {name} = {}", db.name, configured * 10), format!("ALTER DATABASE {} RESET {name}", db.name)),
        ] {
            su.batch_execute(&set).unwrap();
            let mut again = login(&db, "app");
            assert_eq!(value(&mut again, name), configured * 10, "{set}");
            // ... and the session may still lower it.
            again.batch_execute(&format!("SET {name} = {}", configured)).unwrap();
            assert_eq!(value(&mut again, name), configured);
            su.batch_execute(&reset).unwrap();
        }
        // A superuser may raise it.
        su.batch_execute(&format!("SET {name} = {}", configured * 2)).unwrap();
        assert_eq!(value(&mut su, name), configured * 2);
    }
    // A lowered limit applies: a render with less fuel runs dry.
    app.batch_execute("SET pgprompt.render_fuel = 100").unwrap();
    let e = app.batch_execute("SELECT pgprompt.prompt_render_text('{% for i in range(1000) %}x{% endfor %}')").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("54001"), "{e:?}");
}
