//! Admin API for identity: users, groups and admin keys. Mounted inside
//! `routes::admin`, behind its admin-key check.

use super::admin::AdminKeyPrefix;
use super::{AppState, JsonBody, parse_json};
use crate::error::ApiError;
use crate::identity::{NewUser, UserPatch};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/users/{id}/token", post(acting_token))
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{name}", axum::routing::delete(delete_group))
        .route("/groups/{name}/members/{user_id}", put(add_member).delete(remove_member))
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{prefix}", axum::routing::delete(revoke_key))
}

const NEW_USER: &str = r#"{"email": "...", "password": "...", "groups": ["..."], "metadata": {...}, "disabled": false}"#;

async fn create_user(State(state): State<AppState>, body: JsonBody<NewUser>) -> Result<Response, ApiError> {
    let user = state.identity.create_user(parse_json(body, NEW_USER)?).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[derive(Deserialize)]
struct UserQuery {
    email: Option<String>,
}

async fn list_users(
    State(state): State<AppState>,
    query: Result<Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(json!({ "users": state.identity.list_users(query.email.as_deref()).await? })))
}

async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.identity.user(&id).await?).into_response())
}

async fn update_user(State(state): State<AppState>, Path(id): Path<String>, body: JsonBody<UserPatch>) -> Result<Response, ApiError> {
    let patch = parse_json(body, r#"{"email", "password", "groups", "metadata", "disabled"} (any of them)"#)?;
    Ok(Json(state.identity.update_user(&id, patch).await?).into_response())
}

/// A short-lived access token to call functions as this user (the admin
/// interface's test console); its calls are recorded as the user *via* this
/// admin key, and the issue is logged.
async fn acting_token(
    State(state): State<AppState>,
    Extension(admin): Extension<AdminKeyPrefix>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = format!("admin-key:{}", admin.0);
    let token = state.identity.acting_token(&id, &actor).await?;
    tracing::info!(user = %id, admin_key = %admin.0, "admin key issued an access token to act as a user");
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(token)).into_response())
}

async fn delete_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.identity.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
}

async fn create_group(State(state): State<AppState>, body: JsonBody<GroupBody>) -> Result<Response, ApiError> {
    let body = parse_json(body, r#"{"name": "admin"}"#)?;
    let created = state.identity.create_group(&body.name).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"name": body.name}))).into_response())
}

async fn list_groups(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "groups": state.identity.list_groups().await? })))
}

async fn delete_group(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.identity.delete_group(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(State(state): State<AppState>, Path((name, user_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    state.identity.set_membership(&name, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(State(state): State<AppState>, Path((name, user_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    state.identity.set_membership(&name, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    label: String,
}

/// The new key is in this response and nowhere else, ever.
async fn create_key(State(state): State<AppState>, body: JsonBody<KeyBody>) -> Result<Response, ApiError> {
    let body = parse_json(body, r#"{"label": "ci deploys"}"#)?;
    let (key, summary) = state.admin_keys.create(&body.label).await?;
    let mut value = serde_json::to_value(summary).expect("summaries serialize");
    value["key"] = json!(key);
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(value)).into_response())
}

async fn list_keys(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "keys": state.admin_keys.list().await? })))
}

async fn revoke_key(State(state): State<AppState>, Path(prefix): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::to_value(state.admin_keys.revoke(&prefix).await?).expect("summaries serialize")))
}
