//! The settings pages: guardrails (with a scan playground that marks what
//! they find in a text), prices, alert rules with what fires now, and the
//! audit log.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{failure_page, render, session_or_login, with};
use crate::serve::queries;
use crate::serve::session::Session;
use crate::serve::web::{as_role, check_csrf, page_session, Failure, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/guardrails", get(guardrails).post(scan))
        .route("/guardrail/enable", post(enable))
        .route("/prices", get(prices))
        .route("/alerts", get(alerts))
        .route("/audit", get(audit))
}

/// Findings shown on the playground at most (the count says how many there were).
const SHOWN: usize = 2000;

/// `text` cut at every finding's start and end (character offsets, end
/// excluded): each piece with the findings covering it, so overlapping
/// findings mark the text they share. One sweep over the cuts, keeping the
/// findings open at each: linear in the text and the findings (each piece
/// lists at most 8 of those covering it).
pub fn segments(text: &str, findings: &[Value]) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let spans: Vec<(usize, usize, &Value)> = findings
        .iter()
        .take(SHOWN)
        .filter_map(|f| {
            let s = f["start_pos"].as_u64()? as usize;
            let e = f["end_pos"].as_u64()? as usize;
            (s < e && e <= chars.len()).then_some((s, e, f))
        })
        .collect();
    let mut cuts: Vec<usize> = vec![0, chars.len()];
    for (s, e, _) in &spans {
        cuts.extend([*s, *e]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut starts = spans.clone();
    starts.sort_by_key(|(s, _, _)| *s);
    let mut next = 0;
    let mut open: Vec<(usize, usize, &Value)> = Vec::new();
    cuts.windows(2)
        .map(|w| {
            while next < starts.len() && starts[next].0 <= w[0] {
                open.push(starts[next]);
                next += 1;
            }
            open.retain(|(_, e, _)| *e > w[0]);
            let covering: Vec<Value> = open
                .iter()
                .filter(|(_, e, _)| *e >= w[1])
                .take(8)
                .map(|(_, _, f)| json!({"guardrail": f["guardrail"], "entity": f["entity"], "severity": f["severity"], "action": f["action"], "score": f["score"]}))
                .collect();
            json!({"text": chars[w[0]..w[1]].iter().collect::<String>(), "findings": covering})
        })
        .collect()
}

async fn guardrails_page(app: &Shared, s: &Session, playground: Value, status: StatusCode) -> Response {
    match as_role(app, s, queries::guardrails).await {
        Ok(list) => render(app, "guardrails.html", with(s, json!({"guardrails": list, "playground": playground})), status),
        Err(f) => failure_page(app, Some(s), f),
    }
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
    sig: Option<String>,
}

async fn guardrails(State(app): State<Shared>, headers: HeaderMap, Query(d): Query<Done>) -> Response {
    let s = session_or_login!(app, headers);
    guardrails_page(&app, &s, json!({"text": "", "direction": "input", "done": super::done(&app, d.done, d.sig)}), StatusCode::OK).await
}

#[derive(Deserialize)]
struct ScanForm {
    csrf: Option<String>,
    text: String,
    #[serde(default)]
    direction: String,
}

/// The playground: what the enabled guardrails find in a text (writes nothing).
async fn scan(State(app): State<Shared>, headers: HeaderMap, Form(f): Form<ScanForm>) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    let direction = if f.direction.is_empty() { "input".to_string() } else { f.direction.clone() };
    let (text, dir) = (f.text.clone(), direction.clone());
    let (found, status, error) = match as_role(&app, &s, move |c| queries::scan(c, &text, &dir)).await {
        Ok(found) => (found, StatusCode::OK, Value::Null),
        Err(e) => (json!([]), e.status, json!({"message": e.message, "sqlstate": e.sqlstate, "explanation": e.explanation})),
    };
    let list = found.as_array().cloned().unwrap_or_default();
    // Off the async threads: a megabyte of text with many findings is work.
    let (text, l) = (f.text.clone(), list.clone());
    let pieces = tokio::task::spawn_blocking(move || segments(&text, &l)).await.unwrap_or_default();
    let shown: Vec<Value> = list.iter().take(SHOWN).cloned().collect();
    let playground = json!({"text": f.text, "direction": direction, "findings": shown, "found": list.len(),
                            "segments": pieces, "scanned": error.is_null(), "error": error});
    guardrails_page(&app, &s, playground, status).await
}

