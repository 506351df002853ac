//! Parameters as drivers send them (sql/drivers.sql): typed integers and
//! UUIDs as user ids, doubles as latencies and scores, json as variables;
//! and literals or untyped parameters still resolving to the text forms.

use pgprompt_tests::postgres::types::{Json, ToSql, Type};
use pgprompt_tests::*;

/// Runs `sql` with parameters sent with their Rust types, as psycopg 3 and
/// asyncpg send Python values (the server infers nothing).
fn typed(c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<postgres::Row, postgres::Error> {
    let types: Vec<Type> = params.iter().map(|p| type_of(*p)).collect();
    let stmt = c.prepare_typed(sql, &types)?;
    c.query_one(&stmt, params)
}

/// The PostgreSQL type a driver gives a value of this Rust type.
fn type_of(p: &(dyn ToSql + Sync)) -> Type {
    [Type::INT2, Type::INT4, Type::INT8, Type::FLOAT8, Type::JSON, Type::TEXT, Type::UUID]
        .into_iter()
        .find(|t| p.to_sql_checked(t, &mut Default::default()).is_ok())
        .expect("a parameter of a type listed here")
}

fn setup() -> (TestDb, Client) {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('t', 'Explain {{ topic }}.', '{"model": "gpt-4o"}');
           SELECT prompt_save('t', 'Explain {{ topic }} simply.', '{"model": "gpt-4o"}');
           SELECT prompt_experiment_create('e', 't', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]');
           SELECT prompt_experiment_start('e');
           SELECT prompt_score_define('stars', 'numeric', 0, 5);
           SELECT prompt_score_define('ok', 'boolean');"#,
    )
    .unwrap();
    (db, c)
}

#[test]
fn typed_user_ids_are_read_as_their_text() {
    let (_db, mut c) = setup();
    for id in [1i64, 42, 7_000_000_000, -3] {
        let small = i16::try_from(id).ok();
        let as_text: i32 = c.query_one("SELECT prompt_bucket($1::text)", &[&id.to_string()]).unwrap().get(0);
        let by_type: i32 = typed(&mut c, "SELECT prompt_bucket($1)", &[&id]).unwrap().get(0);
        assert_eq!(by_type, as_text, "bucket of {id}");
        if let Some(small) = small {
            let by_type: i32 = typed(&mut c, "SELECT prompt_bucket($1, 'salt')", &[&small]).unwrap().get(0);
            let as_text: i32 = c.query_one("SELECT prompt_bucket($1::text, 'salt')", &[&id.to_string()]).unwrap().get(0);
            assert_eq!(by_type, as_text, "salted bucket of {id} as smallint");
        }
        let by_int: i32 = typed(&mut c, "SELECT prompt_assign('t', $1)", &[&id]).unwrap().get(0);
        let by_text: i32 = c.query_one("SELECT prompt_assign('t', $1::text)", &[&id.to_string()]).unwrap().get(0);
        assert_eq!(by_int, by_text, "version for user {id}");
        let row = typed(&mut c, "SELECT version, variant, prompt FROM prompt_render_for('t', $1, $2)", &[&id as &(dyn ToSql + Sync), &Json(serde_json::json!({"topic": "tides"}))]).unwrap();
        assert_eq!(row.get::<_, i32>(0), by_text);
        let variant: String = row.get(1);
        assert_eq!(variant, if by_text == 1 { "a" } else { "b" });
    }
    // A uuid, as psycopg and asyncpg send uuid.UUID: its canonical text.
    let same: bool = one(
        &mut c,
        "SELECT prompt_bucket('6f1c0e0e-3b9e-4c56-9a53-1c1d2f3e4a5b'::uuid) = prompt_bucket('6f1c0e0e-3b9e-4c56-9a53-1c1d2f3e4a5b')
            AND prompt_assign('t', '6f1c0e0e-3b9e-4c56-9a53-1c1d2f3e4a5b'::uuid) = prompt_assign('t', '6f1c0e0e-3b9e-4c56-9a53-1c1d2f3e4a5b')",
    );
    assert!(same);
    // Logged under the typed id, the call is the user's bucket's variant.
    let id: i64 = typed(
        &mut c,
        "SELECT prompt_log_execution(template => 't', user_id => $1, experiment => 'e', input_tokens => 5, latency_ms => $2)",
        &[&42i32, &12.5f64],
    )
    .unwrap()
    .get(0);
    let row = c.query_one("SELECT user_id, variant, latency_ms FROM prompt_executions WHERE id = $1", &[&id]).unwrap();
    let expected: String = one(&mut c, "SELECT variant FROM prompt_render_for('t', '42', '{\"topic\": \"x\"}')");
    assert_eq!(row.get::<_, String>(0), "42");
    assert_eq!(row.get::<_, String>(1), expected);
    assert_eq!(row.get::<_, i32>(2), 13, "12.5 ms is kept as 13 (half away from zero)");
}

