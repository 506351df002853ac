//! Versioned templates: save, activate, rollback, labels, delete, audit,
//! notifications, and the bad inputs of each, against a real server.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use pgprompt_tests::*;
use pgprompt_tests::postgres::fallible_iterator::FallibleIterator;

#[test]
fn save_creates_the_template_and_appends_versions() {
    let db = TestDb::new();
    let mut c = db.connect();
    let v1: i32 = one(&mut c, "SELECT prompt_save('greet', 'Hello {{ name }}!', '{\"model\": \"gemini-2.5-flash\"}', 'first', description => 'A greeting', category => 'demo')");
    assert_eq!(v1, 1);
    let v2: i32 = one(&mut c, "SELECT prompt_save('greet', 'Hi {{ name }} from {{ place }}', message => 'shorter')");
    assert_eq!(v2, 2);

    // The first version is active; later ones wait for prompt_activate.
    let row = c.query_one("SELECT active_version, description, category, created_by FROM prompt_templates WHERE name = 'greet'", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("A greeting"));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("demo"));
    assert_eq!(row.get::<_, String>(3), "postgres");

    let rows = c
        .query("SELECT version, variables, parent_version, message, model_config::text, kind FROM prompt_versions ORDER BY version", &[])
        .unwrap();
    assert_eq!(rows[0].get::<_, Vec<String>>(1), vec!["name"]);
    assert_eq!(rows[1].get::<_, Vec<String>>(1), vec!["name", "place"]);
    assert_eq!(rows[0].get::<_, Option<i32>>(2), None);
    assert_eq!(rows[1].get::<_, Option<i32>>(2), Some(1), "lineage defaults to the newest version");
    assert_eq!(rows[1].get::<_, Option<String>>(3).as_deref(), Some("shorter"));
    assert_eq!(rows[0].get::<_, String>(4), "{\"model\": \"gemini-2.5-flash\"}");
    assert_eq!(rows[0].get::<_, String>(5), "text");

    // An explicit parent records a branch.
    let v3: i32 = one(&mut c, "SELECT prompt_save('greet', 'Yo {{ name }}', parent => 1)");
    assert_eq!(v3, 3);
    assert_eq!(one::<i32>(&mut c, "SELECT parent_version FROM prompt_versions WHERE version = 3"), 1);
}

#[test]
fn prompt_get_describes_a_version() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('t', 'A {{ a }}');
         SELECT prompt_save('t', 'B {{ b }}', '{\"temperature\": 0.2}');
         SELECT prompt_label('t', 2, 'staging');",
    )
    .unwrap();
    let row = c.query_one("SELECT name, version, kind, body, config::text, variables, is_active, labels FROM prompt_get('t')", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(row.get::<_, String>(3), "A {{ a }}");
    assert!(row.get::<_, bool>(6));
    let row = c.query_one("SELECT version, config::text, variables, is_active, labels FROM prompt_get('t', 2)", &[]).unwrap();
    assert_eq!(row.get::<_, String>(1), "{\"temperature\": 0.2}");
    assert_eq!(row.get::<_, Vec<String>>(2), vec!["b"]);
    assert!(!row.get::<_, bool>(3));
    assert_eq!(row.get::<_, Vec<String>>(4), vec!["staging"]);
    assert_eq!(one::<i32>(&mut c, "SELECT version FROM prompt_get('t', label => 'staging')"), 2);
    assert_eq!(one::<i32>(&mut c, "SELECT version FROM prompt_get('t', label => 'latest')"), 2);
    assert_eq!(one::<i32>(&mut c, "SELECT version FROM prompt_get('t', label => 'active')"), 1);

    expect_error(&mut c, "SELECT * FROM prompt_get('nope')", "42704");
    expect_error(&mut c, "SELECT * FROM prompt_get('t', 9)", "42704");
    expect_error(&mut c, "SELECT * FROM prompt_get('t', label => 'prod')", "42704");
    expect_error(&mut c, "SELECT * FROM prompt_get('t', 1, 'staging')", "22023");
    expect_error(&mut c, "SELECT * FROM prompt_get(NULL)", "22004");
}

