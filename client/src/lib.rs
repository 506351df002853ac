//! pgprompt-client: a typed Rust API over pgprompt's SQL functions.
//!
//! Connections are found as psql finds them: a URL (or `DATABASE_URL`);
//! then the service named by `PGSERVICE` (`PGSERVICEFILE`,
//! `~/.pg_service.conf`, `$PGSYSCONFDIR/pg_service.conf`); then `PGHOST`,
//! `PGPORT`, `PGUSER`, `PGDATABASE`, `PGCONNECT_TIMEOUT`; the password from
//! any of those, else `PGPASSWORD`, else the password file (`PGPASSFILE` or
//! `~/.pgpass`); libpq's defaults for what is left.

use std::collections::BTreeMap;
use std::env;
use std::fmt;

pub use postgres;
use postgres::{Client, Config};

pub mod conninfo;
pub mod files;
pub mod prompts;
pub mod style;
pub mod table;
pub mod tls;

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
    settings(url).map(|s| s.config)
}

/// A connection's settings: the postgres crate's, and TLS's (which it
/// does not know in full: see `tls`).
pub struct Settings {
    pub config: Config,
    pub tls: tls::Tls,
}

/// The TLS settings of a connection string (`sslmode`, `sslrootcert`,
/// `sslcert`, `sslkey`), taken out of it: the postgres crate knows only
/// some sslmodes and none of the files.
fn take_tls(conn: &str, tls: &mut BTreeMap<String, String>) -> String {
    const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        let Some((base, query)) = conn.split_once('?') else { return conn.to_string() };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((k, v)) if KEYS.contains(&k) => {
                    tls.insert(k.to_string(), v.to_string());
                }
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) }
    } else {
        let mut kept = Vec::new();
        for pair in conn.split_whitespace() {
            match pair.split_once('=') {
                Some((k, v)) if KEYS.contains(&k) => {
                    tls.insert(k.to_string(), v.to_string());
                }
                _ => kept.push(pair),
            }
        }
        kept.join(" ")
    }
}

/// `config`, with the TLS settings.
pub fn settings(url: Option<&str>) -> Result<Settings> {
    let invalid = |what: String| Error { sqlstate: None, message: what };
    let from_url = url.map(str::to_string).or_else(|| env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
    let mut tls_given: BTreeMap<String, String> = BTreeMap::new();
    let mut cfg = match &from_url {
        Some(url) => take_tls(url, &mut tls_given).parse::<Config>().map_err(|e| invalid(format!("invalid connection string: {}", innermost(&e))))?,
        None => Config::new(),
    };
    // The service's settings, then the environment's, for what the URL left out.
    let mut settings: Vec<(String, String)> = Vec::new();
    if let Some(name) = env::var("PGSERVICE").ok().filter(|s| !s.is_empty()) {
        let files = [
            env::var("PGSERVICEFILE").ok(),
            env::var("HOME").ok().map(|h| format!("{h}/.pg_service.conf")),
            Some(format!("{}/pg_service.conf", env::var("PGSYSCONFDIR").unwrap_or_else(|_| "/etc/postgresql-common".into()))),
        ];
        let found = files.iter().flatten().find_map(|f| std::fs::read_to_string(f).ok().and_then(|t| conninfo::service_settings(&t, &name)));
        settings = found.ok_or_else(|| invalid(format!("definition of service \"{name}\" not found")))?;
    }
    for (key, var) in [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("dbname", "PGDATABASE"),
        ("user", "PGUSER"),
        ("connect_timeout", "PGCONNECT_TIMEOUT"),
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
    ] {
        if let Ok(v) = env::var(var) {
            settings.push((key.to_string(), v));
        }
    }
    for (key, value) in settings {
        match key.as_str() {
            "host" if cfg.get_hosts().is_empty() => {
                cfg.host(&value);
            }
            "port" if cfg.get_ports().is_empty() => {
                cfg.port(value.parse().map_err(|_| invalid(format!("invalid port number: \"{value}\"")))?);
            }
            "dbname" if cfg.get_dbname().is_none() => {
                cfg.dbname(&value);
            }
            "user" if cfg.get_user().is_none() => {
                cfg.user(&value);
            }
            "password" if cfg.get_password().is_none() => {
                cfg.password(value);
            }
            "connect_timeout" if cfg.get_connect_timeout().is_none() => {
                let secs: u64 = value.parse().map_err(|_| invalid(format!("invalid connect_timeout: \"{value}\"")))?;
                cfg.connect_timeout(std::time::Duration::from_secs(secs));
            }
            "application_name" if cfg.get_application_name().is_none() => {
                cfg.application_name(&value);
            }
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" => {
                tls_given.entry(key).or_insert(value);
            }
            _ => {}
        }
    }
    // libpq's defaults.
    let user = match cfg.get_user() {
        Some(u) => u.to_string(),
        None => env::var("USER").unwrap_or_else(|_| "postgres".into()),
    };
    if cfg.get_user().is_none() {
        cfg.user(&user);
    }
    if cfg.get_hosts().is_empty() {
        cfg.host("/var/run/postgresql");
    }
    if cfg.get_ports().is_empty() {
        cfg.port(5432);
    }
    if cfg.get_dbname().is_none() {
        cfg.dbname(&user);
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("pgprompt");
    }
    // The password: given, else PGPASSWORD, else the password file.
    if cfg.get_password().is_none() {
        if let Some(pw) = env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
            cfg.password(pw);
        } else if let Some(pw) = password_file(&cfg) {
            cfg.password(pw);
        }
    }
    let tls = tls::Tls {
        mode: match tls_given.get("sslmode") {
            Some(m) => tls::SslMode::parse(m)?,
            None => tls::SslMode::Prefer,
        },
        root_cert: tls_given.get("sslrootcert").map(Into::into),
        cert: tls_given.get("sslcert").map(Into::into),
        key: tls_given.get("sslkey").map(Into::into),
    };
    cfg.ssl_mode(tls.mode.postgres());
    Ok(Settings { config: cfg, tls })
}

