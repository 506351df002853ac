//! The template endpoints: `/api/v1/admin/prompts/templates...` (the
//! seeds' create, list, get, update, activate, delete; plus rollback,
//! labels and approvals) and `/api/v1/admin/prompts/test`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, caller, ok, Reply};
use crate::serve::queries;
use crate::serve::session::Session;
use crate::serve::web::{as_role, Failure, Shared};

pub fn routes() -> Router<Shared> {
    let t = "/v1/admin/prompts/templates";
    Router::new()
        .route(t, get(list).post(create))
        .route(&format!("{t}/{{name}}"), get(show).put(update).delete(delete))
        .route(&format!("{t}/{{name}}/activate"), post(activate))
        .route(&format!("{t}/{{name}}/rollback"), post(rollback))
        .route(&format!("{t}/{{name}}/labels"), post(label))
        .route(&format!("{t}/{{name}}/labels/{{label}}"), axum::routing::delete(unlabel))
        .route(&format!("{t}/{{name}}/approve"), post(approve))
        .route("/v1/admin/prompts/test", post(test_render))
}

async fn list(State(app): State<Shared>, method: Method, headers: HeaderMap, Query(q): Query<queries::TemplateFilter>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    ok(as_role(&app, &s, move |c| queries::templates(c, &q)).await?)
}

#[derive(Deserialize)]
struct ShowQuery {
    version: Option<i32>,
    label: Option<String>,
}

/// A template with its versions and labels, and the body of the release
/// (or of `?version=` / `?label=`).
async fn show(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, Query(q): Query<ShowQuery>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    let (mut t, v) = as_role(&app, &s, move |c| {
        let t = queries::template(c, &n)?;
        if t.is_null() {
            return Ok((t, Value::Null));
        }
        Ok((t, queries::version(c, &n, q.version, q.label.as_deref())?))
    })
    .await?;
    if t.is_null() {
        return Err(Failure::new(StatusCode::NOT_FOUND, format!("There is no template \"{name}\".")));
    }
    t["selected"] = v;
    ok(t)
}

/// A version to save (create: with the name; update: the name is the path's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionIn {
    name: Option<String>,
    body: String,
    kind: Option<String>,
    config: Option<Value>,
    options: Option<Value>,
    input_schema: Option<Value>,
    message: Option<String>,
    description: Option<String>,
    category: Option<String>,
}

async fn save_version(app: &Shared, s: &Session, name: String, v: VersionIn) -> Result<i32, Failure> {
    let js = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    let (config, options, schema) = (js(&v.config), js(&v.options), js(&v.input_schema));
    let kind = v.kind.unwrap_or_else(|| "text".into());
    as_role(app, s, move |c| {
        Ok(c.query_one(
            "SELECT pgprompt.prompt_save(name => $1, body => $2, config => $3::text::jsonb, message => $4, kind => $5,
                                          description => $6, category => $7, options => $8::text::jsonb, input_schema => $9::text::jsonb)",
            &[&name, &v.body, &config, &v.message, &kind, &v.description, &v.category, &options, &schema],
        )?
        .get(0))
    })
    .await
}

async fn create(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<VersionIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let v = body(b)?;
    let name = v.name.clone().ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "A new template needs a \"name\"."))?;
    let version = save_version(&app, &s, name.clone(), v).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name, "version": version}))).into_response())
}

/// A new version of the template (versions are immutable: an update appends).
async fn update(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<VersionIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let v = body(b)?;
    if v.name.as_deref().is_some_and(|n| n != name) {
        return Err(Failure::new(StatusCode::BAD_REQUEST, "The body's \"name\" differs from the path's: templates are not renamed."));
    }
    let version = save_version(&app, &s, name.clone(), v).await?;
    ok(json!({"name": name, "version": version}))
}

async fn delete(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_delete($1)", &[&name])?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Release {
    version: Option<i32>,
    label: Option<String>,
    #[serde(default)]
    force: bool,
    comment: Option<String>,
}

async fn activate(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<Release>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let r = body(b)?;
    let version = r.version.ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "Say which \"version\" to activate."))?;
    let n = name.clone();
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_activate($1, $2, $3)", &[&n, &version, &r.force])?)).await?;
    ok(json!({"name": name, "active_version": version}))
}

async fn rollback(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    let v: i32 = as_role(&app, &s, move |c| Ok(c.query_one("SELECT pgprompt.prompt_rollback($1)", &[&n])?.get(0))).await?;
    ok(json!({"name": name, "active_version": v}))
}

async fn label(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<Release>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let r = body(b)?;
    let (Some(version), Some(label)) = (r.version, r.label.clone()) else {
        return Err(Failure::new(StatusCode::BAD_REQUEST, "A label needs \"label\" and \"version\"."));
    };
    let n = name.clone();
    let l = label.clone();
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_label($1, $2, $3, $4)", &[&n, &version, &l, &r.force])?)).await?;
    ok(json!({"name": name, "label": label, "version": version}))
}

async fn unlabel(State(app): State<Shared>, method: Method, headers: HeaderMap, Path((name, label)): Path<(String, String)>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let removed: bool = as_role(&app, &s, move |c| Ok(c.query_one("SELECT pgprompt.prompt_unlabel($1, $2)", &[&name, &label])?.get(0))).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Failure::new(StatusCode::NOT_FOUND, "The template has no such label."))
    }
}

async fn approve(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<Release>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let r = body(b)?;
    let version = r.version.ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "Say which \"version\" you approve."))?;
    let n = name.clone();
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_approve($1, $2, $3)", &[&n, &version, &r.comment])?)).await?;
    ok(json!({"name": name, "version": version, "approved_by": s.role}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRender {
    template: Option<String>,
    body: Option<String>,
    #[serde(default)]
    vars: serde_json::Map<String, Value>,
    version: Option<i32>,
    label: Option<String>,
    options: Option<Value>,
}

/// Renders a stored template (`template`, optionally `version` or
/// `label`) or a body not stored (`body`, `options`), as the role.
async fn test_render(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<TestRender>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let t = body(b)?;
    let vars = Value::Object(t.vars).to_string();
    let out = match (t.template, t.body) {
        (Some(name), None) => {
            as_role(&app, &s, move |c| {
                let kind: String = c.query_one("SELECT kind FROM pgprompt.prompt_get($1, $2, $3)", &[&name, &t.version, &t.label])?.get(0);
                let sql = if kind == "chat" {
                    "SELECT pgprompt.prompt_render_chat($1, $2::text::jsonb, $3, $4)::text"
                } else {
                    "SELECT to_jsonb(pgprompt.prompt_render($1, $2::text::jsonb, $3, $4))::text"
                };
                queries::json(c, sql, &[&name, &vars, &t.version, &t.label])
            })
            .await?
        }
        (None, Some(text)) => {
            let options = t.options.map(|o| o.to_string()).unwrap_or_else(|| "{}".into());
            as_role(&app, &s, move |c| {
                queries::json(c, "SELECT to_jsonb(pgprompt.prompt_render_text($1, $2::text::jsonb, $3::text::jsonb))::text", &[&text, &vars, &options])
            })
            .await?
        }
        _ => return Err(Failure::new(StatusCode::BAD_REQUEST, "Give either \"template\" or \"body\".")),
    };
    ok(json!({"output": out}))
}

