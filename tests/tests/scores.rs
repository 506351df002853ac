//! Feedback scores against a real server: declared names, values checked
//! against their declaration, immutable history with corrections that
//! supersede, statistics per version and variant that agree with the scores
//! in force computed from the rows, concurrency, roles, and bad input.

use std::sync::{Arc, Barrier};
use std::thread;

use pgprompt_tests::*;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Hi {{ name }}', '{"model": "gpt-4o"}');
           SELECT prompt_save('tutor', 'Hello {{ name }}!', '{"model": "gpt-4o"}');
           SELECT prompt_save('router', 'route {{ q }}', '{"model": "gpt-4o-mini"}');
           SELECT prompt_score_define('helpfulness', 'numeric', 1, 5, description => 'Rated by the student');
           SELECT prompt_score_define('thumbs', 'boolean');
           SELECT prompt_score_define('outcome', 'categorical', categories => ARRAY['resolved', 'escalated', 'abandoned']);"#,
    )
    .unwrap();
}

fn log(c: &mut Client, extra: &str) -> i64 {
    one(c, &format!("SELECT prompt_log_execution('tutor', input_tokens => 10, output_tokens => 5{extra})"))
}

/// Score statistics as the views give them, next to the same figures
/// computed straight from the scores in force and the calls they score.
fn agree(c: &mut Client) {
    let from_views: String = one(
        c,
        "SELECT coalesce(string_agg(format('%s/%s/%s %s %s', template_id, version, score, scores, round(mean::numeric, 9)), '; '
                                    ORDER BY template_id, version, score), '')
           FROM v_template_scores WHERE kind <> 'categorical'",
    );
    let from_rows: String = one(
        c,
        "WITH counted AS (
             SELECT s.name, coalesce(s.numeric_value, s.boolean_value::int) AS value, e.template_id, e.version
               FROM prompt_scores_current s JOIN prompt_executions e ON e.id = s.execution_id
              WHERE s.category IS NULL
             UNION ALL
             SELECT DISTINCT ON (s.id, e.template_id, e.version) s.name, coalesce(s.numeric_value, s.boolean_value::int), e.template_id, e.version
               FROM prompt_scores_current s JOIN prompt_executions e ON e.trace_id = s.trace_id
              WHERE s.category IS NULL)
         SELECT coalesce(string_agg(format('%s/%s/%s %s %s', template_id, version, name, n, round(mean, 9)), '; '
                                    ORDER BY template_id, version, name), '')
           FROM (SELECT template_id, version, name, count(*) AS n, avg(value) AS mean FROM counted GROUP BY 1, 2, 3) g",
    );
    assert_eq!(from_views, from_rows);
}

