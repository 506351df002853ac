//! The README's SQL examples, run in order in a fresh database with the
//! example templates (as `make run` leaves it), each compared with the
//! output the README shows for it.
//!
//! What the README shows is read from the comment lines right after a
//! statement: `--  value` lines are the rows it returns (columns separated
//! by `|`, a first line naming the columns is a header), `-- ERROR:  text`
//! the error it raises, `-- WARNING ...` a warning (not compared); a
//! comment in parentheses, a blank line or the next statement ends them.
//! Comments at the end of a statement's line are explanations. psql's
//! `\gset` and `:name` work as in psql. A block written ```sql norun is
//! shown, not run.

use std::collections::HashMap;

use pgprompt_tests::postgres::SimpleQueryMessage;
use pgprompt_tests::*;

struct Statement {
    sql: String,
    gset: bool,
    expected: Vec<String>,
    line: usize,
}

/// The SQL blocks of the README to run, with the line each starts at.
fn blocks(readme: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in readme.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```sql" => current = Some((n + 2, String::new())),
            Some(_) if line.starts_with("```") => out.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Where the statement starting at `text` ends: the byte after its `;`
/// (or `\gset`) outside strings, dollar quotes and comments.
fn statement_end(text: &str) -> Option<(usize, bool)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i += 1;
                while i < b.len() && !(b[i] == b'\'' && b.get(i + 1) != Some(&b'\'')) {
                    i += if b[i] == b'\'' { 2 } else { 1 };
                }
            }
            b'$' => {
                let tag_end = text[i + 1..].find('$').map(|e| i + 1 + e);
                if let Some(e) = tag_end.filter(|e| text[i + 1..*e].chars().all(|c| c.is_alphanumeric() || c == '_')) {
                    let tag = &text[i..=e];
                    if let Some(close) = text[e + 1..].find(tag) {
                        i = e + 1 + close + tag.len();
                        continue;
                    }
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b';' => return Some((i + 1, false)),
            b'\\' if text[i..].starts_with("\\gset") => return Some((i + 5, true)),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The statements of a block, each with what the README shows for it.
fn statements(start: usize, block: &str) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    let (mut buf, mut first_line, mut collecting) = (String::new(), 0, false);
    for (n, line) in block.lines().enumerate() {
        if buf.is_empty() {
            let t = line.trim_start();
            if t.is_empty() {
                collecting = false;
                continue;
            }
            if let Some(comment) = t.strip_prefix("--") {
                if comment.trim_start().starts_with('(') {
                    collecting = false;
                }
                if collecting {
                    out.last_mut().expect("collecting follows a statement").expected.push(comment.to_string());
                }
                continue;
            }
            first_line = start + n;
        } else {
            buf.push('\n');
        }
        buf.push_str(line);
        if let Some((end, gset)) = statement_end(&buf) {
            let sql = buf[..end].trim_end_matches("\\gset").trim().to_string();
            out.push(Statement { sql, gset, expected: Vec::new(), line: first_line });
            // The rest of the line is an explanation.
            buf.clear();
            collecting = true;
        }
    }
    out
}

/// A psql variable reference `:name` replaced by its value.
fn substitute(sql: &str, vars: &HashMap<String, String>) -> String {
    let mut out = sql.to_string();
    for (k, v) in vars {
        out = out.replace(&format!(":{k})"), &format!("{v})")).replace(&format!(":{k},"), &format!("{v},")).replace(&format!(":{k} "), &format!("{v} "));
    }
    out
}

fn cells(line: &str) -> Vec<String> {
    line.split('|').map(|c| c.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

#[test]
fn every_sql_example_of_the_readme_runs_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let db = TestDb::new();
    let mut c = db.connect();
    load_examples(&mut c);
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (start, block) in blocks(&readme) {
        for st in statements(start, &block) {
            ran += 1;
            let sql = substitute(&st.sql, &vars);
            let error = st.expected.iter().find_map(|e| e.trim_start().strip_prefix("ERROR:").map(|m| m.trim().to_string()));
            let rows_shown: Vec<&String> = st.expected.iter().filter(|e| !e.trim_start().starts_with("ERROR:") && !e.trim_start().starts_with("WARNING")).collect();
            match c.simple_query(&sql) {
                Err(e) => {
                    let got = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
                    if error.as_deref() != Some(got.as_str()) {
                        failures.push(format!("README line {}: {sql}\n    error: {got}\n    README shows: {:?}", st.line, error));
                    }
                }
                Ok(messages) => {
                    if let Some(e) = error {
                        failures.push(format!("README line {}: {sql}\n    succeeded; README shows ERROR: {e}", st.line));
                        continue;
                    }
                    let rows: Vec<_> = messages.iter().filter_map(|m| if let SimpleQueryMessage::Row(r) = m { Some(r) } else { None }).collect();
                    if st.gset {
                        if let Some(r) = rows.first() {
                            for (i, col) in r.columns().iter().enumerate() {
                                vars.insert(col.name().to_string(), r.get(i).unwrap_or_default().to_string());
                            }
                        }
                    }
                    if rows_shown.is_empty() {
                        continue;
                    }
                    let names: Vec<String> = rows.first().map(|r| r.columns().iter().map(|c| c.name().to_string()).collect()).unwrap_or_default();
                    let mut shown: Vec<Vec<String>> = rows_shown.iter().map(|l| cells(l)).collect();
                    if shown.first() == Some(&names) {
                        shown.remove(0);
                    }
                    let got: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| (0..r.len()).map(|i| r.get(i).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")).collect())
                        .collect();
                    if got != shown {
                        failures.push(format!("README line {}: {sql}\n    returned: {got:?}\n    README shows: {shown:?}", st.line));
                    }
                }
            }
        }
    }
    assert!(ran >= 60, "{ran} statements ran");
    assert!(failures.is_empty(), "{} of {ran} statements differ from the README:\n{}", failures.len(), failures.join("\n"));
}
