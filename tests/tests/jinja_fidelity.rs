//! Differential test against Python's Jinja2: third-party templates
//! (tests/oracle/corpus.json: vendor chat templates with and without tools,
//! embedding and reranking templates, prompty evaluation prompts), each
//! rendered with realistic variables by Jinja2 (tests/oracle/jinja2_oracle.py,
//! in the environment its ecosystem uses) and by prompt_render_text with the
//! matching render options. Byte-identical output is agreement; so is both
//! refusing, where a template's own raise_exception must give P0001 with
//! Jinja2's message. Every disagreement must be a documented difference
//! (tests/oracle/differences.json, listed in the README), and every
//! documented difference must still disagree, so the list stays true.
//!
//! Needs PGPROMPT_ORACLE_PYTHON (a Python with jinja2 and pyyaml; `make test`
//! makes one) and downloads the corpus into PGPROMPT_CORPUS_CACHE (default
//! ~/.cache/pgprompt/corpus) once.

use std::collections::BTreeMap;

use pgprompt_tests::*;
use serde_json::Value;

struct Case {
    id: String,
    family: String,
    source: String,
    options: String,
    body: String,
    vars: String,
    expected: Value,
}

fn oracle(now: f64) -> Vec<Case> {
    let cache = std::env::var("PGPROMPT_CORPUS_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/pgprompt/corpus", std::env::var("HOME").expect("HOME")));
    oracle_lines("jinja2_oracle.py", &["--cache", &cache, "--now", &now.to_string()])
        .into_iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned();
            Case {
                id: s("id"),
                family: s("family"),
                source: s("source"),
                options: v["options"].to_string(),
                body: s("body"),
                vars: s("vars"),
                expected: v["expected"].clone(),
            }
        })
        .collect()
}

/// What pgprompt did with a case: its output, or its SQLSTATE and message.
enum Got {
    Output(String),
    Error(String, String),
}

/// Whether pgprompt agrees with Jinja2 on a case, and if not, how not.
fn compare(expected: &Value, got: &Got) -> Result<(), String> {
    match (expected.get("output").and_then(Value::as_str), got) {
        (Some(want), Got::Output(out)) if want == out => Ok(()),
        (Some(want), Got::Output(out)) => Err(first_difference(want, out)),
        (Some(_), Got::Error(code, msg)) => Err(format!("Jinja2 renders it; pgprompt: {code} {msg}")),
        (None, got) => {
            let err = expected["error"].as_str().unwrap();
            let raised = expected["raised"].as_bool().unwrap();
            match got {
                Got::Output(out) => Err(format!("Jinja2: {err}; pgprompt renders {} bytes", out.len())),
                Got::Error(code, msg) if raised && (code != "P0001" || msg != err) => {
                    Err(format!("raise_exception({err:?}); pgprompt: {code} {msg}"))
                }
                Got::Error(..) => Ok(()),
            }
        }
    }
}

fn first_difference(want: &str, got: &str) -> String {
    let at = want.bytes().zip(got.bytes()).take_while(|(a, b)| a == b).count();
    let at = (0..=at).rev().find(|i| want.is_char_boundary(*i) && got.is_char_boundary(*i)).unwrap_or(0);
    let around = |s: &str| {
        let from = (0..=at.saturating_sub(40)).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let to = (at + 40..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
        format!("{:?}", &s[from..to.min(s.len())])
    };
    format!("differs at byte {at}: Jinja2 {} / pgprompt {}", around(want), around(got))
}

#[test]
fn third_party_templates_render_as_jinja2_renders_them() {
    let db = TestDb::new();
    let mut c = db.connect();
    // Vendor chat templates are over the 16 KiB default; a superuser may
    // raise the limit (per database or role in production).
    c.batch_execute("SET pgprompt.max_template_bytes = 262144").unwrap();
    // One transaction: strftime_now is the transaction's time, given to the
    // oracle too.
    let mut tx = c.transaction().unwrap();
    let now: f64 = tx.query_one("SELECT extract(epoch FROM now())::float8", &[]).unwrap().get(0);
    let cases = oracle(now);

    let documented: BTreeMap<String, String> = {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/oracle/differences.json");
        let list: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        list.iter().map(|d| (d["id"].as_str().unwrap().to_owned(), d["reason"].as_str().unwrap().to_owned())).collect()
    };

    // family -> (templates, templates agreeing on every case, cases, cases agreeing)
    let mut report: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut template_ok: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut undocumented = Vec::new();
    let mut fixed = Vec::new();
    for case in &cases {
        let mut sp = tx.transaction().unwrap();
        let got = match sp.query_one(
            "SELECT prompt_render_text($1, $2::text, $3::text::jsonb)",
            &[&case.body, &case.vars, &case.options],
        ) {
            Ok(row) => Got::Output(row.get(0)),
            Err(e) => {
                let db = e.as_db_error().unwrap_or_else(|| panic!("{}: {e}", case.id));
                Got::Error(db.code().code().to_owned(), db.message().to_owned())
            }
        };
        sp.rollback().unwrap();
        let result = compare(&case.expected, &got);
        let entry = report.entry(case.family.clone()).or_default();
        entry.2 += 1;
        if result.is_ok() {
            entry.3 += 1;
        }
        let ok = template_ok.entry((case.family.clone(), case.source.clone())).or_insert(true);
        *ok &= result.is_ok();
        match (result, documented.contains_key(&case.id)) {
            (Err(why), false) => undocumented.push(format!("{}\n    {why}", case.id)),
            (Ok(()), true) => fixed.push(case.id.clone()),
            _ => {}
        }
    }
    for ((family, _), ok) in &template_ok {
        let entry = report.get_mut(family).unwrap();
        entry.0 += 1;
        if *ok {
            entry.1 += 1;
        }
    }

    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let (mut t, mut ta, mut n, mut na) = (0, 0, 0, 0);
    println!("\nAgreement with Jinja2 {} (templates identical on every case; cases):", "3.1");
    for (family, (templates, same, cases, agree)) in &report {
        println!(
            "  {family:<40} {same:>3}/{templates:<3} templates ({:5.1}%)  {agree:>4}/{cases:<4} cases ({:5.1}%)",
            pct(*same, *templates),
            pct(*agree, *cases)
        );
        (t, ta, n, na) = (t + templates, ta + same, n + cases, na + agree);
    }
    println!(
        "  {:<40} {ta:>3}/{t:<3} templates ({:5.1}%)  {na:>4}/{n:<4} cases ({:5.1}%)",
        "all",
        pct(ta, t),
        pct(na, n)
    );
    println!("  documented differences: {} cases", documented.len());

    assert!(t >= 100, "the corpus has {t} templates; at least 100 are expected");
    assert!(
        undocumented.is_empty(),
        "{} cases disagree with Jinja2 and are not documented differences:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
    assert!(fixed.is_empty(), "documented differences that now agree (remove them from differences.json and the README):\n{}", fixed.join("\n"));
}