#[test]
fn scores_of_every_kind_are_checked_and_counted() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let a = log(&mut c, "");
    let b = log(&mut c, ", version => 2");
    c.batch_execute(&format!(
        "SELECT prompt_score({a}, 'helpfulness', 4);
         SELECT prompt_score({a}, 'thumbs', true, 'liked the example');
         SELECT prompt_score({a}, 'outcome', 'resolved', source => 'helpdesk');
         SELECT prompt_score({b}, 'helpfulness', 2.5);
         SELECT prompt_score({b}, 'thumbs', 'false');
         SELECT prompt_score({b}, 'helpfulness', '3', source => 'annotator');"
    ))
    .unwrap();
    // The last one corrected b's helpfulness: 2.5 is history, 3 counts.
    let current: String = one(
        &mut c,
        &format!("SELECT numeric_value::text FROM prompt_scores_current WHERE execution_id = {b} AND name = 'helpfulness'"),
    );
    assert_eq!(current, "3");
    let history: i64 = one(&mut c, &format!("SELECT count(*) FROM prompt_scores WHERE execution_id = {b} AND name = 'helpfulness'"));
    assert_eq!(history, 2);
    let supersedes: i64 = one(
        &mut c,
        &format!("SELECT supersedes FROM prompt_scores WHERE execution_id = {b} AND name = 'helpfulness' AND numeric_value = 3"),
    );
    let first: i64 =
        one(&mut c, &format!("SELECT id FROM prompt_scores WHERE execution_id = {b} AND name = 'helpfulness' AND numeric_value = 2.5"));
    assert_eq!(supersedes, first);

    let r = c
        .query_one("SELECT scores, mean, stddev FROM v_template_scores WHERE template = 'tutor' AND version = 2 AND score = 'helpfulness'", &[])
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, f64>(1), r.get::<_, Option<f64>>(2)), (1, 3.0, None));
    let thumbs: f64 = one(&mut c, "SELECT mean FROM v_template_scores WHERE version = 1 AND score = 'thumbs'");
    assert_eq!(thumbs, 1.0);
    let outcome: serde_json::Value = one(&mut c, "SELECT categories FROM v_template_scores WHERE score = 'outcome'");
    assert_eq!(outcome, serde_json::json!({"resolved": 1}));
    agree(&mut c);
    // Folding changes nothing the views show.
    let before: String = one(&mut c, "SELECT string_agg(to_jsonb(v)::text, ',' ORDER BY to_jsonb(v)::text) FROM v_template_scores v");
    assert!(one::<i64>(&mut c, "SELECT prompt_score_stats_compact()") > 0);
    let after: String = one(&mut c, "SELECT string_agg(to_jsonb(v)::text, ',' ORDER BY to_jsonb(v)::text) FROM v_template_scores v");
    assert_eq!(before, after);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_score_stats_pending"), 0);
    // A correction after folding takes back what the folded score added.
    c.batch_execute(&format!("SELECT prompt_score({a}, 'helpfulness', 1)")).unwrap();
    c.batch_execute(&format!("SELECT prompt_score({a}, 'outcome', 'escalated')")).unwrap();
    let outcome: serde_json::Value = one(&mut c, "SELECT categories FROM v_template_scores WHERE score = 'outcome'");
    assert_eq!(outcome, serde_json::json!({"escalated": 1}));
    agree(&mut c);
}

#[test]
fn numeric_statistics_match_an_independent_computation() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let mut rng = Rng(7);
    let mut values: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    for i in 0..300 {
        let version = 1 + (i % 2);
        let id = log(&mut c, &format!(", version => {version}"));
        // Values in tenths between 1 and 5; every fifth one corrected.
        let mut v = 1.0 + rng.below(41) as f64 / 10.0;
        c.execute("SELECT prompt_score($1, 'helpfulness', $2::float8::numeric)", &[&id, &v]).unwrap();
        if i % 5 == 0 {
            v = 1.0 + rng.below(41) as f64 / 10.0;
            c.execute("SELECT prompt_score($1, 'helpfulness', $2::float8::numeric, 'second look')", &[&id, &v]).unwrap();
        }
        values[(version - 1) as usize].push(v);
        if i == 150 {
            c.batch_execute("SELECT prompt_score_stats_compact()").unwrap();
        }
    }
    for (k, vs) in values.iter().enumerate() {
        let n = vs.len() as f64;
        let mean = vs.iter().sum::<f64>() / n;
        let sd = (vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let r = c
            .query_one("SELECT scores, mean, stddev FROM v_template_scores WHERE template = 'tutor' AND version = $1 AND score = 'helpfulness'", &[&(k as i32 + 1)])
            .unwrap();
        assert_eq!(r.get::<_, i64>(0), vs.len() as i64);
        assert!((r.get::<_, f64>(1) - mean).abs() < 1e-9, "{} vs {mean}", r.get::<_, f64>(1));
        assert!((r.get::<_, f64>(2) - sd).abs() < 1e-9, "{} vs {sd}", r.get::<_, f64>(2));
    }
    agree(&mut c);
}

