//! The HTML pages. Each handler asks the database as the logged-in role
//! and renders a minijinja template of `html/` with HTML auto-escaping, so
//! template bodies, variable values, messages and audit entries are text
//! wherever they appear. Actions are POSTed forms carrying the CSRF token;
//! on success they redirect back (so a reload does not repeat them), on
//! failure the page shows the database's error in words.

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::queries;
use super::session::Session;
use super::web::{as_role, check_csrf, html, page_session, Failure, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/home", get(home))
        .route("/templates", get(templates))
        .route("/template", get(template))
        .route("/template/diff", get(diff))
        .route("/template/edit", get(edit))
        .route("/template/save", post(save))
        .route("/template/preview", post(preview))
        .route("/template/{action}", post(action))
}

/// The page templates, compiled into the binary.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("html/base.html")),
        ("login.html", include_str!("html/login.html")),
        ("home.html", include_str!("html/home.html")),
        ("error.html", include_str!("html/error.html")),
        ("templates.html", include_str!("html/templates.html")),
        ("template.html", include_str!("html/template.html")),
        ("diff.html", include_str!("html/diff.html")),
        ("edit.html", include_str!("html/edit.html")),
    ] {
        env.add_template(name, source).expect("the page templates parse");
    }
    env
}

/// The script and style sheet (no CDN: the interface works offline).
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("assets/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("assets/app.js"), "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Renders a page; `ctx` is its JSON context.
pub fn render(app: &super::web::App, page: &str, ctx: Value, status: StatusCode) -> Response {
    match app.pages.get_template(page).and_then(|t| t.render(minijinja::value::Serde(&ctx))) {
        Ok(body) => html(status, body),
        Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, format!("page {page} failed: {}", minijinja::HtmlEscape(&e.to_string()))),
    }
}

/// The context every page of a session has: who, what they may, the CSRF token.
fn base(s: &Session) -> Value {
    json!({"me": {"role": s.role, "privileges": s.privileges}, "csrf": s.csrf})
}

