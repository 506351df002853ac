//! HTTP plumbing shared by the pages and the API: the application state,
//! the routes, who is asking (cookie or bearer token), CSRF and origin
//! checks, database errors in words with an HTTP status, and the security
//! headers every response carries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use pgprompt_client::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use super::db::{self, Pools};
use super::listen::ClientAddr;
use super::session::{same_secret, CookieError, LoginLimiter, Privileges, Session, Sessions};
use super::{api, pages, queries, MAX_BODY};

/// The session cookie's name. Over HTTPS with the `__Host-` prefix: the
/// browser then accepts it only from this host, Secure, for every path, so
/// a neighbouring subdomain cannot plant a session of its choosing.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-pgprompt_session"
    } else {
        "pgprompt_session"
    }
}

/// Wait before answering a failed login, so guessing passwords is slow.
const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

pub struct App {
    pub sessions: Sessions,
    pub limiter: LoginLimiter,
    /// Logins checked at once.
    pub logins: tokio::sync::Semaphore,
    /// Host headers accepted (names this server is reached by); empty: any.
    pub hosts: Vec<String>,
    pub pools: Arc<Pools>,
    pub pages: minijinja::Environment<'static>,
    /// Served over TLS: cookies are marked Secure.
    pub https: bool,
    /// Proxies whose X-Forwarded-For names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<IpAddr>,
}

pub type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/templates") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/assets/{file}", get(pages::asset))
        .merge(pages::routes())
        .nest("/api", api::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(refuse_large))
        .layer(middleware::from_fn_with_state(app.clone(), known_host))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

/// Requests must name this server by one of its names (`App::hosts`): a
/// page whose own name an attacker points at this server (DNS rebinding)
/// sends its name, and is refused.
async fn known_host(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if !app.hosts.is_empty() {
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if !app.hosts.contains(&host) {
            return (StatusCode::MISDIRECTED_REQUEST, "This server is not reached by that name (see --host-name).").into_response();
        }
    }
    next.run(req).await
}

/// A body announced larger than the limit is refused at once, before a
/// byte of it is read (DefaultBodyLimit stops bodies without a length).
async fn refuse_large(req: Request, next: Next) -> Response {
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        let message = format!("The request is larger than {} MB, the most this server accepts.", MAX_BODY >> 20);
        let mut res = (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    next.run(req).await
}

/// Headers on every response: no framing, no sniffing, scripts and styles
/// only from this server (the pages have no inline script), no referrer
/// leaving the site, nothing cached (pages show live state).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// The session cookie's value, if the request has one.
fn cookie<'a>(app: &App, headers: &'a HeaderMap) -> Option<&'a str> {
    let name = cookie_name(app.https);
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The logged-in session of a page request, or a redirect to the login
/// page that says why (expired, or not a session of this server).
pub fn page_session(app: &App, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(value) = cookie(app, headers) else { return Err(Redirect::to("/login").into_response()) };
    match app.sessions.find(value) {
        Ok(s) => Ok(s),
        Err(CookieError::Expired) => Err(Redirect::to("/login?why=expired").into_response()),
        Err(CookieError::Forged) => Err(Redirect::to("/login?why=invalid").into_response()),
    }
}

/// A form or script request that changes something must carry the
/// session's CSRF token (a hidden field, or the `X-CSRF-Token` header), and
/// come from a page of this server when the browser says where from.
pub fn check_csrf(session: &Session, headers: &HeaderMap, field: Option<&str>) -> Result<(), Failure> {
    same_origin(headers)?;
    let given = field.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match given {
        Some(t) if same_secret(t, &session.csrf) => Ok(()),
        _ => Err(Failure::new(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or out of date. Reload the page and try again.",
        )),
    }
}