#[test]
fn a_trace_score_counts_for_every_version_and_variant_the_trace_used() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        r#"SELECT prompt_experiment_create('tone', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]');
           SELECT prompt_experiment_start('tone');"#,
    )
    .unwrap();
    // One turn: route, then answer twice (a retry) in the experiment.
    let root: i64 = one(&mut c, "SELECT prompt_log_execution('router', trace_id => 'turn-1', session_id => 's')");
    for _ in 0..2 {
        c.batch_execute(&format!(
            "SELECT prompt_log_execution('tutor', experiment => 'tone', user_id => 'u7', parent_id => {root})"
        ))
        .unwrap();
    }
    let (variant, version): (String, i32) = {
        let r = c.query_one("SELECT variant, version FROM prompt_executions WHERE experiment = 'tone' LIMIT 1", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    c.batch_execute("SELECT prompt_score_trace('turn-1', 'thumbs', true)").unwrap();
    // Counted once per version (not once per call) and once for the variant.
    assert_eq!(one::<i64>(&mut c, "SELECT sum(scores)::int8 FROM v_template_scores WHERE score = 'thumbs'"), 2);
    assert_eq!(one::<i64>(&mut c, "SELECT scores FROM v_template_scores WHERE template = 'router'"), 1);
    let r = c.query_one("SELECT variant, version, scores, mean FROM v_experiment_scores WHERE experiment = 'tone'", &[]).unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, i32>(1), r.get::<_, i64>(2), r.get::<_, f64>(3)), (variant, version, 1, 1.0));
    // A correction moves every one of them.
    c.batch_execute("SELECT prompt_score_trace('turn-1', 'thumbs', false)").unwrap();
    assert_eq!(one::<f64>(&mut c, "SELECT max(mean) FROM v_template_scores WHERE score = 'thumbs'"), 0.0);
    assert_eq!(one::<f64>(&mut c, "SELECT mean FROM v_experiment_scores WHERE experiment = 'tone'"), 0.0);
    assert_eq!(one::<i64>(&mut c, "SELECT sum(scores)::int8 FROM v_template_scores WHERE score = 'thumbs'"), 2);
    agree(&mut c);
}

#[test]
fn concurrent_corrections_leave_one_score_in_force() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id = log(&mut c, "");
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|k| {
            let (url, barrier) = (db.url(), barrier.clone());
            thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.batch_execute("SET search_path = pgprompt").unwrap();
                barrier.wait();
                for _ in 0..10 {
                    c.execute("SELECT prompt_score($1, 'helpfulness', $2::int4::numeric)", &[&id, &(1 + k % 5)]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), 80);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores_current"), 1);
    // A single chain: every score but the first supersedes exactly one.
    assert_eq!(one::<i64>(&mut c, "SELECT count(DISTINCT supersedes) FROM prompt_scores"), 79);
    assert_eq!(one::<i64>(&mut c, "SELECT scores FROM v_template_scores"), 1);
    agree(&mut c);
}

/// Scoring a batch in one statement (an import of past feedback) must not
/// run out of lock memory: ten times as many scores as the server's lock
/// table is sized for, then corrections of a part of them, in one
/// transaction each.
#[test]
fn a_whole_batch_is_scored_in_one_transaction() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let n: i64 = one(
        &mut c,
        "SELECT 10 * current_setting('max_locks_per_transaction')::int8
                   * (current_setting('max_connections')::int8 + current_setting('max_prepared_transactions')::int8)",
    );
    c.batch_execute(&format!(
        "CREATE TEMP TABLE calls AS
             SELECT prompt_log_execution('tutor', input_tokens => 10, output_tokens => 5) AS id FROM generate_series(1, {n});
         SELECT count(prompt_score(id, 'thumbs', id % 3 = 0)) FROM calls;
         SELECT count(prompt_score(id, 'thumbs', id % 3 <> 0, 'relabelled')) FROM calls WHERE id % 10 = 0;"
    ))
    .unwrap();
    let relabelled: i64 = one(&mut c, "SELECT count(*) FROM calls WHERE id % 10 = 0");
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), n + relabelled);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores_current WHERE comment = 'relabelled'"), relabelled);
    let expected: i64 =
        one(&mut c, "SELECT count(*) FILTER (WHERE CASE WHEN id % 10 = 0 THEN id % 3 <> 0 ELSE id % 3 = 0 END) FROM calls");
    assert_eq!(one::<i64>(&mut c, "SELECT sum(boolean_value::int) FROM prompt_scores_current"), expected);
    assert_eq!(one::<i64>(&mut c, "SELECT sum(scores)::int8 FROM v_template_scores WHERE score = 'thumbs'"), n);
    agree(&mut c);
}

