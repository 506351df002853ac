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
    /// Woken when a connection is given back.
    freed: tokio::sync::Notify,
}

/// A connection's place among those in use (see `Limits`), given back when
/// dropped.
pub struct Permit {
    pools: Arc<Pools>,
    role: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut u = self.pools.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = u.by_role.get_mut(&self.role) {
            *n -= 1;
            if *n == 0 {
                u.by_role.remove(&self.role);
            }
        }
        u.total -= 1;
        self.pools.freed.notify_waiters();
    }
}

impl Pools {
    pub fn new(base: Config, tls: pgprompt_client::tls::Tls, limits: Limits) -> Pools {
        Pools { base, tls, idle: Mutex::new(HashMap::new()), limits, in_use: Mutex::default(), freed: tokio::sync::Notify::new() }
    }

    /// Waits (at most `Limits::wait`, on the async side: a waiting request
    /// holds no thread) until `role` may use one more connection; SQLSTATE
    /// 53300 (too many connections) when none was freed in time.
    pub async fn acquire(self: &Arc<Self>, role: &str) -> Result<Permit> {
        let deadline = tokio::time::Instant::now() + self.limits.wait;
        loop {
            // Registered before the check, so a connection given back in
            // between still wakes it.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let (mine, total) = {
                let mut u = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
                let mine = u.by_role.get(role).copied().unwrap_or(0);
                if mine < self.limits.per_role && u.total < self.limits.total {
                    *u.by_role.entry(role.to_string()).or_default() += 1;
                    u.total += 1;
                    return Ok(Permit { pools: self.clone(), role: role.to_string() });
                }
                (mine, u.total)
            };
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Error {
                    sqlstate: Some("53300".into()),
                    message: format!(
                        "too many requests at once: role {role} has {mine} of its {} database connections in use and the server {total} of {}; none was freed within {} s",
                        self.limits.per_role,
                        self.limits.total,
                        self.limits.wait.as_secs_f32()
                    ),
                });
            }
        }
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

    /// Runs `f` on one of `role`'s connections (the caller holds a
    /// `Permit`). A connection that turns out closed (the server restarted)
    /// is replaced once, before `f` ran on it.
    fn with<T>(&self, role: &str, password: &str, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
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

/// Runs blocking database work off the async threads, once `role` may use
/// one more connection (see `Limits`).
pub async fn run<T: Send + 'static>(pools: &Arc<Pools>, role: &str, password: &str, f: impl FnOnce(&mut Client) -> Result<T> + Send + 'static) -> Result<T> {
    let permit = pools.acquire(role).await?;
    let (pools, role, password) = (pools.clone(), role.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        let result = pools.with(&role, &password, f);
        drop(permit);
        result
    })
    .await
    .unwrap_or_else(|e| Err(Error::local(format!("the request failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(per_role: usize, total: usize, wait: Duration) -> Arc<Pools> {
        Arc::new(Pools::new(Config::new(), pgprompt_client::tls::Tls::default(), Limits { per_role, total, wait }))
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
    }

    #[test]
    fn a_role_waits_for_its_own_connections_and_all_for_the_total() {
        let p = pools(2, 3, Duration::from_millis(50));
        block_on(async {
            let a1 = p.acquire("alice").await.unwrap();
            let _a2 = p.acquire("alice").await.unwrap();
            let e = p.acquire("alice").await.err().expect("alice's third waits, then is busy");
            assert_eq!(e.sqlstate.as_deref(), Some("53300"));
            assert!(e.message.contains("role alice has 2 of its 2"), "{}", e.message);
            // Another role is not held up by alice's share...
            let b1 = p.acquire("bob").await.unwrap();
            // ...but by the total.
            assert_eq!(p.acquire("bob").await.err().and_then(|e| e.sqlstate).as_deref(), Some("53300"));
            drop(b1);
            let _b = p.acquire("bob").await.unwrap();
            drop(a1);
            assert!(p.acquire("alice").await.is_ok());
        });
    }

    #[test]
    fn a_connection_given_back_wakes_a_waiter_at_once() {
        let p = pools(1, 10, Duration::from_secs(5));
        block_on(async {
            let held = p.acquire("alice").await.unwrap();
            let giver = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(held);
            });
            let asked = Instant::now();
            assert!(p.acquire("alice").await.is_ok());
            let took = asked.elapsed();
            assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(4), "{took:?}");
            giver.await.unwrap();
        });
    }
}
