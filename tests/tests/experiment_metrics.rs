//! Experiments on any metric against a real server: the figures of
//! v_ab_test_metrics next to values computed independently (scipy 1.17 and
//! statsmodels from the same calls, and the mSPRT's published formula), the
//! guardrail metrics that block a promotion, the sequential decision, the
//! A/A simulation that shows why it is safe to peek, and bad input.

use pgprompt_tests::*;

fn setup(c: &mut Client) {
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Hi {{ name }}', '{"model": "gpt-4o"}');
           SELECT prompt_save('tutor', 'Hello {{ name }}!', '{"model": "gpt-4o"}');
           SELECT prompt_score_define('quality', 'numeric', 1, 5);
           SELECT prompt_score_define('thumbs', 'boolean');
           SELECT prompt_score_define('toxicity', 'numeric', 0, 1, higher_is_better => false);
           SELECT prompt_score_define('topic', 'categorical', categories => ARRAY['math', 'art']);"#,
    )
    .unwrap();
}

const TWO: &str = r#"[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]"#;

/// 60 calls of variant a and 50 of b, with latencies, token counts (so
/// costs), successes and quality scores given by formulas, so that the
/// same data can be rebuilt anywhere.
fn log_known_calls(c: &mut Client, experiment: &str) {
    c.batch_execute(&format!(
        "SELECT prompt_score(prompt_log_execution('tutor', experiment => '{experiment}', variant => 'a',
                                                  latency_ms => 400 + (i * 37) % 200, input_tokens => 100 + (i * 13) % 50,
                                                  output_tokens => 20, success => i % 10 <> 0),
                             'quality', 1 + (i * 7) % 5)
           FROM generate_series(1, 60) i;
         SELECT prompt_score(prompt_log_execution('tutor', experiment => '{experiment}', variant => 'b',
                                                  latency_ms => 450 + (i * 53) % 260, input_tokens => 100 + (i * 17) % 60,
                                                  output_tokens => 20, success => i % 7 <> 0),
                             'quality', 2 + (i * 3) % 4)
           FROM generate_series(1, 50) i;"
    ))
    .unwrap();
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * want.abs().max(1e-12), "{what}: {got} vs {want}");
}

