//! The HTTP surface: function URLs, the admin API and health.

mod admin;
mod admin_database;
mod admin_executions;
mod admin_identity;
mod admin_ui;
mod auth;
mod invoke;

use crate::admin_keys::AdminKeys;
use crate::deployments::Deployments;
use crate::executions::ExecutionLog;
use crate::sandbox::Sandbox;
use axum::Router;
use axum::routing::{any, get};
use std::sync::Arc;

/// What every handler can reach. axum clones it for every request, so it is
/// one `Arc`: a clone of each of a dozen `Arc`s was two atomic operations
/// per `Arc` per request, on counters both request threads share.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    /// The sandbox that runs functions.
    pub sandbox: Arc<Sandbox>,
    /// Functions and versions.
    pub deployments: Arc<Deployments>,
    /// Execution records.
    pub executions: ExecutionLog,
    /// Admin credentials.
    pub admin_keys: AdminKeys,
    /// Users, sessions and token verification.
    pub identity: Arc<crate::identity::Identity>,
    /// Secret values and grants.
    pub secrets: Arc<crate::secrets::Secrets>,
    /// Base URL function URLs are reported under.
    pub public_url: Arc<str>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// The application database functions query.
    pub database: Arc<crate::database::AppDatabase>,
    /// Per-invocation database limits.
    pub database_limits: crate::capabilities::database::DatabaseLimits,
    /// Outbound HTTP rules, limits and clients.
    pub outbound: Arc<crate::capabilities::outbound_http::OutboundHttp>,
    /// Largest request body a function accepts.
    pub max_body_bytes: usize,
    /// Largest source the build endpoint accepts.
    pub max_source_bytes: usize,
}

impl Services {
    /// The public URL of a function.
    pub fn function_url(&self, name: &str) -> String {
        format!("{}/functions/v1/{name}", self.public_url.trim_end_matches('/'))
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/functions/v1/{name}", any(invoke::invoke))
        .route("/functions/v1/{name}/", any(invoke::invoke))
        .route("/functions/v1/{name}/{*rest}", any(invoke::invoke))
        .nest("/admin/v1", admin::router(state.clone()))
        .merge(admin_ui::router())
        .nest("/auth/v1", auth::router())
        .route("/metrics", admin::metrics_behind_key(state.clone()))
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .with_state(state)
}

/// `/metrics` alone, without an admin key, for `--metrics-listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(admin::metrics)).with_state(state)
}

/// A JSON body as handlers take it: the rejection goes to [`parse_json`].
type JsonBody<T> = Result<axum::Json<T>, axum::extract::rejection::JsonRejection>;

/// A JSON body parsed with a message that says what was expected.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: JsonBody<T>,
    expected: &str,
) -> Result<T, crate::error::ApiError> {
    body.map(|axum::Json(value)| value).map_err(|e| {
        crate::error::ApiError::BadRequest(format!("expected a JSON body like {expected}: {}", e.body_text()))
    })
}
