//! Audit integrity: what an administrator writes into a row (an old
//! created_at, builtin = true) cannot make a change pass for restored
//! history, and nobody can write audit rows of their own.

use pgprompt_tests::postgres::fallible_iterator::FallibleIterator;
use pgprompt_tests::*;

fn audit_count(c: &mut Client) -> i64 {
    one(c, "SELECT count(*) FROM pgprompt.prompt_audit_logs")
}

#[test]
fn old_stamps_and_builtin_flags_do_not_skip_the_audit() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute("SELECT prompt_save('t', 'v1 {{ x }}'); SELECT prompt_label('t', 1, 'staging');").unwrap();
    let mut a = db.login("admin");
    let mut listener = db.connect();
    listener.batch_execute("LISTEN pgprompt_changes").unwrap();
    // Each step claims to be history from 2001; each must be recorded as what it is.
    let steps: [(&str, &str); 7] = [
        (
            "a new version with an old created_at",
            "INSERT INTO prompt_versions (template_id, version, body, parent_version, created_at, created_by)
             SELECT id, 2, 'v2 sneaked in', 1, '2001-01-01', 'nobody' FROM prompt_templates WHERE name = 't'",
        ),
        (
            "an activation with an old activated_at, then switching to it",
            "INSERT INTO prompt_activations (template_id, version, previous_version, action, activated_at, activated_by)
             SELECT id, 2, 1, 'activate', '2001-01-01', 'nobody' FROM prompt_templates WHERE name = 't';
             UPDATE prompt_templates SET active_version = 2 WHERE name = 't'",
        ),
        (
            "moving staging through a re-inserted label",
            "DELETE FROM prompt_labels WHERE label = 'staging';
             INSERT INTO prompt_labels (template_id, label, version, created_at, updated_at)
             SELECT id, 'staging', 2, '2001-01-01', '2001-01-01' FROM prompt_templates WHERE name = 't'",
        ),
        (
            "replacing the PII guardrail by a disabled one",
            "INSERT INTO prompt_guardrails (id, name, kind, action, enabled, builtin, created_at)
             SELECT id, name, kind, action, false, true, '2001-01-01' FROM prompt_guardrails WHERE name = 'pii_detection_basic'",
        ),
        (
            "replacing the cost alert by a disabled one",
            "INSERT INTO prompt_alert_rules (name, metric, threshold, time_window, enabled, builtin, created_at)
             SELECT name, metric, threshold, time_window, false, true, '2001-01-01' FROM prompt_alert_rules WHERE name = 'daily_cost'",
        ),
        (
            "a free gpt-4o",
            "INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok, builtin, created_at)
             SELECT model, effective_from, 0, 0, true, '2001-01-01' FROM prompt_model_prices WHERE model = 'gpt-4o'",
        ),
        (
            "a built-in guardrail of one's own",
            r#"INSERT INTO prompt_guardrails (name, kind, action, builtin, created_at, config) VALUES ('mine', 'keywords', 'log', true, '2001-01-01', '{"keywords": ["x"]}')"#,
        ),
    ];
    let mut failures = Vec::new();
    for (what, sql) in steps {
        let before = audit_count(&mut su);
        match a.batch_execute(sql) {
            // Refused (a unique key: the built-in row is still there): recorded or not, nothing changed.
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                if code != "23505" {
                    failures.push(format!("{what}: unexpected error {e:?}"));
                }
            }
            Ok(()) => {
                if audit_count(&mut su) == before {
                    failures.push(format!("{what}: no audit row"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The rows carry the real time and who made them; nothing is built in
    // but what the extension installed.
    let stamps: Vec<String> = su
        .query(
            "SELECT 'version ' || created_at::date || ' ' || created_by FROM prompt_versions WHERE version = 2
             UNION ALL SELECT 'activation ' || activated_at::date || ' ' || activated_by FROM prompt_activations WHERE version = 2
             UNION ALL SELECT 'label ' || created_at::date FROM prompt_labels WHERE label = 'staging'
             UNION ALL SELECT 'guardrail ' || name || ' builtin ' || builtin FROM prompt_guardrails WHERE name = 'mine'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let today: String = one(&mut su, "SELECT current_date::text");
    let login = format!("{}_admin", db.name);
    assert_eq!(
        stamps,
        [
            format!("version {today} {login}"),
            format!("activation {today} {login}"),
            format!("label {today}"),
            "guardrail mine builtin false".to_string()
        ]
    );
    // The built-in guardrail, alert and price are untouched.
    assert!(one::<bool>(&mut su, "SELECT enabled AND builtin FROM prompt_guardrails WHERE name = 'pii_detection_basic'"));
    assert!(one::<bool>(&mut su, "SELECT enabled FROM prompt_alert_rules WHERE name = 'daily_cost'"));
    assert_eq!(one::<String>(&mut su, "SELECT prompt_cost('gpt-4o', 1000000, 0)::text"), "2.5");
    // The activation and the label move were announced too.
    let mut heard: Vec<serde_json::Value> = Vec::new();
    let mut notes = listener.notifications();
    let mut iter = notes.timeout_iter(std::time::Duration::from_secs(1));
    while let Ok(Some(n)) = iter.next() {
        heard.push(serde_json::from_str(n.payload()).unwrap());
    }
    assert!(heard.iter().any(|n| n["action"] == "activate" && n["version"] == 2), "{heard:?}");
    assert!(heard.iter().any(|n| n["label"] == "staging" && n["version"] == 2), "{heard:?}");
    // The audit log tells the whole story, in order.
    let actions: Vec<String> = su
        .query("SELECT action FROM prompt_audit_logs WHERE actor = $1 ORDER BY id", &[&login])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["new_version", "activate", "label_remove", "label_set", "create"]);
}

#[test]
fn nobody_calls_the_audit_writer() {
    let db = TestDb::new();
    let mut a = db.login("admin");
    let e = a.batch_execute("SELECT pgprompt._audit('rollback', 'activation', 't', NULL, 1, NULL, NULL)").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e:?}");
    let e = a
        .batch_execute("SELECT pgprompt._replace_builtin('pgprompt.prompt_guardrails', 'name', 0, 'pii_detection_basic')")
        .map(|_| ());
    // Callable, but outside a restore it does nothing.
    assert!(e.is_ok(), "{e:?}");
    let mut su = db.connect();
    assert!(one::<bool>(&mut su, "SELECT EXISTS (SELECT 1 FROM prompt_guardrails WHERE name = 'pii_detection_basic')"));
    assert_eq!(one::<i64>(&mut su, "SELECT count(*) FROM prompt_audit_logs WHERE object_name = 't'"), 0);
    // Built-in guardrails cannot be deleted, from a trigger of one's own either.
    let e = a.batch_execute("DELETE FROM prompt_guardrails WHERE name = 'pii_detection_basic'").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("55000"), "{e:?}");
}

#[test]
fn a_superuser_replaying_rows_keeps_their_stamps() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute(
        r#"SET session_replication_role = replica;
         INSERT INTO prompt_guardrails (name, kind, action, builtin, created_at, created_by, config)
             VALUES ('replayed', 'keywords', 'log', false, '2001-01-01', 'someone', '{"keywords": ["x"]}');
         RESET session_replication_role;
         INSERT INTO prompt_guardrails (name, kind, action, created_at, created_by, config)
             VALUES ('fresh', 'keywords', 'log', '2001-01-01', 'someone', '{"keywords": ["x"]}');"#,
    )
    .unwrap();
    let rows: Vec<String> = su
        .query("SELECT name || ' ' || created_at::date || ' ' || created_by FROM prompt_guardrails WHERE name IN ('replayed', 'fresh') ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let today: String = one(&mut su, "SELECT current_date::text");
    assert_eq!(rows, [format!("fresh {today} postgres"), "replayed 2001-01-01 someone".to_string()]);
}
