//! Traces and sessions against a real server: calls placed by trace_id,
//! parent_id and session_id, the views' totals next to sums computed from
//! the rows, the trace taken from the parent, and bad input.

use pgprompt_tests::*;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('classify', 'classify {{ q }}', '{"model": "gpt-4o-mini"}');
           SELECT prompt_save('answer', 'answer {{ q }}', '{"model": "gpt-4o"}');"#,
    )
    .unwrap();
}

#[test]
fn a_turn_of_several_calls_is_one_trace_with_its_totals() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let now: String = one(&mut c, "SELECT now()::text");
    for turn in 1..=3 {
        let root: i64 = one(
            &mut c,
            &format!(
                "SELECT prompt_log_execution('classify', input_tokens => 100, output_tokens => 3, latency_ms => 120,
                                             trace_id => 'turn-{turn}', session_id => 'conv-1',
                                             executed_at => '{now}'::timestamptz - interval '{turn} minutes')"
            ),
        );
        // Children name only their parent: trace and session come from it.
        let retrieve: i64 = one(
            &mut c,
            &format!(
                "SELECT prompt_log_execution('classify', model => 'house-model', input_tokens => 50, latency_ms => 30,
                                             parent_id => {root}, executed_at => '{now}'::timestamptz - interval '{turn} minutes' + interval '1 second')"
            ),
        );
        c.batch_execute(&format!(
            "SELECT prompt_log_execution('answer', input_tokens => 900, output_tokens => 250, latency_ms => 2100, success => {ok},
                                         parent_id => {retrieve}, executed_at => '{now}'::timestamptz - interval '{turn} minutes' + interval '2 seconds')",
            ok = turn != 2
        ))
        .unwrap();
    }
    // A call of another session, and one outside any trace.
    c.batch_execute(
        "SELECT prompt_log_execution('answer', input_tokens => 1, trace_id => 'other', session_id => 'conv-2');
         SELECT prompt_log_execution('answer', input_tokens => 1);",
    )
    .unwrap();

    let steps: Vec<(i64, String, Option<i64>)> = c
        .query("SELECT step, template, parent_id FROM v_trace_calls WHERE trace_id = 'turn-2' ORDER BY step", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(steps.iter().map(|s| (s.0, s.1.as_str())).collect::<Vec<_>>(), [(1, "classify"), (2, "classify"), (3, "answer")]);
    assert!(steps[0].2.is_none() && steps[1].2.is_some() && steps[2].2.is_some());

    // Every trace's totals equal the sums over its calls.
    let mismatched: i64 = one(
        &mut c,
        "SELECT count(*) FROM v_traces t
           JOIN (SELECT trace_id, count(*) AS calls, sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cost_usd) AS cost,
                        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced, sum(latency_ms) AS lat,
                        count(*) FILTER (WHERE NOT success) AS failed
                   FROM prompt_executions WHERE trace_id IS NOT NULL GROUP BY 1) e USING (trace_id)
          WHERE (t.calls, t.input_tokens, t.output_tokens, t.cost_usd, t.unpriced_calls, t.latency_ms, t.failed_calls)
                IS DISTINCT FROM (e.calls, e.i, e.o, e.cost, e.unpriced, e.lat, e.failed)",
    );
    assert_eq!(mismatched, 0);
    let r = c
        .query_one("SELECT calls, failed_calls, session_id, duration_ms, templates, unpriced_calls FROM v_traces WHERE trace_id = 'turn-2'", &[])
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 3);
    assert_eq!(r.get::<_, i64>(1), 1);
    assert_eq!(r.get::<_, String>(2), "conv-1");
    // From the first call's start to the answer's end: 2 s + 2.1 s.
    assert_eq!(r.get::<_, i64>(3), 4100);
    assert_eq!(r.get::<_, Vec<String>>(4), ["answer", "classify"]);
    assert_eq!(r.get::<_, i64>(5), 1, "house-model has no price");

    let r = c.query_one("SELECT traces, calls, trace_ids FROM v_sessions WHERE session_id = 'conv-1'", &[]).unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (3, 9));
    assert_eq!(r.get::<_, Vec<String>>(2), ["turn-1", "turn-2", "turn-3"]);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM v_sessions"), 2);

    // Asking for one trace or session reaches the partitions' indexes: the
    // filter is applied below the grouping (with sequential scans off, only
    // a pushed-down filter can use an index).
    c.batch_execute("SET enable_seqscan = off").unwrap();
    for (view, column) in [("v_traces", "trace_id"), ("v_trace_calls", "trace_id"), ("v_sessions", "session_id")] {
        let plan: Vec<String> = c
            .query(&format!("EXPLAIN SELECT * FROM {view} WHERE {column} = 'turn-2'"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(&format!("Index Cond: ({column} = 'turn-2'::text)")), "{view}:\n{plan}");
    }
}

#[test]
fn trace_columns_are_immutable_and_bad_input_is_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    let id: i64 = one(&mut c, "SELECT prompt_log_execution('answer', trace_id => 't', session_id => 's')");
    let long = "x".repeat(201);
    let cases = [
        (format!("SELECT prompt_log_execution('answer', parent_id => {})", id + 100), "22023", "is not a logged call"),
        (format!("SELECT prompt_log_execution('answer', parent_id => {id}, trace_id => 'u')"), "22023", "contradicts the parent call's"),
        (format!("SELECT prompt_log_execution('answer', parent_id => {id}, session_id => 'z')"), "22023", "contradicts the parent call's"),
        ("SELECT prompt_log_execution('answer', trace_id => '  ')".to_string(), "22023", "trace_id must not be empty"),
        ("SELECT prompt_log_execution('answer', session_id => '')".to_string(), "22023", "session_id must not be empty"),
        (format!("SELECT prompt_log_execution('answer', trace_id => '{long}')"), "22023", "at most 200 characters"),
        (format!("UPDATE prompt_executions SET trace_id = 'other' WHERE id = {id}"), "55000", "cannot change"),
        (format!("UPDATE prompt_executions SET parent_id = 1 WHERE id = {id}"), "55000", "cannot change"),
        ("INSERT INTO prompt_executions (template_id, template_name, version, model, success, trace_id) VALUES (1, 'answer', 1, 'm', true, '')"
            .to_string(), "23514", "prompt_executions_trace_id_check"),
    ];
    for (sql, code, text) in &cases {
        let e = c.batch_execute(sql).unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e:?}"));
        assert_eq!(db.code().code(), *code, "{sql}: {}", db.message());
        assert!(db.message().contains(text), "{sql}: {}", db.message());
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions"), 1);
    // Given explicitly and agreeing with the parent is fine.
    let child: i64 = one(&mut c, &format!("SELECT prompt_log_execution('answer', parent_id => {id}, trace_id => 't', session_id => 's')"));
    assert_eq!(one::<String>(&mut c, &format!("SELECT trace_id || session_id FROM prompt_executions WHERE id = {child}")), "ts");
}
