//! Rendering against a real server: selection of versions, strictness,
//! chat templates, limits, the memory budget, the cache, and vars of every
//! shape read from binary jsonb.

use std::time::Duration;

use pgprompt_tests::*;
use serde_json::{json, Value};

fn setup(c: &mut Client) {
    c.batch_execute(
        "SELECT prompt_save('t', 'v1 {{ x }}');
         SELECT prompt_save('t', 'v2 {{ x }}');
         SELECT prompt_save('t', 'v3 {{ x }}');
         SELECT prompt_activate('t', 2);
         SELECT prompt_label('t', 1, 'staging');",
    )
    .unwrap();
}

#[test]
fn renders_the_version_asked_for() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let r = |c: &mut Client, sql: &str| one::<String>(c, sql);
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}')"), "v2 1");
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', 3)"), "v3 1");
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', version => 1)"), "v1 1");
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', label => 'staging')"), "v1 1");
    // production is the release, the active version.
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', label => 'production')"), "v2 1");
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', label => 'latest')"), "v3 1");
    assert_eq!(r(&mut c, "SELECT prompt_render('t', '{\"x\": 1}', label => 'active')"), "v2 1");
    // vars defaults to {} and unqualified names work with the search_path.
    c.batch_execute("SELECT prompt_save('plain', 'no variables')").unwrap();
    assert_eq!(r(&mut c, "SELECT prompt_render('plain')"), "no variables");
}

#[test]
fn bad_render_calls_have_documented_sqlstates() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(r#"SELECT prompt_save('chat', '[{"role": "user", "content": "hi"}]', kind => 'chat')"#).unwrap();
    let before = snapshot(&mut c);
    let cases = [
        ("SELECT prompt_render('nope')", "42704", "template \"nope\" does not exist"),
        ("SELECT prompt_render('t', '{\"x\": 1}', 9)", "42704", "version 9 of template \"t\" does not exist"),
        ("SELECT prompt_render('t', '{\"x\": 1}', label => 'canary')", "42704", "label \"canary\" of template \"t\" does not exist"),
        ("SELECT prompt_render('t', '{\"x\": 1}', 1, 'staging')", "22023", "either a version or a label"),
        ("SELECT prompt_render('t')", "42P02", "missing variable \"x\""),
        ("SELECT prompt_render('t', '[1]')", "22023", "vars must be a JSON object, not an array"),
        ("SELECT prompt_render('t', '\"x\"')", "22023", "not a string"),
        ("SELECT prompt_render('t', '3')", "22023", "not a number"),
        ("SELECT prompt_render('t', 'null')", "22023", "not null"),
        ("SELECT prompt_render(NULL, '{}')", "22004", "\"name\""),
        ("SELECT prompt_render('t', NULL)", "22004", "\"vars\""),
        ("SELECT prompt_render('chat', '{}')", "42809", "chat template"),
        ("SELECT prompt_render_chat(NULL)", "22004", "\"name\""),
        ("SELECT prompt_render_text(NULL)", "22004", "\"body\""),
        ("SELECT prompt_render_text('x', NULL)", "22004", "\"vars\""),
        ("SELECT prompt_render_text('{{ x ')", "42601", "syntax error"),
        ("SELECT prompt_render_text('{{ x|no_such_filter }}', '{\"x\": 1}')", "38000", "unknown filter"),
        ("SELECT prompt_render_text('{{ 1 + \"a\" }}')", "38000", "template failed at line 1: invalid operation"),
        ("SELECT prompt_variables(NULL)", "22004", "\"body\""),
        ("SELECT prompt_variables('x', 'poem')", "22023", "unknown template kind"),
    ];
    for (sql, code, needle) in cases {
        let msg = expect_error(&mut c, sql, code);
        assert!(msg.contains(needle), "{sql}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before, "rendering never writes");
}

#[test]
fn missing_variables_are_named_and_optional_ones_allowed() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('t', 'Q: {{ student_query }} (grade {{ grade_level }}){% if hint %} hint: {{ hint }}{% endif %} {{ tone|default(''kind'') }}')",
    )
    .unwrap();
    let msg = expect_error(&mut c, "SELECT prompt_render('t', '{\"student_query\": \"why?\"}')", "42P02");
    assert_eq!(msg, "missing variable \"grade_level\" at line 1");
    let out: String = one(&mut c, "SELECT prompt_render('t', '{\"student_query\": \"why?\", \"grade_level\": 5}')");
    assert_eq!(out, "Q: why? (grade 5) kind");
    let err = c.query_one("SELECT prompt_render('t', '{}')", &[]).unwrap_err();
    let db_err = err.as_db_error().unwrap();
    assert_eq!(db_err.detail(), Some("The template reads: grade_level, hint, student_query, tone. vars has: nothing."));
}

