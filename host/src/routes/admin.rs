//! The admin API: build endpoint, versions, activation, access policies,
//! secrets and grants, execution records; users, groups and keys are in
//! `admin_identity`.
//! Every route requires an admin key (`Authorization: Bearer efk_...`).

use super::{AppState, JsonBody, parse_json};
use crate::deployments::Manifest;
use crate::error::ApiError;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

pub fn router(state: AppState) -> Router<AppState> {
    // Room for a JSON envelope around the largest source.
    let body_limit = state.max_source_bytes * 2 + 64 * 1024;
    Router::new()
        .route("/functions", get(list_functions))
        .route("/functions/{name}", get(describe_function).delete(delete_function))
        .route("/functions/{name}/versions", post(deploy))
        .route("/functions/{name}/versions/{version}", get(get_version))
        .route("/functions/{name}/activate", post(activate))
        .route("/functions/{name}/secrets", get(get_grants).put(set_grants))
        .route("/functions/{name}/access", get(get_access).put(set_access))
        .merge(super::admin_identity::router())
        .merge(super::admin_database::router())
        .route("/secrets", get(list_secrets))
        .route("/secrets/{name}", put(set_secret).delete(delete_secret))
        .merge(super::admin_executions::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(state, require_admin_key))
}

/// `GET /metrics` on the main address: the admin key is required there.
pub fn metrics_behind_key(state: AppState) -> axum::routing::MethodRouter<AppState> {
    get(metrics).route_layer(middleware::from_fn_with_state(state, require_admin_key))
}

/// The Prometheus metrics as OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(crate::telemetry::metrics::SandboxGauges {
        in_flight: state.sandbox.in_flight(),
        large_functions: state.sandbox.large_functions(),
        engine_copies_replaced: state.sandbox.engine_copies_replaced(),
    });
    ([(header::CONTENT_TYPE, crate::telemetry::metrics::CONTENT_TYPE)], text).into_response()
}

/// Which admin key made the request (its display prefix), for the records
/// of changes it makes.
#[derive(Debug, Clone)]
pub struct AdminKeyPrefix(pub String);

async fn require_admin_key(State(state): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized("the admin API needs an admin key: Authorization: Bearer <key>".into()));
    };
    if !state.admin_keys.verify(presented).await? {
        return Err(ApiError::Unauthorized("that admin key is not valid (unknown or revoked)".into()));
    }
    let admin = AdminKeyPrefix(crate::admin_keys::display_prefix(presented));
    let mut request = request;
    request.extensions_mut().insert(admin);
    Ok(next.run(request).await)
}

/// The build endpoint's body: raw JS, or JSON `{ "source": ..., "limits": ... }`.
struct DeployBody {
    source: Bytes,
    manifest: Manifest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployEnvelope {
    source: String,
    #[serde(flatten)]
    manifest: Manifest,
}

impl FromRequest<AppState> for DeployBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Compile(edgefn_compiler::CompileError::TooLarge { size: 0, limit: state.max_source_bytes })
            } else {
                ApiError::BadRequest(format!("could not read the request body: {rejection}"))
            }
        })?;
        if !is_json {
            return Ok(DeployBody { source: body, manifest: Manifest::default() });
        }
        let envelope: DeployEnvelope = serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "invalid deployment JSON: {e}; expected {{\"source\": \"<JS module>\", \"limits\": {{\"fuel\", \"memory_bytes\", \"deadline_ms\"}}, \"secrets\": [\"NAME\", ...], \"policy\": {{\"type\": \"authenticated\"}}, \"cors\": {{\"allow_origins\": [...]}}}}"
            ))
        })?;
        Ok(DeployBody { source: Bytes::from(envelope.source), manifest: envelope.manifest })
    }
}

