//! SQL functions of release gates: checking test case assertions and running
//! a version's test cases. The gate itself (refusing activation) is SQL in
//! `sql/gates.sql`; the assertions are checked by `crate::gate`.

use pgrx::prelude::*;
use pgrx::JsonB;

use super::cache::Selector;
use super::raise::{required, OrRaise};
use super::{guard, templates};
use crate::gate::{self, Outcome};

/// Refuses invalid assertions (the prompt_test_cases trigger runs it).
#[pg_extern(immutable, parallel_safe)]
fn _test_case_check(assertions: JsonB) {
    gate::parse(&assertions.0).or_raise();
}

#[pg_extern(volatile, parallel_safe)]
fn prompt_run_tests(
    name: Option<&str>,
    version: default!(Option<i32>, "NULL"),
) -> TableIterator<'static, (name!(test, String), name!(passed, bool), name!(detail, Option<String>))> {
    let name = required(name, "name");
    let sel = version.map_or(Selector::Latest, Selector::Version);
    let target = templates::resolve(name, &sel).or_raise();
    let cases: Vec<(String, serde_json::Value, serde_json::Value)> = Spi::connect(|client| {
        client
            .select(
                "SELECT name, vars, assertions FROM pgprompt.prompt_test_cases WHERE template_id = $1 ORDER BY name",
                None,
                &[target.template_id.into()],
            )
            .expect("reading prompt_test_cases")
            .map(|row| {
                let json = |i: usize| row.get::<JsonB>(i).ok().flatten().map(|j| j.0).unwrap_or_default();
                (row.get::<String>(1).ok().flatten().unwrap_or_default(), json(2), json(3))
            })
            .collect()
    });
    let rows: Vec<_> = cases
        .into_iter()
        .map(|(test, vars, assertions)| {
            let failures = match gate::parse(&assertions) {
                Err(e) => vec![format!("invalid assertions: {e}")],
                Ok(assertions) => match templates::try_render_output(name, target.version, &vars) {
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
