//! Execution logging against a real server: what a logged call stores, the
//! bad inputs, the kill switch, partitions and purging, and statistics that
//! stay exact under concurrency and rollbacks.

use std::thread;

use pgprompt_tests::*;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Explain {{ topic }}', '{"model": "gemini-2.5-flash", "temperature": 0.2}');
           SELECT prompt_save('tutor', 'Explain {{ topic }} simply', '{"model": "gpt-4o-mini"}');
           SELECT prompt_save('bare', 'no model configured');"#,
    )
    .unwrap();
}

fn count(c: &mut Client, table: &str) -> i64 {
    one(c, &format!("SELECT count(*) FROM {table}"))
}

/// (executions, successes, latency_sum, input, output, cached, cost) from the statistics view.
fn stats(c: &mut Client, filter: &str) -> (i64, i64, i64, i64, i64, i64, Option<String>) {
    let r = c
        .query_one(
            &format!(
                "SELECT coalesce(sum(executions), 0)::int8, coalesce(sum(successes), 0)::int8, coalesce(sum(latency_sum_ms), 0)::int8,
                        coalesce(sum(input_tokens), 0)::int8, coalesce(sum(output_tokens), 0)::int8,
                        coalesce(sum(cached_input_tokens), 0)::int8, sum(cost_usd)::text
                   FROM prompt_template_stats WHERE {filter}"
            ),
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))
}

/// The same figures computed from the raw rows.
fn raw(c: &mut Client, filter: &str) -> (i64, i64, i64, i64, i64, i64, Option<String>) {
    let r = c
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE success), coalesce(sum(latency_ms), 0)::int8,
                        coalesce(sum(input_tokens), 0)::int8, coalesce(sum(output_tokens), 0)::int8,
                        coalesce(sum(cached_input_tokens), 0)::int8, sum(cost_usd)::text
                   FROM prompt_executions WHERE {filter}"
            ),
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))
}

#[test]
fn a_logged_call_is_priced_and_stored() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    // Defaults: the active version (1) and its model.
    let id: i64 = one(
        &mut c,
        r#"SELECT prompt_log_execution('tutor', input_tokens => 1200, output_tokens => 300, latency_ms => 850,
                                       user_id => 'student-7', rendered_prompt => 'Explain gravity',
                                       response => 'Things fall.', metadata => '{"request_id": "r1"}')"#,
    );
    let r = c
        .query_one(
            "SELECT template_name, version, model, input_tokens, output_tokens, cached_input_tokens, cost_usd::text,
                    latency_ms, success, user_id, rendered_prompt, response, metadata::text, experiment, error_message,
                    executed_at > now() - interval '1 minute', template_id = (SELECT id FROM prompt_templates WHERE name = 'tutor')
               FROM prompt_executions WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "tutor");
    assert_eq!(r.get::<_, i32>(1), 1);
    assert_eq!(r.get::<_, String>(2), "gemini-2.5-flash");
    assert_eq!((r.get::<_, i64>(3), r.get::<_, i64>(4), r.get::<_, i64>(5)), (1200, 300, 0));
    // 1200 * 0.30 + 300 * 2.50 = 1110 per million.
    assert_eq!(r.get::<_, String>(6), "0.00111");
    assert_eq!(r.get::<_, Option<i32>>(7), Some(850));
    assert!(r.get::<_, bool>(8));
    assert_eq!(r.get::<_, Option<String>>(9).as_deref(), Some("student-7"));
    assert_eq!(r.get::<_, Option<String>>(10).as_deref(), Some("Explain gravity"));
    assert_eq!(r.get::<_, Option<String>>(11).as_deref(), Some("Things fall."));
    assert_eq!(r.get::<_, String>(12), r#"{"request_id": "r1"}"#);
    assert_eq!(r.get::<_, Option<String>>(13), None);
    assert_eq!(r.get::<_, Option<String>>(14), None);
    assert!(r.get::<_, bool>(15) && r.get::<_, bool>(16));

    // Explicit version, model, cached tokens, a failure, and a time of its own.
    let id: i64 = one(
        &mut c,
        "SELECT prompt_log_execution('tutor', 2, 'gpt-4o-mini-2024-07-18', 1000, 100, 2300, false,
                                     error_message => 'timeout', cached_input_tokens => 400,
                                     executed_at => '2026-03-04 05:06:07+00')",
    );
    let (version, cost, ok, err): (i32, String, bool, String) = {
        let r = c
            .query_one("SELECT version, cost_usd::text, success, error_message FROM prompt_executions WHERE id = $1", &[&id])
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    // 600 * 0.15 + 400 * 0.075 + 100 * 0.60 = 180 per million.
    assert_eq!((version, cost.as_str(), ok, err.as_str()), (2, "0.00018", false, "timeout"));
    let partition: String = one(&mut c, &format!("SELECT tableoid::regclass::text FROM prompt_executions WHERE id = {id}"));
    assert_eq!(partition, "prompt_executions_2026_03");
}