#[test]
fn activation_takes_effect_for_every_session_at_commit() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let mut app = db.connect();
    admin.batch_execute("SELECT prompt_save('t', 'one'); SELECT prompt_save('t', 'two');").unwrap();
    // The app session has version 1 cached.
    for _ in 0..3 {
        assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t')"), "one");
    }

    // Uncommitted: the admin's own transaction sees the change, nobody else does.
    admin.batch_execute("BEGIN; SELECT prompt_activate('t', 2);").unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t')"), "two");
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t')"), "one");
    // Rolled back: back to version 1, in the admin's session too.
    admin.batch_execute("ROLLBACK").unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t')"), "one");
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t')"), "one");

    // Committed: the very next render of every session uses version 2.
    admin.batch_execute("SELECT prompt_activate('t', 2)").unwrap();
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t')"), "two");
    assert_eq!(one::<i32>(&mut app, "SELECT active_version FROM prompt_templates"), 2);

    // A savepoint rolled back undoes the activation for its own session.
    admin
        .batch_execute("BEGIN; SAVEPOINT s; SELECT prompt_activate('t', 1);")
        .unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t')"), "one");
    admin.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t')"), "two");
    admin.batch_execute("COMMIT").unwrap();
}

#[test]
fn labels_and_new_versions_reach_other_sessions_too() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let mut app = db.connect();
    admin.batch_execute("SELECT prompt_save('t', 'one'); SELECT prompt_save('t', 'two'); SELECT prompt_label('t', 1, 'production');").unwrap();
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t', label => 'production')"), "one");
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t', label => 'latest')"), "two");
    admin.batch_execute("SELECT prompt_label('t', 2, 'production'); SELECT prompt_save('t', 'three');").unwrap();
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t', label => 'production')"), "two");
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t', label => 'latest')"), "three");
    // A direct UPDATE by an administrator is seen as well.
    admin.batch_execute("UPDATE prompt_templates SET active_version = 3 WHERE name = 't'").unwrap();
    assert_eq!(one::<String>(&mut app, "SELECT prompt_render('t')"), "three");
}

#[test]
fn rollback_walks_back_like_undo() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2'); SELECT prompt_save('t', 'v3');
         SELECT prompt_activate('t', 2); SELECT prompt_activate('t', 3);",
    )
    .unwrap();
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 2);
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t')"), "v2");
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 1);
    let before = snapshot(&mut c);
    let msg = expect_error(&mut c, "SELECT prompt_rollback('t')", "55000");
    assert!(msg.contains("no earlier active version"), "{msg}");
    assert_eq!(snapshot(&mut c), before, "a refused rollback changes nothing");

    // Activating again starts a new undo history from there.
    c.batch_execute("SELECT prompt_activate('t', 3)").unwrap();
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 1);
    // A direct UPDATE is recorded too, so rollback undoes it.
    c.batch_execute("UPDATE prompt_templates SET active_version = 2").unwrap();
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 1);
    let actions: Vec<String> = c
        .query("SELECT action FROM prompt_activations ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["create", "activate", "activate", "rollback", "rollback", "activate", "rollback", "activate", "rollback"]);

    // A template that was never re-activated has nothing to roll back to.
    c.batch_execute("SELECT prompt_save('fresh', 'x')").unwrap();
    expect_error(&mut c, "SELECT prompt_rollback('fresh')", "55000");
    expect_error(&mut c, "SELECT prompt_rollback('nope')", "42704");
    expect_error(&mut c, "SELECT prompt_rollback(NULL)", "22004");
}

#[test]
fn activating_an_active_version_is_a_notice_not_a_change() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1')").unwrap();
    let before = snapshot(&mut c);
    c.batch_execute("SELECT prompt_activate('t', 1)").unwrap();
    assert_eq!(snapshot(&mut c), before);
}