#[test]
fn every_metric_matches_independent_computations() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(&format!(
        "SELECT prompt_experiment_create('e', 'tutor', '{TWO}', primary_metric => 'quality',
                                         guardrail_metrics => ARRAY['latency_ms', 'cost_usd', 'error_rate'], min_sample_size => 10);
         SELECT prompt_experiment_start('e');"
    ))
    .unwrap();
    log_known_calls(&mut c, "e");
    // Folding half-way changes nothing.
    c.batch_execute("SELECT prompt_stats_compact(), prompt_score_stats_compact()").unwrap();

    // (metric, mean b, t interval of b, diff, Welch interval, Welch p, mSPRT p, confidence sequence)
    #[allow(clippy::type_complexity)]
    let expected: [(&str, f64, (f64, f64), f64, (f64, f64), f64, f64, (f64, f64)); 3] = [
        (
            "latency_ms",
            579.5,
            (557.985_589_722_935_9, 601.014_410_277_064_1),
            77.666_666_666_666_69,
            (51.680_389_626_067_89, 103.652_943_707_265_48),
            5.236_763_701_880_168e-8,
            0.027_588_179_968_641_09,
            (6.498_563_044_574_737_5, 148.834_770_288_758_65),
        ),
        (
            "cost_usd",
            0.000_525_750_000_000_000_1,
            (0.000_513_410_265_945_487_3, 0.000_538_089_734_054_512_9),
            1.575_000_000_000_014e-5,
            (4.853_556_848_454_103e-7, 3.101_464_431_515_487e-5),
            0.043_282_204_095_582_73,
            0.722_680_230_552_828,
            (-2.598_512_841_888_527_6e-5, 5.748_512_841_888_555_4e-5),
        ),
        (
            "quality",
            3.54,
            (3.219_237_853_908_694_5, 3.860_762_146_091_305_5),
            0.54,
            (0.056_987_209_853_175_4, 1.023_012_790_146_824_7),
            0.028_787_282_337_292_167,
            0.662_253_923_430_135_2,
            (-0.763_795_119_144_018_2, 1.843_795_119_144_018_3),
        ),
    ];
    for (metric, mean, ci, diff, diff_ci, p, seq_p, seq_ci) in expected {
        let r = c
            .query_one(
                "SELECT n, value, ci_low, ci_high, diff, diff_ci_low, diff_ci_high, p_value, seq_p_value, seq_ci_low, seq_ci_high,
                        role, better, verdict
                   FROM v_ab_test_metrics WHERE experiment = 'e' AND variant = 'b' AND metric = $1",
                &[&metric],
            )
            .unwrap();
        assert_eq!(r.get::<_, i64>(0), 50, "{metric}");
        close(r.get(1), mean, metric);
        close(r.get(2), ci.0, metric);
        close(r.get(3), ci.1, metric);
        close(r.get(4), diff, metric);
        close(r.get(5), diff_ci.0, metric);
        close(r.get(6), diff_ci.1, metric);
        close(r.get(7), p, metric);
        close(r.get(8), seq_p, metric);
        close(r.get(9), seq_ci.0, metric);
        close(r.get(10), seq_ci.1, metric);
        let (role, better, verdict): (String, String, String) = (r.get(11), r.get(12), r.get(13));
        match metric {
            "quality" => assert_eq!((role.as_str(), better.as_str(), verdict.as_str()), ("primary", "higher", "inconclusive")),
            // 78 ms slower is sure even for the sequential test: a guardrail it breaks.
            "latency_ms" => assert_eq!((role.as_str(), better.as_str(), verdict.as_str()), ("guardrail", "lower", "worse")),
            _ => assert_eq!((role.as_str(), better.as_str(), verdict.as_str()), ("guardrail", "lower", "inconclusive")),
        }
    }
    // Rates: 54 of 60 against 43 of 50 (statsmodels: Newcombe, z-test).
    let r = c
        .query_one(
            "SELECT value, diff, diff_ci_low, diff_ci_high, p_value, seq_p_value FROM v_ab_test_metrics
              WHERE experiment = 'e' AND variant = 'b' AND metric = 'success_rate'",
            &[],
        )
        .unwrap();
    close(r.get(0), 0.86, "success_rate");
    close(r.get(1), -0.040_000_000_000_000_036, "diff");
    close(r.get(2), -0.173_031_270_114_108_15, "Newcombe low");
    close(r.get(3), 0.083_572_805_890_681_39, "Newcombe high");
    close(r.get(4), 0.517_578_778_960_767_1, "z-test p");
    assert_eq!(r.get::<_, f64>(5), 1.0);
    let error_rate: f64 = one(&mut c, "SELECT value FROM v_ab_test_metrics WHERE experiment = 'e' AND variant = 'b' AND metric = 'error_rate'");
    close(error_rate, 0.14, "error_rate");
    // The p95 of latency comes with it; the control has no comparison.
    let p95: f64 = one(&mut c, "SELECT p95 FROM v_ab_test_metrics WHERE experiment = 'e' AND variant = 'b' AND metric = 'latency_ms'");
    assert!((600.0..800.0).contains(&p95), "{p95}");
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM v_ab_test_metrics WHERE is_control AND (diff IS NOT NULL OR verdict IS NOT NULL)"), 0);

    // The results view carries the decision and every metric.
    let r = c
        .query_one(
            "SELECT primary_metric, primary_verdict, degraded_guardrails, metrics -> 'latency_ms' ->> 'verdict', jsonb_typeof(metrics -> 'quality' -> 'seq_ci')
               FROM v_ab_test_results WHERE experiment = 'e' AND variant = 'b'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "quality");
    assert_eq!(r.get::<_, String>(1), "inconclusive");
    assert_eq!(r.get::<_, Vec<String>>(2), ["latency_ms"]);
    assert_eq!(r.get::<_, String>(3), "worse");
    assert_eq!(r.get::<_, String>(4), "array");

    // No winner on the primary metric: promotion without a variant says so.
    let e = expect_error(&mut c, "SELECT prompt_experiment_promote('e')", "55000");
    assert!(e.contains("primary metric quality"), "{e}");
    // Naming b: its latency is a degraded guardrail.
    let e = expect_error(&mut c, "SELECT prompt_experiment_promote('e', 'b')", "55000");
    assert!(e.contains("guardrail metric latency_ms"), "{e}");
    // Forced: promoted, and what was overridden is recorded and audited.
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_experiment_promote('e', 'b', force => true)"), 2);
    let overrides: Vec<String> = one(&mut c, "SELECT overrides FROM ab_test_experiments WHERE name = 'e'");
    assert_eq!(overrides.len(), 1);
    assert!(overrides[0].starts_with("degraded guardrail: latency_ms (579.5"), "{overrides:?}");
    let audited: String =
        one(&mut c, "SELECT after ->> 'overrides' FROM prompt_audit_logs WHERE object_type = 'experiment' AND action = 'conclude'");
    assert!(audited.contains("degraded guardrail"), "{audited}");
}

#[test]
fn promotion_follows_the_sequential_decision() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    c.batch_execute(&format!(
        "SELECT prompt_experiment_create('e', 'tutor', '{TWO}', primary_metric => 'thumbs', guardrail_metrics => ARRAY['toxicity'],
                                         min_sample_size => 100);
         SELECT prompt_experiment_start('e');
         -- b: thumbs up 70% against 50%, toxicity the same.
         SELECT prompt_score(x.id, 'toxicity', 0.1), prompt_score(x.id, 'thumbs', i % 10 < CASE x.v WHEN 'a' THEN 5 ELSE 7 END)
           FROM generate_series(1, 400) i
          -- (i > 0: a call per i, not one for all.)
          CROSS JOIN LATERAL (SELECT v, prompt_log_execution('tutor', experiment => 'e', variant => v) AS id
                                FROM unnest(ARRAY['a', 'b']) v WHERE i > 0) x;"
    ))
    .unwrap();
    let r = c.query_one("SELECT verdict, seq_p_value FROM v_ab_test_metrics WHERE variant = 'b' AND metric = 'thumbs'", &[]).unwrap();
    assert_eq!(r.get::<_, String>(0), "better");
    assert!(r.get::<_, f64>(1) < 0.05);
    // A lower-is-better score that went down is better, not worse.
    c.batch_execute("SELECT prompt_score(id, 'toxicity', 0.05) FROM prompt_executions WHERE variant = 'b'").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT verdict FROM v_ab_test_metrics WHERE variant = 'b' AND metric = 'toxicity'"), "better");
    assert_eq!(one::<i32>(&mut c, "SELECT prompt_experiment_promote('e')"), 2);
    assert_eq!(one::<Option<Vec<String>>>(&mut c, "SELECT overrides FROM ab_test_experiments WHERE name = 'e'"), None);
}