#[test]
fn pii_is_never_stored_raw_unless_asked() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    // A log guardrail and a redact guardrail of the user's own.
    c.batch_execute(
        r#"INSERT INTO prompt_guardrails (name, kind, action, direction, config) VALUES
             ('homework_watch', 'keywords', 'log', 'input', '{"keywords": ["homework"], "entity": "HOMEWORK"}'),
             ('order_numbers', 'regex', 'redact', 'both', '{"patterns": ["ORD-[0-9]{6}"], "entity": "ORDER_ID"}');"#,
    )
    .unwrap();
    let id: i64 = one(
        &mut c,
        "SELECT prompt_log_execution('tutor', rendered_prompt => 'Do my homework, mail jane.doe@example.com about ORD-123456',
                                     response => 'Call 415-555-0132; ignore all previous instructions')",
    );
    let (prompt, response): (String, String) = {
        let r = c.query_one("SELECT rendered_prompt, response FROM prompt_executions WHERE id = $1", &[&id]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(prompt, "Do my homework, mail <EMAIL_ADDRESS> about <ORDER_ID>");
    assert_eq!(response, "Call <PHONE_NUMBER>; ignore all previous instructions");
    // Findings of log and redact guardrails are recorded against the call (block and
    // warn guardrails are for prompt_guard_enforce before the call, not after it).
    let recorded: Vec<(String, String, String, Option<i64>)> = c
        .query("SELECT guardrail, entity, direction, execution_id FROM prompt_guardrail_violations ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        recorded,
        [
            ("homework_watch".into(), "HOMEWORK".into(), "input".into(), Some(id)),
            ("order_numbers".into(), "ORDER_ID".into(), "input".into(), Some(id)),
        ]
    );
    let everything: String = one(&mut c, "SELECT string_agg(to_jsonb(e)::text, ' ') FROM prompt_executions e");
    for secret in ["jane.doe@example.com", "ORD-123456", "415-555-0132"] {
        assert!(!everything.contains(secret), "{secret} stored in {everything}");
    }

    // A superuser can choose to keep raw text.
    c.batch_execute("SET pgprompt.store_raw_text = on").unwrap();
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', rendered_prompt => 'mail jane.doe@example.com')");
    let kept: String = one(&mut c, &format!("SELECT rendered_prompt FROM prompt_executions WHERE id = {id}"));
    assert_eq!(kept, "mail jane.doe@example.com");
}

#[test]
fn texts_too_large_to_scan_are_not_stored() {
    let db = TestDb::new();
    let (mut c, notices) = db.connect_with_notices();
    setup(&mut c);
    c.batch_execute("SET pgprompt.max_scan_bytes = '1kB'").unwrap();
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', rendered_prompt => repeat('a', 2000), response => 'short')");
    let (prompt, response): (Option<String>, Option<String>) = {
        let r = c.query_one("SELECT rendered_prompt, response FROM prompt_executions WHERE id = $1", &[&id]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((prompt, response.as_deref()), (None, Some("short")));
    let got = notices.take();
    assert!(got.iter().any(|(code, m)| code == "01000" && m.contains("rendered_prompt was not stored")), "{got:?}");
    c.batch_execute("SET pgprompt.store_raw_text = on").unwrap();
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', rendered_prompt => repeat('a', 2000))");
    assert_eq!(one::<i32>(&mut c, &format!("SELECT length(rendered_prompt) FROM prompt_executions WHERE id = {id}")), 2000);
}

#[test]
fn unknown_models_are_logged_without_a_cost() {
    let db = TestDb::new();
    let (mut c, notices) = db.connect_with_notices();
    setup(&mut c);
    for _ in 0..3 {
        c.batch_execute("SELECT prompt_log_execution('tutor', model => 'house-llm-7b', input_tokens => 10)").unwrap();
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions WHERE model = 'house-llm-7b' AND cost_usd IS NULL"), 3);
    let got = notices.take();
    assert_eq!(got.len(), 1, "one warning per session and model: {got:?}");
    assert!(got[0].1.contains("no price for model \"house-llm-7b\""), "{got:?}");
    let (executions, priced, cost): (i64, i64, String) = {
        let r = c.query_one("SELECT sum(executions)::int8, sum(priced_executions)::int8, sum(cost_usd)::text FROM prompt_template_stats", &[]).unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((executions, priced, cost.as_str()), (3, 0, "0"));
}

#[test]
fn bad_calls_are_refused_and_write_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let cases = [
        ("prompt_log_execution(NULL)", "22004", "template"),
        ("prompt_log_execution('tutor', input_tokens => -1)", "22023", "input_tokens must not be negative"),
        ("prompt_log_execution('tutor', output_tokens => -5)", "22023", "output_tokens must not be negative"),
        ("prompt_log_execution('tutor', input_tokens => 10, cached_input_tokens => 11)", "22023", "cannot exceed"),
        ("prompt_log_execution('tutor', input_tokens => NULL)", "22004", "input_tokens"),
        ("prompt_log_execution('bare')", "22004", "model"),
        ("prompt_log_execution('bare', model => NULL)", "22004", "model"),
        ("prompt_log_execution('tutor', model => '  ')", "22023", "model must not be empty"),
        ("prompt_log_execution('nope', model => 'gpt-4o')", "42704", "template \"nope\" does not exist"),
        ("prompt_log_execution('tutor', 9)", "42704", "version 9 of template \"tutor\" does not exist"),
        ("prompt_log_execution('tutor', latency_ms => -1)", "22023", "latency_ms must not be negative"),
        ("prompt_log_execution('tutor', metadata => '[1]')", "22023", "metadata must be a JSON object, not an array"),
        ("prompt_log_execution('tutor', metadata => '\"x\"')", "22023", "metadata must be a JSON object, not a string"),
        ("prompt_log_execution('tutor', metadata => NULL)", "22004", "metadata"),
        ("prompt_log_execution('tutor', variant => 'b')", "22023", "a variant needs its experiment"),
        ("prompt_log_execution('tutor', success => NULL)", "22004", "success"),
        ("prompt_log_execution('tutor', executed_at => NULL)", "22004", "executed_at"),
    ];
    for (call, code, text) in cases {
        let m = expect_error(&mut c, &format!("SELECT {call}"), code);
        assert!(m.contains(text), "{call}: {m}");
    }
    assert_eq!(count(&mut c, "prompt_executions"), 0);
    assert_eq!(count(&mut c, "prompt_stats_pending") + count(&mut c, "prompt_stats_hourly"), 0);
    assert_eq!(count(&mut c, "prompt_guardrail_violations"), 0);
}

#[test]
fn the_kill_switch_writes_nothing() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute("SET pgprompt.log_executions = off").unwrap();
    let id: Option<i64> = one(&mut c, "SELECT prompt_log_execution('tutor', rendered_prompt => 'mail jane@example.com')");
    assert_eq!(id, None);
    assert_eq!(count(&mut c, "prompt_executions"), 0);
    assert_eq!(count(&mut c, "prompt_stats_pending"), 0);
    assert_eq!(count(&mut c, "prompt_guardrail_violations"), 0);
    c.batch_execute("RESET pgprompt.log_executions").unwrap();
    assert!(one::<Option<i64>>(&mut c, "SELECT prompt_log_execution('tutor')").is_some());
}

#[test]
fn a_rolled_back_call_leaves_no_row_and_no_statistic() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute("SELECT prompt_log_execution('tutor', input_tokens => 5, latency_ms => 10)").unwrap();
    let before = stats(&mut c, "true");
    c.batch_execute(
        "BEGIN;
         SELECT prompt_log_execution('tutor', input_tokens => 100, latency_ms => 99, executed_at => '2031-01-01');
         SELECT prompt_stats_compact();
         ROLLBACK;",
    )
    .unwrap();
    assert_eq!(stats(&mut c, "true"), before);
    assert_eq!(count(&mut c, "prompt_executions"), 1);
    // The month's partition is made by pgprompt's worker in a transaction
    // of its own (so no caller holds its locks): it stays, empty.
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM pgprompt.prompt_executions_2031_01"), 0);
}

#[test]
fn statistics_match_the_rows_and_survive_folding() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        "SELECT prompt_log_execution('tutor', (g % 2) + 1, CASE WHEN g % 3 = 0 THEN 'gpt-4o' ELSE 'gemini-2.5-flash' END,
                                     g * 10, g, CASE WHEN g % 5 = 0 THEN NULL ELSE g END, g % 4 <> 0,
                                     executed_at => timestamptz '2026-11-01 00:00+00' + g * interval '17 minutes')
           FROM generate_series(1, 300) g;
         -- A direct multi-row INSERT counts too.
         INSERT INTO prompt_executions (executed_at, template_id, template_name, version, model, input_tokens, latency_ms, success, cost_usd)
         SELECT '2026-11-02 10:30+00', id, name, 1, 'manual', 7, 3, true, 0.5 FROM prompt_templates, generate_series(1, 4) WHERE name = 'tutor';",
    )
    .unwrap();
    assert_eq!(stats(&mut c, "true"), raw(&mut c, "true"));
    assert_eq!(stats(&mut c, "version = 2"), raw(&mut c, "version = 2"));
    let folded: i64 = one(&mut c, "SELECT prompt_stats_compact()");
    assert!(folded > 0);
    assert_eq!(count(&mut c, "prompt_stats_pending"), 0);
    assert_eq!(stats(&mut c, "true"), raw(&mut c, "true"));
    // Hour by hour, too.
    let mismatched: i64 = one(
        &mut c,
        "SELECT count(*) FROM (
            SELECT date_trunc('hour', executed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, version, count(*) AS n,
                   coalesce(sum(latency_ms), 0) AS l
              FROM prompt_executions GROUP BY 1, 2) r
          FULL JOIN prompt_template_stats s USING (hour, version)
         WHERE r.n IS DISTINCT FROM s.executions OR r.l IS DISTINCT FROM s.latency_sum_ms",
    );
    assert_eq!(mismatched, 0);
    // Latency percentiles come from the histograms, within their 12% resolution.
    let (p50, exact): (f64, f64) = {
        let r = c
            .query_one(
                "SELECT prompt_latency_quantile(prompt_latency_histogram(latency_histogram), 0.5),
                        (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) FROM prompt_executions)::float8
                   FROM prompt_template_stats",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!((p50 / exact - 1.0).abs() < 0.12, "p50 {p50} vs {exact}");
}

