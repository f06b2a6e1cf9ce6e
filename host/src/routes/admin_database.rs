//! Admin API for the application database: app tables, their schema
//! changes and row-level-security policies. Mounted inside `routes::admin`,
//! behind its admin-key check.

use super::admin::AdminKeyPrefix;
use super::{AppState, JsonBody, parse_json};
use crate::database::PoliciesSpec;
use crate::database::schema::{AlterSpec, TableSpec};
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tables", get(list_tables).post(create_table))
        .route("/tables/{name}", get(get_table).patch(alter_table).delete(drop_table))
        .route("/tables/{name}/policies", put(set_policies))
        .route("/tables/{name}/changes", get(table_changes))
        .route("/database/changes", get(all_changes))
}

const NEW_TABLE: &str = r#"{"name": "orders", "columns": [{"name": "id", "type": "uuid", "primary_key": true, "default": "gen_random_uuid()"}, ...], "indexes": [...]}"#;
const ALTER: &str = r#"{"add_columns": [...], "drop_columns": ["..."], "add_indexes": [...], "drop_indexes": ["..."]}"#;
const POLICIES: &str =
    r#"{"rls_enabled": true, "policies": [{"name": "own rows", "operation": "select", "using": "owner_id = auth.uid()"}]}"#;

async fn list_tables(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let tables = state.database.list().await?;
    Ok(Json(json!({ "tables": tables.iter().map(|t| t.to_json()).collect::<Vec<_>>() })))
}

async fn create_table(
    State(state): State<AppState>,
    Extension(admin): Extension<AdminKeyPrefix>,
    body: JsonBody<TableSpec>,
) -> Result<Response, ApiError> {
    let table = state.database.create_table(parse_json(body, NEW_TABLE)?, &admin.0).await?;
    Ok((StatusCode::CREATED, Json(table.to_json())).into_response())
}

async fn get_table(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.database.get(&name).await?.to_json()).into_response())
}

async fn alter_table(
    State(state): State<AppState>,
    Extension(admin): Extension<AdminKeyPrefix>,
    Path(name): Path<String>,
    body: JsonBody<AlterSpec>,
) -> Result<Response, ApiError> {
    let table = state.database.alter_table(&name, parse_json(body, ALTER)?, &admin.0).await?;
    Ok(Json(table.to_json()).into_response())
}

async fn drop_table(
    State(state): State<AppState>,
    Extension(admin): Extension<AdminKeyPrefix>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.database.drop_table(&name, &admin.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_policies(
    State(state): State<AppState>,
    Extension(admin): Extension<AdminKeyPrefix>,
    Path(name): Path<String>,
    body: JsonBody<PoliciesSpec>,
) -> Result<Response, ApiError> {
    let table = state.database.set_policies(&name, parse_json(body, POLICIES)?, &admin.0).await?;
    Ok(Json(table.to_json()).into_response())
}

async fn table_changes(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "changes": state.database.changes(Some(&name)).await? })))
}

async fn all_changes(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "changes": state.database.changes(None).await? })))
}
