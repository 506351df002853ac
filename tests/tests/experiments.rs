//! A/B experiments against a real server: bucketing that agrees with
//! Python's hashlib, sticky assignment that follows every committed change,
//! the lifecycle with its audit, the results' statistics, and bad input.

use std::sync::{Arc, Barrier};
use std::thread;

use pgprompt_tests::*;

const TWO: &str = r#"[{"name": "control", "version": 1, "weight": 50}, {"name": "friendly", "version": 2, "weight": 50}]"#;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Hi {{ name }}', '{"model": "gemini-2.5-flash"}');
           SELECT prompt_save('tutor', 'Hello {{ name }}!', '{"model": "gemini-2.5-flash"}');
           SELECT prompt_save('tutor', 'Hey {{ name }}.', '{"model": "gemini-2.5-flash"}');
           SELECT prompt_save('other', 'x', '{"model": "gpt-4o"}');
           SELECT prompt_save('other', 'y', '{"model": "gpt-4o"}');"#,
    )
    .unwrap();
}

fn create(c: &mut Client, name: &str, variants: &str) {
    c.execute("SELECT prompt_experiment_create($1, 'tutor', $2::text::jsonb)", &[&name, &variants]).unwrap();
}

#[test]
fn buckets_agree_with_python_and_with_postgres_md5() {
    let db = TestDb::new();
    let mut c = db.connect();
    // The README's vectors, from Python's hashlib.
    for (salt, user, bucket) in [
        ("", "user-1", 20),
        ("", "user-2", 75),
        ("", "alice", 0),
        ("", "42", 74),
        ("", "élève", 18),
        ("", "", 66),
        ("tutor_tone", "user-1", 13),
        ("tutor_tone", "alice", 78),
    ] {
        let got: i32 = c.query_one("SELECT prompt_bucket($1, $2)", &[&user, &salt]).unwrap().get(0);
        assert_eq!(got, bucket, "{salt:?} + {user:?}");
    }
    let default_salt: i32 = one(&mut c, "SELECT prompt_bucket('user-1')");
    assert_eq!(default_salt, 20);
    // The same formula written with PostgreSQL's md5(): the 128-bit digest as
    // four 32-bit words, big-endian, in numeric, modulo 100.
    let mismatches: i64 = one(
        &mut c,
        "WITH u AS (SELECT 'user-' || i AS id, 'exp' || (i % 7) AS salt FROM generate_series(1, 5000) i),
              h AS (SELECT id, salt, md5(salt || id) AS d FROM u)
         SELECT count(*) FROM h
          WHERE prompt_bucket(id, salt) <> (
                (('x' || substr(d, 1, 8))::bit(32)::bigint & 4294967295)::numeric * 79228162514264337593543950336
              + (('x' || substr(d, 9, 8))::bit(32)::bigint & 4294967295)::numeric * 18446744073709551616
              + (('x' || substr(d, 17, 8))::bit(32)::bigint & 4294967295)::numeric * 4294967296
              + (('x' || substr(d, 25, 8))::bit(32)::bigint & 4294967295)::numeric) % 100",
    );
    assert_eq!(mismatches, 0);
    expect_error(&mut c, "SELECT prompt_bucket(NULL)", "22004");
    expect_error(&mut c, "SELECT prompt_bucket('u', NULL)", "22004");
}

