//! Query results as tables: what the CLI prints, aligned for people or as
//! JSON for programs. Any query works: its rows come back as JSON values
//! (PostgreSQL's row_to_json) in the query's column order.

use postgres::types::ToSql;
use postgres::GenericClient;
use serde_json::Value;

use crate::Result;

/// Column names and rows of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Runs `sql` with `params` and collects its rows.
    pub fn query(client: &mut impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Table> {
        let statement = client.prepare(sql)?;
        let columns: Vec<String> = statement.columns().iter().map(|c| c.name().to_string()).collect();
        let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
        let rows = client
            .query(wrapped.as_str(), params)?
            .iter()
            .map(|r| {
                let object: serde_json::Map<String, Value> = serde_json::from_str(r.get::<_, &str>(0)).unwrap_or_default();
                columns.iter().map(|c| object.get(c).cloned().unwrap_or(Value::Null)).collect()
            })
            .collect();
        Ok(Table { columns, rows })
    }

    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row).map(|r| &r[i])
    }

    /// JSON: an array of objects with the columns in order.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[");
        for (n, row) in self.rows.iter().enumerate() {
            out.push_str(if n == 0 { "\n  {" } else { ",\n  {" });
            for (i, (c, v)) in self.columns.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(c.clone()).to_string());
                out.push_str(": ");
                out.push_str(&v.to_string());
            }
            out.push('}');
        }
        out.push_str(if self.rows.is_empty() { "]" } else { "\n]" });
        out
    }

    /// Aligned columns under a header, one line per row; newlines in
    /// values are shown as \n so every row stays on one line.
    pub fn to_text(&self) -> String {
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(cell).collect()).collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
            .collect();
        let line = |values: Vec<&str>| {
            let mut s = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                s.push_str(v);
                if i + 1 < values.len() {
                    s.push_str(&" ".repeat(widths[i] - v.chars().count()));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(self.columns.iter().map(String::as_str).collect());
        out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect()));
        for r in &cells {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
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
        let t = Table {
            columns: vec!["name".into(), "version".into(), "labels".into()],
            rows: vec![vec![json!("tutor"), json!(2), json!(["production", "staging"])], vec![json!("a\nb"), Value::Null, json!([])]],
        };
        assert_eq!(
            t.to_text(),
            "name   version  labels\n-----  -------  -------------------\ntutor  2        production, staging\na\\nb\n"
        );
        assert_eq!(
            t.to_json(),
            "[\n  {\"name\": \"tutor\", \"version\": 2, \"labels\": [\"production\",\"staging\"]},\n  {\"name\": \"a\\nb\", \"version\": null, \"labels\": []}\n]"
        );
        let empty = Table { columns: vec!["x".into()], rows: vec![] };
        assert_eq!(empty.to_json(), "[]");
        assert!(empty.to_text().ends_with("(no rows)\n"));
    }
}
