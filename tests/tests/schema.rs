//! The schema as installed: documented, dumped, removable, and the examples
//! that `make run` loads.

use pgprompt_tests::*;

#[test]
fn every_object_has_a_comment() {
    let db = TestDb::new();
    let mut c = db.connect();
    // Partitions are made by logging; they are documented too.
    c.batch_execute("SELECT prompt_save('t', 'x'); SELECT prompt_log_execution('t', model => 'gpt-4o');").unwrap();
    let missing: Vec<String> = c
        .query(
            "SELECT 'table ' || c.relname FROM pg_class c
              WHERE c.relnamespace = 'pgprompt'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'c')
                AND obj_description(c.oid, 'pg_class') IS NULL AND c.relkind <> 'c'
             UNION ALL
             SELECT 'column ' || c.relname || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE c.relnamespace = 'pgprompt'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'c')
                AND a.attnum > 0 AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL
             UNION ALL
             SELECT 'function ' || p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = 'pgprompt'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
             UNION ALL
             SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass FROM pg_trigger t
              WHERE NOT t.tgisinternal AND t.tgparentid = 0 -- a partition's clone shares its parent's
                AND t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pgprompt'::regnamespace)
                AND obj_description(t.oid, 'pg_trigger') IS NULL
             UNION ALL
             SELECT 'type ' || t.typname FROM pg_type t
              WHERE t.typnamespace = 'pgprompt'::regnamespace AND t.typtype = 'c' AND t.typrelid IN
                    (SELECT oid FROM pg_class WHERE relkind = 'c') AND obj_description(t.oid, 'pg_type') IS NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(missing.is_empty(), "objects without COMMENT ON: {missing:#?}");
}

#[test]
fn the_seeds_trigger_names_exist() {
    let db = TestDb::new();
    let mut c = db.connect();
    for (trigger, table) in [
        ("trigger_enforce_single_active_template", "prompt_templates"),
        ("trigger_update_template_statistics", "prompt_executions"),
        ("trigger_update_ab_test_statistics", "prompt_executions"),
    ] {
        let n: i64 = one(
            &mut c,
            &format!("SELECT count(*) FROM pg_trigger WHERE tgname = '{trigger}' AND tgrelid = 'pgprompt.{table}'::regclass"),
        );
        assert_eq!(n, 1, "{trigger} on {table}");
    }
}

#[test]
fn user_data_is_registered_for_pg_dump() {
    let db = TestDb::new();
    let mut c = db.connect();
    let dumped: Vec<String> = c
        .query(
            "SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'pgprompt' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in ["prompt_templates", "prompt_versions", "prompt_labels", "prompt_activations", "prompt_audit_logs", "prompt_model_prices"] {
        assert!(dumped.iter().any(|d| d.ends_with(t)), "{t} not in extconfig: {dumped:?}");
        assert!(dumped.iter().any(|d| d.ends_with(&format!("{t}_id_seq"))) || t == "prompt_labels", "{t} sequence");
    }
    // Executions live in partitions, which pg_dump dumps as tables of their
    // own; their sequence and the statistics are the extension's.
    for t in ["prompt_executions_id_seq", "prompt_stats_pending", "prompt_stats_hourly"] {
        assert!(dumped.iter().any(|d| d.ends_with(t)), "{t} not in extconfig: {dumped:?}");
    }
}

#[test]
fn drop_extension_removes_everything() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'x')").unwrap();
    c.batch_execute("SELECT prompt_log_execution('t', model => 'gpt-4o', executed_at => d) FROM unnest(ARRAY[timestamptz '2024-01-01', now()]) d")
        .unwrap();
    c.batch_execute("DROP EXTENSION pgprompt").unwrap();
    let left: i64 = one(&mut c, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgprompt'");
    assert_eq!(left, 0);
    let partitions: i64 = one(&mut c, "SELECT count(*) FROM pg_class WHERE relname LIKE 'prompt_executions%'");
    assert_eq!(partitions, 0);
    c.batch_execute("CREATE EXTENSION pgprompt").unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM pgprompt.prompt_templates"), 0);
}

#[test]
fn create_extension_installs_no_templates() {
    let db = TestDb::new();
    let mut c = db.connect();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_templates"), 0);
}

#[test]
fn the_examples_load_render_and_reload_idempotently() {
    let db = TestDb::new();
    let mut c = db.connect();
    load_examples(&mut c);
    let before = snapshot(&mut c);
    load_examples(&mut c);
    assert_eq!(snapshot(&mut c), before, "loading the examples twice changes nothing");

    let nlu: String = one(&mut c, r#"SELECT prompt_render('nlu_topic_extraction', '{"student_query": "How do plants make food?", "grade_level": 7}', label => 'production')"#);
    assert!(nlu.contains("Student question: \"How do plants make food?\"") && nlu.contains("grade 7 curriculum"), "{nlu}");
    let chat: serde_json::Value = one(&mut c, r#"SELECT prompt_render_chat('clarification_question_generation', '{"student_query": "cells", "grade_level": 5, "candidate_topics": ["biology", "batteries"]}')"#);
    assert_eq!(chat[0]["role"], "system");
    assert!(chat[1]["content"].as_str().unwrap().contains("biology, batteries"));
    let script: String = one(
        &mut c,
        r#"SELECT prompt_render('educational_script_generation', '{"topic": "photosynthesis", "grade_level": 5, "learning_objectives": ["name the inputs", "name the outputs"], "student_interests": ["football"]}')"#,
    );
    assert!(script.contains("1. name the inputs\n2. name the outputs"), "{script}");
    assert!(script.contains("football"), "{script}");
    let configs: Vec<(String, f64)> = c
        .query("SELECT t.name, (v.model_config->>'temperature')::float8 FROM prompt_templates t JOIN prompt_versions v ON v.template_id = t.id ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        configs,
        vec![
            ("clarification_question_generation".into(), 0.7),
            ("educational_script_generation".into(), 0.7),
            ("nlu_topic_extraction".into(), 0.2)
        ]
    );
}

#[test]
fn the_readme_search_path_makes_calls_unqualified() {
    let db = TestDb::new();
    let mut c = config(&db.name).connect(NoTls).unwrap();
    // Without it, the schema has to be named...
    assert!(c.batch_execute("SELECT prompt_render_text('x')").is_err());
    // ...with the README's setting, it need not.
    c.batch_execute(&format!("ALTER DATABASE {} SET search_path = \"$user\", public, pgprompt", db.name)).unwrap();
    let mut c = config(&db.name).connect(NoTls).unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_render_text('hi {{ n }}', '{\"n\": 1}')"), "hi 1");
}

#[test]
fn create_extension_leaves_the_callers_search_path_alone() {
    let db = TestDb::empty();
    let mut c = config(&db.name).connect(NoTls).unwrap();
    let before: String = one(&mut c, "SHOW search_path");
    c.batch_execute("CREATE EXTENSION pgprompt").unwrap();
    assert_eq!(one::<String>(&mut c, "SHOW search_path"), before);
    c.batch_execute("BEGIN; SET search_path = public; DROP EXTENSION pgprompt; CREATE EXTENSION pgprompt;").unwrap();
    assert_eq!(one::<String>(&mut c, "SHOW search_path"), "public");
    c.batch_execute("COMMIT").unwrap();
    // Objects created afterwards land where the caller expects.
    c.batch_execute("CREATE TABLE mine (x int)").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT 'mine'::regclass::text"), "mine");
    assert_eq!(one::<String>(&mut c, "SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'mine'"), "public");
}
