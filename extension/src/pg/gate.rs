//! SQL functions of release gates: checking test case assertions and running
//! a version's test cases. The gate itself (refusing activation) is SQL in
//! `sql/gates.sql`; the assertions are checked by `crate::gate`.

use pgrx::prelude::*;

use super::cache::Selector;
use super::raise::{required, OrRaise};
use super::{guard, templates};
use crate::gate::{self, Outcome};

/// Refuses invalid assertions (the prompt_test_cases trigger runs it).
/// Takes text, not jsonb: jsonb holds numbers (1e400) that serde_json
/// cannot, and those must be refused with a message, not fail inside pgrx.
#[pg_extern(immutable, parallel_safe)]
fn _test_case_check(assertions: &str) {
    gate::parse(&json(assertions, "assertions").or_raise()).or_raise();
}

fn json(text: &str, what: &str) -> crate::error::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| crate::error::Error::invalid(format!("{what}: {e}")))
}

#[pg_extern(volatile, parallel_safe)]
fn prompt_run_tests(
    name: Option<&str>,
    version: default!(Option<i32>, "NULL"),
) -> TableIterator<'static, (name!(test, String), name!(passed, bool), name!(detail, Option<String>))> {
    let name = required(name, "name");
    let sel = version.map_or(Selector::Latest, Selector::Version);
    let target = templates::resolve(name, &sel).or_raise();
    let cases: Vec<(String, String, String)> = Spi::connect(|client| {
        client
            .select(
                "SELECT name, vars::text, assertions::text FROM pgprompt.prompt_test_cases WHERE template_id = $1 ORDER BY name",
                None,
                &[target.template_id.into()],
            )
            .expect("reading prompt_test_cases")
            .map(|row| {
                let text = |i: usize| row.get::<String>(i).ok().flatten().unwrap_or_default();
                (text(1), text(2), text(3))
            })
            .collect()
    });
    let rows: Vec<_> = cases
        .into_iter()
        .map(|(test, vars, assertions)| {
            let parsed = json(&assertions, "assertions").and_then(|a| gate::parse(&a)).and_then(|a| Ok((a, json(&vars, "vars")?)));
            let failures = match parsed {
                Err(e) => vec![format!("invalid test case: {e}")],
                Ok((assertions, vars)) => match templates::try_render_output(name, target.version, &vars) {
                    Ok(output) => gate::check(&assertions, Outcome::Rendered(&output), &guard::blocking),
                    Err(e) => gate::check(&assertions, Outcome::Failed(&e.to_string()), &guard::blocking),
                },
            };
            let passed = failures.is_empty();
            (test, passed, (!passed).then(|| failures.join("; ")))
        })
        .collect();
    TableIterator::new(rows)
}