fn with(s: &Session, extra: Value) -> Value {
    let mut ctx = base(s);
    if let (Value::Object(c), Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    ctx
}

pub fn failure_page(app: &super::web::App, s: Option<&Session>, f: Failure) -> Response {
    let err = json!({"error": {"message": f.message, "sqlstate": f.sqlstate, "explanation": f.explanation}});
    let ctx = match s {
        Some(s) => with(s, err),
        None => err,
    };
    render(app, "error.html", ctx, f.status)
}

macro_rules! session_or_login {
    ($app:expr, $headers:expr) => {
        match page_session(&$app, &$headers) {
            Ok(s) => s,
            Err(redirect) => return redirect,
        }
    };
}

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

async fn templates(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<queries::TemplateFilter>) -> Response {
    let s = session_or_login!(app, headers);
    if !s.privileges.app {
        return Redirect::to("/home").into_response();
    }
    let filter = q.clone();
    let found = as_role(&app, &s, move |c| Ok((queries::templates(c, &filter)?, queries::template_filters(c)?))).await;
    match found {
        Ok((list, filters)) => render(
            &app,
            "templates.html",
            with(&s, json!({"templates": list, "filters": filters, "q": q.q, "category": q.category, "label": q.label})),
            StatusCode::OK,
        ),
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

#[derive(Deserialize)]
struct TemplateQuery {
    name: String,
    done: Option<String>,
}

/// A template's page, with an outcome to show (done or failed).
async fn template_page(app: &Shared, s: &Session, name: &str, done: Option<String>, failed: Option<Failure>) -> Response {
    let n = name.to_string();
    let found = as_role(app, s, move |c| {
        let t = queries::template(c, &n)?;
        let release = if t.is_null() { Value::Null } else { queries::version(c, &n, None, None)? };
        Ok((t, release))
    })
    .await;
    let status = failed.as_ref().map_or(StatusCode::OK, |f| f.status);
    match found {
        Ok((t, _)) if t.is_null() => failure_page(app, Some(s), Failure::new(StatusCode::NOT_FOUND, format!("There is no template \"{name}\"."))),
        Ok((t, release)) => {
            let error = failed.map(|f| json!({"message": f.message, "sqlstate": f.sqlstate, "explanation": f.explanation}));
            render(app, "template.html", with(s, json!({"t": t, "release": release, "done": done, "error": error})), status)
        }
        Err(f) => failure_page(app, Some(s), f),
    }
}

async fn template(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<TemplateQuery>) -> Response {
    let s = session_or_login!(app, headers);
    template_page(&app, &s, &q.name, q.done, None).await
}

#[derive(Deserialize)]
struct DiffQuery {
    name: String,
    from: String,
    to: String,
}

/// A diff between two versions or labels: body, kind, config, options and
/// input schema, each as unified diff lines.
async fn diff(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<DiffQuery>) -> Response {
    let s = session_or_login!(app, headers);
    let (name, from, to) = (q.name.clone(), q.from.trim().to_string(), q.to.trim().to_string());
    let compared = as_role(&app, &s, move |c| {
        let a = crate::cli::templates::version_for_diff(c, &name, &from)?;
        let b = crate::cli::templates::version_for_diff(c, &name, &to)?;
        Ok((a, b))
    })
    .await;
    let (a, b) = match compared {
        Ok(ab) => ab,
        Err(f) => return failure_page(&app, Some(&s), f),
    };
    let part = |title: &str, x: &str, y: &str| {
        let lines: Vec<Value> = similar::TextDiff::from_lines(x, y)
            .unified_diff()
            .context_radius(3)
            .to_string()
            .lines()
            .map(|l| {
                let class = match l.as_bytes().first() {
                    Some(b'+') => "add",
                    Some(b'-') => "del",
                    Some(b'@') => "hunk",
                    _ => "ctx",
                };
                json!({"class": class, "text": l})
            })
            .collect();
        json!({"title": title, "changed": x != y, "lines": lines})
    };
    let parts = vec![
        part("body", &a.body, &b.body),
        part("kind", &a.kind, &b.kind),
        part("config", &a.config, &b.config),
        part("options", &a.options, &b.options),
        part("input schema", &a.input_schema, &b.input_schema),
    ];
    let ctx = json!({"name": q.name, "from": a.header, "to": b.header, "from_sel": q.from, "to_sel": q.to, "parts": parts});
    render(&app, "diff.html", with(&s, ctx), StatusCode::OK)
}

#[derive(Deserialize)]
struct EditQuery {
    name: Option<String>,
    version: Option<i32>,
}

/// The editor: a new template, or a new version of one (from its release,
/// or the version asked for).
async fn edit(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<EditQuery>) -> Response {
    let s = session_or_login!(app, headers);
    let Some(name) = q.name.filter(|n| !n.is_empty()) else {
        let fresh = json!({"name": "", "body": "", "kind": "text", "config": "{}", "message": "", "is_new": true});
        return render(&app, "edit.html", with(&s, json!({"form": fresh})), StatusCode::OK);
    };
    let (n, v) = (name.clone(), q.version);
    match as_role(&app, &s, move |c| queries::version(c, &n, v, None)).await {
        Ok(g) => {
            let form = json!({
                "name": name, "body": g["body"], "kind": g["kind"], "message": "",
                "config": serde_json::to_string_pretty(&g["config"]).unwrap_or_default(),
                "is_new": false, "from_version": g["version"],
            });
            render(&app, "edit.html", with(&s, json!({"form": form})), StatusCode::OK)
        }
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

#[derive(Deserialize)]
struct SaveForm {
    csrf: Option<String>,
    name: String,
    body: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
}

/// A config as typed: empty is the parent version's, else a JSON object.
pub fn parse_config(text: &str) -> Result<Option<String>, Failure> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Ok(_) => Err(Failure::new(StatusCode::UNPROCESSABLE_ENTITY, "The model configuration must be a JSON object.")),
        Err(e) => Err(Failure::new(StatusCode::UNPROCESSABLE_ENTITY, format!("The model configuration is not valid JSON: {e}"))),
    }
}

fn blank_to_none(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn save(State(app): State<Shared>, headers: HeaderMap, Form(f): Form<SaveForm>) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    let kind = if f.kind.is_empty() { "text".to_string() } else { f.kind.clone() };
    let result = match parse_config(&f.config) {
        Err(e) => Err(e),
        Ok(config) => {
            let (name, body, message, kind) = (f.name.trim().to_string(), f.body.clone(), blank_to_none(&f.message), kind.clone());
            let (description, category) = (blank_to_none(&f.description), blank_to_none(&f.category));
            as_role(&app, &s, move |c| {
                let row = c.query_one(
                    "SELECT pgprompt.prompt_save(name => $1, body => $2, config => $3::text::jsonb, message => $4, kind => $5,
                                                  description => $6, category => $7)",
                    &[&name, &body, &config, &message, &kind, &description, &category],
                )?;
                Ok(row.get::<_, i32>(0))
            })
            .await
        }
    };
    match result {
        Ok(v) => see_template(f.name.trim(), &format!("Saved version {v}.")),
        Err(e) => {
            let form = json!({"name": f.name, "body": f.body, "kind": kind, "config": f.config, "message": f.message,
                              "description": f.description, "category": f.category, "is_new": false});
            let error = json!({"message": e.message, "sqlstate": e.sqlstate, "explanation": e.explanation});
            render(&app, "edit.html", with(&s, json!({"form": form, "error": error})), e.status)
        }
    }
}

/// 303 to a template's page with what was done.
fn see_template(name: &str, done: &str) -> Response {
    let q = serde_urlencoded::to_string([("name", name), ("done", done)]).unwrap_or_default();
    Redirect::to(&format!("/template?{q}")).into_response()
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: Option<String>,
    name: String,
    version: Option<String>,
    label: Option<String>,
    comment: Option<String>,
    force: Option<String>,
}

/// The buttons of a template's page: activate, rollback, label, unlabel,
/// approve, delete — each the SQL function of the same name, as the role.
async fn action(State(app): State<Shared>, headers: HeaderMap, Path(action): Path<String>, Form(f): Form<ActionForm>) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    if !["activate", "rollback", "label", "unlabel", "approve", "delete"].contains(&action.as_str()) {
        return failure_page(&app, Some(&s), Failure::new(StatusCode::NOT_FOUND, format!("There is no action \"{action}\".")));
    }
    let version: Option<i32> = match f.version.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => return template_page(&app, &s, &f.name, None, Some(Failure::new(StatusCode::UNPROCESSABLE_ENTITY, format!("\"{v}\" is not a version number.")))).await,
        },
    };
    let force = f.force.as_deref() == Some("on");
    let (name, label, comment) = (f.name.clone(), f.label.clone().unwrap_or_default().trim().to_string(), blank_to_none(f.comment.as_deref().unwrap_or("")));
    let act = action.clone();
    let outcome = as_role(&app, &s, move |c| {
        let done = match act.as_str() {
            "activate" => {
                c.execute("SELECT pgprompt.prompt_activate($1, $2, $3)", &[&name, &version, &force])?;
                format!("Version {} is the release.", version.unwrap_or_default())
            }
            "rollback" => {
                let v: i32 = c.query_one("SELECT pgprompt.prompt_rollback($1)", &[&name])?.get(0);
                format!("Rolled back: version {v} is the release again.")
            }
            "label" => {
                c.execute("SELECT pgprompt.prompt_label($1, $2, $3, $4)", &[&name, &version, &label, &force])?;
                format!("Label {label} names version {}.", version.unwrap_or_default())
            }
            "unlabel" => {
                let removed: bool = c.query_one("SELECT pgprompt.prompt_unlabel($1, $2)", &[&name, &label])?.get(0);
                if removed { format!("Label {label} removed.") } else { format!("There was no label {label}.") }
            }
            "approve" => {
                c.execute("SELECT pgprompt.prompt_approve($1, $2, $3)", &[&name, &version, &comment])?;
                format!("You approved version {}.", version.unwrap_or_default())
            }
            // "delete", the last one checked above.
            _ => {
                c.execute("SELECT pgprompt.prompt_delete($1)", &[&name])?;
                String::new()
            }
        };
        Ok(done)
    })
    .await;
    match outcome {
        Ok(_) if action == "delete" => Redirect::to("/templates").into_response(),
        Ok(done) => see_template(&f.name, &done),
        Err(e) => template_page(&app, &s, &f.name, None, Some(e)).await,
    }
}

