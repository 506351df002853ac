//! `pgprompt serve`: the web interface and the REST API, on PostgreSQL's
//! own roles. Logging in connects to the database as the role with its
//! password; every page and API call then runs on that role's
//! connections (see `db`), so the database's privileges, release gates,
//! approvals and audit log apply as they do in psql.
//!
//! - `session`: signed cookies, CSRF and API tokens, the login limit;
//! - `web`: the HTTP plumbing (who is asking, errors in words, pages);
//! - `pages`: the HTML pages; `api`: the JSON API and its OpenAPI document;
//! - `queries`: the SQL both read with;
//! - `listen`: the listening socket, with or without TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use pgprompt_client::{Error, Result};

mod api;
mod charts;
mod db;
mod listen;
mod pages;
mod queries;
mod session;
mod web;
mod webhooks;

/// Options of `pgprompt serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: put a reverse proxy or
    /// --tls-cert in front before opening it wider).
    #[arg(long, default_value = "127.0.0.1:8420")]
    pub listen: SocketAddr,
    /// A PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a login lasts, in minutes.
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub session_minutes: u64,
    /// Failed logins allowed per client address within 15 minutes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_failed_logins: u64,
    /// Deliver pgprompt_changes and pgprompt_alerts events to the URLs of
    /// prompt_webhooks (connecting as the role of --url, which must read the
    /// table and write its delivery log: pgprompt_admin).
    #[arg(long)]
    pub webhooks: bool,
    /// Hosts webhooks may reach besides loopback, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "webhooks")]
    pub webhook_hosts: Vec<String>,
    /// Attempts per event and webhook, the first included.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub webhook_attempts: u32,
    /// Wait before the first retry, in milliseconds (each retry doubles it, up to 5 minutes).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=300000))]
    pub webhook_backoff_ms: u64,
    /// How long one delivery attempt may take, in milliseconds.
    #[arg(long, default_value_t = 10000, value_parser = clap::value_parser!(u64).range(100..=120000))]
    pub webhook_timeout_ms: u64,
    /// Names the server is reached by besides its listen address (host or
    /// host:port, comma-separated; behind a proxy, its public name).
    /// Requests naming another host are refused, so a web page elsewhere
    /// cannot reach the server through a name it controls (DNS rebinding).
    #[arg(long, value_delimiter = ',')]
    pub host_name: Vec<String>,
    /// Seconds a client may take to send a request's headers (a client
    /// trickling them is disconnected instead of holding a connection).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout: u64,
    /// Database connections the server uses at once, in all (each
    /// logged-in role's requests run on connections of their own).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub db_connections: u64,
    /// Database connections one role uses at once: a burst of one user's
    /// requests waits for them instead of taking the database's
    /// max_connections from everyone else.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub db_connections_per_role: u64,
    /// Seconds a request waits for a free connection before it is answered
    /// 503 (SQLSTATE 53300).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub db_wait: u64,
    /// Addresses of reverse proxies in front of the server (comma-
    /// separated): for requests from them, the client address the
    /// failed-login limit counts is the one their X-Forwarded-For names.
    /// Without it, every client behind a proxy would share its address
    /// (and its limit).
    #[arg(long, value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// The Host headers to accept: the listen address (and, on loopback,
/// `localhost`), and the names given; none (any) when listening on every
/// address without names given.
fn accepted_hosts(addr: SocketAddr, https: bool, names: &[String]) -> Vec<String> {
    let port = addr.port();
    let mut hosts: Vec<String> = names.iter().map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect();
    if addr.ip().is_unspecified() {
        return hosts;
    }
    hosts.push(addr.to_string());
    if addr.ip().is_loopback() {
        hosts.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
    }
    // A browser leaves the default port out.
    if (https && port == 443) || (!https && port == 80) {
        let bare: Vec<String> = hosts.iter().filter_map(|h| h.rsplit_once(':').map(|(b, _)| b.to_string())).collect();
        hosts.extend(bare);
    }
    hosts
}

/// The socket, plain or TLS, bound before the application is built (the
/// accepted Host names depend on its address).
enum Bound {
    Plain(listen::Plain),
    Tls(listen::Tls),
}

/// Largest request body accepted (a template body is at most 1 MB by
/// default; JSON and form encoding add to it).
pub const MAX_BODY: usize = 4 << 20;