/// Refuses a request a browser sent from another site: its `Origin` (or,
/// lacking one, `Referer`) names a host other than this one.
pub fn same_origin(headers: &HeaderMap) -> Result<(), Failure> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let from = headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER)).and_then(|v| v.to_str().ok());
    let Some(from) = from else { return Ok(()) };
    let authority = from.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("")).unwrap_or("");
    if !host.is_empty() && authority == host {
        Ok(())
    } else {
        Err(Failure::new(StatusCode::FORBIDDEN, "Cross-origin requests may not change anything here."))
    }
}

/// Something that went wrong, as shown to a person (or put in an API
/// error): a status, words, and the SQLSTATE when the database said it.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
    pub sqlstate: Option<String>,
    pub explanation: Option<&'static str>,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into(), sqlstate: None, explanation: None }
    }

    pub fn json(&self) -> Value {
        json!({"error": {"message": self.message, "sqlstate": self.sqlstate, "explanation": self.explanation}})
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let (status, explanation) = explain(e.sqlstate.as_deref());
        Failure { status, message: e.message, sqlstate: e.sqlstate, explanation: Some(explanation) }
    }
}

/// What a SQLSTATE means for the person who clicked, and its HTTP status.
pub fn explain(sqlstate: Option<&str>) -> (StatusCode, &'static str) {
    match sqlstate {
        None | Some("57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "08001" | "08004") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database cannot be reached right now. This page works again as soon as it is back.",
        ),
        Some("42501") => (StatusCode::FORBIDDEN, "Your role is not allowed to do this."),
        Some("28P01" | "28000") => (StatusCode::UNAUTHORIZED, "The database refused the login."),
        Some("PG002") => (StatusCode::CONFLICT, "The release gate refused: the version fails its template's test cases."),
        Some("PG001") => (StatusCode::UNPROCESSABLE_ENTITY, "A guardrail blocked the content."),
        Some("55000") => (StatusCode::CONFLICT, "Not possible in the current state."),
        Some("42704") => (StatusCode::NOT_FOUND, "Not found."),
        Some("42710" | "23505") => (StatusCode::CONFLICT, "That name is already taken."),
        Some("42601") => (StatusCode::UNPROCESSABLE_ENTITY, "The template does not parse."),
        Some("42P02") => (StatusCode::UNPROCESSABLE_ENTITY, "A variable the template prints is missing."),
        Some("42883" | "42P01" | "42703" | "3F000") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "This pgprompt serve and the database do not match: a function, table or column it uses is missing (is the extension installed, at this version?).",
        ),
        Some(s) if s.starts_with("22") || s.starts_with("42") => (StatusCode::UNPROCESSABLE_ENTITY, "The input is not valid."),
        Some("53300") => (StatusCode::SERVICE_UNAVAILABLE, "The server is busy: too many requests at once. Try again in a moment."),
        Some(s) if s.starts_with("54") => (StatusCode::PAYLOAD_TOO_LARGE, "Over a limit the server protects itself with."),
        Some("40001" | "40P01") => (StatusCode::CONFLICT, "Another change got there first; try again."),
        Some(_) => (StatusCode::INTERNAL_SERVER_ERROR, "The database reported an error."),
    }
}

/// Runs database work as the session's role.
pub async fn as_role<T: Send + 'static>(
    app: &App,
    s: &Session,
    f: impl FnOnce(&mut pgprompt_client::postgres::Client) -> pgprompt_client::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    db::run(&app.pools, &s.role, &s.password, f).await.map_err(Failure::from)
}

/// An experiment with its results and metrics, as the session's role sees
/// it (`queries::experiment`); 404 when there is none of that name.
pub async fn experiment(app: &App, s: &Session, name: &str) -> Result<Value, Failure> {
    let n = name.to_string();
    let x = as_role(app, s, move |c| queries::experiment(c, &n)).await?;
    if x.is_null() {
        return Err(Failure::new(StatusCode::NOT_FOUND, format!("There is no experiment \"{name}\".")));
    }
    Ok(x)
}

