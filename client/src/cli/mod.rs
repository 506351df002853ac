//! The CLI's commands, one module per noun. Every query is parameterised;
//! read commands print a table, or JSON with --json.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use postgres::types::ToSql;
use postgres::Client;
use pgprompt_client::style::Style;
use pgprompt_client::{Error, Result, Table};
use serde_json::{Map, Value};

pub mod complete;
pub mod doctor;
pub mod experiments;
pub mod guardrails;
pub mod prices;
pub mod scores;
pub mod stats;
pub mod templates;
pub mod transfer;

/// How a command ended when it did not fail with an error.
pub enum Done {
    Ok,
    /// Ran, but reports a failure (doctor, failing tests): exit status 1.
    Failed,
}

/// Output settings: JSON or text; on a terminal, colour (unless NO_COLOR),
/// tables cut to its width, and output longer than it through $PAGER, as
/// psql and gh do. Into a pipe or a file: plain text, whole, unpaged.
pub struct Out {
    pub json: bool,
    terminal: bool,
    style: Style,
}

impl Out {
    pub fn new(json: bool) -> Out {
        let terminal = std::io::stdout().is_terminal();
        Out { json, terminal, style: Style::for_output(terminal) }
    }

    /// The colours of this output (none unless on a terminal).
    pub fn style(&self) -> Style {
        self.style
    }

    /// Prints `text`, through the pager when it is longer than the terminal.
    pub fn print(&self, text: &str) {
        if self.terminal && text.lines().count() >= terminal_size().1 && page(text) {
            return;
        }
        print!("{text}");
    }

    /// Prints a query's result as a table or JSON.
    pub fn table(&self, t: &Table) {
        if self.json {
            self.print(&(t.to_json() + "\n"));
        } else {
            let width = if self.terminal { terminal_size().0 } else { usize::MAX };
            self.print(&t.to_text_within(width, &self.style));
        }
    }

    /// Runs a query and prints it.
    pub fn query(&self, c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Table> {
        let t = Table::query(c, sql, params)?;
        self.table(&t);
        Ok(t)
    }
}

/// The terminal's columns and lines: COLUMNS and LINES when set (shells
/// keep them), else what the terminal reports, else 80 by 24.
fn terminal_size() -> (usize, usize) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0);
    // SAFETY: TIOCGWINSZ fills a winsize for a terminal descriptor, and
    // fails (leaving it zeroed) for anything else.
    let (cols, rows) = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
            (ws.ws_col as usize, ws.ws_row as usize)
        } else {
            (0, 0)
        }
    };
    let or = |n: usize, default: usize| if n > 0 { n } else { default };
    (env("COLUMNS").unwrap_or(or(cols, 80)), env("LINES").unwrap_or(or(rows, 24)))
}

/// Writes `text` through the pager: PAGER (run by the shell, as git runs
/// it), or `less -FRX` when PAGER is unset and less is installed. An empty
/// PAGER, or none to be found, prints directly (false).
fn page(text: &str) -> bool {
    let pager = match std::env::var("PAGER") {
        Ok(p) => p,
        Err(_) if on_path("less") => "less -FRX".to_string(),
        Err(_) => return false,
    };
    if pager.trim().is_empty() {
        return false;
    }
    let Ok(mut child) = Command::new("sh").arg("-c").arg(&pager).stdin(Stdio::piped()).spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit early closes the pipe; what is left is not wanted.
        let _ = stdin.write_all(text.as_bytes());
    }
    let _ = child.wait();
    true
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A connection to a database with the extension installed.
pub fn connect(url: Option<&str>) -> Result<Client> {
    let mut c = pgprompt_client::connect(url)?;
    let info = pgprompt_client::server_info(&mut c)?;
    if info.extension_version.is_none() {
        let db: String = c.query_one("SELECT current_database()", &[])?.get(0);
        return Err(Error::local(format!(
            "the pgprompt extension is not installed in database \"{db}\"; install it with: CREATE EXTENSION pgprompt;"
        )));
    }
    Ok(c)
}

pub fn status(url: Option<&str>) -> Result<Done> {
    let mut client = pgprompt_client::connect(url)?;
    let info = pgprompt_client::server_info(&mut client)?;
    println!("server    PostgreSQL {}", info.server_version);
    match info.extension_version {
        Some(v) => println!("pgprompt  {v}"),
        None => println!("pgprompt  not installed in this database (CREATE EXTENSION pgprompt)"),
    }
    Ok(Done::Ok)
}

/// Text from a file, or from stdin when the path is absent or "-".
pub fn read_input(path: Option<&str>) -> Result<String> {
    match path {
        Some(p) if p != "-" => std::fs::read_to_string(p).map_err(|e| Error::local(format!("{p}: {e}"))),
        _ => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| Error::local(format!("reading stdin: {e}")))?;
            Ok(s)
        }
    }
}

/// A `--var key=value` (the value read as JSON when it is a number, true,
/// false or null, else as a string). For clap: a missing `=` is a usage error.
pub fn parse_var(s: &str) -> std::result::Result<(String, Value), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected key=value, got {s:?}"))?;
    if k.is_empty() {
        return Err(format!("expected key=value, got {s:?}"));
    }
    let value = match serde_json::from_str::<Value>(v) {
        Ok(j @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => j,
        _ => Value::String(v.to_string()),
    };
    Ok((k.to_string(), value))
}

/// Variables from `--vars-file` (a JSON object) overlaid with `--var`s.
pub fn vars(file: Option<&str>, pairs: &[(String, Value)]) -> Result<Value> {
    let mut map = match file {
        Some(f) => {
            let text = read_input(Some(f))?;
            // Keys keep the file's order; a repeated key is an error.
            match pgprompt_engine::render::json_text::parse(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(Error::local(format!("{f}: the vars file must hold a JSON object"))),
                Err(e) => return Err(Error::local(format!("{f}: {}", e.message))),
            }
        }
        None => Map::new(),
    };
    for (k, v) in pairs {
        map.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(map))
}

/// A JSON object given on the command line.
pub fn json_object(what: &str, text: &str) -> Result<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::local(format!("{what} must be a JSON object"))),
        Err(e) => Err(Error::local(format!("{what} is not JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vars_are_typed_when_they_look_like_json_scalars() {
        assert_eq!(parse_var("grade=8").unwrap(), ("grade".into(), json!(8)));
        assert_eq!(parse_var("ok=true").unwrap(), ("ok".into(), json!(true)));
        assert_eq!(parse_var("name=Ada").unwrap(), ("name".into(), json!("Ada")));
        assert_eq!(parse_var("q=a=b").unwrap(), ("q".into(), json!("a=b")));
        assert_eq!(parse_var("list=[1]").unwrap(), ("list".into(), json!("[1]")));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=x").is_err());
    }
}
