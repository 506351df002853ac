//! The examples of plain-SQL use from other languages (client/examples/):
//! Python with psycopg 3 and Node.js with node-postgres, run as an
//! application role against the cluster. Each renders for a user (an
//! integer id), calls a stubbed model, logs the call with tokens, a
//! fractional latency and a trace, scores it later (a float), waits for a
//! release made here to drop its cache (LISTEN), and serves the last render
//! from its local copy when the database is unreachable.
//!
//! Needs PGPROMPT_EXAMPLES_PYTHON (a Python with the example's requirements)
//! and the Node example's packages installed (`make test` sets both up).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pgprompt_tests::*;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../client/examples")
}

/// Runs one example as an app role; returns its output lines and the
/// database it ran against.
fn run(language: &str, program: &str, args: &[&str]) -> (Vec<String>, TestDb) {
    let db = TestDb::new();
    let mut admin = db.connect();
    admin
        .batch_execute(
            r#"SELECT prompt_save('tutor', 'You are a tutor. Explain {{ topic }} for grade {{ grade }}.', '{"model": "gpt-4o-mini"}');
               SELECT prompt_save('tutor', 'You are a friendly tutor. Explain {{ topic }} simply for grade {{ grade }}.', '{"model": "gpt-4o-mini"}');
               SELECT prompt_score_define('helpfulness', 'numeric', 1, 5);
               SELECT prompt_score_define('resolved', 'boolean');"#,
        )
        .unwrap();
    drop(db.login("app"));
    let role = format!("{}_app", db.name);
    let url = db.url().replacen("postgres@", &format!("{role}@"), 1);
    let copy = std::env::temp_dir().join(format!("{}-{language}-copy.json", db.name));
    let _ = std::fs::remove_file(&copy);

    let mut child = Command::new(program)
        .args(args)
        .env("DATABASE_URL", &url)
        .env("PGPROMPT_LOCAL_COPY", &copy)
        .env("PGPROMPT_DOWN_URL", "postgresql://127.0.0.1:1/none")
        .env("PGPROMPT_WAIT", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the {language} example ({program}): {e}"));
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    // Until the example listens for a change, then release version 2.
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let waiting = line.starts_with("waiting for a change");
                lines.push(line);
                if waiting {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("the {language} example stopped before waiting: {lines:?}\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    admin.batch_execute("SELECT prompt_activate('tutor', 2)").unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the {language} example failed: {lines:?}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(copy.exists(), "the {language} example kept no local copy");
    let _ = std::fs::remove_file(&copy);
    (lines, db)
}

/// What every example must have printed and left in the database.
fn check(language: &str, lines: &[String], db: &TestDb) {
    let role = format!("{}_app", db.name);
    let line = |prefix: &str| {
        lines.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{language}: no line '{prefix}...' in {lines:?}")).clone()
    };
    assert_eq!(line("render: user 42 gets version 1"), "render: user 42 gets version 1 (no experiment)");
    assert_eq!(line("prompt:"), "prompt: You are a tutor. Explain photosynthesis for grade 7.");
    let logged = line("logged:");
    let (call, trace) = {
        let rest = logged.strip_prefix("logged: call ").unwrap();
        let (call, trace) = rest.split_once(" in trace ").unwrap();
        (call.parse::<i64>().unwrap(), trace.to_string())
    };
    assert_eq!(line("change:"), "change: tutor (activate, version 2): cache dropped");
    assert_eq!(line("render: user 42 gets version 2"), "render: user 42 gets version 2");
    assert_eq!(line("fallback:"), "fallback: database unreachable, served version 2 from the local copy");

    let mut c = db.connect();
    let row = c
        .query_one(
            "SELECT user_id, version, model, input_tokens, output_tokens, latency_ms, trace_id, session_id, metadata ->> 'client',
                    rendered_prompt, response
               FROM prompt_executions WHERE id = $1",
            &[&call],
        )
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("42"), "{language}: the integer user id is logged as its text");
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(row.get::<_, String>(2), "gpt-4o-mini");
    assert_eq!(row.get::<_, i64>(3), 9, "{language}: input tokens as the stub counted them");
    assert_eq!(row.get::<_, i64>(4), 7);
    let latency: i32 = row.get(5);
    assert!((5..10_000).contains(&latency), "{language}: latency {latency} ms (the stub sleeps 10 ms)");
    assert_eq!(row.get::<_, Option<String>>(6).as_deref(), Some(trace.as_str()));
    assert_eq!(row.get::<_, Option<String>>(7).as_deref(), Some("session-42"));
    assert_eq!(row.get::<_, Option<String>>(8).as_deref(), Some(language));
    assert_eq!(row.get::<_, Option<String>>(9).as_deref(), Some("You are a tutor. Explain photosynthesis for grade 7."));
    assert_eq!(row.get::<_, Option<String>>(10).as_deref(), Some("(gpt-4o-mini) Plants use sunlight to make food."));

    let scores: Vec<(String, Option<String>, Option<bool>, String, String)> = c
        .query(
            "SELECT name, numeric_value::text, boolean_value, source, created_by FROM prompt_scores_current
              WHERE execution_id = $1 OR trace_id = $2 ORDER BY name",
            &[&call, &trace],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        scores,
        vec![
            ("helpfulness".into(), Some("4.5".into()), None, "user".into(), role.clone()),
            ("resolved".into(), None, Some(true), "api".into(), role),
        ],
        "{language}"
    );
    // The scores count in the version's statistics.
    let counted: i64 = one(&mut c, "SELECT coalesce(sum(scores), 0)::int8 FROM v_template_scores WHERE template = 'tutor'");
    assert_eq!(counted, 2, "{language}");
}

#[test]
fn python_with_psycopg() {
    let python = std::env::var("PGPROMPT_EXAMPLES_PYTHON")
        .expect("PGPROMPT_EXAMPLES_PYTHON names a Python with client/examples/python/requirements.txt (make test sets it up)");
    let script = examples().join("python/tutor.py");
    let (lines, db) = run("python", &python, &[script.to_str().unwrap()]);
    check("python", &lines, &db);
}

#[test]
fn node_with_node_postgres() {
    let dir = examples().join("node");
    assert!(
        dir.join("node_modules/pg").is_dir(),
        "the Node example's packages are not installed (make test runs npm ci in client/examples/node)"
    );
    let script = dir.join("tutor.mjs");
    let (lines, db) = run("node", "node", &[script.to_str().unwrap()]);
    check("node", &lines, &db);
}