#[test]
fn chat_templates_render_openai_messages() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('tutor', '[
              {"role": "system", "content": "You teach grade {{ grade }}."},
              {"placeholder": "history", "optional": true},
              {"role": "user", "content": "{{ question }}"}
           ]', '{"model": "gpt-4o-mini"}', kind => 'chat');
           SELECT prompt_save('text', 'Just {{ x }}');"#,
    )
    .unwrap();
    let out: Value = one(&mut c, r#"SELECT prompt_render_chat('tutor', '{"grade": 5, "question": "Why is the sky blue?"}')"#);
    assert_eq!(
        out,
        json!([{"role": "system", "content": "You teach grade 5."}, {"role": "user", "content": "Why is the sky blue?"}])
    );
    let out: Value = one(
        &mut c,
        r#"SELECT prompt_render_chat('tutor', '{"grade": 5, "question": "And at night?",
             "history": [{"role": "user", "content": "Why is the sky blue?"}, {"role": "assistant", "content": "Scattering."}]}')"#,
    );
    assert_eq!(out.as_array().unwrap().len(), 4);
    assert_eq!(out[2], json!({"role": "assistant", "content": "Scattering."}));
    assert_eq!(one::<Vec<String>>(&mut c, "SELECT variables FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE t.name = 'tutor'"), vec!["grade", "history", "question"]);
    // A text template becomes one user message.
    let out: Value = one(&mut c, r#"SELECT prompt_render_chat('text', '{"x": 1}')"#);
    assert_eq!(out, json!([{"role": "user", "content": "Just 1"}]));
    expect_error(&mut c, r#"SELECT prompt_render_chat('tutor', '{"grade": 5}')"#, "42P02");
    expect_error(&mut c, r#"SELECT prompt_render_chat('tutor', '{"grade": 5, "question": "q", "history": "not a list"}')"#, "22023");
}

#[test]
fn endless_loops_and_huge_outputs_fail_cleanly() {
    let db = TestDb::new();
    let mut c = db.connect();
    let msg = expect_error(
        &mut c,
        "SELECT prompt_render_text('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}')",
        "54001",
    );
    assert!(msg.contains("ran out of fuel"), "{msg}");
    expect_error(&mut c, "SELECT prompt_render_text('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}')", "54001");
    let msg = expect_error(&mut c, "SELECT prompt_render_text('{% for i in range(100000) %}{{ \"0123456789\" * 10 }}{% endfor %}')", "54000");
    assert!(msg.contains("exceeds the limit of 1048576 bytes"), "{msg}");
    expect_error(&mut c, "SELECT prompt_render_text('{{ \"x\" * 1000000000 }}')", "54001");
    expect_error(&mut c, "SELECT prompt_render_text('{{ \"a\nb\"|indent(100000000) }}')", "54000");
    expect_error(&mut c, "SELECT prompt_render_text('{{ \"%100000000s\"|format(1) }}')", "54000");

    // The limits are settings.
    c.batch_execute("SET pgprompt.render_fuel = 100").unwrap();
    expect_error(&mut c, "SELECT prompt_render_text('{% for i in range(1000) %}x{% endfor %}')", "54001");
    c.batch_execute("RESET pgprompt.render_fuel; SET pgprompt.max_output_bytes = 10").unwrap();
    expect_error(&mut c, "SELECT prompt_render_text('{{ x }}', '{\"x\": \"eleven chars\"}')", "54000");
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render_text('{{ x }}', '{\"x\": \"ten chars!\"}')"), "ten chars!");
    // The session is fine afterwards.
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render_text('ok')"), "ok");
}

#[test]
fn vars_size_and_depth_are_limited() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SET pgprompt.max_vars_bytes = '1kB'").unwrap();
    let msg = expect_error(&mut c, "SELECT prompt_render_text('{{ x }}', jsonb_build_object('x', repeat('a', 2000)))", "54000");
    assert!(msg.contains("vars is"), "{msg}");
    // A large document stored compressed is checked by its real size too.
    c.batch_execute("CREATE TABLE docs (d jsonb); INSERT INTO docs SELECT jsonb_build_object('x', repeat('a', 100000));").unwrap();
    expect_error(&mut c, "SELECT prompt_render_text('{{ x|length }}', d) FROM docs", "54000");
    c.batch_execute("RESET pgprompt.max_vars_bytes").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render_text('{{ x|length }}', d) FROM docs"), "100000");

    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let msg = expect_error(&mut c, &format!("SELECT prompt_render_text('{{{{ x|length }}}}', '{{\"x\": {deep}}}')"), "54000");
    assert!(msg.contains("nest deeper"), "{msg}");
    let ok = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(one::<String>(&mut c, &format!("SELECT prompt_render_text('{{{{ x|length }}}}', '{{\"x\": {ok}}}')")), "1");
}

#[test]
fn runaway_memory_ends_the_session_but_not_the_server() {
    let db = TestDb::new();
    let mut watcher = db.connect();
    let started: String = one(&mut watcher, "SELECT pg_postmaster_start_time()::text");
    let mut c = db.connect();
    c.batch_execute("SET pgprompt.render_memory_limit = '16MB'").unwrap();
    // Each line doubles the string: minijinja has no hook to stop this between
    // steps, so the allocation budget ends the session with FATAL.
    let mut body = String::from("{% set a = \"xxxxxxxxxxxxxxxx\" * 1000 %}");
    let mut prev = "a".to_string();
    for i in 0..20 {
        let next = format!("s{i}");
        body.push_str(&format!("{{% set {next} = {prev} ~ {prev} %}}"));
        prev = next;
    }
    body.push_str(&format!("{{{{ {prev}|length }}}}"));
    let err = c.query_one(&format!("SELECT prompt_render_text($${body}$$)"), &[]).unwrap_err();
    let msg = err.as_db_error().map(|d| (d.code().code().to_string(), d.message().to_string()));
    assert!(
        matches!(&msg, Some((code, m)) if code == "54000" && m.contains("terminating this session")) || c.is_closed(),
        "{err}"
    );
    // The server did not restart and other sessions carry on.
    std::thread::sleep(Duration::from_millis(200));
    let mut after = db.connect();
    assert_eq!(one::<String>(&mut after, "SELECT pg_postmaster_start_time()::text"), started);
    assert_eq!(one::<i32>(&mut watcher, "SELECT 1"), 1);
    assert_eq!(one::<String>(&mut after, "SELECT prompt_render_text('still {{ ok }}', '{\"ok\": \"fine\"}')"), "still fine");
}

#[test]
fn vars_of_every_shape_are_read_from_binary_jsonb() {
    let db = TestDb::new();
    let mut c = db.connect();
    let many_keys: serde_json::Map<String, Value> = (0..40).map(|i| (format!("key{i}"), json!(i * 7))).collect();
    let long_list: Vec<Value> = (0..100).map(|i| json!(format!("item-{i}-{}", "x".repeat(i % 7)))).collect();
    let docs = vec![
        json!(0),
        json!(7),
        json!(-7),
        json!(123456789012_i64),
        json!(9223372036854775807_i64),
        json!(18446744073709551615_u64),
        json!(0.5),
        json!(-0.25),
        json!(3.14159),
        json!(1e-7),
        json!(12345.678901),
        json!(2.0),
        json!(true),
        json!(false),
        json!(null),
        json!(""),
        json!("plain"),
        json!("quotes \" and \\ backslash"),
        json!("unicode: héllo wörld – 日本語 – emoji 🎉"),
        json!("tabs\tand\nnewlines"),
        json!([]),
        json!({}),
        json!([1, "two", 3.5, null, true, [4, [5]], {"six": 6}]),
        json!({"nested": {"deeper": {"deepest": [1, 2, {"k": "v"}]}}}),
        Value::Object(many_keys),
        Value::Array(long_list),
    ];
    for doc in docs {
        let vars = json!({ "v": doc });
        let out: String = c
            .query_one("SELECT prompt_render_text('{{ v|tojson }}', $1::jsonb)", &[&vars])
            .unwrap()
            .get(0);
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, doc, "through binary jsonb: {doc}");
    }
    // Numbers literal in SQL (jsonb's own numeric forms, not serde's), printed
    // as Python prints what json.loads makes of jsonb's text.
    for (text, printed) in [
        ("1e3", "1000"),
        ("1.50", "1.5"),
        ("-0", "0"),
        ("0.000001", "1e-06"),
        ("0.0001", "0.0001"),
        ("1e-7", "1e-07"),
        ("100000000000000000000", "100000000000000000000"),
        ("12345678901234567.5", "1.2345678901234568e+16"),
        ("123.456e2", "12345.6"),
        ("2.0", "2.0"),
    ] {
        let out: String = one(&mut c, &format!("SELECT prompt_render_text('{{{{ v }}}}', '{{\"v\": {text}}}'::jsonb)"));
        assert_eq!(out, printed, "{text}");
    }
    // How scalars print, on the fast path and through the VM alike.
    for (v, printed) in [("7", "7"), ("0.5", "0.5"), ("true", "True"), ("null", "None"), ("\"s\"", "s"), ("[1, 2]", "[1, 2]")] {
        let fast: String = one(&mut c, &format!("SELECT prompt_render_text('{{{{ v }}}}', '{{\"v\": {v}}}'::jsonb)"));
        let slow: String = one(&mut c, &format!("SELECT prompt_render_text('{{{{ v }}}}{{{{ \"\"|upper }}}}', '{{\"v\": {v}}}'::jsonb)"));
        assert_eq!((fast.as_str(), slow.as_str()), (printed, printed), "{v}");
    }
    // Many top-level keys (beyond the in-place index) are all found.
    let body: String = (0..40).map(|i| format!("{{{{ key{i} }}}},")).collect();
    let vars: Value = Value::Object((0..40).map(|i| (format!("key{i}"), json!(i))).collect());
    let out: String = c.query_one("SELECT prompt_render_text($1, $2::jsonb)", &[&body, &vars]).unwrap().get(0);
    assert_eq!(out, (0..40).map(|i| format!("{i},")).collect::<String>());
}