#[test]
fn assignment_follows_the_weights_and_sticks() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    create(
        &mut c,
        "tone",
        r#"[{"name": "a", "version": 1, "weight": 20}, {"name": "b", "version": 2, "weight": 30}, {"name": "c", "version": 3, "weight": 50}]"#,
    );
    // A draft assigns nobody: the active version for everyone.
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM generate_series(1, 1000) i WHERE prompt_assign('tutor', 'u' || i) <> 1"), 0);
    c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
    // Every user gets exactly the variant owning their bucket, salted by the experiment's name.
    let wrong: i64 = one(
        &mut c,
        "SELECT count(*) FROM generate_series(1, 20000) i
          WHERE prompt_assign('tutor', 'u' || i) <> CASE WHEN prompt_bucket('u' || i, 'tone') < 20 THEN 1
                                                         WHEN prompt_bucket('u' || i, 'tone') < 50 THEN 2 ELSE 3 END",
    );
    assert_eq!(wrong, 0);
    let shares: Vec<i64> = c
        .query("SELECT count(*) FROM generate_series(1, 20000) i GROUP BY prompt_assign('tutor', 'u' || i) ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // 4000 / 6000 / 10000 expected; 5 sigma is under 300.
    assert!((3700..=4300).contains(&shares[0]) && (5700..=6300).contains(&shares[1]) && (9700..=10300).contains(&shares[2]), "{shares:?}");

    // Sticky: another session assigns the same; stop hands out the active
    // version; resuming gives everyone their old variant back.
    let all = "SELECT string_agg(prompt_assign('tutor', 'u' || i)::text, '' ORDER BY i) FROM generate_series(1, 500) i";
    let first: String = one(&mut c, all);
    let mut other = db.connect();
    assert_eq!(one::<String>(&mut other, all), first);
    c.batch_execute("SELECT prompt_experiment_stop('tone')").unwrap();
    assert_eq!(one::<String>(&mut other, all), "1".repeat(500));
    c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
    assert_eq!(one::<String>(&mut other, all), first);

    // A change another session has not committed is not seen; once committed, it is.
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SELECT prompt_experiment_stop('tone')").unwrap();
    assert_eq!(one::<String>(&mut other, all), first);
    tx.commit().unwrap();
    assert_eq!(one::<String>(&mut other, all), "1".repeat(500));
    // The activated version is what a stopped experiment's users get.
    c.batch_execute("SELECT prompt_activate('tutor', 3)").unwrap();
    assert_eq!(one::<String>(&mut other, all), "3".repeat(500));
}

#[test]
fn render_for_reports_version_experiment_and_variant() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let render = |c: &mut Client, user: &str| -> (Option<String>, i32, Option<String>, Option<String>) {
        let r = c
            .query_one("SELECT prompt, version, experiment, variant FROM prompt_render_for('tutor', $1, '{\"name\": \"Ada\"}')", &[&user])
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(render(&mut c, "user-1"), (Some("Hi Ada".into()), 1, None, None));
    create(&mut c, "tone", TWO);
    c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
    // prompt_bucket('user-1', 'tone') is 31 and ('alice', 'tone') 75 (Python).
    assert_eq!(render(&mut c, "user-1"), (Some("Hi Ada".into()), 1, Some("tone".into()), Some("control".into())));
    assert_eq!(render(&mut c, "alice"), (Some("Hello Ada!".into()), 2, Some("tone".into()), Some("friendly".into())));
    // What it reports goes straight into the log and counts for the variant.
    c.batch_execute(
        "SELECT prompt_log_execution('tutor', r.version, input_tokens => 10, output_tokens => 2, user_id => 'alice',
                                     experiment => r.experiment, variant => r.variant)
           FROM prompt_render_for('tutor', 'alice', '{\"name\": \"Ada\"}') r",
    )
    .unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT executions FROM v_ab_test_results WHERE variant = 'friendly'"), 1);
    // And the version's model configuration comes along: each variant's own.
    c.batch_execute(r#"SELECT prompt_save('tutor', 'Yo {{ name }}', '{"model": "gpt-4o", "temperature": 0.9}')"#).unwrap();
    c.batch_execute(
        r#"SELECT prompt_experiment_stop('tone');
           SELECT prompt_experiment_create('tone2', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 4, "weight": 50}]');
           SELECT prompt_experiment_start('tone2');"#,
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for user in ["user-1", "alice", "bob", "carol"] {
        let r = c.query_one("SELECT version, config::text FROM prompt_render_for('tutor', $1, '{\"name\": \"Ada\"}')", &[&user]).unwrap();
        let (version, config): (i32, String) = (r.get(0), r.get(1));
        seen.insert(version);
        let stored: String = one(&mut c, &format!("SELECT model_config::text FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE t.name = 'tutor' AND v.version = {version}"));
        assert_eq!(config, stored, "{user}");
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 4], "both variants were rendered");
    c.batch_execute("SELECT prompt_experiment_stop('tone2'); SELECT prompt_experiment_start('tone');").unwrap();
    // Missing variables fail as prompt_render does.
    expect_error(&mut c, "SELECT * FROM prompt_render_for('tutor', 'alice', '{}')", "42P02");

    // Chat templates come back as messages.
    c.batch_execute(
        r#"SELECT prompt_save('chat', '[{"role": "system", "content": "Be kind to {{ name }}"}]', kind => 'chat');"#,
    )
    .unwrap();
    let r = c.query_one("SELECT prompt IS NULL, messages::text, version FROM prompt_render_for('chat', 'bob', '{\"name\": \"Bo\"}')", &[]).unwrap();
    assert!(r.get::<_, bool>(0));
    assert_eq!(r.get::<_, String>(1), r#"[{"role": "system", "content": "Be kind to Bo"}]"#);
    assert_eq!(r.get::<_, i32>(2), 1);
}

