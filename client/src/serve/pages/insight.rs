//! What the statistics say: the analytics page (cost per day by template,
//! calls and error rate, latency p50/p95 over time) and the experiments
//! (results per variant, each metric with its interval, the primary
//! metric's evolution), each chart with its CSV.

use std::collections::BTreeMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{cell, csv, failure_page, render, session_or_login, with};
use crate::serve::charts::{self, Interval, Series};
use crate::serve::queries;
use crate::serve::web::{as_role, check_csrf, page_session, Failure, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/analytics", get(analytics))
        .route("/analytics/costs.csv", get(costs_csv))
        .route("/analytics/daily.csv", get(daily_csv))
        .route("/experiments", get(experiments))
        .route("/experiment", get(experiment))
        .route("/experiment/metrics.csv", get(metrics_csv))
        .route("/experiment/evolution.csv", get(evolution_csv))
        .route("/experiment/{action}", post(experiment_action))
}

#[derive(Deserialize)]
struct Range {
    days: Option<i32>,
    #[serde(default)]
    template: String,
}

impl Range {
    /// 1 to 366 days, 30 by default.
    fn days(&self) -> i32 {
        self.days.unwrap_or(30).clamp(1, 366)
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// One value per day from rows keyed by `day`.
fn per_day(days: &[String], rows: &[Value], field: &str) -> Vec<Option<f64>> {
    let by_day: BTreeMap<&str, &Value> = rows.iter().filter_map(|r| Some((r["day"].as_str()?, r))).collect();
    days.iter().map(|d| by_day.get(d.as_str()).and_then(|r| num(&r[field]))).collect()
}

async fn analytics(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<Range>) -> Response {
    let s = session_or_login!(app, headers);
    let (days, template) = (q.days(), q.template.clone());
    let a = match as_role(&app, &s, move |c| queries::analytics(c, days, &template)).await {
        Ok(a) => a,
        Err(f) => return failure_page(&app, Some(&s), f),
    };
    let xs = strings(&a["days"]);
    let short: Vec<String> = xs.iter().map(|d| d.get(5..).unwrap_or(d).to_string()).collect();
    let costs = a["costs"].as_array().cloned().unwrap_or_default();
    let mut by_template: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in &costs {
        by_template.entry(r["template"].as_str().unwrap_or("").to_string()).or_default().push(r.clone());
    }
    let cost_series: Vec<Series> = by_template.iter().map(|(t, rows)| Series { name: t.clone(), values: per_day(&xs, rows, "cost_usd") }).collect();
    let daily = a["daily"].as_array().cloned().unwrap_or_default();
    let calls = vec![Series { name: "calls".into(), values: per_day(&xs, &daily, "calls") }, Series { name: "errors".into(), values: per_day(&xs, &daily, "errors") }];
    let rate = vec![Series { name: "error rate".into(), values: per_day(&xs, &daily, "error_rate") }];
    let latency = vec![Series { name: "p50".into(), values: per_day(&xs, &daily, "p50_ms") }, Series { name: "p95".into(), values: per_day(&xs, &daily, "p95_ms") }];
    let ctx = json!({
        "days": days, "template": q.template, "templates": a["templates"],
        "charts": [
            {"id": "costs", "title": "Cost per day by template (USD)", "svg": charts::stacked_bars("Cost per day by template", &short, &cost_series, ""), "csv": "costs.csv"},
            {"id": "calls", "title": "Calls and errors per day", "svg": charts::lines("Calls and errors per day", &short, &calls, ""), "csv": "daily.csv"},
            {"id": "error-rate", "title": "Error rate per day", "svg": charts::lines("Error rate per day", &short, &rate, ""), "csv": "daily.csv"},
            {"id": "latency", "title": "Latency p50 and p95 per day (ms)", "svg": charts::lines("Latency p50 and p95 per day", &short, &latency, " ms"), "csv": "daily.csv"},
        ],
        "total_cost": costs.iter().filter_map(|r| num(&r["cost_usd"])).sum::<f64>(),
        "total_calls": daily.iter().filter_map(|r| num(&r["calls"])).sum::<f64>(),
    });
    render(&app, "analytics.html", with(&s, ctx), StatusCode::OK)
}

async fn analytics_rows(app: &Shared, headers: &HeaderMap, q: &Range) -> Result<Value, Response> {
    let s = page_session(app, headers)?;
    let (days, template) = (q.days(), q.template.clone());
    as_role(app, &s, move |c| queries::analytics(c, days, &template)).await.map_err(|f| failure_page(app, Some(&s), f))
}

async fn costs_csv(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<Range>) -> Response {
    match analytics_rows(&app, &headers, &q).await {
        Ok(a) => {
            let rows: Vec<Vec<String>> = a["costs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| ["day", "template", "executions", "cost_usd", "unpriced_executions"].iter().map(|k| cell(&r[*k])).collect())
                .collect();
            csv("costs.csv", &["day", "template", "executions", "cost_usd", "unpriced_executions"], &rows)
        }
        Err(r) => r,
    }
}

async fn daily_csv(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<Range>) -> Response {
    const COLUMNS: [&str; 6] = ["day", "calls", "errors", "error_rate", "p50_ms", "p95_ms"];
    match analytics_rows(&app, &headers, &q).await {
        Ok(a) => {
            let rows: Vec<Vec<String>> = a["daily"].as_array().into_iter().flatten().map(|r| COLUMNS.iter().map(|k| cell(&r[*k])).collect()).collect();
            csv("daily.csv", &COLUMNS, &rows)
        }
        Err(r) => r,
    }
}

async fn experiments(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let s = session_or_login!(app, headers);
    match as_role(&app, &s, queries::experiments).await {
        Ok(list) => render(&app, "experiments.html", with(&s, json!({"experiments": list})), StatusCode::OK),
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

#[derive(Deserialize)]
struct ExperimentQuery {
    name: String,
    done: Option<String>,
    sig: Option<String>,
}

async fn load_experiment(app: &Shared, headers: &HeaderMap, name: &str) -> Result<(crate::serve::session::Session, Value), Response> {
    let s = page_session(app, headers)?;
    match crate::serve::web::experiment(app, &s, name).await {
        Ok(v) => Ok((s, v)),
        Err(f) => Err(failure_page(app, Some(&s), f)),
    }
}

async fn experiment(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<ExperimentQuery>) -> Response {
    let (s, x) = match load_experiment(&app, &headers, &q.name).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Per metric, each variant's value with its interval.
    let mut metric_charts = Vec::new();
    let metrics = x["metrics"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = metrics.iter().filter_map(|m| m["metric"].as_str().map(str::to_string)).collect();
    names.dedup();
    for metric in names {
        let rows: Vec<Interval> = metrics
            .iter()
            .filter(|m| m["metric"] == metric.as_str())
            .filter_map(|m| Some(Interval { name: m["variant"].as_str()?.to_string(), value: num(&m["value"])?, low: num(&m["ci_low"])?, high: num(&m["ci_high"])? }))
            .collect();
        if !rows.is_empty() {
            metric_charts.push(json!({"metric": metric, "svg": charts::intervals(&metric, &rows, "")}));
        }
    }
    // The success rate's evolution per variant (cumulative, by day).
    let evolution = x["evolution"].as_array().cloned().unwrap_or_default();
    let mut days: Vec<String> = evolution.iter().filter_map(|e| e["day"].as_str().map(str::to_string)).collect();
    days.sort();
    days.dedup();
    let mut by_variant: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &evolution {
        by_variant.entry(e["variant"].as_str().unwrap_or("").to_string()).or_default().push(e.clone());
    }
    let series: Vec<Series> = by_variant.iter().map(|(v, rows)| Series { name: v.clone(), values: per_day(&days, rows, "value") }).collect();
    let short: Vec<String> = days.iter().map(|d| d.get(5..).unwrap_or(d).to_string()).collect();
    let metric = x["evolution_metric"].as_str().unwrap_or("success_rate").to_string();
    let evolution_svg = (!days.is_empty()).then(|| charts::lines(&format!("{metric} over time (calls so far)"), &short, &series, ""));
    let ctx = json!({"x": x, "metric_charts": metric_charts, "evolution_svg": evolution_svg, "evolution_metric": metric, "done": super::done(&app, q.done, q.sig)});
    render(&app, "experiment.html", with(&s, ctx), StatusCode::OK)
}

async fn metrics_csv(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<ExperimentQuery>) -> Response {
    const COLUMNS: [&str; 12] = ["metric", "variant", "version", "is_control", "n", "value", "ci_low", "ci_high", "diff", "p_value", "significant", "verdict"];
    match load_experiment(&app, &headers, &q.name).await {
        Ok((_, x)) => {
            let rows: Vec<Vec<String>> = x["metrics"].as_array().into_iter().flatten().map(|r| COLUMNS.iter().map(|k| cell(&r[*k])).collect()).collect();
            csv("metrics.csv", &COLUMNS, &rows)
        }
        Err(r) => r,
    }
}

async fn evolution_csv(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<ExperimentQuery>) -> Response {
    const COLUMNS: [&str; 6] = ["day", "variant", "n", "value", "ci_low", "ci_high"];
    match load_experiment(&app, &headers, &q.name).await {
        Ok((_, x)) => {
            let rows: Vec<Vec<String>> = x["evolution"].as_array().into_iter().flatten().map(|r| COLUMNS.iter().map(|k| cell(&r[*k])).collect()).collect();
            csv("evolution.csv", &COLUMNS, &rows)
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ExperimentForm {
    csrf: Option<String>,
    name: String,
}

/// Start and stop, as the role (`prompt_experiment_start` / `_stop`).
async fn experiment_action(
    State(app): State<Shared>,
    headers: HeaderMap,
    axum::extract::Path(action): axum::extract::Path<String>,
    Form(f): Form<ExperimentForm>,
) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    let sql = match action.as_str() {
        "start" => "SELECT pgprompt.prompt_experiment_start($1)",
        "stop" => "SELECT pgprompt.prompt_experiment_stop($1)",
        _ => return failure_page(&app, Some(&s), Failure::new(StatusCode::NOT_FOUND, format!("There is no action \"{action}\"."))),
    };
    let name = f.name.clone();
    match as_role(&app, &s, move |c| Ok(c.execute(sql, &[&name])?)).await {
        Ok(_) => {
            let done = if action == "start" { "Started." } else { "Stopped: everyone gets the active version." };
            super::see(&app, "/experiment", &[("name", &f.name)], done)
        }
        Err(e) => failure_page(&app, Some(&s), e),
    }
}
