//! Analytics, experiments and scores: `/api/v1/admin/prompts/analytics`
//! (and per template), `/api/v1/admin/prompts/experiments...` (the seeds'
//! create, list, get, start, stop; plus results and promote) and
//! `/api/v1/admin/prompts/scores`.

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
use crate::serve::web::{as_role, Failure, Shared};

pub fn routes() -> Router<Shared> {
    let a = "/v1/admin/prompts/analytics";
    let e = "/v1/admin/prompts/experiments";
    Router::new()
        .route(a, get(analytics))
        .route(&format!("{a}/{{template}}"), get(template_analytics))
        .route(e, get(experiments).post(create_experiment))
        .route(&format!("{e}/{{name}}"), get(experiment))
        .route(&format!("{e}/{{name}}/results"), get(results))
        .route(&format!("{e}/{{name}}/start"), post(start))
        .route(&format!("{e}/{{name}}/stop"), post(stop))
        .route(&format!("{e}/{{name}}/promote"), post(promote))
        .route("/v1/admin/prompts/scores", post(score))
}

#[derive(Deserialize)]
struct Days {
    days: Option<i32>,
}

/// Per day (UTC) costs by template, calls, errors and latency quantiles,
/// and the 30-day performance per template version.
async fn analytics_of(app: &Shared, method: &Method, headers: &HeaderMap, days: Option<i32>, template: String) -> Reply {
    let s = caller(app, method, headers)?;
    let days = days.unwrap_or(30).clamp(1, 366);
    let v = as_role(app, &s, move |c| {
        let mut a = queries::analytics(c, days, &template)?;
        a["performance"] = queries::json(
            c,
            "SELECT coalesce(jsonb_agg(p ORDER BY p.template, p.version), '[]')::text
               FROM pgprompt.v_template_performance p WHERE $1 = '' OR p.template = $1",
            &[&template],
        )?;
        Ok(a)
    })
    .await?;
    ok(v)
}

async fn analytics(State(app): State<Shared>, method: Method, headers: HeaderMap, Query(d): Query<Days>) -> Reply {
    analytics_of(&app, &method, &headers, d.days, String::new()).await
}

async fn template_analytics(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(t): Path<String>, Query(d): Query<Days>) -> Reply {
    analytics_of(&app, &method, &headers, d.days, t).await
}

async fn experiments(State(app): State<Shared>, method: Method, headers: HeaderMap) -> Reply {
    let s = caller(&app, &method, &headers)?;
    ok(as_role(&app, &s, queries::experiments).await?)
}

async fn load(app: &Shared, method: &Method, headers: &HeaderMap, name: &str) -> Result<Value, Failure> {
    let s = caller(app, method, headers)?;
    crate::serve::web::experiment(app, &s, name).await
}

async fn experiment(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    ok(load(&app, &method, &headers, &name).await?)
}

async fn results(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let x = load(&app, &method, &headers, &name).await?;
    ok(json!({"experiment": name, "results": x["results"], "metrics": x["metrics"]}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentIn {
    name: String,
    template: String,
    variants: Value,
    control: Option<String>,
    salt: Option<String>,
    min_sample_size: Option<i32>,
    significance_level: Option<f64>,
    description: Option<String>,
    primary_metric: Option<String>,
    guardrail_metrics: Option<Vec<String>>,
}

async fn create_experiment(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<ExperimentIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let x = body(b)?;
    let variants = x.variants.to_string();
    let name = x.name.clone();
    let id: i64 = as_role(&app, &s, move |c| {
        Ok(c.query_one(
            "SELECT pgprompt.prompt_experiment_create(name => $1::text, template => $2::text, variants => $3::text::jsonb,
                     control => $4::text, salt => $5::text, min_sample_size => coalesce($6::int, 1000),
                     significance_level => coalesce($7::float8::numeric, 0.05), description => $8::text,
                     primary_metric => coalesce($9::text, 'success_rate'), guardrail_metrics => coalesce($10::text[], '{}'))",
            &[&x.name, &x.template, &variants, &x.control, &x.salt, &x.min_sample_size, &x.significance_level, &x.description, &x.primary_metric, &x.guardrail_metrics],
        )?
        .get(0))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"name": name, "id": id, "status": "draft"}))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    force: bool,
    variant: Option<String>,
    version: Option<i32>,
}

/// An optional JSON body (none, or empty, is the defaults).
fn optional<T: Default + serde::de::DeserializeOwned>(b: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    match b {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

async fn start(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<Step>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let step = optional(b)?;
    let n = name.clone();
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_experiment_start($1, $2)", &[&n, &step.force])?)).await?;
    ok(json!({"name": name, "status": "running"}))
}

async fn stop(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let n = name.clone();
    as_role(&app, &s, move |c| Ok(c.execute("SELECT pgprompt.prompt_experiment_stop($1)", &[&n])?)).await?;
    ok(json!({"name": name, "status": "stopped"}))
}

async fn promote(State(app): State<Shared>, method: Method, headers: HeaderMap, Path(name): Path<String>, b: Result<Json<Step>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let step = optional(b)?;
    let n = name.clone();
    let v: i32 = as_role(&app, &s, move |c| {
        Ok(c.query_one("SELECT pgprompt.prompt_experiment_promote($1, $2, $3, $4)", &[&n, &step.variant, &step.version, &step.force])?.get(0))
    })
    .await?;
    ok(json!({"name": name, "status": "concluded", "active_version": v}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreIn {
    execution: Option<i64>,
    trace_id: Option<String>,
    name: String,
    value: Value,
    comment: Option<String>,
    source: Option<String>,
}

/// Scores a logged call (`execution`) or a trace (`trace_id`): a number, a
/// boolean or a category, as the score was declared.
async fn score(State(app): State<Shared>, method: Method, headers: HeaderMap, b: Result<Json<ScoreIn>, JsonRejection>) -> Reply {
    let s = caller(&app, &method, &headers)?;
    let sc = body(b)?;
    let value = match &sc.value {
        Value::String(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(Failure::new(StatusCode::BAD_REQUEST, "\"value\" is a number, a boolean or a category (a string).")),
    };
    let source = sc.source.clone().unwrap_or_else(|| "api".into());
    let id: i64 = match (sc.execution, sc.trace_id.clone()) {
        (Some(e), None) => {
            as_role(&app, &s, move |c| {
                Ok(c.query_one("SELECT pgprompt.prompt_score($1, $2, $3::text, $4, $5)", &[&e, &sc.name, &value, &sc.comment, &source])?.get(0))
            })
            .await?
        }
        (None, Some(t)) => {
            as_role(&app, &s, move |c| {
                Ok(c.query_one("SELECT pgprompt.prompt_score_trace($1, $2, $3::text, $4, $5)", &[&t, &sc.name, &value, &sc.comment, &source])?.get(0))
            })
            .await?
        }
        _ => return Err(Failure::new(StatusCode::BAD_REQUEST, "Give either \"execution\" or \"trace_id\".")),
    };
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}