#[test]
fn lifecycle_is_audited_and_promote_is_one_transaction() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    create(&mut c, "tone", TWO);
    let row = c
        .query_one("SELECT status, control_variant, hash_salt, min_sample_size, significance_level::text FROM ab_test_experiments", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2), row.get::<_, i32>(3), row.get::<_, String>(4)),
        ("draft".into(), "control".into(), "tone".into(), 1000, "0.05".into())
    );
    c.batch_execute("SELECT prompt_experiment_start('tone'); SELECT prompt_experiment_stop('tone'); SELECT prompt_experiment_start('tone');")
        .unwrap();
    assert!(one::<bool>(&mut c, "SELECT started_at IS NOT NULL AND stopped_at IS NULL FROM ab_test_experiments"));

    // Too few calls to promote, unless forced.
    log(&mut c, "tone", "friendly", 3, 3);
    let msg = expect_error(&mut c, "SELECT prompt_experiment_promote('tone', 'friendly')", "55000");
    assert_eq!(msg, "experiment \"tone\" has fewer than its minimum sample of 1000 calls per variant: control (0 calls), friendly (3 calls)");
    // Promote rolled back: nothing happened.
    let before = snapshot(&mut c);
    let mut tx = c.transaction().unwrap();
    assert_eq!(tx.query_one("SELECT prompt_experiment_promote('tone', 'friendly', force => true)", &[]).unwrap().get::<_, i32>(0), 2);
    tx.rollback().unwrap();
    assert_eq!(snapshot(&mut c), before);

    assert_eq!(one::<i32>(&mut c, "SELECT prompt_experiment_promote('tone', 'friendly', force => true)"), 2);
    let row = c.query_one("SELECT status, winner, concluded_at IS NOT NULL FROM ab_test_experiments", &[]).unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, bool>(2)), ("concluded".into(), "friendly".into(), true));
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 'tutor'"), 2);
    // Concluded is final; everyone renders the winner.
    expect_error(&mut c, "SELECT prompt_experiment_start('tone')", "55000");
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_assign('tutor', 'user-1')"), 2);

    let actions: Vec<String> = c
        .query("SELECT action FROM prompt_audit_logs WHERE object_type = 'experiment' ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["create", "start", "stop", "start", "conclude"]);
    let activations: i64 = one(&mut c, "SELECT count(*) FROM prompt_audit_logs WHERE action = 'activate' AND version = 2");
    assert_eq!(activations, 1);

    // A started experiment keeps its row; a draft may go; deleting the template takes them along.
    expect_error(&mut c, "DELETE FROM ab_test_experiments WHERE name = 'tone'", "55000");
    create(&mut c, "draft", TWO);
    c.batch_execute("DELETE FROM ab_test_experiments WHERE name = 'draft'").unwrap();
    c.batch_execute("SELECT prompt_delete('tutor')").unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM ab_test_experiments"), 0);
}

/// Logs `n` calls for a variant, `successes` of them successful (without
/// user ids: a user's calls count for the user's own bucket).
fn log(c: &mut Client, experiment: &str, variant: &str, n: i32, successes: i32) {
    c.execute(
        "SELECT prompt_log_execution('tutor', input_tokens => 1000, output_tokens => 100, latency_ms => 200 + i % 100,
                                     success => i <= $4, experiment => $1, variant => $2)
           FROM generate_series(1, $3) i",
        &[&experiment, &variant, &n, &successes],
    )
    .unwrap();
}