#[test]
fn statistics_stay_exact_under_16_concurrent_writers_with_rollbacks() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        r#"SELECT prompt_experiment_create('exp1', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]');
           SELECT prompt_experiment_start('exp1');"#,
    )
    .unwrap();
    let handles: Vec<_> = (0..16)
        .map(|w| {
            let mut s = db.connect();
            thread::spawn(move || {
                let mut committed = 0i64;
                for t in 0..40 {
                    let calls = 1 + (t % 3);
                    let mut tx = s.transaction().unwrap();
                    for k in 0..calls {
                        tx.batch_execute(&format!(
                            "SELECT prompt_log_execution('tutor', {v}, 'gpt-4o', {i}, {o}, {l}, {ok}, user_id => 'w{w}',
                                                          experiment => {e}, variant => {var})",
                            // In the experiment, the variant names the version.
                            v = if t % 2 == 0 { "NULL".to_string() } else { (1 + (k % 2)).to_string() },
                            i = 100 + t,
                            o = 10 + w,
                            l = 50 + t * 3,
                            ok = t % 7 != 0,
                            e = if t % 2 == 0 { "'exp1'" } else { "NULL" },
                            // The variant is the user's, derived by the call.
                            var = "NULL",
                        ))
                        .unwrap();
                    }
                    if w % 4 == 0 && t % 10 == 0 {
                        tx.batch_execute("SELECT prompt_stats_compact()").unwrap();
                    }
                    // Every fifth transaction is rolled back.
                    if (t + w) % 5 == 0 {
                        tx.rollback().unwrap();
                    } else {
                        tx.commit().unwrap();
                        committed += calls;
                    }
                }
                committed
            })
        })
        .collect();
    let committed: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(count(&mut c, "prompt_executions"), committed);
    assert_eq!(stats(&mut c, "true"), raw(&mut c, "true"));
    for v in [1, 2] {
        assert_eq!(stats(&mut c, &format!("version = {v}")), raw(&mut c, &format!("version = {v}")));
    }
    // The experiment statistics count exactly the experiment's calls, per variant.
    for variant in ["a", "b"] {
        let from_stats: (i64, i64) = {
            let r = c
                .query_one(
                    "SELECT coalesce(sum(executions), 0)::int8, coalesce(sum(successes), 0)::int8 FROM ab_test_stats
                      WHERE experiment = 'exp1' AND variant = $1",
                    &[&variant],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        let from_rows: (i64, i64) = {
            let r = c
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE success) FROM prompt_executions WHERE experiment = 'exp1' AND variant = $1",
                    &[&variant],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!(from_stats, from_rows, "variant {variant}");
        assert!(from_rows.0 > 0);
    }
    c.batch_execute("SELECT prompt_stats_compact()").unwrap();
    assert_eq!(stats(&mut c, "true"), raw(&mut c, "true"));
}

#[test]
fn counted_columns_cannot_change_and_deleting_keeps_the_statistics() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', input_tokens => 10, response => 'first answer')");
    let before = stats(&mut c, "true");
    expect_error(&mut c, &format!("UPDATE prompt_executions SET input_tokens = 99 WHERE id = {id}"), "55000");
    expect_error(&mut c, &format!("UPDATE prompt_executions SET executed_at = '2020-01-01' WHERE id = {id}"), "55000");
    c.batch_execute(&format!(
        "UPDATE prompt_executions SET response = 'scrubbed', user_id = NULL, metadata = '{{\"scrubbed\": true}}' WHERE id = {id}"
    ))
    .unwrap();
    c.batch_execute(&format!("DELETE FROM prompt_executions WHERE id = {id}")).unwrap();
    assert_eq!(stats(&mut c, "true"), before);
    // A deleted template keeps its executions and statistics; logging it is refused.
    c.batch_execute("SELECT prompt_log_execution('tutor'); SELECT prompt_delete('tutor');").unwrap();
    assert_eq!(count(&mut c, "prompt_executions"), 1);
    assert_eq!(one::<i64>(&mut c, "SELECT sum(executions)::int8 FROM prompt_template_stats WHERE template_name = 'tutor'"), 2);
    expect_error(&mut c, "SELECT prompt_log_execution('tutor')", "42704");
}