#[derive(Deserialize)]
struct EnableForm {
    csrf: Option<String>,
    name: String,
    enabled: String,
}

/// Turns a guardrail on or off (an UPDATE as the role: administrators only).
async fn enable(State(app): State<Shared>, headers: HeaderMap, Form(f): Form<EnableForm>) -> Response {
    let s = session_or_login!(app, headers);
    if let Err(e) = check_csrf(&s, &headers, f.csrf.as_deref()) {
        return failure_page(&app, Some(&s), e);
    }
    let on = f.enabled == "true";
    let name = f.name.clone();
    match as_role(&app, &s, move |c| Ok(c.execute("UPDATE pgprompt.prompt_guardrails SET enabled = $2 WHERE name = $1", &[&name, &on])?)).await {
        Ok(0) => failure_page(&app, Some(&s), Failure::new(StatusCode::NOT_FOUND, format!("There is no guardrail \"{}\".", f.name))),
        Ok(_) => {
            let done = format!("{} is {}.", f.name, if on { "enabled" } else { "disabled" });
            super::see(&app, "/guardrails", &[], &done)
        }
        Err(e) => failure_page(&app, Some(&s), e),
    }
}

async fn prices(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let s = session_or_login!(app, headers);
    match as_role(&app, &s, queries::prices).await {
        Ok(list) => render(&app, "prices.html", with(&s, json!({"prices": list})), StatusCode::OK),
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

async fn alerts(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let s = session_or_login!(app, headers);
    match as_role(&app, &s, queries::alerts).await {
        Ok(a) => render(&app, "alerts.html", with(&s, a), StatusCode::OK),
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    object: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    limit: Option<i64>,
}

async fn audit(State(app): State<Shared>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    let s = match page_session(&app, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    let (object, actor, action) = (q.object.clone(), q.actor.clone(), q.action.clone());
    match as_role(&app, &s, move |c| queries::audit(c, &object, &actor, &action, limit)).await {
        Ok(entries) => {
            let ctx = json!({"entries": entries, "object": q.object, "actor": q.actor, "action": q.action, "limit": limit});
            render(&app, "audit.html", with(&s, ctx), StatusCode::OK)
        }
        Err(f) => failure_page(&app, Some(&s), f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_findings_cut_the_text_where_they_start_and_end() {
        let f = |s: u64, e: u64, g: &str| json!({"start_pos": s, "end_pos": e, "guardrail": g, "entity": "X"});
        // "héllo wörld": offsets are characters, not bytes.
        let segs = segments("héllo wörld", &[f(0, 5, "a"), f(3, 9, "b"), f(20, 30, "out of range")]);
        let texts: Vec<&str> = segs.iter().map(|s| s["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["hél", "lo", " wör", "ld"]);
        let marks: Vec<usize> = segs.iter().map(|s| s["findings"].as_array().unwrap().len()).collect();
        assert_eq!(marks, [1, 2, 1, 0]);
        assert_eq!(segments("", &[]).len(), 0);
        // Many findings: one sweep, not one pass per piece.
        let text = "a@b.co ".repeat(20_000);
        let many: Vec<Value> = (0..20_000u64).map(|i| f(i * 7, i * 7 + 6, "pii")).collect();
        let started = std::time::Instant::now();
        let segs = segments(&text, &many);
        assert_eq!(segs.len(), 2 * SHOWN, "each shown finding, the gaps between them and the tail");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
