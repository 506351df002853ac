//! The REST API under `/api/v1`: the seeds' admin endpoints for templates
//! (`/api/v1/admin/prompts/templates...`, plus rollback, labels and
//! approvals), JSON in and out, each call run as the PostgreSQL role its
//! bearer token was issued to (`POST /api/v1/auth/token` with the role's
//! password). Errors are `{"error": {"message", "sqlstate", "explanation"}}`
//! with an HTTP status that follows the SQLSTATE. Browsers cannot write
//! cross-origin: no cookie is accepted here and a foreign `Origin` is refused.

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::listen::ClientAddr;
use super::session::{CookieError, Session};
use super::web::{authenticate, same_origin, Credentials, Failure, Shared};

mod guardrails;
mod insight;
pub mod openapi;
mod templates;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/auth/token", post(token).delete(revoke))
        .merge(templates::routes())
        .merge(guardrails::routes())
        .merge(insight::routes())
        .fallback(|| async { Failure::new(StatusCode::NOT_FOUND, "No such API endpoint: see /api/openapi.json.") })
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.json())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        res
    }
}

pub type Reply = Result<Response, Failure>;

/// The session of a bearer token; writes must not come from another origin.
pub fn caller(app: &Shared, method: &Method, headers: &HeaderMap) -> Result<Session, Failure> {
    if method != Method::GET {
        same_origin(headers)?;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Failure::new(StatusCode::UNAUTHORIZED, "Send a bearer token (Authorization: Bearer ...) from POST /api/v1/auth/token."))?;
    app.sessions.find(token.trim()).map_err(|e| {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            match e {
                CookieError::Expired => "The token expired or was revoked: ask for a new one.",
                CookieError::Forged => "The token is not one this server issued.",
            },
        )
    })
}

/// A JSON body, or a 400 that says what is wrong with it.
pub fn body<T: DeserializeOwned>(b: Result<Json<T>, JsonRejection>) -> Result<T, Failure> {
    b.map(|Json(t)| t).map_err(|e| {
        // Too large stays 413; malformed or the wrong shape is 400.
        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { e.status() } else { StatusCode::BAD_REQUEST };
        Failure::new(status, format!("The request body is not what this endpoint takes: {}", e.body_text()))
    })
}

pub fn ok(v: Value) -> Reply {
    Ok(Json(v).into_response())
}

async fn token(State(app): State<Shared>, ConnectInfo(addr): ConnectInfo<ClientAddr>, headers: HeaderMap, b: Result<Json<Credentials>, JsonRejection>) -> Reply {
    same_origin(&headers)?;
    let creds = body(b)?;
    let privileges = authenticate(&app, addr, &headers, &creds).await?;
    let (session, token) = app.sessions.open(&creds.role, &creds.password, privileges.clone());
    ok(json!({"token": token, "token_type": "Bearer", "role": session.role, "expires_at": session.expires, "privileges": privileges}))
}

async fn revoke(State(app): State<Shared>, method: Method, headers: HeaderMap) -> Reply {
    let s = caller(&app, &method, &headers)?;
    if let Some((role, true)) = app.sessions.close(&s.id) {
        super::db::forget(&app.pools, &role).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The OpenAPI 3.1 document of this API.
async fn openapi() -> Response {
    let mut res = Json(openapi::document()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("max-age=300"));
    res
}