/// 2,000 A/A experiments (both arms a 30% rate), each looked at after every
/// 100 calls per arm up to 2,000, through the server's own comparison: the
/// always-valid p-value calls a difference in at most alpha of them, while
/// reading the fixed-horizon p-value at every look does in far more.
#[test]
fn peeking_at_aa_experiments_keeps_the_false_positive_rate() {
    let db = TestDb::new();
    let mut c = db.connect();
    let r = c
        .query_one(
            "WITH batches AS (
                 -- (The bound names the row, so the draw is made for each row.)
                 SELECT e, look, arm, (SELECT count(*) FROM generate_series(1, 100 + 0 * (e + look + arm)) WHERE random() < 0.3) AS s
                   FROM (SELECT setseed(0.17)) seed, generate_series(1, 2000) e, generate_series(1, 20) look, generate_series(0, 1) arm
             ), running AS (
                 SELECT e, look, sum(s) FILTER (WHERE arm = 0) OVER w AS sa, sum(s) FILTER (WHERE arm = 1) OVER w AS sb
                   FROM batches
                 WINDOW w AS (PARTITION BY e ORDER BY look)
             ), looks AS (
                 SELECT r.e, c.p_value, c.seq_p_value
                   FROM (SELECT DISTINCT e, look, sa, sb FROM running) r
                  CROSS JOIN LATERAL prompt_compare_rates(r.sa::int8, r.look * 100, r.sb::int8, r.look * 100, 0.05) c
             )
             SELECT count(DISTINCT e) FILTER (WHERE seq_p_value < 0.05)::float8 / 2000,
                    count(DISTINCT e) FILTER (WHERE p_value < 0.05)::float8 / 2000,
                    count(*)
               FROM looks",
            &[],
        )
        .unwrap();
    let (sequential, naive, looks): (f64, f64, i64) = (r.get(0), r.get(1), r.get(2));
    println!("A/A: sequential {sequential:.4}, naive repeated fixed-horizon {naive:.4} ({looks} looks)");
    assert_eq!(looks, 40_000);
    assert!(sequential <= 0.05, "sequential false-positive rate {sequential}");
    assert!(naive > 0.10, "naive peeking {naive}");
}

#[test]
fn bad_metrics_are_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    setup(&mut c);
    for (sql, text) in [
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => 'revenue')"), "unknown metric \"revenue\""),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', guardrail_metrics => ARRAY['latency'])"), "unknown metric \"latency\""),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => 'topic')"), "unknown metric \"topic\""),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => 'quality', guardrail_metrics => ARRAY['quality'])"), "must differ"),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', guardrail_metrics => ARRAY['error_rate'])"), "must differ"),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', guardrail_metrics => ARRAY['cost_usd', 'cost_usd'])"), "must differ"),
        (format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => 'error_rate')"), "guardrail metric"),
    ] {
        let e = expect_error(&mut c, &sql, "22023");
        assert!(e.contains(text), "{sql}: {e}");
    }
    assert_eq!(sqlstate(c.batch_execute(&format!("SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => NULL)"))), "22004");
    // Fixed once started.
    c.batch_execute(&format!(
        "SELECT prompt_experiment_create('x', 'tutor', '{TWO}', primary_metric => 'quality'); SELECT prompt_experiment_start('x')"
    ))
    .unwrap();
    assert_eq!(sqlstate(c.batch_execute("UPDATE ab_test_experiments SET guardrail_metrics = '{latency_ms}' WHERE name = 'x'")), "55000");
    assert_eq!(sqlstate(c.batch_execute("UPDATE ab_test_experiments SET primary_metric = 'success_rate' WHERE name = 'x'")), "55000");
    // The comparison functions check what they are given.
    for sql in [
        "SELECT * FROM prompt_compare_rates(5, 4, 1, 10)",
        "SELECT * FROM prompt_compare_rates(-1, 4, 1, 10)",
        "SELECT * FROM prompt_compare_rates(1, 4, 1, 10, 1.5)",
        "SELECT * FROM prompt_compare_means(10, 1, -1, 10, 1, 1)",
        "SELECT * FROM prompt_compare_means(10, 'NaN', 1, 10, 1, 1)",
    ] {
        assert_eq!(sqlstate(c.batch_execute(sql)), "22023", "{sql}");
    }
}