#[test]
fn literals_and_untyped_parameters_keep_the_text_forms() {
    let (_db, mut c) = setup();
    // Each would be ambiguous ("function is not unique") or take the wrong
    // overload if the driver forms captured unknown-typed arguments.
    for sql in [
        "SELECT prompt_bucket('u1')::text",
        "SELECT prompt_bucket('u1', 's')::text",
        "SELECT prompt_assign('t', 'u1')::text",
        "SELECT prompt_assign('t', NULL)::text",
        "SELECT version::text FROM prompt_render_for('t', 'u1', '{\"topic\": \"x\"}')",
        "SELECT version::text FROM prompt_render_for('t', 'u1')",
        "SELECT prompt_log_execution('t', 1, 'gpt-4o', 1, 2, 3, true, 'u1')::text",
        "SELECT prompt_log_execution(template => 't', user_id => NULL, latency_ms => 850)::text",
        "SELECT prompt_log_execution(template => 't', user_id => 'u1', latency_ms => '850.4')::text",
    ] {
        // An error of the function itself (22004 for the NULL user, 42P02
        // for the missing variable) shows that a form was chosen; 42725
        // (not unique) or 42883 (none) would not.
        let r = c.query_one(sql, &[]);
        let code = if r.is_ok() { String::new() } else { sqlstate(r) };
        assert!(!["42725", "42883"].contains(&code.as_str()), "{sql}: {code}");
    }
    // Untyped parameters (node-postgres sends every value so) likewise.
    let stmt = c.prepare_typed("SELECT prompt_assign($1, $2)", &[postgres::types::Type::UNKNOWN, postgres::types::Type::UNKNOWN]);
    assert!(stmt.is_ok(), "{stmt:?}");
    let found: Vec<String> = c
        .query(
            "SELECT pg_get_function_identity_arguments(p.oid) FROM pg_proc p
              WHERE p.pronamespace = 'pgprompt'::regnamespace AND p.proname = 'prompt_assign' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(found, ["template text, user_id anynonarray", "template text, user_id text"]);
}

#[test]
fn doubles_as_scores_and_latencies() {
    let (_db, mut c) = setup();
    let call: i64 = one(&mut c, "SELECT prompt_log_execution('t', input_tokens => 3)");
    let s: i64 = typed(&mut c, "SELECT prompt_score($1, 'stars', $2)", &[&call, &4.25f64]).unwrap().get(0);
    let v: String = c.query_one("SELECT numeric_value::text FROM prompt_scores WHERE id = $1", &[&s]).unwrap().get(0);
    assert_eq!(v, "4.25");
    // An integer literal takes the double precision form, with its value.
    let s: i64 = c.query_one("SELECT prompt_score($1, 'stars', 3)", &[&call]).unwrap().get(0);
    let v: String = c.query_one("SELECT numeric_value::text FROM prompt_scores WHERE id = $1", &[&s]).unwrap().get(0);
    assert_eq!(v, "3");
    c.batch_execute("SELECT prompt_log_execution('t', trace_id => 'tr-1')").unwrap();
    let s: i64 = typed(&mut c, "SELECT prompt_score_trace('tr-1', 'stars', $1)", &[&0.1f64]).unwrap().get(0);
    let v: String = c.query_one("SELECT numeric_value::text FROM prompt_scores WHERE id = $1", &[&s]).unwrap().get(0);
    assert_eq!(v, "0.1");
    // What the declaration refuses, it refuses in this form too.
    for (value, code) in [(f64::INFINITY, "22023"), (f64::NAN, "22023"), (5.5, "22023")] {
        let r = typed(&mut c, "SELECT prompt_score($1, 'stars', $2)", &[&call, &value]);
        assert_eq!(sqlstate(r), code, "score {value}");
    }
    let r = typed(&mut c, "SELECT prompt_score($1, 'ok', $2)", &[&call, &1.0f64]);
    assert_eq!(sqlstate(r), "22023", "a boolean score given a double");

    // Latencies: fractions rounded half away from zero; what is not a
    // duration refused.
    for (given, kept) in [(0.4f64, 0i32), (0.5, 1), (849.5, 850), (-0.0, 0), (2147483647.4, 2147483647)] {
        let id: i64 = typed(&mut c, "SELECT prompt_log_execution('t', latency_ms => $1)", &[&given]).unwrap().get(0);
        let l: i32 = c.query_one("SELECT latency_ms FROM prompt_executions WHERE id = $1", &[&id]).unwrap().get(0);
        assert_eq!(l, kept, "latency {given}");
    }
    for given in [-0.4f64, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2147483647.5, 1e300] {
        let r = typed(&mut c, "SELECT prompt_log_execution('t', latency_ms => $1)", &[&given]);
        assert!(message(r).contains("latency_ms"), "latency {given}");
        let r = typed(&mut c, "SELECT prompt_log_execution('t', latency_ms => $1)", &[&given]);
        assert_eq!(sqlstate(r), "22023", "latency {given}");
    }
    let logged: i64 = one(&mut c, "SELECT count(*) FROM prompt_executions WHERE latency_ms IS NULL OR latency_ms < 0");
    assert_eq!(logged, 2, "only the calls logged without a latency lack one");
}
