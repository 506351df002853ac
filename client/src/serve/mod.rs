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
        let pools = Arc::new(db::Pools::new(settings.config, settings.tls));
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
        let app = Arc::new(web::App {
            sessions: session::Sessions::new(session::random_token(32).as_bytes(), Duration::from_secs(args.session_minutes * 60)),
            limiter: session::LoginLimiter::new(args.max_failed_logins as usize, Duration::from_secs(15 * 60)),
            pools,
            pages: pages::environment(),
            https: args.tls_cert.is_some(),
        });
        let router = web::router(app.clone());
        let scheme = if app.https { "https" } else { "http" };
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let listener = listen::Tls::bind(args.listen, cert, key).await?;
                announce(scheme, listener.local_addr(), &app);
                axum::serve(listener, router.into_make_service_with_connect_info::<listen::ClientAddr>())
                    .with_graceful_shutdown(shutdown())
                    .await
            }
            _ => {
                let listener = listen::Plain::bind(args.listen).await?;
                announce(scheme, listener.local_addr(), &app);
                axum::serve(listener, router.into_make_service_with_connect_info::<listen::ClientAddr>())
                    .with_graceful_shutdown(shutdown())
                    .await
            }
        }
        .map_err(|e| Error::local(format!("the server failed: {e}")))
    })
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