#[derive(Deserialize)]
struct PreviewRequest {
    #[serde(default)]
    name: String,
    body: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    vars: serde_json::Map<String, Value>,
}

/// Live preview of the editor: the body is saved and rendered inside a
/// transaction that is rolled back, so it is validated exactly as a save
/// would (syntax with line and column, includes, config, limits) and
/// rendered by the extension itself; nothing is kept.
async fn preview(State(app): State<Shared>, headers: HeaderMap, Json(p): Json<PreviewRequest>) -> Response {
    let s = match page_session(&app, &headers) {
        Ok(s) => s,
        Err(_) => return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Your session ended: log in again."}}))).into_response(),
    };
    if let Err(e) = check_csrf(&s, &headers, None) {
        return (e.status, Json(e.json())).into_response();
    }
    let config = match parse_config(&p.config) {
        Ok(c) => c,
        Err(e) => return Json(e.json()).into_response(),
    };
    let name = if p.name.trim().is_empty() { "preview".to_string() } else { p.name.trim().to_string() };
    let kind = if p.kind.is_empty() { "text".to_string() } else { p.kind.clone() };
    let vars = Value::Object(p.vars).to_string();
    let body = p.body;
    let result = as_role(&app, &s, move |c| {
        let mut tx = c.transaction()?;
        let out = (|| -> pgprompt_client::Result<Value> {
            let v: i32 = tx
                .query_one("SELECT pgprompt.prompt_save(name => $1, body => $2, config => $3::text::jsonb, kind => $4)", &[&name, &body, &config, &kind])?
                .get(0);
            let variables: Vec<String> = tx.query_one("SELECT variables FROM pgprompt.prompt_get($1, $2)", &[&name, &v])?.get(0);
            let rendered = if kind == "chat" {
                tx.query_one("SELECT pgprompt.prompt_render_chat($1, $2::text::jsonb, $3)::text", &[&name, &vars, &v])
            } else {
                tx.query_one("SELECT to_jsonb(pgprompt.prompt_render($1, $2::text::jsonb, $3))::text", &[&name, &vars, &v])
            };
            let mut out = json!({"variables": variables, "kind": kind});
            match rendered {
                Ok(row) => out["output"] = serde_json::from_str(&row.get::<_, String>(0)).unwrap_or(Value::Null),
                Err(e) => out["error"] = Failure::from(pgprompt_client::Error::from(e)).json()["error"].clone(),
            }
            Ok(out)
        })();
        tx.rollback()?;
        out
    })
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => Json(e.json()).into_response(),
    }
}