async fn deploy(State(state): State<AppState>, Path(name): Path<String>, body: DeployBody) -> Result<Response, ApiError> {
    let deployed = state.deployments.deploy(&name, &body.source, body.manifest).await;
    match &deployed {
        Ok(_) => state.metrics.deployed(&name, true),
        Err(ApiError::Compile(_)) => state.metrics.deployed(&name, false),
        Err(_) => {}
    }
    let report = deployed?;
    let url = state.function_url(&name);
    let mut body = serde_json::to_value(&report).expect("reports serialize");
    body["url"] = json!(url);
    body["active"] = json!(true);
    Ok((StatusCode::CREATED, [(header::LOCATION, url)], Json(body)).into_response())
}

async fn list_functions(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let functions: Vec<_> = state
        .deployments
        .list()
        .await?
        .into_iter()
        .map(|f| {
            let url = state.function_url(&f.name);
            let mut value = serde_json::to_value(f).expect("summaries serialize");
            value["url"] = json!(url);
            value
        })
        .collect();
    Ok(Json(json!({ "functions": functions })))
}

async fn describe_function(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let (summary, versions) = state.deployments.describe(&name).await?;
    let mut value = serde_json::to_value(summary).expect("summaries serialize");
    value["url"] = json!(state.function_url(&name));
    value["versions"] = serde_json::to_value(versions).expect("versions serialize");
    Ok(Json(value))
}

async fn get_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let version = parse_version(&version)?;
    let version = state.deployments.version(&name, version).await?;
    Ok(Json(serde_json::to_value(version).expect("versions serialize")))
}

fn parse_version(text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::BadRequest(format!("{text:?} is not a version number (1, 2, 3, ...)")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    version: i32,
}

async fn activate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<ActivateBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = parse_json(body, r#"{"version": <number>}"#)?;
    state.deployments.activate(&name, body.version).await?;
    Ok(Json(json!({ "function": name, "active_version": body.version, "url": state.function_url(&name) })))
}

async fn delete_function(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.deployments.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}


#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: String,
}

/// Values are write-only: the response describes the secret, never its value.
async fn set_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<SecretBody>,
) -> Result<Response, ApiError> {
    let body = parse_json(body, r#"{"value": "<secret value>"}"#)?;
    let (summary, created) = state.secrets.set(&name, &body.value).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(summary)).into_response())
}

async fn list_secrets(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "secrets": state.secrets.list().await? })))
}

async fn delete_secret(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.secrets.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsBody {
    secrets: Vec<String>,
}

async fn grants_response(state: &AppState, name: &str) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = state.secrets.grants(name).await?;
    let existing: std::collections::BTreeSet<String> = state.secrets.list().await?.into_iter().map(|s| s.name).collect();
    let missing: Vec<&String> = granted.iter().filter(|name| !existing.contains(*name)).collect();
    Ok(Json(json!({ "function": name, "secrets": *granted, "not_set": missing })))
}

async fn get_grants(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    state.deployments.describe(&name).await?;
    grants_response(&state, &name).await
}

/// Replaces the function's grants; the next invocation sees them, no redeploy.
async fn set_grants(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<GrantsBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = parse_json(body, r#"{"secrets": ["OPENAI_API_KEY", ...]}"#)?;
    state.deployments.describe(&name).await?;
    state.secrets.set_grants(&name, &body.secrets).await?;
    grants_response(&state, &name).await
}

async fn get_access(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let access = state.deployments.access(&name).await?;
    let mut value = access.to_json();
    value["function"] = json!(name);
    Ok(Json(value))
}

/// Replaces the policy (and, when given, the CORS settings) without a redeploy.
async fn set_access(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = parse_json(body, r#"{"policy": {"type": "group", "groups": ["admin"]}, "cors": {...}}"#)?;
    if body.get("policy").is_none() {
        return Err(ApiError::BadRequest(
            "the body needs \"policy\" (and may have \"cors\"); a function always has a policy".into(),
        ));
    }
    let access = crate::access::Access::parse(&body).map_err(ApiError::BadRequest)?;
    state.deployments.set_access(&name, &access).await?;
    get_access(State(state), Path(name)).await
}