#[test]
fn results_have_intervals_tests_and_the_sample_ratio_check() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    create(&mut c, "tone", TWO);
    c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
    // Nothing logged yet: rows, no errors, nothing significant.
    let r = c.query_one("SELECT count(*), bool_or(significant), max(p_value) FROM v_ab_test_results", &[]).unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, Option<bool>>(1), r.get::<_, Option<f64>>(2)), (2, Some(false), None));

    log(&mut c, "tone", "control", 1000, 200);
    log(&mut c, "tone", "friendly", 1000, 240);
    let r = c
        .query_one(
            "SELECT executions, successes, success_rate, success_rate_ci_low, success_rate_ci_high, lift_abs, lift_rel,
                    p_value, significant, min_sample_reached, srm_p_value, sample_ratio_mismatch, mean_latency_ms,
                    mean_cost_usd::text
               FROM v_ab_test_results WHERE variant = 'friendly'",
            &[],
        )
        .unwrap();
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (1000, 240));
    close(r.get(2), 0.24);
    // Wilson 240/1000 and the pooled z-test 200/1000 vs 240/1000, from Python.
    close(r.get(3), 0.214_556_525_187_542_62);
    close(r.get(4), 0.267_433_389_224_946_1);
    close(r.get(5), 0.04);
    close(r.get(6), 0.2);
    close(r.get(7), 0.030_837_167_828_904_333);
    assert!(r.get::<_, bool>(8), "p < 0.05 with 1000 calls each");
    assert!(r.get::<_, bool>(9));
    close(r.get(10), 1.0);
    assert!(!r.get::<_, bool>(11));
    close(r.get(12), 249.5);
    // gemini-2.5-flash: 1000 × 0.30 + 100 × 2.50 per million.
    assert_eq!(r.get::<_, String>(13), "0.00055");
    let control = c.query_one("SELECT is_control, p_value, significant, lift_abs FROM v_ab_test_results WHERE variant = 'control'", &[]).unwrap();
    assert!(control.get::<_, bool>(0));
    assert_eq!((control.get::<_, Option<f64>>(1), control.get::<_, Option<bool>>(2)), (None, None));

    // The decision rules are fixed once started: no moving the goalposts.
    expect_error(&mut c, "UPDATE ab_test_experiments SET min_sample_size = 1001 WHERE name = 'tone'", "55000");
    expect_error(&mut c, "UPDATE ab_test_experiments SET significance_level = 0.1 WHERE name = 'tone'", "55000");
    // promote without a name follows the sequential test, which a p of
    // 0.03 read at an arbitrary moment does not convince...
    let seq: f64 = one(&mut c, "SELECT primary_seq_p_value FROM v_ab_test_results WHERE variant = 'friendly'");
    assert!(seq > 0.05, "{seq}");
    expect_error(&mut c, "SELECT prompt_experiment_promote('tone')", "55000");
    // ...but the same lift over five times the calls does.
    log(&mut c, "tone", "control", 4000, 800);
    log(&mut c, "tone", "friendly", 4000, 960);
    assert_eq!(one::<String>(&mut c, "SELECT primary_verdict FROM v_ab_test_results WHERE variant = 'friendly'"), "better");
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_experiment_promote('tone')"), 2);

    // A split that is not what was configured is flagged.
    c.batch_execute(
        r#"SELECT prompt_experiment_create('skewed', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 3, "weight": 50}]');
           SELECT prompt_experiment_start('skewed');"#,
    )
    .unwrap();
    log(&mut c, "skewed", "a", 1150, 500);
    log(&mut c, "skewed", "b", 850, 400);
    let r = c.query_one("SELECT srm_p_value, sample_ratio_mismatch, significant FROM v_ab_test_results WHERE experiment = 'skewed' AND variant = 'b'", &[]).unwrap();
    assert!(r.get::<_, f64>(0) < 1e-6);
    assert!(r.get::<_, bool>(1));
    assert!(!r.get::<_, bool>(2), "min sample 1000 not reached by b");
    // No significant winner: promote needs a name.
    expect_error(&mut c, "SELECT prompt_experiment_promote('skewed')", "55000");
    // The active tests view counts the running one.
    let r = c.query_one("SELECT experiment, executions, executions_by_variant::text FROM v_active_ab_tests", &[]).unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, String>(2)), ("skewed".into(), 2000, r#"{"a": 1150, "b": 850}"#.into()));
}