fn set_cookie(app: &App, value: &str, max_age: u64) -> HeaderValue {
    let secure = if app.https { "; Secure" } else { "" };
    let name = cookie_name(app.https);
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .expect("cookie values are base64url and digits")
}

#[derive(Deserialize)]
struct LoginQuery {
    why: Option<String>,
}

async fn login_form(State(app): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let note = match q.why.as_deref() {
        Some("expired") => Some("Your session expired. Log in again."),
        Some("invalid") => Some("Your session is not valid here (the server restarted, or the cookie was altered). Log in again."),
        Some("out") => Some("You are logged out."),
        _ => None,
    };
    pages::render(&app, "login.html", json!({"note": note, "login_error": null, "role": ""}), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct Credentials {
    pub role: String,
    pub password: String,
}

/// The address a request came from, as the failed-login limit counts it:
/// the peer's; or, when the peer is a proxy named in `--trusted-proxies`,
/// the last address its `X-Forwarded-For` lists that is not a trusted
/// proxy itself. Read from the right: each proxy appends the address it
/// heard from, and what stands further left the client may have written.
/// An entry that is not an address stops the reading at the proxy's own.
/// Addresses compare in canonical form: a dual-stack listener sees an IPv4
/// proxy as `::ffff:10.0.0.2`. Entries may carry a port (`203.0.113.7:5123`,
/// `[2001:db8::1]:443`), and a line that is not UTF-8 is read lossily (its
/// rightmost entries, the proxies', are ASCII), not skipped.
pub fn client_ip(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let lines: Vec<String> = headers.get_all("x-forwarded-for").iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let entries: Vec<&str> = lines.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    for entry in entries.into_iter().rev() {
        let ip = entry.parse::<IpAddr>().or_else(|_| entry.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        match ip.map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

/// Checks a role's password by connecting as it, and that PostgreSQL did
/// check it: a second connection with a random wrong password must fail,
/// else `pg_hba.conf` trusts the role and anyone could log in as it.
/// Returns the role's pgprompt privileges.
pub async fn authenticate(app: &App, addr: ClientAddr, headers: &HeaderMap, creds: &Credentials) -> Result<Privileges, Failure> {
    let ip = client_ip(&app.trusted_proxies, addr.0.ip(), headers);
    // Counted before it is tried, so logins sent at once count together.
    if let Err(wait) = app.limiter.attempt(ip, SystemTime::now()) {
        return Err(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed logins from your address. Try again in {} seconds.", wait.as_secs().max(1)),
        ));
    }
    let result = check_login(app, creds).await;
    match &result {
        Ok(_) => app.limiter.succeeded(ip),
        // Every failure is answered late, whatever failed.
        Err(_) => tokio::time::sleep(FAILED_LOGIN_DELAY).await,
    }
    result
}

async fn check_login(app: &App, creds: &Credentials) -> Result<Privileges, Failure> {
    let refused = || Failure::new(StatusCode::UNAUTHORIZED, "Login failed: that role and password do not match.");
    if creds.role.is_empty() || creds.password.is_empty() || creds.role.len() > 63 || creds.password.len() > 1000 {
        return Err(refused());
    }
    // A few logins at a time: each opens two connections.
    let _permit = app.logins.acquire().await.map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let (pools, role, password) = (app.pools.clone(), creds.role.clone(), creds.password.clone());
    let checked = tokio::task::spawn_blocking(move || -> pgprompt_client::Result<Option<Privileges>> {
        let mut c = match pools.connect(&role, &password) {
            Ok(c) => c,
            Err(e) if matches!(e.sqlstate.as_deref(), Some("28P01" | "28000")) => return Ok(None),
            Err(e) => return Err(e),
        };
        if pools.connect(&role, &super::session::random_token(18)).is_ok() {
            return Err(Error {
                sqlstate: Some("28000".into()),
                message: format!(
                    "PostgreSQL lets the role \"{role}\" in without checking its password (its pg_hba.conf line is `trust`), \
                     so a password typed here would prove nothing. pgprompt serve logs in only roles whose password the database checks \
                     (scram-sha-256 or md5 for the address it connects from)."
                ),
            });
        }
        queries::privileges(&mut c).map(Some)
    })
    .await
    .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match checked {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(refused()),
        Err(e) if e.sqlstate.as_deref() == Some("28000") => Err(Failure {
            status: StatusCode::FORBIDDEN,
            message: e.message,
            sqlstate: e.sqlstate,
            explanation: Some("The database does not check this role's password."),
        }),
        // Not logged in yet: no detail of where the database is.
        Err(e) => {
            let (status, explanation) = explain(e.sqlstate.as_deref());
            Err(Failure { status, message: "The login could not be checked.".into(), sqlstate: e.sqlstate, explanation: Some(explanation) })
        }
    }
}

async fn login(State(app): State<Shared>, ConnectInfo(addr): ConnectInfo<ClientAddr>, headers: HeaderMap, Form(creds): Form<Credentials>) -> Response {
    if let Err(f) = same_origin(&headers) {
        return pages::failure_page(&app, None, f);
    }
    match authenticate(&app, addr, &headers, &creds).await {
        Ok(privileges) => {
            let (_, cookie) = app.sessions.open(&creds.role, &creds.password, privileges);
            let mut res = Redirect::to("/").into_response();
            res.headers_mut().insert(header::SET_COOKIE, set_cookie(&app, &cookie, app.sessions.lifetime.as_secs()));
            res
        }
        Err(f) => {
            let detail = json!({"note": null, "login_error": f.message, "role": creds.role});
            pages::render(&app, "login.html", detail, f.status)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(State(app): State<Shared>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let session = match page_session(&app, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect,
    };
    if let Err(f) = check_csrf(&session, &headers, form.csrf.as_deref()) {
        return pages::failure_page(&app, Some(&session), f);
    }
    if let Some((role, last)) = app.sessions.close(&session.id) {
        if last {
            db::forget(&app.pools, &role).await;
        }
    }
    let mut res = Redirect::to("/login?why=out").into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(&app, "", 0));
    res
}

/// HTML with the status given.
pub fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(list: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in list {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_client_address_is_read_from_trusted_proxies_only() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let inner: IpAddr = "10.0.0.3".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let trusted = [proxy, inner];
        // A peer that is no trusted proxy is the client, whatever it says.
        assert_eq!(client_ip(&[], proxy, &forwarded(&["198.51.100.1"])), proxy);
        assert_eq!(client_ip(&trusted, client, &forwarded(&["198.51.100.1"])), client);
        // Through a proxy: the address it appended.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["203.0.113.7"])), client);
        // What the client wrote further left is not believed.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["198.51.100.1, 203.0.113.7"])), client);
        // Through two trusted proxies, over two header lines.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["198.51.100.1, 203.0.113.7", "10.0.0.3"])), client);
        // An entry that is no address stops the reading: the proxy's own.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["198.51.100.1, unknown"])), proxy);
        // No header: the proxy's.
        assert_eq!(client_ip(&trusted, proxy, &HeaderMap::new()), proxy);
        // IPv6.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["2001:db8::1"])), "2001:db8::1".parse::<IpAddr>().unwrap());
        // A dual-stack listener's view of an IPv4 proxy.
        assert_eq!(client_ip(&trusted, "::ffff:10.0.0.2".parse().unwrap(), &forwarded(&["203.0.113.7"])), client);
        // Entries with ports.
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["203.0.113.7:5123"])), client);
        assert_eq!(client_ip(&trusted, proxy, &forwarded(&["[2001:db8::1]:443"])), "2001:db8::1".parse::<IpAddr>().unwrap());
        // A line with bytes that are not UTF-8 is still read from the right.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"198.51.100.1\xff, 203.0.113.7").unwrap());
        assert_eq!(client_ip(&trusted, proxy, &h), client);
    }
}
