//! `/auth/v1`: sign-up, sign-in, token refresh, sign-out and "who am I".
//! Shaped like Supabase's GoTrue, so its clients' habits carry over.

use super::{AppState, JsonBody};
use crate::error::ApiError;
use crate::identity::{CallerSource, SignInAttempt};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(sign_up))
        .route("/token", post(token))
        .route("/logout", post(sign_out))
        .route("/user", get(current_user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

async fn sign_up(State(state): State<AppState>, body: JsonBody<Credentials>) -> Result<Response, ApiError> {
    let body = super::parse_json(body, r#"{"email": "...", "password": "..."}"#)?;
    let session = state.identity.sign_up(&body.email, &body.password).await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

#[derive(Deserialize)]
struct GrantType {
    grant_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// `?grant_type=password` with email and password, or
/// `?grant_type=refresh_token` with a refresh token.
async fn token(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(grant): Query<GrantType>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let session = match grant.grant_type.as_deref() {
        Some("password") => {
            let body: Credentials = parse_body(&body, r#"{"email": "...", "password": "..."}"#)?;
            let attempt = SignInAttempt { email: &body.email, password: &body.password, client: Some(client.ip()) };
            state.identity.sign_in(attempt).await?
        }
        Some("refresh_token") => {
            let body: RefreshBody = parse_body(&body, r#"{"refresh_token": "efr_..."}"#)?;
            state.identity.refresh(&body.refresh_token).await?
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "grant_type is {other:?}; use ?grant_type=password or ?grant_type=refresh_token"
            )));
        }
    };
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(session)).into_response())
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("expected a JSON body like {expected}: {e}")))
}

async fn sign_out(State(state): State<AppState>, body: JsonBody<RefreshBody>) -> Result<StatusCode, ApiError> {
    let body = super::parse_json(body, r#"{"refresh_token": "efr_..."}"#)?;
    state.identity.sign_out(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in caller as edgefn sees them now (groups and metadata included).
async fn current_user(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
    let Some(caller) = state.identity.authenticate(authorization).await? else {
        return Err(ApiError::Unauthorized("sign in first: Authorization: Bearer <access token>".into()));
    };
    Ok(Json(match caller.source {
        CallerSource::User => serde_json::to_value(state.identity.user(&caller.id).await?).expect("users serialize"),
        _ => json!({
            "id": caller.id,
            "email": caller.email,
            "role": caller.role.as_str(),
            "groups": caller.groups,
            "metadata": caller.metadata,
        }),
    }))
}