/// Runs the server until interrupted (Ctrl-C or SIGTERM).
pub fn run(url: Option<&str>, args: ServeArgs) -> Result<()> {
    let settings = pgprompt_client::settings(url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::local(format!("could not start the server: {e}")))?;
    // The server's own role (of --url or the environment): webhooks listen
    // and log as it.
    let user = settings.config.get_user().unwrap_or("").to_string();
    let password = settings.config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
    runtime.block_on(async move {
        let limits = db::Limits {
            per_role: args.db_connections_per_role as usize,
            total: args.db_connections as usize,
            wait: Duration::from_secs(args.db_wait),
        };
        let pools = Arc::new(db::Pools::new(settings.config, settings.tls, limits));
        if args.webhooks {
            let hooks = webhooks::Settings {
                hosts: args.webhook_hosts.clone(),
                attempts: args.webhook_attempts,
                backoff: Duration::from_millis(args.webhook_backoff_ms),
                timeout: Duration::from_millis(args.webhook_timeout_ms),
            };
            let p = pools.clone();
            tokio::task::spawn_blocking(move || webhooks::start_checked(p, user, password, hooks))
                .await
                .map_err(|e| Error::local(e.to_string()))??
                .run();
        }
        let bound = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Bound::Tls(listen::Tls::bind(args.listen, cert, key).await?),
            _ => Bound::Plain(listen::Plain::bind(args.listen).await?),
        };
        let addr = match &bound {
            Bound::Tls(l) => l.local_addr(),
            Bound::Plain(l) => l.local_addr(),
        };
        let https = args.tls_cert.is_some();
        let app = Arc::new(web::App {
            sessions: session::Sessions::new(session::random_token(32).as_bytes(), Duration::from_secs(args.session_minutes * 60)),
            limiter: session::LoginLimiter::new(args.max_failed_logins as usize, Duration::from_secs(15 * 60)),
            logins: tokio::sync::Semaphore::new(8),
            hosts: accepted_hosts(addr, https, &args.host_name),
            pools,
            pages: pages::environment(),
            https,
            trusted_proxies: args.trusted_proxies.clone(),
        });
        tokio::spawn(sweep(app.clone()));
        let router = web::router(app.clone());
        announce(if https { "https" } else { "http" }, addr, &app);
        match bound {
            Bound::Tls(listener) => serve_on(listener, router, Duration::from_secs(args.header_timeout)).await,
            Bound::Plain(listener) => serve_on(listener, router, Duration::from_secs(args.header_timeout)).await,
        }
        Ok(())
    })
}

/// Connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 512;

/// Serves connections until interrupted, each with the client's address,
/// a time limit for its headers (slowloris) and a place among
/// `MAX_CONNECTIONS`; at shutdown, requests under way finish (for up to 10
/// seconds).
async fn serve_on<L>(mut listener: L, router: axum::Router, header_timeout: Duration)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => place,
            _ = &mut stop => break,
        };
        let Ok(place) = place else { break };
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let service = router.clone().layer(axum::Extension(axum::extract::ConnectInfo(listen::ClientAddr(addr))));
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(place);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

/// Every minute: expired sessions go, with the connections of roles left
/// without one (and their passwords), and aged-out login attempts.
async fn sweep(app: Arc<web::App>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        for role in app.sessions.sweep() {
            db::forget(&app.pools, &role).await;
        }
        app.limiter.sweep(std::time::SystemTime::now());
    }
}

/// The first line of output says where to go (tests read the port from it).
fn announce(scheme: &str, addr: SocketAddr, app: &web::App) {
    use std::io::Write;
    println!("pgprompt serve: listening on {scheme}://{addr}/ (database {})", app.pools.target());
    let _ = std::io::stdout().flush();
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::accepted_hosts;

    #[test]
    fn hosts_accepted_are_the_listen_address_and_the_names_given() {
        let local = accepted_hosts("127.0.0.1:8420".parse().unwrap(), false, &[]);
        assert!(local.contains(&"127.0.0.1:8420".to_string()) && local.contains(&"localhost:8420".to_string()));
        assert!(!local.iter().any(|h| h.contains("evil")));
        let proxied = accepted_hosts("10.0.0.5:443".parse().unwrap(), true, &["Prompts.Example.com".into()]);
        assert!(proxied.contains(&"prompts.example.com".to_string()) && proxied.contains(&"10.0.0.5".to_string()));
        assert!(accepted_hosts("0.0.0.0:8420".parse().unwrap(), false, &[]).is_empty(), "every address, no name: any host");
    }
}