/// The password the password file gives for `cfg`'s first host, if the file
/// exists and (as libpq insists) only its owner can read it.
fn password_file(cfg: &Config) -> Option<String> {
    let path = env::var("PGPASSFILE").ok().or_else(|| env::var("HOME").ok().map(|h| format!("{h}/.pgpass")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&path).ok()?.permissions().mode() & 0o077 != 0 {
            eprintln!("WARNING: password file \"{path}\" has group or world access; permissions should be u=rw (0600) or less");
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = host_name(cfg.get_hosts().first()?);
    conninfo::pgpass_password(&text, &host, *cfg.get_ports().first()?, cfg.get_dbname()?, cfg.get_user()?)
}

fn host_name(host: &postgres::config::Host) -> String {
    match host {
        postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        postgres::config::Host::Unix(p) => p.display().to_string(),
    }
}

/// Connects with `config(url)`. A failure says where it tried and why, as
/// psql does: `connection to server at "127.0.0.1", port 5433 failed:
/// Connection refused`.
pub fn connect(url: Option<&str>) -> Result<Client> {
    let Settings { mut config, tls } = settings(url)?;
    // Over a Unix socket there is no TLS (libpq ignores sslmode there).
    #[cfg(unix)]
    if config.get_hosts().iter().all(|h| matches!(h, postgres::config::Host::Unix(_))) {
        config.ssl_mode(postgres::config::SslMode::Disable);
        return config.connect(postgres::NoTls).map_err(|e| connection_error(&config, &e));
    }
    config.connect(tls.connector()?).map_err(|e| connection_error(&config, &e))
}

/// The innermost cause of an error, as psql words it (without " (os error N)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn connection_error(cfg: &Config, e: &postgres::Error) -> Error {
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let at = match cfg.get_hosts().first() {
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(dir)) => format!("on socket \"{}/.s.PGSQL.{port}\"", dir.display()),
        Some(h) => format!("at \"{}\", port {port}", host_name(h)),
        None => format!("port {port}"),
    };
    let why = match e.as_db_error() {
        Some(db) => format!("{}:  {}", db.severity(), db.message()),
        None => match innermost(e).as_str() {
            "password missing" | "invalid configuration: password missing" => "fe_sendauth: no password supplied".to_string(),
            "timed out" | "timeout waiting for server" => "timeout expired".to_string(),
            "server does not support TLS" => "server does not support SSL, but SSL was required".to_string(),
            other => other.to_string(),
        },
    };
    Error { sqlstate: e.as_db_error().map(|d| d.code().code().to_string()), message: format!("connection to server {at} failed: {why}") }
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