#[test]
fn significance_waits_for_the_minimum_sample_and_corrects_for_many_variants() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        r#"SELECT prompt_experiment_create('small', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]', min_sample_size => 1001);
           SELECT prompt_experiment_start('small');"#,
    )
    .unwrap();
    log(&mut c, "small", "a", 1000, 200);
    log(&mut c, "small", "b", 1000, 240);
    assert!(!one::<bool>(&mut c, "SELECT significant FROM v_ab_test_results WHERE variant = 'b'"));
    c.batch_execute("SELECT prompt_experiment_stop('small')").unwrap();
    // Three variants: two comparisons, each at alpha / 2 = 0.025. p = 0.0308 is not enough.
    c.batch_execute(
        r#"SELECT prompt_experiment_create('three', 'tutor', '[{"name": "a", "version": 1, "weight": 34}, {"name": "b", "version": 2, "weight": 33}, {"name": "c", "version": 3, "weight": 33}]', min_sample_size => 100);
           SELECT prompt_experiment_start('three');"#,
    )
    .unwrap();
    log(&mut c, "three", "a", 1000, 200);
    log(&mut c, "three", "b", 1000, 240);
    log(&mut c, "three", "c", 1000, 300);
    let rows: Vec<(String, bool)> = c
        .query("SELECT variant, significant FROM v_ab_test_results WHERE experiment = 'three' AND NOT is_control ORDER BY variant", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [("b".to_string(), false), ("c".to_string(), true)]);
}