/// Two scorers of the same call and name at once: under READ COMMITTED the
/// one who waited supersedes the one who committed first; under REPEATABLE
/// READ, where the winner stays invisible, the loser gets 40001 and writes
/// nothing.
#[test]
fn a_scorer_who_loses_a_race_supersedes_the_winner_or_retries() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id = log(&mut c, "");
    let mut first = db.connect();
    let mut tx = first.transaction().unwrap();
    let winner: i64 = tx.query_one("SELECT prompt_score($1, 'helpfulness', 2)", &[&id]).unwrap().get(0);
    let url = db.url();
    let waiting = thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute("SET search_path = pgprompt").unwrap();
        c.query_one("SELECT prompt_score($1, 'helpfulness', 5)", &[&id]).unwrap().get::<_, i64>(0)
    });
    // The second scorer waits on the first one's index entry.
    let waits = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%prompt_score%'";
    while one::<i64>(&mut c, waits) == 0 {
        thread::sleep(std::time::Duration::from_millis(20));
    }
    tx.commit().unwrap();
    let loser = waiting.join().unwrap();
    assert_eq!(one::<i64>(&mut c, &format!("SELECT supersedes FROM prompt_scores WHERE id = {loser}")), winner);
    assert_eq!(one::<i64>(&mut c, "SELECT numeric_value::int8 FROM prompt_scores_current"), 5);

    let mut late = db.connect();
    let mut tx = late.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start().unwrap();
    tx.query_one("SELECT count(*) FROM prompt_scores", &[]).unwrap();
    c.execute("SELECT prompt_score($1, 'helpfulness', 1)", &[&id]).unwrap();
    let err = tx.query_one("SELECT prompt_score($1, 'helpfulness', 4)", &[&id]).unwrap_err();
    assert_eq!(err.code(), Some(&postgres::error::SqlState::T_R_SERIALIZATION_FAILURE), "{err}");
    drop(tx);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), 3);
    assert_eq!(one::<i64>(&mut c, "SELECT numeric_value::int8 FROM prompt_scores_current"), 1);
    assert_eq!(one::<i64>(&mut c, "SELECT scores FROM v_template_scores"), 1);
    agree(&mut c);
}

