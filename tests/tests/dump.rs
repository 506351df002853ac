//! pg_dump and pg_restore keep every row, and the restored database works.

use std::process::Command;

use pgprompt_tests::*;

fn pg_bin(tool: &str) -> String {
    let dir = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{tool}")
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(pg_bin(tool)).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dump_and_restore_keep_every_row() {
    let source = TestDb::new();
    let mut c = source.connect();
    load_examples(&mut c);
    c.batch_execute(
        "SELECT prompt_save('nlu_topic_extraction', 'v2 {{ student_query }}', message => 'shorter');
         SELECT prompt_activate('nlu_topic_extraction', 2);
         SELECT prompt_label('nlu_topic_extraction', 2, 'staging');
         SELECT prompt_rollback('nlu_topic_extraction');
         SELECT prompt_test_case_save('nlu_topic_extraction', 'short', '[{\"max_length\": 5000}]', '{\"student_query\": \"q\", \"grade_level\": 3}');",
    )
    .unwrap();
    // Prices, calls in two months (one with PII and a logged finding), an
    // experiment call, statistics partly folded and partly pending.
    c.batch_execute(
        r#"INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok)
               VALUES ('house-model', '2024-01-01', 1.5, 2.5);
           UPDATE prompt_model_prices SET source = 'edited' WHERE model = 'gpt-4o';
           UPDATE prompt_alert_rules SET threshold = 25 WHERE name = 'daily_cost';
           INSERT INTO prompt_alert_rules (name, metric, threshold, time_window) VALUES ('slow_hour', 'p95_latency_ms', 3000, '1 hour');
           INSERT INTO prompt_guardrails (name, kind, action, config)
               VALUES ('homework_watch', 'keywords', 'log', '{"keywords": ["homework"]}');
           SELECT prompt_log_execution('nlu_topic_extraction', 1, 'house-model', 1000, 10, 120,
                                       rendered_prompt => 'homework for jane@example.com', executed_at => '2025-05-05 10:00+00');
           SELECT prompt_stats_compact();
           SELECT prompt_experiment_create('e1', 'nlu_topic_extraction',
                                           '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]',
                                           description => 'shorter is better');
           SELECT prompt_experiment_start('e1');
           SELECT prompt_experiment_create('e0', 'nlu_topic_extraction', '[{"version": 1, "weight": 100}]');
           SELECT prompt_log_execution('nlu_topic_extraction', 2, 'gpt-4o', 2000, 20, 240, false,
                                       experiment => 'e1', variant => 'b');"#,
    )
    .unwrap();
    let before = fingerprint(&mut c, true);
    let logged_before = log_fingerprint(&mut c);

    let file = std::env::temp_dir().join(format!("{}.dump", source.name));
    let file = file.to_str().unwrap();
    let port = config("postgres").get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config("postgres").get_user().unwrap_or("postgres").to_string();
    run("pg_dump", &["-h", "127.0.0.1", "-p", &port, "-U", &user, "-Fc", "-f", file, &source.name]);
    let target = TestDb::empty();
    run("pg_restore", &["-h", "127.0.0.1", "-p", &port, "-U", &user, "-d", &target.name, "--exit-on-error", file]);
    std::fs::remove_file(file).ok();

    let mut r = target.connect();
    assert_eq!(fingerprint(&mut r, true), before, "the restored database has exactly the same rows");
    assert_eq!(log_fingerprint(&mut r), logged_before, "prices, executions and statistics came along, counted once");
    // Logging carries on: into a restored month, a new month, with the restored prices.
    let id: i64 = one(&mut r, "SELECT prompt_log_execution('nlu_topic_extraction', 1, 'house-model', 1000000, 0, executed_at => '2025-05-06')");
    let cost: String = one(&mut r, &format!("SELECT cost_usd::text FROM prompt_executions WHERE id = {id}"));
    assert_eq!(cost, "1.5");
    r.batch_execute("SELECT prompt_log_execution('nlu_topic_extraction', 1, 'gpt-4o', executed_at => '2025-09-01')").unwrap();
    let (counted, rows): (i64, i64) = {
        let row = r.query_one("SELECT (SELECT sum(executions)::int8 FROM prompt_template_stats), (SELECT count(*) FROM prompt_executions)", &[]).unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((counted, rows), (4, 4));
    // It works: rendering, the active version, and new versions continue the numbering.
    let out: String = one(&mut r, r#"SELECT prompt_render('nlu_topic_extraction', '{"student_query": "q", "grade_level": 3}')"#);
    assert!(out.contains("Student question: \"q\""), "{out}");
    assert_eq!(one::<String>(&mut r, r#"SELECT prompt_render('nlu_topic_extraction', '{"student_query": "q"}', label => 'staging')"#), "v2 q");
    // The running experiment assigns users as before, and its results came along.
    let users = "SELECT string_agg(prompt_assign('nlu_topic_extraction', 'u' || i)::text, '') FROM generate_series(1, 200) i";
    assert_eq!(one::<String>(&mut r, users), one::<String>(&mut c, users));
    assert_eq!(one::<i64>(&mut r, "SELECT executions FROM v_ab_test_results WHERE experiment = 'e1' AND variant = 'b'"), 1);
    // The test cases came along and still gate releases.
    assert!(one::<bool>(&mut r, "SELECT bool_and(passed) FROM prompt_run_tests('nlu_topic_extraction', 1)"));
    assert_eq!(one::<i32>(&mut r, "SELECT prompt_save('nlu_topic_extraction', 'v3')"), 3);
    // The activation history came along: rollback undoes the new activation.
    r.batch_execute("SELECT prompt_activate('nlu_topic_extraction', 3)").unwrap();
    assert_eq!(one::<i32>(&mut r, "SELECT prompt_rollback('nlu_topic_extraction')"), 1);
    let audit_max_before: i64 = one(&mut c, "SELECT max(id) FROM prompt_audit_logs");
    let new_events: Vec<String> = r
        .query("SELECT action FROM prompt_audit_logs WHERE id > $1 ORDER BY id", &[&audit_max_before])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(new_events, ["new_version", "activate", "rollback"]);
}
