//! The guardrail endpoints: `/api/v1/admin/prompts/guardrails...` (the
//! seeds' create, list, get, update, activate, delete; plus deactivate and
//! a scan). Guardrails are rows of `prompt_guardrails`, checked by its
//! triggers (an invalid definition is `22023`, deleting a built-in one
//! `55000`), written as the token's role.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, caller, ok, Reply};
use crate::serve::queries;
use crate::serve::web::{as_role, Failure, Shared};

pub fn routes() -> Router<Shared> {
    let g = "/v1/admin/prompts/guardrails";
    Router::new()
        .route(g, get(list).post(create))
        .route(&format!("{g}/scan"), post(scan))
        .route(&format!("{g}/{{name}}"), get(show).put(update).delete(delete))
        .route(&format!("{g}/{{name}}/activate"), post(|s, m, h, p| enable(s, m, h, p, true)))
        .route(&format!("{g}/{{name}}/deactivate"), post(|s, m, h, p| enable(s, m, h, p, false)))
}

/// A guardrail's fields; on update, those absent stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardrailIn {
    name: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
    action: Option<String>,
    direction: Option<String>,
    config: Option<Value>,
    description: Option<String>,
    enabled: Option<bool>,
}

fn not_found(name: &str) -> Failure {
    Failure::new(StatusCode::NOT_FOUND, format!("There is no guardrail \"{name}\"."))
}

async fn list(State(app): State<Shared>, method: Method, headers: HeaderMap) -> Reply {
    let s = caller(&app, &method, &headers)?;
    ok(as_role(&app, &s, queries::guardrails).await?)
}

async fn show(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    let g = as_role(&app, &s, move |c| {
        queries::json(c, "SELECT (to_jsonb(g) - 'id')::text FROM pgprompt.prompt_guardrails g WHERE g.name = $1", &[&n])
    })
    .await?;
    if g.is_null() {
        return Err(not_found(&name));
    }
    ok(g)
}

async fn create(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<GuardrailIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let g = body(b)?;
    let (Some(name), Some(kind)) = (g.name.clone(), g.kind.clone()) else {
        return Err(Failure::new(StatusCode::BAD_REQUEST, "A new guardrail needs \"name\" and \"kind\"."));
    };
    let config = g.config.as_ref().map(Value::to_string);
    let n = name.clone();
    as_role(&app, &s, move |c| {
        Ok(c.execute(
            "INSERT INTO pgprompt.prompt_guardrails (name, kind, severity, action, direction, config, description, enabled)
             VALUES ($1, $2, coalesce($3, 'medium'), coalesce($4, 'log'), coalesce($5, 'both'),
                     coalesce($6::text::jsonb, '{}'), $7, coalesce($8, true))",
            &[&n, &kind, &g.severity, &g.action, &g.direction, &config, &g.description, &g.enabled],
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name}))).into_response())
}

async fn update(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<GuardrailIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let g = body(b)?;
    if g.name.as_deref().is_some_and(|n| n != name) {
        return Err(Failure::new(StatusCode::BAD_REQUEST, "The body's \"name\" differs from the path's: guardrails are not renamed."));
    }
    let config = g.config.as_ref().map(Value::to_string);
    let n = name.clone();
    let changed = as_role(&app, &s, move |c| {
        Ok(c.execute(
            "UPDATE pgprompt.prompt_guardrails
                SET kind = coalesce($2, kind), severity = coalesce($3, severity), action = coalesce($4, action),
                    direction = coalesce($5, direction), config = coalesce($6::text::jsonb, config),
                    description = coalesce($7, description), enabled = coalesce($8, enabled)
              WHERE name = $1",
            &[&n, &g.kind, &g.severity, &g.action, &g.direction, &config, &g.description, &g.enabled],
        )?)
    })
    .await?;
    if changed == 0 {
        return Err(not_found(&name));
    }
    ok(json!({"name": name}))
}

async fn enable(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, on: bool) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    let changed = as_role(&app, &s, move |c| Ok(c.execute("UPDATE pgprompt.prompt_guardrails SET enabled = $2 WHERE name = $1", &[&n, &on])?)).await?;
    if changed == 0 {
        return Err(not_found(&name));
    }
    ok(json!({"name": name, "enabled": on}))
}

async fn delete(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    let gone = as_role(&app, &s, move |c| Ok(c.execute("DELETE FROM pgprompt.prompt_guardrails WHERE name = $1", &[&n])?)).await?;
    if gone == 0 {
        return Err(not_found(&name));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanIn {
    text: String,
    direction: Option<String>,
}

/// What the enabled guardrails find in a text (`prompt_guard_scan`; writes nothing).
async fn scan(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<ScanIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let r = body(b)?;
    let direction = r.direction.unwrap_or_else(|| "input".into());
    ok(json!({"findings": as_role(&app, &s, move |c| queries::scan(c, &r.text, &direction)).await?}))
}
