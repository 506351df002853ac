//! Query results as tables: what the CLI prints, aligned for people or as
//! JSON for programs. Any query works: its rows come back as JSON values
//! (PostgreSQL's row_to_json) in the query's column order, each also kept
//! as the server wrote it, so JSON output has numerics to their last digit
//! and jsonb columns as nested JSON.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::GenericClient;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::Result;

/// Column names and rows of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Each value as JSON text, as the server wrote it (numbers keep every
    /// digit, which `rows` reads as f64). Rows missing here print `rows`.
    pub raw: Vec<Vec<String>>,
}

impl Table {
    /// A table of values (JSON output writes them as serde_json does).
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Table {
        Table { columns, rows, raw: Vec::new() }
    }

    /// Runs `sql` with `params` and collects its rows.
    pub fn query(client: &mut impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Table> {
        let statement = client.prepare(sql)?;
        let columns: Vec<String> = statement.columns().iter().map(|c| c.name().to_string()).collect();
        let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
        let mut rows = Vec::new();
        let mut raw = Vec::new();
        for r in client.query(wrapped.as_str(), params)? {
            let text: &str = r.get(0);
            let object: HashMap<&str, &RawValue> = serde_json::from_str(text).unwrap_or_default();
            let cells: Vec<String> = columns.iter().map(|c| object.get(c.as_str()).map_or("null".to_string(), |v| v.get().to_string())).collect();
            rows.push(cells.iter().map(|c| serde_json::from_str(c).unwrap_or(Value::Null)).collect());
            raw.push(cells);
        }
        Ok(Table { columns, rows, raw })
    }

    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row).map(|r| &r[i])
    }

    /// Cell `i` of row `n` as JSON text.
    fn json_cell(&self, n: usize, i: usize) -> String {
        match self.raw.get(n).and_then(|r| r.get(i)) {
            Some(raw) => raw.clone(),
            None => self.rows[n][i].to_string(),
        }
    }

    /// Cell `i` of row `n` as it prints in a table: numbers and JSON
    /// documents as the server wrote them (every digit; jsonb's spacing).
    pub fn display(&self, n: usize, i: usize) -> String {
        match &self.rows[n][i] {
            Value::Number(_) | Value::Object(_) => self.json_cell(n, i),
            Value::Array(items) if !items.iter().all(Value::is_string) => self.json_cell(n, i),
            v => cell(v),
        }
    }

    /// JSON: an array of objects with the columns in order.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[");
        for n in 0..self.rows.len() {
            out.push_str(if n == 0 { "\n  {" } else { ",\n  {" });
            for (i, c) in self.columns.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(c.clone()).to_string());
                out.push_str(": ");
                out.push_str(&self.json_cell(n, i));
            }
            out.push('}');
        }
        out.push_str(if self.rows.is_empty() { "]" } else { "\n]" });
        out
    }

    /// Aligned columns under a header, one line per row; newlines in
    /// values are shown as \n so every row stays on one line.
    pub fn to_text(&self) -> String {
        self.to_text_within(usize::MAX, &crate::style::Style::plain())
    }

    /// `to_text` no wider than `width` characters where it can be: the
    /// widest columns are cut (ending in …) until the lines fit, none
    /// below 8 characters. The header in bold when `style` has colour.
    pub fn to_text_within(&self, width: usize, style: &crate::style::Style) -> String {
        let cells: Vec<Vec<String>> = (0..self.rows.len()).map(|n| (0..self.columns.len()).map(|i| self.display(n, i)).collect()).collect();
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
            .collect();
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        const NARROWEST: usize = 8;
        while total(&widths) > width {
            let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else { break };
            if w <= NARROWEST {
                break;
            }
            widths[i] = w - 1;
        }
        let fit = |v: &str, w: usize| -> String {
            if v.chars().count() <= w {
                v.to_string()
            } else {
                v.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
            }
        };
        let line = |values: Vec<String>| {
            let mut s = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                s.push_str(v);
                if i + 1 < values.len() {
                    s.push_str(&" ".repeat(widths[i].saturating_sub(v.chars().count())));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let header = line(self.columns.iter().enumerate().map(|(i, c)| fit(c, widths[i])).collect());
        let mut out = style.bold(header.trim_end()) + "\n";
        out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
        for r in &cells {
            out.push_str(&line(r.iter().enumerate().map(|(i, v)| fit(v, widths[i])).collect()));
        }
        if self.rows.is_empty() {
            out.push_str("(no rows)\n");
        }
        out
    }
}

/// How a value prints in a table cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.replace('\n', "\\n"),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_json_keep_the_column_order() {
        let t = Table::new(
            vec!["name".into(), "version".into(), "labels".into()],
            vec![vec![json!("tutor"), json!(2), json!(["production", "staging"])], vec![json!("a\nb"), Value::Null, json!([])]],
        );
        assert_eq!(
            t.to_text(),
            "name   version  labels\n-----  -------  -------------------\ntutor  2        production, staging\na\\nb\n"
        );
        assert_eq!(
            t.to_json(),
            "[\n  {\"name\": \"tutor\", \"version\": 2, \"labels\": [\"production\",\"staging\"]},\n  {\"name\": \"a\\nb\", \"version\": null, \"labels\": []}\n]"
        );
        let empty = Table::new(vec!["x".into()], vec![]);
        assert_eq!(empty.to_json(), "[]");
        assert!(empty.to_text().ends_with("(no rows)\n"));
    }

    #[test]
    fn narrow_terminals_cut_the_widest_columns() {
        let t = Table::new(
            vec!["name".into(), "body".into()],
            vec![vec![json!("tutor"), json!("You are a patient tutor who explains everything slowly.")]],
        );
        let text = t.to_text_within(30, &crate::style::Style::plain());
        for l in text.lines() {
            assert!(l.chars().count() <= 30, "{l:?} is wider than 30");
        }
        assert!(text.contains("tutor  You are a patient tuto…"), "{text}");
        // Never below 8 characters a column, even when that overflows.
        let text = t.to_text_within(5, &crate::style::Style::plain());
        assert!(text.contains("tutor  You are…"), "{text}");
    }

    #[test]
    fn numbers_keep_every_digit_the_server_wrote() {
        let mut t = Table::new(vec!["cost".into()], vec![vec![json!(0.1)]]);
        t.raw = vec![vec!["0.12345678901234567890123".into()]];
        assert_eq!(t.to_json(), "[\n  {\"cost\": 0.12345678901234567890123}\n]");
        assert!(t.to_text().contains("0.12345678901234567890123"));
    }
}