#[test]
fn the_cache_reuses_compiles_and_is_never_stale() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'one {{ x }}'); SELECT prompt_cache_reset();").unwrap();
    for _ in 0..10 {
        assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t', '{\"x\": 1}')"), "one 1");
    }
    let row = c.query_one("SELECT hits, misses, entries, hit_ratio FROM prompt_cache_stats()", &[]).unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i32>(2)), (9, 1, 1));
    assert!((row.get::<_, f64>(3) - 0.9).abs() < 1e-9);

    // Recreating the extension in the same session reuses version ids; the
    // cache must not serve the old body.
    c.batch_execute(
        "DROP EXTENSION pgprompt CASCADE; CREATE EXTENSION pgprompt;
         SELECT pgprompt.prompt_save('t', 'two {{ x }}');",
    )
    .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT pgprompt.prompt_render('t', '{\"x\": 1}')"), "two 1");

    c.batch_execute("SET pgprompt.cache_size = 2; SELECT pgprompt.prompt_cache_reset();").unwrap();
    c.batch_execute("SELECT pgprompt.prompt_save('t' || g, 'body ' || g) FROM generate_series(1, 5) g").unwrap();
    for g in 1..=5 {
        assert_eq!(one::<String>(&mut c, &format!("SELECT pgprompt.prompt_render('t{g}')")), format!("body {g}"));
    }
    let row = c.query_one("SELECT entries, evictions FROM pgprompt.prompt_cache_stats()", &[]).unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i64>(1)), (2, 3));
}