/// production and the active version are one pointer: labelling production
/// activates, activating moves production, a rollback moves both back, and
/// every session and prompt_get see the same release.
#[test]
fn production_is_the_active_version() {
    let db = TestDb::new();
    let mut c = db.connect();
    let mut app = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2'); SELECT prompt_save('t', 'v3');").unwrap();
    let release = |app: &mut Client| -> (String, String, i32, Vec<String>) {
        (
            one(app, "SELECT prompt_render('t')"),
            one(app, "SELECT prompt_render('t', label => 'production')"),
            one(app, "SELECT version FROM prompt_get('t', label => 'production')"),
            one(app, "SELECT labels FROM prompt_get('t')"),
        )
    };
    assert_eq!(release(&mut app), ("v1".into(), "v1".into(), 1, vec!["production".to_string()]));
    c.batch_execute("SELECT prompt_activate('t', 2); SELECT prompt_label('t', 3, 'production');").unwrap();
    assert_eq!(release(&mut app), ("v3".into(), "v3".into(), 3, vec!["production".to_string()]));
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 't'"), 3);
    // The issue's case: label 3 production, activate 3, roll back: v2 serves,
    // and production says 2.
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 2);
    assert_eq!(release(&mut app), ("v2".into(), "v2".into(), 2, vec!["production".to_string()]));
    assert_eq!(one::<i32>(&mut app, "SELECT version FROM v_labels WHERE template = 't' AND label = 'production'"), 2);
    // A direct UPDATE by an administrator moves the release too, and is history.
    c.batch_execute("UPDATE prompt_templates SET active_version = 1 WHERE name = 't'").unwrap();
    assert_eq!(release(&mut app), ("v1".into(), "v1".into(), 1, vec!["production".to_string()]));
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('t')"), 2);
    // Free labels stay free, and sit beside production in prompt_get.
    c.batch_execute("SELECT prompt_label('t', 2, 'staging'), prompt_label('t', 3, 'canary')").unwrap();
    assert_eq!(one::<Vec<String>>(&mut app, "SELECT labels FROM prompt_get('t', 2)"), ["production", "staging"]);
    assert_eq!(one::<Vec<String>>(&mut app, "SELECT labels FROM prompt_get('t', 3)"), ["canary"]);
    // production cannot be stored as a free label, even by direct SQL.
    expect_error(
        &mut c,
        "INSERT INTO prompt_labels (template_id, label, version) SELECT id, 'production', 3 FROM prompt_templates WHERE name = 't'",
        "23514",
    );
}

#[test]
fn labels_move_in_one_call_and_can_be_removed() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2');").unwrap();
    c.batch_execute("SELECT prompt_label('t', 1, 'production'); SELECT prompt_label('t', 1, 'staging');").unwrap();
    c.batch_execute("SELECT prompt_label('t', 2, 'production')").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t', label => 'production')"), "v2");
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t', label => 'staging')"), "v1");
    assert!(one::<bool>(&mut c, "SELECT prompt_unlabel('t', 'staging')"));
    assert!(!one::<bool>(&mut c, "SELECT prompt_unlabel('t', 'staging')"));
    expect_error(&mut c, "SELECT prompt_render('t', label => 'staging')", "42704");
    // production is the release: moved, never removed.
    let msg = expect_error(&mut c, "SELECT prompt_unlabel('t', 'production')", "55000");
    assert!(msg.contains("release"), "{msg}");
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t', label => 'production')"), "v2");

    let before = snapshot(&mut c);
    for (sql, code) in [
        ("SELECT prompt_label('t', 1, 'latest')", "22023"),
        ("SELECT prompt_label('t', 1, 'active')", "22023"),
        ("SELECT prompt_label('t', 1, 'Bad Label')", "22023"),
        ("SELECT prompt_label('t', 1, '')", "22023"),
        ("SELECT prompt_label('t', 7, 'canary')", "42704"),
        ("SELECT prompt_label('nope', 1, 'canary')", "42704"),
        ("SELECT prompt_label('t', NULL, 'canary')", "22004"),
        ("SELECT prompt_label('t', 1, NULL)", "22004"),
        ("SELECT prompt_unlabel('nope', 'x')", "42704"),
    ] {
        expect_error(&mut c, sql, code);
    }
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn versions_are_immutable() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1')").unwrap();
    let before = snapshot(&mut c);
    expect_error(&mut c, "UPDATE prompt_versions SET body = 'changed'", "55000");
    expect_error(&mut c, "DELETE FROM prompt_versions", "55000");
    expect_error(&mut c, "TRUNCATE prompt_versions CASCADE", "55000");
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn a_version_of_another_template_cannot_become_active() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('a', 'a1'); SELECT prompt_save('b', 'b1'); SELECT prompt_save('b', 'b2');").unwrap();
    let before = snapshot(&mut c);
    // 'a' has no version 2 (only 'b' does): refused through the API...
    expect_error(&mut c, "SELECT prompt_activate('a', 2)", "42704");
    // ...and through SQL, at once by the trigger...
    expect_error(&mut c, "UPDATE prompt_templates SET active_version = 2 WHERE name = 'a'", "42704");
    // A template inserted by hand must have its active version at commit.
    let err = c.batch_execute("INSERT INTO prompt_templates (name, active_version) VALUES ('hand', 1)");
    assert_eq!(sqlstate(err), "23503");
    c.batch_execute(
        "BEGIN;
         INSERT INTO prompt_templates (name, active_version) VALUES ('hand', 1);
         INSERT INTO prompt_versions (template_id, version, body) SELECT id, 1, 'by hand' FROM prompt_templates WHERE name = 'hand';
         COMMIT;",
    )
    .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('hand')"), "by hand");
    c.batch_execute("SELECT prompt_delete('hand')").unwrap();
    let after = snapshot(&mut c);
    assert_eq!(after.split('|').take(4).collect::<Vec<_>>(), before.split('|').take(4).collect::<Vec<_>>());
}

