//! The database side of `pgprompt serve`: one small pool of connections
//! per logged-in role, each connection opened as that role with its own
//! password, so everything a page or an API call does runs as the person
//! who asked — privileges, gates, approvals and the audit log's `actor`
//! are PostgreSQL's, unchanged.
//!
//! The `postgres` crate's blocking client is used from tokio's blocking
//! threads (`run`): the same typed client the CLI uses.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pgprompt_client::postgres::{Client, Config};
use pgprompt_client::{Error, Result};

/// Connections kept idle per role; more are opened under load and closed
/// after use.
const IDLE_PER_ROLE: usize = 4;

/// A connection idle longer than this is checked before use (the server
/// may have restarted since).
const CHECK_AFTER: Duration = Duration::from_secs(5);

/// How many connections may be in use at once: per role, so one user's
/// burst of requests cannot take the database's `max_connections` from
/// everyone else, and in all; and how long a request waits for one to be
/// free before it is answered "busy".
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_role: usize,
    pub total: usize,
    pub wait: Duration,
}

/// Connections in use, by role and in all.
#[derive(Default)]
struct InUse {
    by_role: HashMap<String, usize>,
    total: usize,
}

pub struct Pools {
    /// Host, port, database and TLS of every connection; user and password
    /// are the role's.
    base: Config,
    tls: pgprompt_client::tls::Tls,
    idle: Mutex<HashMap<String, Vec<(Client, Instant)>>>,
    limits: Limits,
    in_use: Mutex<InUse>,
    freed: Condvar,
}

/// A connection's place among those in use (see `Limits`), given back when
/// dropped.
struct Permit<'a> {
    pools: &'a Pools,
    role: String,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut u = self.pools.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = u.by_role.get_mut(&self.role) {
            *n -= 1;
            if *n == 0 {
                u.by_role.remove(&self.role);
            }
        }
        u.total -= 1;
        self.pools.freed.notify_all();
    }
}

impl Pools {
    pub fn new(base: Config, tls: pgprompt_client::tls::Tls, limits: Limits) -> Pools {
        Pools { base, tls, idle: Mutex::new(HashMap::new()), limits, in_use: Mutex::default(), freed: Condvar::new() }
    }

    /// Waits (at most `Limits::wait`) until `role` may use one more
    /// connection; SQLSTATE 53300 (too many connections) when none was
    /// freed in time.
    fn acquire(&self, role: &str) -> Result<Permit<'_>> {
        let deadline = Instant::now() + self.limits.wait;
        let mut u = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let mine = u.by_role.get(role).copied().unwrap_or(0);
            if mine < self.limits.per_role && u.total < self.limits.total {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error {
                    sqlstate: Some("53300".into()),
                    message: format!(
                        "too many requests at once: role {role} has {mine} of its {} database connections in use and the server {} of {}; none was freed within {} s",
                        self.limits.per_role,
                        u.total,
                        self.limits.total,
                        self.limits.wait.as_secs_f32()
                    ),
                });
            }
            u = self.freed.wait_timeout(u, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        *u.by_role.entry(role.to_string()).or_default() += 1;
        u.total += 1;
        Ok(Permit { pools: self, role: role.to_string() })
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

    /// Runs `f` on one of `role`'s connections, once the role may use one
    /// more (see `Limits`). A connection that turns out closed (the server
    /// restarted) is replaced once, before `f` ran on it.
    pub fn with<T>(&self, role: &str, password: &str, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let _permit = self.acquire(role)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(per_role: usize, total: usize, wait: Duration) -> Pools {
        Pools::new(Config::new(), pgprompt_client::tls::Tls::default(), Limits { per_role, total, wait })
    }

    #[test]
    fn a_role_waits_for_its_own_connections_and_all_for_the_total() {
        let p = pools(2, 3, Duration::from_millis(50));
        let a1 = p.acquire("alice").unwrap();
        let _a2 = p.acquire("alice").unwrap();
        let e = p.acquire("alice").err().expect("alice's third waits, then is busy");
        assert_eq!(e.sqlstate.as_deref(), Some("53300"));
        assert!(e.message.contains("role alice has 2 of its 2"), "{}", e.message);
        // Another role is not held up by alice's share...
        let b1 = p.acquire("bob").unwrap();
        // ...but by the total.
        assert_eq!(p.acquire("bob").err().and_then(|e| e.sqlstate).as_deref(), Some("53300"));
        drop(b1);
        let _b = p.acquire("bob").unwrap();
        drop(a1);
        assert!(p.acquire("alice").is_ok());
    }

    #[test]
    fn a_connection_given_back_wakes_a_waiter_at_once() {
        let p = pools(1, 10, Duration::from_secs(5));
        let held = p.acquire("alice").unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let asked = Instant::now();
                let got = p.acquire("alice").map(|_| ());
                (got, asked.elapsed())
            });
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
            let (got, took) = waiter.join().unwrap();
            assert!(got.is_ok());
            assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(4), "{took:?}");
        });
    }
}