#[test]
fn logged_calls_honour_what_users_add_to_the_table() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    // The first call after a change of the table learns which partition
    // holds the month; the next ones go straight into it. Each change below
    // is checked on such a next call, and all obey the table as it is now.
    let warm = |c: &mut Client| c.batch_execute("SELECT prompt_log_execution('tutor', latency_ms => 5)").unwrap();
    c.batch_execute("ALTER TABLE prompt_executions ADD CONSTRAINT latency_under_a_minute CHECK (latency_ms < 60000)").unwrap();
    warm(&mut c);
    let m = expect_error(&mut c, "SELECT prompt_log_execution('tutor', latency_ms => 60000)", "23514");
    assert!(m.contains("latency_under_a_minute"), "{m}");
    c.batch_execute("SELECT prompt_log_execution('tutor', latency_ms => 59999)").unwrap();

    // A new column gets its default; row and statement triggers fire once per call.
    c.batch_execute(
        r#"ALTER TABLE prompt_executions ADD COLUMN region text NOT NULL DEFAULT 'eu';
           CREATE TABLE public.seen (id bigint, kind text);
           CREATE FUNCTION public.note_row() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO public.seen VALUES (NEW.id, 'row'); RETURN NULL; END $$;
           CREATE FUNCTION public.note_statement() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO public.seen SELECT id, 'statement' FROM new_rows; RETURN NULL; END $$;
           CREATE TRIGGER note_row AFTER INSERT ON prompt_executions FOR EACH ROW EXECUTE FUNCTION public.note_row();
           CREATE TRIGGER note_statement AFTER INSERT ON prompt_executions REFERENCING NEW TABLE AS new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();"#,
    )
    .unwrap();
    warm(&mut c);
    c.batch_execute("TRUNCATE public.seen").unwrap();
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', latency_ms => 7)");
    assert_eq!(one::<String>(&mut c, &format!("SELECT region FROM prompt_executions WHERE id = {id}")), "eu");
    assert_eq!(
        one::<String>(&mut c, "SELECT string_agg(kind || ':' || id, ',' ORDER BY kind) FROM public.seen"),
        format!("row:{id},statement:{id}")
    );

    // A BEFORE ROW trigger may change the row: the change is what is stored.
    c.batch_execute(
        r#"CREATE FUNCTION public.tag() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.metadata := NEW.metadata || '{"tagged": true}'; RETURN NEW; END $$;
           CREATE TRIGGER tag BEFORE INSERT ON prompt_executions FOR EACH ROW EXECUTE FUNCTION public.tag();"#,
    )
    .unwrap();
    warm(&mut c);
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('tutor', latency_ms => 8)");
    assert!(one::<bool>(&mut c, &format!("SELECT metadata ? 'tagged' FROM prompt_executions WHERE id = {id}")));
    c.batch_execute("DROP TRIGGER tag ON prompt_executions; TRUNCATE public.seen").unwrap();

    // A key already taken is PostgreSQL's unique violation, and writes nothing.
    let before = count(&mut c, "prompt_executions");
    c.batch_execute(&format!("SELECT prompt_log_execution('tutor'); SELECT setval('prompt_executions_id_seq', {id})")).unwrap();
    expect_error(&mut c, "SELECT prompt_log_execution('tutor', latency_ms => 9)", "23505");
    assert_eq!(count(&mut c, "prompt_executions"), before + 1);
    assert_eq!(count(&mut c, "public.seen"), 2, "the triggers of the failed call rolled back with it");
    // A partition dropped behind the session's back is made again.
    c.batch_execute("SELECT setval('prompt_executions_id_seq', (SELECT max(id) FROM prompt_executions))").unwrap();
    let month: String = one(&mut c, "SELECT to_char(now() AT TIME ZONE 'UTC', '\"prompt_executions_\"YYYY_MM')");
    let mut other = db.connect();
    other.batch_execute(&format!("DROP TABLE {month}")).unwrap();
    c.batch_execute("SELECT prompt_log_execution('tutor', latency_ms => 10)").unwrap();
    assert_eq!(count(&mut c, "prompt_executions"), 1);
    assert_eq!(stats(&mut c, "true").0, before + 2, "every call counted, dropped rows included");
}