#[test]
fn concurrent_activations_leave_exactly_one_active_version() {
    let db = TestDb::new();
    let mut setup = db.connect();
    setup
        .batch_execute("SELECT prompt_save('t', 'v' || g) FROM generate_series(1, 9) g")
        .unwrap();
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (2..=5)
            .map(|v| {
                let barrier = barrier.clone();
                let mut c = db.connect();
                thread::spawn(move || {
                    c.batch_execute("BEGIN").unwrap();
                    barrier.wait();
                    c.batch_execute(&format!("SELECT prompt_activate('t', {})", v + round)).unwrap();
                    thread::sleep(Duration::from_millis(5));
                    c.batch_execute("COMMIT").unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let active: i32 = one(&mut setup, "SELECT active_version FROM prompt_templates WHERE name = 't'");
        assert!((2 + round..=5 + round).contains(&active));
        // The history agrees with the table: its last entry is what is active.
        let last: i32 = one(&mut setup, "SELECT version FROM prompt_activations ORDER BY id DESC LIMIT 1");
        assert_eq!(last, active);
        let rendered: String = one(&mut setup, "SELECT prompt_render('t')");
        assert_eq!(rendered, format!("v{active}"));
    }
}

#[test]
fn concurrent_saves_number_versions_without_gaps() {
    let db = TestDb::new();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let mut c = db.connect();
            thread::spawn(move || {
                for j in 0..10 {
                    c.batch_execute(&format!("SELECT prompt_save('shared', 'from {i} #{j}')")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = db.connect();
    let versions: Vec<i32> = c.query("SELECT version FROM prompt_versions ORDER BY version", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_templates"), 1);
}

#[test]
fn delete_removes_everything_but_the_audit() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2'); SELECT prompt_label('t', 1, 'staging'); SELECT prompt_activate('t', 2);").unwrap();
    c.batch_execute("SELECT prompt_delete('t')").unwrap();
    for table in ["prompt_templates", "prompt_versions", "prompt_labels", "prompt_activations"] {
        assert_eq!(one::<i64>(&mut c, &format!("SELECT count(*) FROM {table}")), 0, "{table}");
    }
    let before: serde_json::Value = one(&mut c, "SELECT before FROM prompt_audit_logs WHERE action = 'delete'");
    assert_eq!(before["name"], "t");
    assert_eq!(before["versions"], 2);
    assert_eq!(before["labels"]["production"], 2);
    assert_eq!(before["labels"]["staging"], 1);
    // Both bodies survive in the audit log.
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_audit_logs WHERE action = 'new_version' AND after->>'body' LIKE 'v%'"), 2);
    expect_error(&mut c, "SELECT prompt_render('t')", "42704");
    expect_error(&mut c, "SELECT prompt_delete('t')", "42704");
    // The name is free again.
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_save('t', 'again')"), 1);
}

#[test]
fn every_change_is_audited() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SET application_name = 'audit-test';
         SELECT prompt_save('t', 'v1');
         SELECT prompt_save('t', 'v2', description => 'desc');
         SELECT prompt_activate('t', 2);
         SELECT prompt_rollback('t');
         SELECT prompt_label('t', 2, 'production');
         SELECT prompt_label('t', 1, 'staging');
         SELECT prompt_label('t', 2, 'staging');
         SELECT prompt_unlabel('t', 'staging');
         SELECT prompt_delete('t');",
    )
    .unwrap();
    let rows = c
        .query("SELECT action, object_type, object_name, version, actor, application FROM prompt_audit_logs ORDER BY id", &[])
        .unwrap();
    let actions: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected = [
        ("create", "template"),
        ("new_version", "version"),
        ("update", "template"),
        ("new_version", "version"),
        ("activate", "activation"),
        ("rollback", "activation"),
        ("activate", "activation"),
        ("label_set", "label"),
        ("label_move", "label"),
        ("label_remove", "label"),
        ("delete", "template"),
    ];
    assert_eq!(actions, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(rows[6].get::<_, Option<i32>>(3), Some(2));
    assert_eq!(rows[7].get::<_, Option<String>>(2).as_deref(), Some("t@staging"));
    assert_eq!(rows[4].get::<_, Option<i32>>(3), Some(2));
    assert!(rows.iter().all(|r| r.get::<_, String>(4) == "postgres"));
    assert!(rows.iter().all(|r| r.get::<_, Option<String>>(5).as_deref() == Some("audit-test")));
    let update: serde_json::Value = one(&mut c, "SELECT jsonb_build_object('before', before, 'after', after) FROM prompt_audit_logs WHERE action = 'update'");
    assert_eq!(update["before"]["description"], serde_json::Value::Null);
    assert_eq!(update["after"]["description"], "desc");
}

#[test]
fn the_audit_log_is_append_only_for_everyone_but_superusers() {
    let db = TestDb::new();
    let mut c = db.connect();
    let role = format!("{}_writer", db.name);
    c.batch_execute(&format!(
        "SELECT prompt_save('t', 'v1');
         CREATE ROLE {role} LOGIN;
         GRANT USAGE ON SCHEMA pgprompt TO {role};
         GRANT SELECT, UPDATE, DELETE, TRUNCATE ON prompt_audit_logs TO {role};"
    ))
    .unwrap();
    let mut cfg = config(&db.name);
    cfg.user(&role);
    let mut writer = cfg.connect(NoTls).unwrap();
    let count = |c: &mut Client| one::<i64>(c, "SELECT count(*) FROM pgprompt.prompt_audit_logs");
    let before = count(&mut c);
    for sql in [
        "UPDATE pgprompt.prompt_audit_logs SET actor = 'someone else'",
        "DELETE FROM pgprompt.prompt_audit_logs",
        "TRUNCATE pgprompt.prompt_audit_logs",
    ] {
        let msg = expect_error(&mut writer, sql, "42501");
        assert!(msg.contains("append-only"), "{msg}");
    }
    assert_eq!(count(&mut c), before);
    drop(writer);
    // A superuser may (to purge old history, for instance).
    c.batch_execute("DELETE FROM prompt_audit_logs WHERE action = 'create'").unwrap();
    assert_eq!(count(&mut c), before - 1);
    c.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};")).unwrap();
}

#[test]
fn changes_are_notified_at_commit_only() {
    let db = TestDb::new();
    let mut listener = db.connect();
    listener.batch_execute("LISTEN pgprompt_changes").unwrap();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2');").unwrap();
    c.batch_execute("BEGIN; SELECT prompt_activate('t', 2); ROLLBACK;").unwrap();
    c.batch_execute("SELECT prompt_activate('t', 2)").unwrap();
    c.batch_execute("SELECT prompt_rollback('t')").unwrap();
    c.batch_execute("SELECT prompt_label('t', 2, 'production')").unwrap();
    c.batch_execute("SELECT prompt_label('t', 2, 'staging')").unwrap();
    c.batch_execute("SELECT prompt_unlabel('t', 'staging')").unwrap();

    let mut got = Vec::new();
    let mut notes = listener.notifications();
    let mut iter = notes.timeout_iter(Duration::from_secs(2));
    while let Some(n) = iter.next().unwrap() {
        assert_eq!(n.channel(), "pgprompt_changes");
        got.push(serde_json::from_str::<serde_json::Value>(n.payload()).unwrap());
        if got.len() == 6 {
            break;
        }
    }
    let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        got,
        vec![
            j(r#"{"template": "t", "version": 1, "action": "create"}"#),
            j(r#"{"template": "t", "version": 2, "action": "activate", "label": "production"}"#),
            j(r#"{"template": "t", "version": 1, "action": "rollback", "label": "production"}"#),
            j(r#"{"template": "t", "version": 2, "action": "activate", "label": "production"}"#),
            j(r#"{"template": "t", "version": 2, "action": "label", "label": "staging"}"#),
            j(r#"{"template": "t", "version": 2, "action": "unlabel", "label": "staging"}"#),
        ],
        "the rolled-back activation must not be announced"
    );
    // The same events, in the same order, are recorded in prompt_events
    // (what webhooks deliver), and nothing else is.
    let recorded: Vec<serde_json::Value> = c
        .query("SELECT payload FROM prompt_events WHERE channel = 'pgprompt_changes' ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, got);
    // No role writes them: not an application, not an administrator.
    for role in ["pgprompt_app", "pgprompt_admin"] {
        let forged = c.batch_execute(&format!(
            "BEGIN; SET LOCAL ROLE {role}; INSERT INTO prompt_events (channel, payload) VALUES ('pgprompt_changes', '{{}}'); COMMIT;"
        ));
        assert_eq!(pgprompt_tests::sqlstate(forged), "42501", "{role}");
        c.batch_execute("ROLLBACK").unwrap();
        let called = c.batch_execute(&format!("BEGIN; SET LOCAL ROLE {role}; SELECT _publish('pgprompt_changes', '{{}}'); COMMIT;"));
        assert_eq!(pgprompt_tests::sqlstate(called), "42501", "{role}");
        c.batch_execute("ROLLBACK").unwrap();
    }
}

#[test]
fn bad_saves_are_refused_and_change_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1')").unwrap();
    let before = snapshot(&mut c);
    let cases = [
        ("SELECT prompt_save('t', 'Hello {{ name ')", "42601"),
        ("SELECT prompt_save('t', '{% for x in y %}never closed')", "42601"),
        ("SELECT prompt_save('t', '{% include ''other'' %}')", "42601"),
        ("SELECT prompt_save('t', 'x', '[1, 2]')", "22023"),
        ("SELECT prompt_save('t', 'x', '\"text\"')", "22023"),
        ("SELECT prompt_save('t', 'x', kind => 'poem')", "22023"),
        ("SELECT prompt_save('t', 'not json', kind => 'chat')", "42601"),
        ("SELECT prompt_save('bad name!', 'x')", "22023"),
        ("SELECT prompt_save('', 'x')", "22023"),
        ("SELECT prompt_save('t', 'x', parent => 9)", "42704"),
        ("SELECT prompt_save('new', 'x', parent => 1)", "42704"),
        ("SELECT prompt_save(NULL, 'x')", "22004"),
        ("SELECT prompt_save('t', NULL)", "22004"),
        ("SELECT prompt_save('t', 'x', 'null')", "22023"),
        ("SELECT prompt_save('t', 'x', kind => NULL)", "22004"),
        ("SELECT prompt_activate(NULL, 1)", "22004"),
        ("SELECT prompt_activate('t', NULL)", "22004"),
        ("SELECT prompt_activate('nope', 1)", "42704"),
        ("SELECT prompt_activate('t', 5)", "42704"),
        ("SELECT prompt_delete(NULL)", "22004"),
    ];
    for (sql, code) in cases {
        expect_error(&mut c, sql, code);
    }
    assert_eq!(snapshot(&mut c), before);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let db = TestDb::new();
    let mut c = db.connect();
    let msg = expect_error(&mut c, "SELECT prompt_save('t', E'line one\\nline {{ two ')", "42601");
    assert!(msg.contains("line 2") && msg.contains("column"), "{msg}");
    let msg = expect_error(
        &mut c,
        r#"SELECT prompt_save('c', '[{"role": "user", "content": "ok"}, {"role": "user", "content": "{% if %}"}]', kind => 'chat')"#,
        "42601",
    );
    assert!(msg.starts_with("message 2 content:"), "{msg}");
}

#[test]
fn body_size_is_limited_by_a_setting() {
    let db = TestDb::new();
    let mut c = db.connect();
    // The seeds' limit by default (settings exist once the library is loaded).
    c.batch_execute("LOAD 'pgprompt'").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT current_setting('pgprompt.max_template_bytes')"), "16kB");
    let before = snapshot(&mut c);
    let msg = expect_error(&mut c, "SELECT prompt_save('big', repeat('x', 16385))", "54000");
    assert!(msg.contains("16385 bytes"), "{msg}");
    assert_eq!(snapshot(&mut c), before);
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_save('big', repeat('x', 16384))"), 1);
    c.batch_execute("SET pgprompt.max_template_bytes = '100B'").unwrap();
    expect_error(&mut c, "SELECT prompt_save('big', repeat('x', 101))", "54000");
    expect_error(&mut c, "SELECT prompt_variables(repeat('x', 101))", "54000");
    expect_error(&mut c, "SELECT prompt_render_text(repeat('x', 101))", "54000");
}