#[test]
fn variables_and_dry_runs() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_eq!(
        one::<Vec<String>>(&mut c, "SELECT prompt_variables('{{ b }} {% for i in items %}{{ i.name }}{% endfor %} {{ a.x }}')"),
        vec!["a", "b", "items"]
    );
    assert_eq!(
        one::<Vec<String>>(&mut c, r#"SELECT prompt_variables('[{"role": "user", "content": "{{ q }}"}, {"placeholder": "h"}]', 'chat')"#),
        vec!["h", "q"]
    );
    assert_eq!(one::<Vec<String>>(&mut c, "SELECT prompt_variables('static')"), Vec::<String>::new());
    assert_eq!(
        one::<String>(&mut c, "SELECT prompt_render_text('{% for t in topics %}{{ loop.index }}. {{ t|title }}\n{% endfor %}', '{\"topics\": [\"cells\", \"energy\"]}')"),
        "1. Cells\n2. Energy\n"
    );
    // A dry run leaves nothing behind.
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_templates"), 0);
    assert_eq!(one::<i32>(&mut c, "SELECT entries FROM prompt_cache_stats()"), 0);
}

#[test]
fn nul_characters_cannot_reach_text() {
    let db = TestDb::new();
    let mut c = db.connect();
    let msg = expect_error(&mut c, r#"SELECT prompt_render_text('{{ "a\u0000b" }}')"#, "22021");
    assert!(msg.contains("NUL"), "{msg}");
}

#[test]
fn vars_as_text_or_json_keep_the_callers_key_order() {
    let db = TestDb::new();
    let mut c = db.connect();
    let body = "{% for k, v in t|items %}{{ k }}={{ v }};{% endfor %} {{ t|tojson }} {{ t.keys()|list }}";
    let vars = r#"{"t": {"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [4]}}"#;
    let ordered = r#"zeta=1;alpha={'y': 2, 'b': 3};mid=[4]; {"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [4]} ['zeta', 'alpha', 'mid']"#;
    let sorted = r#"alpha={'b': 3, 'y': 2};mid=[4];zeta=1; {"alpha": {"b": 3, "y": 2}, "mid": [4], "zeta": 1} ['alpha', 'mid', 'zeta']"#;
    // An untyped literal is text; json keeps its text; jsonb has sorted keys.
    for (cast, want) in [("", ordered), ("::text", ordered), ("::text::json", ordered), ("::text::jsonb", sorted)] {
        let out: String = c.query_one(&format!("SELECT prompt_render_text($1, $2{cast})"), &[&body, &vars]).unwrap().get(0);
        assert_eq!(out, want, "vars{cast}");
    }
    // Stored templates, every render function.
    c.batch_execute(&format!(
        "SELECT prompt_save('t', $b${body}$b$);
         SELECT prompt_save('c', $b$[{{\"role\": \"user\", \"content\": \"{}\"}}]$b$, kind => 'chat');",
        body.replace('"', "\\\"")
    ))
    .unwrap();
    for (cast, want) in [("", ordered), ("::text::json", ordered), ("::text::jsonb", sorted)] {
        let text: String = c.query_one(&format!("SELECT prompt_render('t', $1{cast})"), &[&vars]).unwrap().get(0);
        let chat: String =
            c.query_one(&format!("SELECT prompt_render_chat('c', $1{cast}, label => 'latest') #>> '{{0,content}}'"), &[&vars]).unwrap().get(0);
        let (prompt, messages): (Option<String>, Option<String>) = {
            let r = c.query_one(&format!("SELECT prompt, messages #>> '{{0,content}}' FROM prompt_render_for('t', 'u1', $1{cast})"), &[&vars]).unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!((text.as_str(), chat.as_str(), prompt.as_deref(), messages), (want, want, Some(want), None), "vars{cast}");
    }
    // Numbers as Python's json.loads reads the text.
    for (text, printed) in [("1e3", "1000.0"), ("1.50", "1.5"), ("-7", "-7"), ("0.000001", "1e-06"), ("18446744073709551615", "18446744073709551615")] {
        let out: String = one(&mut c, &format!("SELECT prompt_render_text('{{{{ v }}}}', '{{\"v\": {text}}}')"));
        assert_eq!(out, printed, "{text}");
    }
}

#[test]
fn vars_as_text_refuse_repeated_keys_and_bad_json() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', '{{ a }}')").unwrap();
    let before = snapshot(&mut c);
    for f in ["prompt_render('t', ", "prompt_render_text('{{ a }}', ", "prompt_render_chat('t', ", "prompt_render_for('t', 'u', "] {
        for cast in ["", "::json"] {
            let msg = expect_error(&mut c, &format!(r#"SELECT {f}'{{"a": 1, "a": 2}}'{cast})"#), "22030");
            assert!(msg.contains("vars repeat the key \"a\""), "{f}{cast}: {msg}");
            let msg = expect_error(&mut c, &format!(r#"SELECT {f}'{{"b": [{{"k": 1, "k": 1}}]}}'{cast})"#), "22030");
            assert!(msg.contains("\"k\""), "{f}{cast}: {msg}");
            expect_error(&mut c, &format!("SELECT {f}NULL{cast})"), "22004");
        }
        let msg = expect_error(&mut c, &format!("SELECT {f}'{{\"a\": 1,}}')"), "22P02");
        assert!(msg.contains("vars are not valid JSON"), "{f}: {msg}");
        expect_error(&mut c, &format!("SELECT {f}'[1]')"), "22023");
        expect_error(&mut c, &format!("SELECT {f}'[[[')"), "22P02");
        expect_error(&mut c, &format!("SELECT {f}'{}{}')", "[".repeat(300), "]".repeat(300)), "54000");
        // Over pgprompt.max_vars_bytes, before parsing.
        c.batch_execute("SET pgprompt.max_vars_bytes = 1024").unwrap();
        let big = format!(r#"{{"a": "{}"}}"#, "x".repeat(2000));
        expect_error(&mut c, &format!("SELECT {f}'{big}')"), "54000");
        c.batch_execute("RESET pgprompt.max_vars_bytes").unwrap();
    }
    // jsonb has already kept the last of a repeated key: no error there.
    assert_eq!(one::<String>(&mut c, r#"SELECT prompt_render('t', '{"a": 1, "a": 2}'::jsonb)"#), "2");
    assert_eq!(snapshot(&mut c), before, "rendering never writes");
}
