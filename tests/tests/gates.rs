//! Release gates against a real server: test cases, prompt_run_tests, and
//! activation, the production label and experiments refused for a version
//! that fails them, unless forced (and audited).

use pgprompt_tests::*;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Explain {{ topic }} for grade {{ grade }}.');
           SELECT prompt_save('tutor', 'Explain {{ topic }} for grade {{ grade }}. Write to ada@example.com and do your homework.');
           SELECT prompt_save('tutor', 'Explain {{ topic }} simply, for grade {{ grade }}.');
           SELECT prompt_test_case_save('tutor', 'on topic',
               '[{"contains": ["gravity", "grade 8"], "max_length": 60}, {"passes_guardrails": true}, {"not_contains": "homework"}]',
               '{"topic": "gravity", "grade": 8}', 'stays on the topic, short, no PII');
           SELECT prompt_test_case_save('tutor', 'needs its variables', '[{"renders": false}]');"#,
    )
    .unwrap();
}

fn results(c: &mut Client, sql: &str) -> Vec<(String, bool, Option<String>)> {
    c.query(sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

#[test]
fn run_tests_reports_every_case_with_what_failed() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let v1 = results(&mut c, "SELECT * FROM prompt_run_tests('tutor', 1)");
    assert_eq!(v1, [("needs its variables".into(), true, None), ("on topic".into(), true, None)]);
    // Default: the newest version (3), which passes too.
    assert!(results(&mut c, "SELECT * FROM prompt_run_tests('tutor')").iter().all(|r| r.1));
    let v2 = results(&mut c, "SELECT * FROM prompt_run_tests('tutor', 2)");
    assert_eq!(v2.len(), 2);
    assert!(v2[0].1, "rendering without vars still fails, as expected");
    let (name, passed, detail) = &v2[1];
    assert_eq!((name.as_str(), *passed), ("on topic", false));
    let detail = detail.as_deref().unwrap();
    // Each failed assertion, with the part of the output that failed it.
    assert!(detail.contains("max_length: 75 characters, more than 60"), "{detail}");
    assert!(detail.contains("passes_guardrails: blocked by pii_detection_basic: EMAIL_ADDRESS at 38..53"), "{detail}");
    assert!(detail.contains("ada@example.com"), "{detail}");
    assert!(detail.contains(r#"not_contains: "homework" found at character 66"#), "{detail}");
    assert!(!detail.contains("contains: \"gravity\""), "passing assertions are not listed: {detail}");

    // A render error fails the case with the error; a chat template's messages are checked.
    c.batch_execute(
        r#"SELECT prompt_test_case_save('tutor', 'no grade', '[{"contains": "gravity"}]', '{"topic": "gravity"}');
           SELECT prompt_save('chat', '[{"role": "system", "content": "You tutor {{ subject }}."}, {"role": "user", "content": "{{ q }}"}]', kind => 'chat');
           SELECT prompt_test_case_save('chat', 'both messages', '[{"equals": "You tutor physics.\n\nWhy?"}]', '{"subject": "physics", "q": "Why?"}');"#,
    )
    .unwrap();
    let r = results(&mut c, "SELECT * FROM prompt_run_tests('tutor', 1) WHERE test = 'no grade'");
    assert!(!r[0].1);
    assert!(r[0].2.as_deref().unwrap().starts_with("renders: failed:") && r[0].2.as_deref().unwrap().contains("grade"), "{r:?}");
    assert_eq!(results(&mut c, "SELECT * FROM prompt_run_tests('chat')"), [("both messages".into(), true, None)]);

    // No cases: no rows.
    c.batch_execute("SELECT prompt_save('untested', 'hello')").unwrap();
    assert!(results(&mut c, "SELECT * FROM prompt_run_tests('untested')").is_empty());
    expect_error(&mut c, "SELECT * FROM prompt_run_tests('nope')", "42704");
    expect_error(&mut c, "SELECT * FROM prompt_run_tests('tutor', 9)", "42704");
    expect_error(&mut c, "SELECT * FROM prompt_run_tests(NULL)", "22004");
}

#[test]
fn failing_versions_do_not_go_live_unless_forced() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let before = snapshot(&mut c);
    let msg = expect_error(&mut c, "SELECT prompt_activate('tutor', 2)", "PG002");
    assert_eq!(msg, r#"version 2 of template "tutor" fails 1 test case(s): on topic"#);
    expect_error(&mut c, "SELECT prompt_label('tutor', 2, 'production')", "PG002");
    c.batch_execute(
        r#"SELECT prompt_experiment_create('tone', 'tutor', '[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]')"#,
    )
    .unwrap();
    let after_create = snapshot(&mut c);
    let err = c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap_err();
    let db_err = err.as_db_error().unwrap();
    assert_eq!(db_err.code().code(), "PG002");
    assert!(db_err.detail().unwrap().starts_with("on topic: max_length"), "{:?}", db_err.detail());
    assert!(db_err.hint().unwrap().contains("force => true"), "{:?}", db_err.hint());
    assert_eq!(snapshot(&mut c), after_create, "refused releases change nothing");
    assert_ne!(before, after_create);
    assert_eq!(one::<String>(&mut c, "SELECT status FROM ab_test_experiments"), "draft");

    // Passing versions, other labels and rollback are not held up.
    c.batch_execute(
        "SELECT prompt_activate('tutor', 3);
         SELECT prompt_label('tutor', 2, 'staging');
         SELECT prompt_rollback('tutor');",
    )
    .unwrap();
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 'tutor'"), 1);

    // Forced: it happens, and the audit log keeps the failures.
    let (mut c2, notices) = db.connect_with_notices();
    c2.batch_execute("SELECT prompt_activate('tutor', 2, force => true)").unwrap();
    assert!(notices.take().iter().any(|(code, m)| code == "01000" && m.contains("activate forced")));
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 'tutor'"), 2);
    // Rolled back, then released again through the production label.
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_rollback('tutor')"), 1);
    c.batch_execute("SELECT prompt_label('tutor', 2, 'production', force => true); SELECT prompt_experiment_start('tone', force => true);")
        .unwrap();
    let forced: Vec<(String, i32, String)> = c
        .query(
            "SELECT after ->> 'action', version, after -> 'failures' -> 0 ->> 'test' FROM prompt_audit_logs WHERE action = 'force' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        forced,
        [
            ("activate".to_string(), 2, "on topic".to_string()),
            ("label production".to_string(), 2, "on topic".to_string()),
            ("start experiment tone".to_string(), 2, "on topic".to_string()),
        ]
    );
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 'tutor'"), 2);
    // Re-pointing production at the version it already has is no release.
    c.batch_execute("SELECT prompt_label('tutor', 2, 'production')").unwrap();

    // A template without cases activates freely.
    c.batch_execute("SELECT prompt_save('free', 'a'); SELECT prompt_save('free', 'b'); SELECT prompt_activate('free', 2);").unwrap();
}

#[test]
fn promote_is_gated_too() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        r#"SELECT prompt_experiment_create('tone', 'tutor', '[{"version": 1, "weight": 50}, {"version": 3, "weight": 50}]', min_sample_size => 1);
           SELECT prompt_experiment_start('tone');
           SELECT prompt_log_execution('tutor', model => 'gpt-4o', experiment => 'tone', variant => v) FROM unnest(ARRAY['v1', 'v3']) v;
           SELECT prompt_test_case_save('tutor', 'plain words', '[{"not_contains": "simply"}]', '{"topic": "x", "grade": 1}');"#,
    )
    .unwrap();
    // Version 3 fails the new case: promoting it is refused, and the experiment still runs.
    expect_error(&mut c, "SELECT prompt_experiment_promote('tone', 'v3')", "PG002");
    assert_eq!(one::<String>(&mut c, "SELECT status FROM ab_test_experiments"), "running");
    // Version 1 is live already: promoting it concludes the experiment.
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_experiment_promote('tone', 'v1')"), 1);
    assert_eq!(one::<String>(&mut c, "SELECT status FROM ab_test_experiments"), "concluded");
}

#[test]
fn test_cases_are_validated_and_audited() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let before = snapshot(&mut c);
    for (sql, code, says) in [
        (r#"SELECT prompt_test_case_save('tutor', 'x', '[{"sounds_right": true}]')"#, "22023", r#"unknown kind "sounds_right""#),
        (r#"SELECT prompt_test_case_save('tutor', 'x', '[{"matches": "(unclosed"}]')"#, "22023", "invalid regular expression"),
        (r#"SELECT prompt_test_case_save('tutor', 'x', '[{"contains": "a"}]', '["not", "an", "object"]')"#, "22023", "must be a JSON object, not array"),
        (r#"SELECT prompt_test_case_save('nope', 'x', '[{"contains": "a"}]')"#, "42704", "does not exist"),
        (r#"SELECT prompt_test_case_save('tutor', 'x', '{"contains": "a"}')"#, "22023", "non-empty JSON array"),
        (r#"SELECT prompt_test_case_save('tutor', 'x', NULL)"#, "22004", "assertions"),
        (r#"INSERT INTO prompt_test_cases (template_id, name, assertions) SELECT id, 'x', '[{"max_length": "long"}]' FROM prompt_templates"#, "22023", "non-negative integer"),
    ] {
        let msg = expect_error(&mut c, sql, code);
        assert!(msg.contains(says), "{sql}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before);

    // Saving again replaces; unchanged saves write nothing; deletes are audited.
    let id: i64 = one(&mut c, r#"SELECT prompt_test_case_save('tutor', 'on topic', '[{"contains": "gravity"}]', '{"topic": "gravity", "grade": 8}')"#);
    let again: i64 = one(&mut c, r#"SELECT prompt_test_case_save('tutor', 'on topic', '[{"contains": "gravity"}]', '{"topic": "gravity", "grade": 8}')"#);
    assert_eq!(id, again);
    assert!(one::<bool>(&mut c, "SELECT prompt_test_case_delete('tutor', 'on topic')"));
    assert!(!one::<bool>(&mut c, "SELECT prompt_test_case_delete('tutor', 'on topic')"));
    let actions: Vec<String> = c
        .query("SELECT action FROM prompt_audit_logs WHERE object_type = 'test_case' AND object_name = 'on topic' ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    // With the failing case gone, version 2 activates.
    c.batch_execute("SELECT prompt_activate('tutor', 2)").unwrap();
}