#[test]
fn bad_input() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let before = snapshot(&mut c);
    for (sql, code, says) in [
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 50}, {"version": 2, "weight": 40}]')"#, "22023", "sum to 90"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 50}, {"version": 9, "weight": 50}]')"#, "42704", "not all versions"),
        (r#"SELECT prompt_experiment_create('e', 'nope', '[{"version": 1, "weight": 100}]')"#, "42704", "does not exist"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '{"version": 1}')"#, "22023", "JSON array"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 100, "color": "red"}]')"#, "22023", "keys"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 50}, {"version": 1, "weight": 50}]')"#, "22023", "used twice"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 0}, {"version": 2, "weight": 100}]')"#, "22023", "weight"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": "1", "weight": 100}]')"#, "22023", "version"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 100}]', control => 'zzz')"#, "22023", "control"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', '[{"version": 1, "weight": 100}]', significance_level => 0.7)"#, "22023", "significance_level"),
        (r#"SELECT prompt_experiment_create('e', 'tutor', NULL)"#, "22004", "variants"),
        (r#"SELECT prompt_experiment_create('bad name!', 'tutor', '[{"version": 1, "weight": 100}]')"#, "22023", "not a valid experiment name"),
        ("SELECT prompt_experiment_start('nope')", "42704", "does not exist"),
        ("SELECT prompt_assign('tutor', NULL)", "22004", "user_id"),
        ("SELECT prompt_assign('tutor', '')", "22023", "empty"),
        ("SELECT prompt_assign('nope', 'u')", "42704", "does not exist"),
    ] {
        let msg = expect_error(&mut c, sql, code);
        assert!(msg.contains(says), "{sql}: {msg}");
    }
    assert_eq!(snapshot(&mut c), before, "failed calls wrote nothing");

    // A variant from another template: version 2 exists for both, but the
    // experiment is on tutor, so logging it against other is refused.
    create(&mut c, "tone", TWO);
    create(&mut c, "solo", r#"[{"version": 1, "weight": 100}]"#);
    create(&mut c, "rival", TWO);
    let before = snapshot(&mut c);
    let msg = expect_error(&mut c, "SELECT prompt_experiment_start('solo')", "55000");
    assert!(msg.contains("at least two"), "{msg}");
    expect_error(&mut c, "SELECT prompt_experiment_stop('tone')", "55000");
    expect_error(&mut c, "SELECT prompt_experiment_promote('tone', 'friendly')", "55000");
    assert_eq!(snapshot(&mut c), before, "refused lifecycle steps wrote nothing");
    c.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
    let before = snapshot(&mut c) + &log_fingerprint(&mut c);
    let msg = expect_error(&mut c, "SELECT prompt_experiment_start('rival')", "55000");
    assert!(msg.contains("already has a running experiment: \"tone\""), "{msg}");
    // Direct SQL meets the unique index.
    expect_error(&mut c, "UPDATE ab_test_experiments SET status = 'running', started_at = now() WHERE name = 'rival'", "23505");
    // Started experiments are fixed.
    expect_error(&mut c, r#"UPDATE ab_test_experiments SET variants = '[{"version": 1, "weight": 100}]' WHERE name = 'tone'"#, "55000");
    expect_error(&mut c, "UPDATE ab_test_experiments SET hash_salt = 'x' WHERE name = 'tone'", "55000");
    expect_error(&mut c, "UPDATE ab_test_experiments SET status = 'draft' WHERE name = 'tone'", "55000");
    let msg = expect_error(&mut c, "SELECT prompt_experiment_promote('tone', version => 3)", "22023");
    assert!(msg.contains("not a variant"), "{msg}");
    expect_error(&mut c, "SELECT prompt_experiment_promote('tone', 'nobody')", "22023");
    expect_error(&mut c, "SELECT prompt_experiment_promote('tone', 'friendly', 2)", "22023");

    // Logging names the experiment's variants and template.
    for (sql, code) in [
        ("SELECT prompt_log_execution('tutor', experiment => 'nope', variant => 'a')", "42704"),
        ("SELECT prompt_log_execution('tutor', experiment => 'tone', variant => 'zzz')", "22023"),
        ("SELECT prompt_log_execution('tutor', 1, experiment => 'tone', variant => 'friendly')", "22023"),
        ("SELECT prompt_log_execution('other', experiment => 'tone', variant => 'friendly')", "22023"),
    ] {
        expect_error(&mut c, sql, code);
    }
    // A user's calls are the user's bucket's: a contradicting variant is
    // refused, naming the right one; no variant and no user is refused.
    let (owned, other): (String, String) = {
        let r = c.query_one("SELECT variant, CASE variant WHEN 'friendly' THEN 'control' ELSE 'friendly' END FROM prompt_render_for('tutor', 'u-42', '{\"name\": \"Ada\"}')", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    let msg = expect_error(&mut c, &format!("SELECT prompt_log_execution('tutor', user_id => 'u-42', experiment => 'tone', variant => '{other}')"), "22023");
    assert_eq!(msg, format!("user \"u-42\" is in variant \"{owned}\" of experiment \"tone\", not \"{other}\""));
    expect_error(&mut c, "SELECT prompt_log_execution('tutor', experiment => 'tone')", "22023");
    expect_error(&mut c, "SELECT prompt_log_execution('tutor', variant => 'friendly')", "22023");
    assert_eq!(snapshot(&mut c) + &log_fingerprint(&mut c), before, "refused changes and calls wrote nothing");
    // Without a version, the variant's is logged.
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', experiment => 'tone', variant => 'friendly')");
    assert_eq!(one::<i32>(&mut c, &format!("SELECT version FROM prompt_executions WHERE id = {id}")), 2);
    // Without a variant, the user's is logged, with its version.
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', user_id => 'u-42', experiment => 'tone')");
    let (variant, version): (String, i32) = {
        let r = c.query_one(&format!("SELECT variant, version FROM prompt_executions WHERE id = {id}"), &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(variant, owned);
    assert_eq!(version, if owned == "friendly" { 2 } else { 1 });
    // ... and the variant it would have been given is accepted.
    one::<i64>(&mut c, &format!("SELECT prompt_log_execution('tutor', user_id => 'u-42', experiment => 'tone', variant => '{owned}')"));
}

#[test]
fn one_running_experiment_per_template_under_concurrency() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    for round in 0..5 {
        let names: Vec<String> = (0..4).map(|i| format!("r{round}_{i}")).collect();
        for n in &names {
            create(&mut c, n, TWO);
        }
        let barrier = Arc::new(Barrier::new(names.len()));
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let mut s = db.connect();
                let (n, barrier) = (n.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    s.execute("SELECT prompt_experiment_start($1)", &[&n]).map_err(|e| e.code().map(|c| c.code().to_string()))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.as_deref() == Some("55000")), "{results:?}");
        assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM ab_test_experiments WHERE status = 'running'"), 1);
        c.batch_execute(&format!(
            "SELECT prompt_experiment_stop(name) FROM ab_test_experiments WHERE status = 'running' AND name LIKE 'r{round}%'"
        ))
        .unwrap();
    }
}
