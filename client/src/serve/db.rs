//! The database side of `pgprompt serve`: one small pool of connections
//! per logged-in role, each connection opened as that role with its own
//! password, so everything a page or an API call does runs as the person
//! who asked — privileges, gates, approvals and the audit log's `actor`
//! are PostgreSQL's, unchanged.
//!
//! The `postgres` crate's blocking client is used from tokio's blocking
//! threads (`run`): the same typed client the CLI uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgprompt_client::postgres::{Client, Config};
use pgprompt_client::{Error, Result};

/// Connections kept idle per role; more are opened under load and closed
/// after use.
const IDLE_PER_ROLE: usize = 4;

/// A connection idle longer than this is checked before use (the server
/// may have restarted since).
const CHECK_AFTER: Duration = Duration::from_secs(5);

pub struct Pools {
    /// Host, port, database and TLS of every connection; user and password
    /// are the role's.
    base: Config,
    tls: pgprompt_client::tls::Tls,
    idle: Mutex<HashMap<String, Vec<(Client, Instant)>>>,
}

impl Pools {
    pub fn new(base: Config, tls: pgprompt_client::tls::Tls) -> Pools {
        Pools { base, tls, idle: Mutex::new(HashMap::new()) }
    }

    /// Where connections go, for messages: `127.0.0.1:5432/postgres`.
    pub fn target(&self) -> String {
        let host = match self.base.get_hosts().first() {
            Some(pgprompt_client::postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(pgprompt_client::postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        format!("{host}:{}/{}", self.base.get_ports().first().copied().unwrap_or(5432), self.base.get_dbname().unwrap_or(""))
    }

    /// Opens a new connection as `role` with `password`.
    pub fn connect(&self, role: &str, password: &str) -> Result<Client> {
        let mut cfg = self.base.clone();
        cfg.user(role);
        cfg.password(password);
        cfg.application_name("pgprompt serve");
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        #[cfg(unix)]
        if cfg.get_hosts().iter().all(|h| matches!(h, pgprompt_client::postgres::config::Host::Unix(_))) {
            cfg.ssl_mode(pgprompt_client::postgres::config::SslMode::Disable);
            return cfg.connect(pgprompt_client::postgres::NoTls).map_err(Error::from);
        }
        cfg.connect(self.tls.connector()?).map_err(Error::from)
    }

    /// Runs `f` on one of `role`'s connections. A connection that turns out
    /// closed (the server restarted) is replaced once, before `f` ran on it.
    pub fn with<T>(&self, role: &str, password: &str, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let mut client = loop {
            let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).get_mut(role).and_then(Vec::pop);
            match taken {
                Some((c, since)) if c.is_closed() => drop((c, since)),
                Some((mut c, since)) => {
                    if since.elapsed() < CHECK_AFTER || c.is_valid(Duration::from_secs(3)).is_ok() {
                        break c;
                    }
                }
                None => break self.connect(role, password)?,
            }
        };
        let result = f(&mut client);
        if !client.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let list = idle.entry(role.to_string()).or_default();
            if list.len() < IDLE_PER_ROLE {
                list.push((client, Instant::now()));
            }
        }
        result
    }

    /// Closes a role's connections (its last session ended).
    fn forget(&self, role: &str) {
        let gone = self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(role);
        drop(gone);
    }
}

/// Closes a role's connections, off the async threads (closing one waits
/// for the server, which the blocking client does on a runtime of its own).
pub async fn forget(pools: &Arc<Pools>, role: &str) {
    let (pools, role) = (pools.clone(), role.to_string());
    let _ = tokio::task::spawn_blocking(move || pools.forget(&role)).await;
}

/// Runs blocking database work off the async threads.
pub async fn run<T: Send + 'static>(pools: &Arc<Pools>, role: &str, password: &str, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
    let (pools, role, password) = (pools.clone(), role.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || pools.with(&role, &password, f))
        .await
        .unwrap_or_else(|e| Err(Error::local(format!("the request failed: {e}"))))
}
