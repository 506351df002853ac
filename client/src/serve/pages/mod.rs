//! The HTML pages. Each handler asks the database as the logged-in role
//! and renders a minijinja template of `html/` with HTML auto-escaping, so
//! template bodies, variable values, messages and audit entries are text
//! wherever they appear. Actions are POSTed forms carrying the CSRF token;
//! on success they redirect back (so a reload does not repeat them), on
//! failure the page shows the database's error in words.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::queries;
use super::session::Session;
use super::web::{as_role, html, page_session, App, Failure, Shared};

mod insight;
mod settings;
mod templates;

pub fn routes() -> Router<Shared> {
    Router::new().route("/home", get(home)).merge(templates::routes()).merge(insight::routes()).merge(settings::routes())
}

/// The page templates, compiled into the binary.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../html/base.html")),
        ("login.html", include_str!("../html/login.html")),
        ("home.html", include_str!("../html/home.html")),
        ("error.html", include_str!("../html/error.html")),
        ("templates.html", include_str!("../html/templates.html")),
        ("template.html", include_str!("../html/template.html")),
        ("diff.html", include_str!("../html/diff.html")),
        ("edit.html", include_str!("../html/edit.html")),
        ("analytics.html", include_str!("../html/analytics.html")),
        ("experiments.html", include_str!("../html/experiments.html")),
        ("experiment.html", include_str!("../html/experiment.html")),
        ("guardrails.html", include_str!("../html/guardrails.html")),
        ("prices.html", include_str!("../html/prices.html")),
        ("alerts.html", include_str!("../html/alerts.html")),
        ("audit.html", include_str!("../html/audit.html")),
    ] {
        env.add_template(name, source).expect("the page templates parse");
    }
    env
}

/// The script and style sheet (no CDN: the interface works offline).
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../assets/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("../assets/app.js"), "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Renders a page; `ctx` is its JSON context.
pub fn render(app: &App, page: &str, ctx: Value, status: StatusCode) -> Response {
    match app.pages.get_template(page).and_then(|t| t.render(minijinja::value::Serde(&ctx))) {
        Ok(body) => html(status, body),
        Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, format!("page {page} failed: {}", minijinja::HtmlEscape(&e.to_string()))),
    }
}

/// The context every page of a session has: who, what they may, the CSRF token.
pub fn base(s: &Session) -> Value {
    json!({"me": {"role": s.role, "privileges": s.privileges}, "csrf": s.csrf})
}

pub fn with(s: &Session, extra: Value) -> Value {
    let mut ctx = base(s);
    if let (Value::Object(c), Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    ctx
}

pub fn failure_page(app: &App, s: Option<&Session>, f: Failure) -> Response {
    let err = json!({"error": {"message": f.message, "sqlstate": f.sqlstate, "explanation": f.explanation}});
    let ctx = match s {
        Some(s) => with(s, err),
        None => err,
    };
    render(app, "error.html", ctx, f.status)
}

/// The page's session, or the redirect to the login page.
macro_rules! session_or_login {
    ($app:expr, $headers:expr) => {
        match page_session(&$app, &$headers) {
            Ok(s) => s,
            Err(redirect) => return redirect,
        }
    };
}
pub(crate) use session_or_login;

/// What a role without the configuration's privileges sees: who it is,
/// what it may do, and (without any pgprompt role) why there is nothing.
async fn home(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let s = session_or_login!(app, headers);
    let performance = if s.privileges.reader {
        match as_role(&app, &s, |c| {
            queries::json(
                c,
                "SELECT coalesce(jsonb_agg(p ORDER BY p.template, p.version), '[]')::text FROM pgprompt.v_template_performance p",
                &[],
            )
        })
        .await
        {
            Ok(v) => v,
            Err(f) => return failure_page(&app, Some(&s), f),
        }
    } else {
        Value::Null
    };
    render(&app, "home.html", with(&s, json!({"performance": performance})), StatusCode::OK)
}

/// A redirect after an action, to `path` with `query` (pairs) and what was
/// done, signed: a page shows a `done` message only with this server's
/// signature, so a link made elsewhere cannot put words on it.
pub fn see(app: &App, path: &str, query: &[(&str, &str)], done: &str) -> Response {
    let sig = app.sessions.sign_text(done);
    let mut pairs: Vec<(&str, &str)> = query.to_vec();
    pairs.extend([("done", done), ("sig", sig.as_str())]);
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    axum::response::Redirect::to(&format!("{path}?{q}")).into_response()
}

/// What was done, if the query's signature is this server's.
pub fn done(app: &App, done: Option<String>, sig: Option<String>) -> Option<String> {
    match (done, sig) {
        (Some(d), Some(s)) if app.sessions.signed(&d, &s) => Some(d),
        _ => None,
    }
}

/// A CSV download: a header row and rows, quoted where needed. A cell that
/// a spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) is
/// prefixed with `'`, so opening a download never runs what a template
/// name or a message smuggled in.
pub fn csv(filename: &str, header: &[&str], rows: &[Vec<String>]) -> Response {
    fn cell(v: &str) -> String {
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) && v.parse::<f64>().is_err() { format!("'{v}") } else { v.to_string() };
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    }
    let mut out = header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(",") + "\r\n";
    for r in rows {
        out += &(r.iter().map(|v| cell(v)).collect::<Vec<_>>().join(",") + "\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        out,
    )
        .into_response()
}

/// A JSON value as a CSV cell: strings bare, null empty, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let r = super::csv("x.csv", &["a", "b"], &[vec!["=1+2".into(), "x,\"y\"".into()], vec!["-0.5".into(), "@me".into()]]);
        let (parts, body) = r.into_parts();
        assert_eq!(parts.headers["content-type"], "text/csv; charset=utf-8");
        let body = futures_body(body);
        assert_eq!(body, "a,b\r\n'=1+2,\"x,\"\"y\"\"\"\r\n-0.5,'@me\r\n");
    }

    fn futures_body(b: axum::body::Body) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = rt.block_on(axum::body::to_bytes(b, 1 << 20)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
