//! pgprompt-client: a typed Rust API over pgprompt's SQL functions.
//!
//! Connections come from a URL or, like libpq, from the environment:
//! `DATABASE_URL`, or `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`,
//! `PGPASSWORD` (with libpq's defaults for what is unset).

use std::env;
use std::fmt;

pub use postgres;
use postgres::{Client, Config, NoTls};

pub mod files;
pub mod prompts;
pub mod table;

pub use prompts::{Execution, Finding, Performance, Prompts, Rendered, RenderedFor, ScoreValue, Scored, Source, VariantResult};
pub use table::Table;

/// An error from the server (with its SQLSTATE) or from connecting.
#[derive(Debug)]
pub struct Error {
    pub sqlstate: Option<String>,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error found on this side (bad input, a file, no connection).
    pub fn local(message: impl Into<String>) -> Error {
        Error { sqlstate: None, message: message.into() }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let mut message = db.message().to_string();
                if let Some(detail) = db.detail() {
                    message.push_str("\nDETAIL: ");
                    message.push_str(detail);
                }
                if let Some(hint) = db.hint() {
                    message.push_str("\nHINT: ");
                    message.push_str(hint);
                }
                Error { sqlstate: Some(db.code().code().to_string()), message }
            }
            None => Error { sqlstate: None, message: e.to_string() },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connection settings: `url` if given, else `DATABASE_URL`, else the
/// libpq environment variables.
pub fn config(url: Option<&str>) -> Result<Config> {
    let from_url = url.map(str::to_string).or_else(|| env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
    if let Some(url) = from_url {
        return url
            .parse::<Config>()
            .map_err(|e| Error { sqlstate: None, message: format!("invalid connection string: {e}") });
    }
    let mut cfg = Config::new();
    let user = env::var("PGUSER").or_else(|_| env::var("USER")).unwrap_or_else(|_| "postgres".into());
    cfg.host(&env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into()));
    cfg.port(match env::var("PGPORT") {
        Ok(p) => p.parse().map_err(|_| Error { sqlstate: None, message: format!("PGPORT is not a port: {p}") })?,
        Err(_) => 5432,
    });
    cfg.dbname(&env::var("PGDATABASE").unwrap_or_else(|_| user.clone()));
    cfg.user(&user);
    if let Ok(pw) = env::var("PGPASSWORD") {
        cfg.password(pw);
    }
    cfg.application_name("pgprompt");
    Ok(cfg)
}

/// Connects with `config(url)`.
pub fn connect(url: Option<&str>) -> Result<Client> {
    Ok(config(url)?.connect(NoTls)?)
}

/// What is installed where the client is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub server_version: String,
    /// `None` when the extension is not installed in this database.
    pub extension_version: Option<String>,
}

/// The server's and the extension's versions.
pub fn server_info(client: &mut Client) -> Result<ServerInfo> {
    let row = client.query_one(
        "SELECT current_setting('server_version'), \
                (SELECT extversion FROM pg_extension WHERE extname = 'pgprompt')",
        &[],
    )?;
    Ok(ServerInfo { server_version: row.get(0), extension_version: row.get(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_bad_ones_refused() {
        let cfg = config(Some("postgresql://alice@db.example:6543/prompts")).unwrap();
        assert_eq!(cfg.get_user(), Some("alice"));
        assert_eq!(cfg.get_dbname(), Some("prompts"));
        assert_eq!(cfg.get_ports(), &[6543]);
        assert!(config(Some("postgresql://x:notaport/")).is_err());
    }
}
