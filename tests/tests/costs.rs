//! Prices and costs against a real server: exact arithmetic, cached tokens,
//! long-context tiers, price history, name matching, LiteLLM imports.

use pgprompt_tests::*;

/// prompt_cost(...) as text (NULL as None), so the exact digits are compared.
fn cost(c: &mut Client, args: &str) -> Option<String> {
    one(c, &format!("SELECT prompt_cost({args})::text"))
}

#[test]
fn the_seeds_check_is_exact_to_the_digit() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok)
         VALUES ('seed-flash', '2024-01-01', 0.075, 0.30)",
    )
    .unwrap();
    assert_eq!(cost(&mut c, "'seed-flash', 1000000, 1000000").as_deref(), Some("0.375"));
    // The same prices ship as gemini-2.0-flash-lite.
    assert_eq!(cost(&mut c, "'gemini-2.0-flash-lite', 1000000, 1000000").as_deref(), Some("0.375"));
    // Amounts floating point cannot hold stay exact when summed.
    let sum: String = one(
        &mut c,
        "SELECT trim_scale(sum(prompt_cost('seed-flash', 1, 1)))::text FROM generate_series(1, 1000000)",
    );
    assert_eq!(sum, "0.375");
    assert_eq!(cost(&mut c, "'seed-flash', 0, 0").as_deref(), Some("0"));
}

/// Costs are numerics exactly as PostgreSQL parses their digits: same
/// sign, weight, scale and digits (numeric_send), same hash, whatever the
/// size, so they group, join and compare like any other numeric.
#[test]
fn costs_are_numerics_as_postgresql_makes_them() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok)
         VALUES ('odd', '2024-01-01', 0.0000001, 123456.789, 0.00003)",
    )
    .unwrap();
    let differing: i64 = one(
        &mut c,
        "SELECT count(*) FROM generate_series(0, 3000) g,
                LATERAL (VALUES (prompt_cost('odd', g * g * 37, g * 11, g * 5)), (prompt_cost('gpt-4o', g * 997, g, g))) x(c)
          WHERE numeric_send(c) <> numeric_send(c::text::numeric) OR hash_numeric(c) <> hash_numeric(c::text::numeric)",
    );
    assert_eq!(differing, 0);
    let distinct: i64 = one(&mut c, "SELECT count(DISTINCT c) FROM (SELECT prompt_cost('gpt-4o', 1000, 0) UNION ALL SELECT 0.0025) t(c)");
    assert_eq!(distinct, 1);
}

#[test]
fn cached_tokens_and_long_context_tiers_are_billed_as_published() {
    let db = TestDb::new();
    let mut c = db.connect();
    // gpt-4o: 2.50 in, 1.25 cached, 10 out. 1000 in (400 cached), 100 out:
    // 600 * 2.5 + 400 * 1.25 + 100 * 10 = 3000 per million.
    assert_eq!(cost(&mut c, "'gpt-4o', 1000, 100, 400").as_deref(), Some("0.003"));
    // gemini-2.5-pro: 1.25 / 10 up to 200k input tokens, 2.50 / 15 for the whole call above.
    assert_eq!(cost(&mut c, "'gemini-2.5-pro', 200000, 1000").as_deref(), Some("0.26"));
    assert_eq!(cost(&mut c, "'gemini-2.5-pro', 200001, 1000").as_deref(), Some("0.5150025"));
    // Above the tier, cached tokens cost the tier's cached price (0.625).
    assert_eq!(cost(&mut c, "'gemini-2.5-pro', 300000, 0, 100000").as_deref(), Some("0.5625"));
    // Claude Sonnet 4 above 200k: 6 / 22.50, cache reads 0.60.
    assert_eq!(cost(&mut c, "'claude-sonnet-4-20250514', 250000, 2000, 50000").as_deref(), Some("1.275"));
    assert_eq!(cost(&mut c, "'claude-sonnet-4-20250514', 1000, 2000, 500").as_deref(), Some("0.03165"));
    // gemini-1.5-flash: 0.075 / 0.30 up to 128k, 0.15 / 0.60 above.
    assert_eq!(cost(&mut c, "'gemini-1.5-flash', 128000, 1000000").as_deref(), Some("0.3096"));
    assert_eq!(cost(&mut c, "'gemini-1.5-flash', 1000000, 1000000").as_deref(), Some("0.75"));
}

