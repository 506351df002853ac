//! Render options stored with each version, and the errors of templates
//! written for Jinja2's chat-template environment.

use pgprompt_tests::*;

const LOOP: &str = "{% for m in messages %}\n  {{ m }}\n{% endfor %}\nend";

#[test]
fn options_are_stored_per_version_and_render_with_it() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(&format!(
        "SELECT prompt_save('t', $b${LOOP}$b$);
         SELECT prompt_save('t', $b${LOOP}$b$, options => '{{\"trim_blocks\": true, \"lstrip_blocks\": true}}');"
    ))
    .unwrap();
    let vars = r#"{"messages": ["a", "b"]}"#;
    // Version 1 has Jinja2's defaults, version 2 trims: the same body
    // renders as each was saved.
    let v1: String = c.query_one("SELECT prompt_render('t', $1::text, 1)", &[&vars]).unwrap().get(0);
    let v2: String = c.query_one("SELECT prompt_render('t', $1::text, 2)", &[&vars]).unwrap().get(0);
    assert_eq!(v1, "\n  a\n\n  b\n\nend");
    assert_eq!(v2, "  a\n  b\nend");
    // The dry run with the same options renders the same.
    let dry: String = c
        .query_one("SELECT prompt_render_text($1, $2::text, '{\"trim_blocks\": true, \"lstrip_blocks\": true}')", &[&LOOP, &vars])
        .unwrap()
        .get(0);
    assert_eq!(dry, v2);
    // prompt_get and the table show every option.
    let shown: String = one(&mut c, "SELECT (prompt_get('t', 2)).options::text");
    assert_eq!(shown, r#"{"undefined": "strict", "trim_blocks": true, "lstrip_blocks": true, "keep_trailing_newline": false}"#);
    let stored: String = one(&mut c, "SELECT options::text FROM prompt_versions WHERE version = 1");
    assert_eq!(stored, r#"{"undefined": "strict", "trim_blocks": false, "lstrip_blocks": false, "keep_trailing_newline": false}"#);
    // Versions are immutable, options too.
    expect_error(&mut c, "UPDATE prompt_versions SET options = '{}' WHERE version = 1", "55000");

    // keep_trailing_newline and lenient undefined.
    c.batch_execute(r#"SELECT prompt_save('nl', E'{{ who }} says hi\n', options => '{"keep_trailing_newline": true, "undefined": "lenient"}')"#)
        .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('nl')"), " says hi\n");
    // Strict (the default): printing or measuring a missing variable is
    // 42P02, testing or comparing it is not.
    c.batch_execute("SELECT prompt_save('s', '{% if tier == \"gold\" %}G{% endif %}{% if tier is defined %}D{% endif %}{{ tier|default(\"-\") }}')")
        .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render('s')"), "-");
    for body in ["{{ missing }}", "{{ missing|length }}", "{% for x in missing %}{% endfor %}"] {
        let msg = expect_error(&mut c, &format!("SELECT prompt_render_text($b${body}$b$)"), "42P02");
        assert!(msg.contains("missing variable \"missing\""), "{body}: {msg}");
    }
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render_text('[{{ missing }}]', '{}', '{\"undefined\": \"lenient\"}')"), "[]");
}

#[test]
fn bad_options_are_refused_and_nothing_is_written() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'x')").unwrap();
    let before = fingerprint(&mut c, true);
    for (options, needle) in [
        (r#"{"trim": true}"#, "unknown render option \"trim\""),
        (r#"{"trim_blocks": "yes"}"#, "\"trim_blocks\" must be true or false, not a string"),
        (r#"{"lstrip_blocks": 1}"#, "\"lstrip_blocks\" must be true or false, not a number"),
        (r#"{"undefined": "chaos"}"#, "\"undefined\" must be \"strict\" or \"lenient\""),
        (r#"{"undefined": false}"#, "\"undefined\" must be \"strict\" or \"lenient\""),
        ("[true]", "render options must be a JSON object, not an array"),
        ("\"strict\"", "render options must be a JSON object, not a string"),
    ] {
        for sql in [
            format!("SELECT prompt_save('t', 'y', options => '{options}')"),
            format!("SELECT prompt_save('new', 'y', options => '{options}')"),
            format!("SELECT prompt_render_text('y', '{{}}', '{options}')"),
        ] {
            let msg = expect_error(&mut c, &sql, "22023");
            assert!(msg.contains(needle), "{sql}: {msg}");
        }
    }
    expect_error(&mut c, "SELECT prompt_save('t', 'y', options => 'null')", "22023");
    assert_eq!(fingerprint(&mut c, true), before, "a refused save writes nothing, audit included");
}

#[test]
fn raise_exception_in_a_stored_template_is_p0001_with_its_message() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('alt', $b${% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}[{{ m.role }}] {{ m.content }}
{% endfor %}$b$, options => '{"trim_blocks": true, "lstrip_blocks": true, "undefined": "lenient"}')"#,
    )
    .unwrap();
    let good = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#;
    assert_eq!(one::<String>(&mut c, &format!("SELECT prompt_render('alt', '{good}')")), "[user] hi\n[assistant] hello\n");
    let bad = r#"{"messages": [{"role": "assistant", "content": "hello"}]}"#;
    let before = fingerprint(&mut c, true);
    for sql in [
        format!("SELECT prompt_render('alt', '{bad}')"),
        format!("SELECT prompt_render_chat('alt', '{bad}')"),
        format!("SELECT * FROM prompt_render_for('alt', 'u1', '{bad}')"),
    ] {
        let e = c.batch_execute(&sql).unwrap_err();
        let db_err = e.as_db_error().unwrap();
        assert_eq!(db_err.code().code(), "P0001", "{sql}");
        assert_eq!(db_err.message(), "Conversation roles must alternate user/assistant/user/assistant/...");
        assert_eq!(db_err.detail(), Some("The template called raise_exception() at line 1."));
    }
    // PL/pgSQL catches it by its condition name, message and all.
    c.batch_execute(&format!(
        "CREATE TEMP TABLE caught (message text);
         DO $$ BEGIN PERFORM prompt_render('alt', '{bad}');
         EXCEPTION WHEN raise_exception THEN INSERT INTO caught VALUES (SQLERRM); END $$;"
    ))
    .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT message FROM caught"), "Conversation roles must alternate user/assistant/user/assistant/...");
    c.batch_execute("DROP TABLE caught").unwrap();
    // A test case whose render raises fails the release gate (PG002).
    c.batch_execute(&format!(
        "SELECT prompt_save('alt', 'v2 {{{{ raise_exception(\"no\") }}}}');
         SELECT prompt_test_case_save('alt', 'c', '[{{\"contains\": \"hi\"}}]', '{good}');"
    ))
    .unwrap();
    let gated = fingerprint(&mut c, true);
    let msg = expect_error(&mut c, "SELECT prompt_activate('alt', 2)", "PG002");
    assert!(msg.ends_with("fails 1 test case(s): c"), "{msg}");
    assert_eq!(fingerprint(&mut c, true), gated, "a refused activation writes nothing");
    assert_ne!(gated, before);
}