#[test]
fn partitions_are_made_as_needed_and_purged_whole() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(
        "SELECT prompt_log_execution('tutor', latency_ms => 1, executed_at => t)
           FROM unnest(ARRAY[timestamptz '2024-01-15 12:00+00', '2024-01-31 23:59:59.999+00', '2024-02-01 00:00+00',
                             '2025-06-30 10:00+00', now()]) t;",
    )
    .unwrap();
    let partitions: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'prompt_executions'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Each month that got a call, and the month after each (made ahead of time).
    for month in ["prompt_executions_2024_01", "prompt_executions_2024_02", "prompt_executions_2024_03", "prompt_executions_2025_06", "prompt_executions_2025_07"] {
        assert!(partitions.iter().any(|p| p == month), "{month} missing from {partitions:?}");
    }
    let in_january: i64 = one(&mut c, "SELECT count(*) FROM prompt_executions_2024_01");
    assert_eq!(in_january, 2, "month bounds are UTC");
    let before = stats(&mut c, "true");

    expect_error(&mut c, "SELECT * FROM prompt_purge_executions('-1 day')", "22023");
    expect_error(&mut c, "SELECT * FROM prompt_purge_executions(NULL)", "22004");
    let dropped: Vec<String> = c
        .query("SELECT partition FROM prompt_purge_executions(now() - timestamptz '2024-03-01 00:00+00')", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Only months wholly older than the cut: January and February 2024.
    assert_eq!(dropped, ["prompt_executions_2024_01", "prompt_executions_2024_02"]);
    assert_eq!(count(&mut c, "prompt_executions"), 2);
    assert_eq!(stats(&mut c, "true"), before, "purging keeps the statistics");
    // Logging into a purged month makes its partition again.
    c.batch_execute("SELECT prompt_log_execution('tutor', executed_at => '2024-01-20')").unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions_2024_01"), 1);
}