#[test]
fn scores_are_history_and_roles_keep_to_their_part() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id = log(&mut c, "");
    // The application role scores; it cannot define, write or rewrite.
    let mut app = db.login("app");
    app.batch_execute(&format!("SELECT prompt_score({id}, 'thumbs', true, source => 'end-user')")).unwrap();
    assert_eq!(sqlstate(app.batch_execute("SELECT prompt_score_define('sneaky', 'boolean')")), "42501");
    assert_eq!(
        sqlstate(app.batch_execute(&format!(
            "INSERT INTO prompt_scores (name, execution_id, boolean_value, source, counted_for) VALUES ('thumbs', {id}, false, 'x', '[]')"
        ))),
        "42501"
    );
    // Nobody rewrites history, administrators included.
    let mut admin = db.login("admin");
    assert_eq!(sqlstate(admin.batch_execute("UPDATE prompt_scores SET boolean_value = false")), "42501");
    assert_eq!(sqlstate(c.batch_execute("UPDATE prompt_scores SET boolean_value = false")), "55000");
    assert_eq!(sqlstate(c.batch_execute("DELETE FROM prompt_scores")), "55000");
    assert_eq!(sqlstate(c.batch_execute("TRUNCATE prompt_scores")), "55000");
    let who: String = one(&mut c, "SELECT created_by || ' ' || source FROM prompt_scores");
    assert!(who.ends_with(" end-user"), "{who}");
    // Readers see the statistics, not the scores.
    let mut reader = db.login("reader");
    assert_eq!(one::<i64>(&mut reader, "SELECT scores FROM v_template_scores"), 1);
    assert_eq!(sqlstate(reader.batch_execute("SELECT * FROM prompt_scores")), "42501");
    // A definition with scores stays, and changes only so that scores stay valid.
    assert_eq!(sqlstate(c.batch_execute("DELETE FROM prompt_score_definitions WHERE name = 'thumbs'")), "55000");
    assert_eq!(sqlstate(c.batch_execute("SELECT prompt_score_define('thumbs', 'numeric')")), "55000");
    c.batch_execute(&format!("SELECT prompt_score({id}, 'helpfulness', 2)")).unwrap();
    assert_eq!(sqlstate(c.batch_execute("SELECT prompt_score_define('helpfulness', 'numeric', 2, 5)")), "55000");
    c.batch_execute("SELECT prompt_score_define('helpfulness', 'numeric', 0, 10, description => 'wider')").unwrap();
    // Unused, a definition may change in any way; once used, categories only grow.
    c.batch_execute("SELECT prompt_score_define('outcome', 'categorical', categories => ARRAY['resolved'])").unwrap();
    c.batch_execute(&format!("SELECT prompt_score({id}, 'outcome', 'resolved')")).unwrap();
    assert_eq!(sqlstate(c.batch_execute("SELECT prompt_score_define('outcome', 'categorical', categories => ARRAY['other'])")), "55000");
    c.batch_execute("SELECT prompt_score_define('outcome', 'categorical', categories => ARRAY['resolved', 'other'])").unwrap();
    // Unused definitions can go.
    c.batch_execute("SELECT prompt_score_define('spare', 'boolean'); DELETE FROM prompt_score_definitions WHERE name = 'spare'").unwrap();
}