#[test]
fn model_names_find_their_price_through_versions_and_providers() {
    let db = TestDb::new();
    let mut c = db.connect();
    let id = |c: &mut Client, name: &str| -> Option<String> { one(c, &format!("SELECT (SELECT model FROM prompt_model_price('{name}'))")) };
    assert_eq!(id(&mut c, "gemini-2.5-flash-001").as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(id(&mut c, "GEMINI-2.5-FLASH").as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(id(&mut c, "models/gemini-2.5-flash-lite-preview-06-17").as_deref(), Some("gemini-2.5-flash-lite"));
    assert_eq!(id(&mut c, "gpt-4o-2024-08-06").as_deref(), Some("gpt-4o"));
    assert_eq!(id(&mut c, "gpt-4o-2024-05-13").as_deref(), Some("gpt-4o-2024-05-13"));
    assert_eq!(id(&mut c, "gpt-4o-mini-2024-07-18").as_deref(), Some("gpt-4o-mini"));
    assert_eq!(id(&mut c, "claude-3-5-haiku-20241022").as_deref(), Some("claude-3-5-haiku"));
    assert_eq!(id(&mut c, "claude-sonnet-4-5-20250929").as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(id(&mut c, "claude-3-5-sonnet@20240620").as_deref(), Some("claude-3-5-sonnet"));
    assert_eq!(id(&mut c, "gpt-4"), None);
    // A match pattern reaches names the default rule does not.
    c.batch_execute(
        r"INSERT INTO prompt_model_prices (model, match_pattern, effective_from, input_usd_per_mtok, output_usd_per_mtok)
          VALUES ('acme-chat', '^acme-chat(-[a-z0-9]+)*$', '2024-01-01', 1, 2)",
    )
    .unwrap();
    assert_eq!(id(&mut c, "acme-chat-eu-west-7").as_deref(), Some("acme-chat"));
    assert_eq!(cost(&mut c, "'acme-chat-eu-west-7', 1000000, 500000").as_deref(), Some("2"));
}

#[test]
fn a_price_change_never_rewrites_history() {
    let db = TestDb::new();
    let mut c = db.connect();
    // o3 shipped at 10/40 and was cut to 2/8 on 2025-06-10.
    assert_eq!(cost(&mut c, "'o3', 1000000, 1000000, 0, '2025-05-01'").as_deref(), Some("50"));
    assert_eq!(cost(&mut c, "'o3', 1000000, 1000000, 0, '2025-06-10'").as_deref(), Some("10"));
    assert_eq!(cost(&mut c, "'o3', 1000000, 1000000, 0, '2025-01-01'"), None, "before the model existed");
    c.batch_execute("SELECT prompt_save('t', 'x')").unwrap();
    c.batch_execute("SELECT prompt_log_execution('t', model => 'gpt-4o', input_tokens => 1000000, output_tokens => 0)").unwrap();
    let before: Option<String> = one(&mut c, "SELECT cost_usd::text FROM prompt_executions");
    assert_eq!(before.as_deref(), Some("2.5"));
    // A new price from tomorrow on: the logged cost and today's price stay.
    c.batch_execute(
        "INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok)
         VALUES ('gpt-4o', now() + interval '1 day', 1, 4)",
    )
    .unwrap();
    assert_eq!(one::<Option<String>>(&mut c, "SELECT string_agg(cost_usd::text, ',') FROM prompt_executions").as_deref(), Some("2.5"));
    assert_eq!(cost(&mut c, "'gpt-4o', 1000000, 0").as_deref(), Some("2.5"));
    assert_eq!(cost(&mut c, "'gpt-4o', 1000000, 0, 0, now() + interval '2 days'").as_deref(), Some("1"));
}

#[test]
fn price_changes_reach_other_sessions_at_commit() {
    let db = TestDb::new();
    let mut a = db.connect();
    let mut b = db.connect();
    assert_eq!(cost(&mut a, "'house-model', 1000000, 0"), None);
    b.batch_execute(
        "BEGIN;
         INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok)
         VALUES ('house-model', '2020-01-01', 3, 4);",
    )
    .unwrap();
    assert_eq!(cost(&mut a, "'house-model', 1000000, 0"), None, "not before commit");
    b.batch_execute("COMMIT").unwrap();
    assert_eq!(cost(&mut a, "'house-model', 1000000, 0").as_deref(), Some("3"));
    b.batch_execute("UPDATE prompt_model_prices SET input_usd_per_mtok = 5 WHERE model = 'house-model'").unwrap();
    assert_eq!(cost(&mut a, "'house-model', 1000000, 0").as_deref(), Some("5"));
    b.batch_execute("DELETE FROM prompt_model_prices WHERE model = 'house-model'").unwrap();
    assert_eq!(cost(&mut a, "'house-model', 1000000, 0"), None);
}

#[test]
fn unknown_models_cost_null_with_a_warning_and_bad_counts_are_errors() {
    let db = TestDb::new();
    let (mut c, notices) = db.connect_with_notices();
    assert_eq!(cost(&mut c, "'no-such-model', 10, 10"), None);
    let got = notices.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "01000");
    assert!(got[0].1.contains("no price for model \"no-such-model\""), "{got:?}");
    assert_eq!(cost(&mut c, "NULL, 10, 10"), None);
    assert_eq!(cost(&mut c, "'gpt-4o', NULL, 10"), None);
    let m = expect_error(&mut c, "SELECT prompt_cost('gpt-4o', -1, 0)", "22023");
    assert!(m.contains("input_tokens must not be negative"), "{m}");
    expect_error(&mut c, "SELECT prompt_cost('gpt-4o', 0, -1)", "22023");
    expect_error(&mut c, "SELECT prompt_cost('gpt-4o', 1, 0, -1)", "22023");
    let m = expect_error(&mut c, "SELECT prompt_cost('gpt-4o', 10, 0, 11)", "22023");
    assert!(m.contains("cannot exceed"), "{m}");
    c.batch_execute(
        "INSERT INTO prompt_model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok)
         VALUES ('dear', '2020-01-01', 123456789.12345678901234567890, 1)",
    )
    .unwrap();
    expect_error(&mut c, "SELECT prompt_cost('dear', 9223372036854775807, 0)", "22003");
}

#[test]
fn invalid_prices_are_refused() {
    let db = TestDb::new();
    let mut c = db.connect();
    let insert = |pattern: &str, input: &str| {
        format!(
            "INSERT INTO prompt_model_prices (model, match_pattern, input_usd_per_mtok, output_usd_per_mtok) VALUES ('m', {pattern}, {input}, 1)"
        )
    };
    let m = expect_error(&mut c, &insert("'(unclosed'", "1"), "22023");
    assert!(m.contains("match pattern does not compile"), "{m}");
    expect_error(&mut c, &insert(r"'\w{1000}\w{1000}\w{1000}'", "1"), "54000");
    expect_error(&mut c, &insert("NULL", "-1"), "23514");
    let m = expect_error(&mut c, &insert("NULL", "0.0000000000000000000001"), "22023");
    assert!(m.contains("decimal places"), "{m}");
    expect_error(
        &mut c,
        "INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok) VALUES ('Upper Case', 1, 1)",
        "23514",
    );
    expect_error(
        &mut c,
        "INSERT INTO prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok, long_context_threshold) VALUES ('m', 1, 1, 1000)",
        "23514",
    );
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_model_prices WHERE model = 'm'"), 0);
}

const LITELLM: &str = r#"{
  "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0, "litellm_provider": "one of the providers"},
  "gpt-4o": {"max_tokens": 16384, "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
             "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai", "mode": "chat"},
  "vertex_ai/gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
             "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,
             "cache_read_input_token_cost": 3.1e-07, "cache_read_input_token_cost_above_200k_tokens": 6.25e-07,
             "litellm_provider": "vertex_ai-language-models", "mode": "chat"},
  "odd-model": {"input_cost_per_token": 1.0416666666666667e-07, "output_cost_per_token": 3.3333e-08,
             "litellm_provider": "acme"},
  "text-embedding-3-small": {"input_cost_per_token": 2e-08, "output_cost_per_token": 0.0, "mode": "embedding"},
  "dall-e-3": {"input_cost_per_pixel": 1e-07, "mode": "image_generation"}
}"#;