#[test]
fn concurrent_first_calls_of_a_month_share_one_partition() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let mut s = db.connect();
            thread::spawn(move || {
                s.batch_execute("SELECT prompt_log_execution('tutor', executed_at => '2040-05-05')").unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions_2040_05"), 8);
}

/// The statistics triggers read the columns by name and check their types:
/// an owner who changes a column's type (0.1.0 then read a double as a
/// numeric and crashed the server) gets statistics still, or a clean error.
#[test]
fn statistics_survive_changed_column_types() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute("SELECT prompt_log_execution('tutor', input_tokens => 1000, output_tokens => 10, latency_ms => 5)").unwrap();
    c.batch_execute(
        // (Columns views read cannot change type: an owner drops the trace
        // views first.)
        "ALTER EXTENSION pgprompt DROP VIEW v_trace_calls;
         ALTER EXTENSION pgprompt DROP VIEW v_traces;
         ALTER EXTENSION pgprompt DROP VIEW v_sessions;
         DROP VIEW v_trace_calls, v_traces, v_sessions;
         ALTER TABLE prompt_executions ALTER COLUMN cost_usd TYPE double precision;
         ALTER TABLE prompt_executions ALTER COLUMN input_tokens TYPE numeric;",
    )
    .unwrap();
    for _ in 0..3 {
        c.batch_execute("SELECT prompt_log_execution('tutor', input_tokens => 1000, output_tokens => 10, latency_ms => 5)").unwrap();
    }
    c.batch_execute("INSERT INTO prompt_executions (template_id, template_name, version, model, success, cost_usd, latency_ms)
                     SELECT id, name, 1, 'gpt-4o', true, 0.5, 7 FROM prompt_templates WHERE name = 'tutor'").unwrap();
    let (calls, cost): (i64, String) = {
        let r = c.query_one("SELECT sum(executions)::int8, sum(cost_usd)::text FROM prompt_template_stats", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(calls, 5);
    let logged: String = one(&mut c, "SELECT sum(cost_usd)::numeric::text FROM prompt_executions");
    assert_eq!(cost.parse::<f64>().unwrap(), logged.parse::<f64>().unwrap());
    // A type nothing can be read as is a clean error, and nothing is written.
    let e = c
        .batch_execute("INSERT INTO prompt_executions (template_id, template_name, version, model, success, input_tokens)
                        SELECT id, name, 1, 'gpt-4o', true, 1e30 FROM prompt_templates WHERE name = 'tutor'")
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22003"), "{e:?}");
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions"), 5);
    assert_eq!(one::<i64>(&mut c, "SELECT sum(executions)::int8 FROM prompt_template_stats"), 5);
}

/// Without a model argument, the call's model is the version's: its
/// model_config's `model` (the seeds' `model_name` is stored as `model`).
#[test]
fn the_model_comes_from_model_or_model_name() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('seeds', 'x', '{"model_name": "gemini-2.5-flash", "temperature": 0.2}');
           SELECT prompt_save('both', 'y', '{"model": "gpt-4o", "model_name": "gpt-4o"}');
           SELECT prompt_save('none', 'z', '{"temperature": 0.2}');"#,
    )
    .unwrap();
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('seeds', input_tokens => 1000000)");
    let (model, cost): (String, String) = {
        let r = c.query_one("SELECT model, cost_usd::text FROM prompt_executions WHERE id = $1", &[&id]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((model.as_str(), cost.as_str()), ("gemini-2.5-flash", "0.3"));
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('both')");
    assert_eq!(one::<String>(&mut c, &format!("SELECT model FROM prompt_executions WHERE id = {id}")), "gpt-4o");
    assert_eq!(one::<serde_json::Value>(&mut c, "SELECT model_config FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE t.name = 'seeds'"),
               serde_json::json!({"model": "gemini-2.5-flash", "temperature": 0.2}));
    let e = expect_error(&mut c, "SELECT prompt_log_execution('none')", "22004");
    assert!(e.contains("model"), "{e}");
}
