//! The template pages: the list, a template (versions, labels, approvals,
//! test cases, the buttons), the diff, the editor and its live preview.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{failure_page, render, session_or_login, with};
use crate::serve::queries;
use crate::serve::session::Session;
use crate::serve::web::{as_role, check_csrf, page_session, Failure, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/templates", get(templates))
        .route("/template", get(template))
        .route("/template/diff", get(diff))
        .route("/template/edit", get(edit))
        .route("/template/save", post(save))
        .route("/template/preview", post(preview))
        .route("/template/run-tests", post(run_tests))
        .route("/template/{action}", post(action))
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
    sig: Option<String>,
}

/// A template's page, with an outcome to show (done or failed) and the
/// results of a test run, if one was asked for.
async fn template_page(app: &Shared, s: &Session, name: &str, done: Option<String>, failed: Option<Failure>, tests: Value) -> Response {
    let n = name.to_string();
    let found = as_role(app, s, move |c| {
        let t = queries::template(c, &n)?;
        if t.is_null() {
            return Ok((t, Value::Null, Value::Null));
        }
        Ok((t, queries::version(c, &n, None, None)?, queries::test_cases(c, &n)?))
    })
    .await;
    let status = failed.as_ref().map_or(StatusCode::OK, |f| f.status);
    match found {
        Ok((t, _, _)) if t.is_null() => failure_page(app, Some(s), Failure::new(StatusCode::NOT_FOUND, format!("There is no template \"{name}\"."))),
        Ok((t, release, cases)) => {
            let error = failed.map(|f| json!({"message": f.message, "sqlstate": f.sqlstate, "explanation": f.explanation}));
            let ctx = json!({"t": t, "release": release, "cases": cases, "tests": tests, "done": done, "error": error});
            render(app, "template.html", with(s, ctx), status)
        }
        Err(f) => failure_page(app, Some(s), f),
    }
}

#[derive(Deserialize)]
struct RunTestsForm {
    csrf: Option<String>,
    name: String,
    version: Option<String>,
}

/// Runs the template's test cases on a version (default: the newest);
/// writes nothing, so any role that may read templates may run them.
async fn run_tests(State(app): State<Shared>, headers: HeaderMap, Form(f): Form<RunTestsForm>) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    let version: Option<i32> = f.version.as_deref().and_then(|v| v.trim().parse().ok());
    let name = f.name.clone();
    let run = as_role(&app, &s, move |c| {
        queries::json(
            c,
            "SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]')::text FROM pgprompt.prompt_run_tests($1, $2) r",
            &[&name, &version],
        )
    })
    .await;
    match run {
        Ok(results) => template_page(&app, &s, &f.name, None, None, json!({"version": version, "results": results})).await,
        Err(e) => template_page(&app, &s, &f.name, None, Some(e), Value::Null).await,
    }
}

async fn template(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<TemplateQuery>) -> Response {
    let s = session_or_login!(app, headers);
    let done = super::done(&app, q.done, q.sig);
    template_page(&app, &s, &q.name, done, None, Value::Null).await
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
    // Off the async threads, and bounded: a diff of two long bodies stops
    // refining after a second (the result is still a correct diff).
    let part = |title: &str, x: &str, y: &str| {
        let lines: Vec<Value> = similar::TextDiff::configure()
            .timeout(std::time::Duration::from_secs(1))
            .diff_lines(x, y)
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
    let (from, to) = (a.header.clone(), b.header.clone());
    let parts = tokio::task::spawn_blocking(move || {
        vec![
            part("body", &a.body, &b.body),
            part("kind", &a.kind, &b.kind),
            part("config", &a.config, &b.config),
            part("options", &a.options, &b.options),
            part("input schema", &a.input_schema, &b.input_schema),
        ]
    });
    let parts = match parts.await {
        Ok(p) => p,
        Err(e) => return failure_page(&app, Some(&s), Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    let ctx = json!({"name": q.name, "from": from, "to": to, "from_sel": q.from, "to_sel": q.to, "parts": parts});
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

/// A body as the editor sends it, to save or to preview.
#[derive(Deserialize)]
struct Draft {
    #[serde(default)]
    name: String,
    body: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    config: String,
}

impl Draft {
    /// The kind chosen, `text` when none was.
    fn kind(&self) -> String {
        if self.kind.is_empty() { "text".to_string() } else { self.kind.clone() }
    }
}

#[derive(Deserialize)]
struct SaveForm {
    csrf: Option<String>,
    #[serde(flatten)]
    draft: Draft,
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
    let kind = f.draft.kind();
    let result = match parse_config(&f.draft.config) {
        Err(e) => Err(e),
        Ok(config) => {
            let (name, body, message, kind) = (f.draft.name.trim().to_string(), f.draft.body.clone(), blank_to_none(&f.message), kind.clone());
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
        Ok(v) => super::see(&app, "/template", &[("name", f.draft.name.trim())], &format!("Saved version {v}.")),
        Err(e) => {
            let form = json!({"name": f.draft.name, "body": f.draft.body, "kind": kind, "config": f.draft.config, "message": f.message,
                              "description": f.description, "category": f.category, "is_new": false});
            let error = json!({"message": e.message, "sqlstate": e.sqlstate, "explanation": e.explanation});
            render(&app, "edit.html", with(&s, json!({"form": form, "error": error})), e.status)
        }
    }
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
            Err(_) => return template_page(&app, &s, &f.name, None, Some(Failure::new(StatusCode::UNPROCESSABLE_ENTITY, format!("\"{v}\" is not a version number."))), Value::Null).await,
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
        Ok(done) => super::see(&app, "/template", &[("name", &f.name)], &done),
        Err(e) => template_page(&app, &s, &f.name, None, Some(e), Value::Null).await,
    }
}

#[derive(Deserialize)]
struct PreviewRequest {
    #[serde(flatten)]
    draft: Draft,
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
    let config = match parse_config(&p.draft.config) {
        Ok(c) => c,
        Err(e) => return Json(e.json()).into_response(),
    };
    let name = if p.draft.name.trim().is_empty() { "preview".to_string() } else { p.draft.name.trim().to_string() };
    let kind = p.draft.kind();
    let vars = Value::Object(p.vars).to_string();
    let body = p.draft.body;
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