#[test]
fn litellm_prices_import_exactly_and_idempotently() {
    let db = TestDb::new();
    let mut c = db.connect();
    let n: i32 = c
        .query_one("SELECT prompt_import_prices($1::text::jsonb, '2025-01-01')", &[&LITELLM])
        .unwrap()
        .get(0);
    // gpt-4o's prices equal the shipped ones: no new row.
    assert_eq!(n, 3, "vertex_ai/gemini-2.5-pro, odd-model, text-embedding-3-small");
    let row: (String, String, Option<String>, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>) = {
        let r = c
            .query_one(
                "SELECT input_usd_per_mtok::text, output_usd_per_mtok::text, cached_input_usd_per_mtok::text,
                        long_context_threshold, long_input_usd_per_mtok::text, long_output_usd_per_mtok::text,
                        long_cached_input_usd_per_mtok::text, provider
                   FROM prompt_model_prices WHERE model = 'vertex_ai/gemini-2.5-pro'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))
    };
    assert_eq!(
        row,
        (
            "1.25".into(),
            "10".into(),
            Some("0.31".into()),
            Some(200000),
            Some("2.5".into()),
            Some("15".into()),
            Some("0.625".into()),
            Some("vertex_ai-language-models".into())
        )
    );
    // Per-token prices with many digits are kept to the last one.
    let odd: String = one(&mut c, "SELECT input_usd_per_mtok::text FROM prompt_model_prices WHERE model = 'odd-model'");
    assert_eq!(odd, "0.10416666666666667");
    assert_eq!(cost(&mut c, "'odd-model', 3, 0").as_deref(), Some("0.00000031250000000000001"));
    // The provider's own row prices its calls; the bare name keeps the shipped row.
    assert_eq!(cost(&mut c, "'vertex_ai/gemini-2.5-pro', 100000, 0, 100000").as_deref(), Some("0.031"));
    assert_eq!(cost(&mut c, "'gemini-2.5-pro', 100000, 0, 100000").as_deref(), Some("0.031"));
    // Importing the same file again changes nothing.
    let again: i32 = c.query_one("SELECT prompt_import_prices($1::text::jsonb, '2025-02-01')", &[&LITELLM]).unwrap().get(0);
    assert_eq!(again, 0);
    // A changed price becomes a new row from its date; the old one stays for history.
    let changed = LITELLM.replace("\"input_cost_per_token\": 2.5e-06", "\"input_cost_per_token\": 2e-06");
    let n: i32 = c.query_one("SELECT prompt_import_prices($1::text::jsonb, '2025-03-01')", &[&changed]).unwrap().get(0);
    assert_eq!(n, 1);
    let history: String = one(
        &mut c,
        "SELECT string_agg(input_usd_per_mtok::text || '@' || to_char(effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ' ' ORDER BY effective_from)
           FROM prompt_model_prices WHERE model = 'gpt-4o'",
    );
    assert_eq!(history, "2.5@2024-10-01 2@2025-03-01");
    assert_eq!(cost(&mut c, "'gpt-4o', 1000000, 0, 0, '2025-02-15'").as_deref(), Some("2.5"));
    assert_eq!(cost(&mut c, "'gpt-4o', 1000000, 0, 0, '2025-03-15'").as_deref(), Some("2"));
    // Imports are audited like any change.
    let audited: i64 = one(&mut c, "SELECT count(*) FROM prompt_audit_logs WHERE object_type = 'price' AND action = 'create'");
    assert_eq!(audited, 4);
}

#[test]
fn bad_imports_are_refused_whole() {
    let db = TestDb::new();
    let mut c = db.connect();
    let before: i64 = one(&mut c, "SELECT count(*) FROM prompt_model_prices");
    expect_error(&mut c, "SELECT prompt_import_prices('[1, 2]')", "22023");
    expect_error(&mut c, "SELECT prompt_import_prices(NULL)", "22004");
    let m = expect_error(
        &mut c,
        r#"SELECT prompt_import_prices('{"a": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}, "b": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06}}')"#,
        "22023",
    );
    assert!(m.contains("model \"b\"") && m.contains("input_cost_per_token"), "{m}");
    expect_error(
        &mut c,
        r#"SELECT prompt_import_prices('{"a": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-06}}')"#,
        "22023",
    );
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_model_prices"), before, "nothing was half-imported");
}