#[test]
fn bad_scores_are_refused_with_their_sqlstate_and_leave_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id = log(&mut c, ", trace_id => 'tr'");
    let cases = [
        (format!("SELECT prompt_score({}, 'thumbs', true)", id + 1000), "42704", "no logged call has id"),
        ("SELECT prompt_score_trace('no-such-trace', 'thumbs', true)".to_string(), "42704", "no logged call has trace_id"),
        (format!("SELECT prompt_score({id}, 'thumb', true)"), "42704", "score \"thumb\" is not defined"),
        (format!("SELECT prompt_score({id}, 'helpfulness', 6)"), "22023", "between 1 and 5"),
        (format!("SELECT prompt_score({id}, 'helpfulness', 0.99)"), "22023", "between 1 and 5"),
        (format!("SELECT prompt_score({id}, 'helpfulness', 'NaN')"), "22023", "finite"),
        (format!("SELECT prompt_score({id}, 'helpfulness', 'many')"), "22023", "not a number"),
        (format!("SELECT prompt_score({id}, 'helpfulness', true)"), "22023", "is numeric"),
        (format!("SELECT prompt_score({id}, 'thumbs', 1)"), "22023", "is boolean"),
        (format!("SELECT prompt_score({id}, 'thumbs', 'maybe')"), "22023", "is boolean"),
        (format!("SELECT prompt_score({id}, 'outcome', 'lost')"), "22023", "is one of resolved, escalated, abandoned"),
        (format!("SELECT prompt_score({id}, 'outcome', 3)"), "22023", "is one of"),
        (format!("SELECT prompt_score({id}, 'thumbs', NULL::boolean)"), "22004", "\"value\""),
        ("SELECT prompt_score(NULL, 'thumbs', true)".to_string(), "22004", "\"execution\""),
        ("SELECT prompt_score_trace(NULL, 'thumbs', true)".to_string(), "22004", "\"trace_id\""),
        (format!("SELECT prompt_score({id}, NULL, true)"), "22004", "\"name\""),
        (format!("SELECT prompt_score({id}, 'thumbs', true, source => '')"), "22023", "source"),
        ("SELECT prompt_score_define('bad name', 'boolean')".to_string(), "22023", "invalid score name"),
        ("SELECT prompt_score_define('x', 'stars')".to_string(), "22023", "unknown score kind"),
        ("SELECT prompt_score_define('x', 'boolean', 0, 1)".to_string(), "22023", "only numeric"),
        ("SELECT prompt_score_define('x', 'numeric', 5, 1)".to_string(), "22023", "above max_value"),
        ("SELECT prompt_score_define('x', 'numeric', 'Infinity')".to_string(), "22023", "finite"),
        ("SELECT prompt_score_define('x', 'categorical')".to_string(), "22023", "needs its categories"),
        ("SELECT prompt_score_define('x', 'categorical', categories => ARRAY['a', 'a'])".to_string(), "22023", "distinct"),
        ("SELECT prompt_score_define('x', 'boolean', categories => ARRAY['a'])".to_string(), "22023", "only categorical"),
    ];
    for (sql, code, text) in &cases {
        let e = c.batch_execute(sql).unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e:?}"));
        assert_eq!(db.code().code(), *code, "{sql}: {}", db.message());
        assert!(db.message().contains(text), "{sql}: {}", db.message());
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), 0);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_score_stats"), 0);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_score_definitions WHERE name = 'x'"), 0);

    // A rolled-back score leaves no row and no statistic.
    c.batch_execute(&format!("BEGIN; SELECT prompt_score({id}, 'thumbs', true); SELECT prompt_score_trace('tr', 'helpfulness', 3); ROLLBACK"))
        .unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), 0);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_score_stats"), 0);

    // A call of a purged month (logged after newer calls: a back-fill):
    // the error says which month went, and when.
    let old: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', executed_at => '2024-01-10')");
    c.batch_execute("SELECT prompt_purge_executions('30 days')").unwrap();
    let e = c.batch_execute(&format!("SELECT prompt_score({old}, 'thumbs', true)")).unwrap_err();
    let e = e.as_db_error().unwrap();
    assert_eq!(e.code().code(), "42704");
    assert!(e.message().contains(&format!("execution {old} is no longer logged: its month (2024-01) was purged")), "{}", e.message());
    // A deleted call is not a purged one.
    let gone = log(&mut c, "");
    c.batch_execute(&format!("DELETE FROM prompt_executions WHERE id = {gone}")).unwrap();
    let e = c.batch_execute(&format!("SELECT prompt_score({gone}, 'thumbs', true)")).unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("no logged call has id"), "{e:?}");
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores"), 0);
}

/// Sessions cache the declarations; a change reaches every session at commit.
#[test]
fn a_changed_declaration_reaches_every_session() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id = log(&mut c, "");
    let mut app = db.login("app");
    app.batch_execute(&format!("SELECT prompt_score({id}, 'helpfulness', 5)")).unwrap();
    assert_eq!(sqlstate(app.batch_execute(&format!("SELECT prompt_score({id}, 'helpfulness', 7)"))), "22023");
    c.batch_execute("SELECT prompt_score_define('helpfulness', 'numeric', 1, 10)").unwrap();
    app.batch_execute(&format!("SELECT prompt_score({id}, 'helpfulness', 7)")).unwrap();
    // Not yet declared, then declared in another session: found at once.
    assert_eq!(sqlstate(app.batch_execute(&format!("SELECT prompt_score({id}, 'clarity', 2)"))), "42704");
    c.batch_execute("SELECT prompt_score_define('clarity', 'numeric', 1, 3)").unwrap();
    app.batch_execute(&format!("SELECT prompt_score({id}, 'clarity', 2)")).unwrap();
    // Unused, a declaration may narrow; the session sees that too.
    c.batch_execute("SELECT prompt_score_define('outcome', 'categorical', categories => ARRAY['resolved'])").unwrap();
    assert_eq!(sqlstate(app.batch_execute(&format!("SELECT prompt_score({id}, 'outcome', 'escalated')"))), "22023");
    // Within one transaction, a declaration and its first score.
    c.batch_execute(&format!("BEGIN; SELECT prompt_score_define('late', 'boolean'); SELECT prompt_score({id}, 'late', true); COMMIT")).unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_scores WHERE name = 'late'"), 1);
}
