//! The one mapping from errors to HTTP responses. Every error a client sees is
//! JSON: `{"error": "<stable code>", "message": "<for a person>", ...}`.
//! Internal errors are logged in full and shown only as an id-free summary.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgefn_compiler::CompileError;
use serde_json::json;

/// An error an API handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or asks for something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The source did not compile; the previous version keeps serving.
    #[error("{0}")]
    Compile(#[from] CompileError),
    /// The body is larger than the configured limit.
    #[error("the request body is larger than the {limit}-byte limit")]
    PayloadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; retry after the given seconds.
    #[error("{message}")]
    TooManyRequests {
        /// For a person.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// Every instance slot stayed busy.
    #[error("edgefn is at capacity; retry shortly")]
    Overloaded,
    /// A service edgefn depends on is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Something is wrong on our side; details are in the server log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<crate::secrets::SecretsError> for ApiError {
    fn from(e: crate::secrets::SecretsError) -> Self {
        use crate::secrets::SecretsError;
        match e {
            SecretsError::InvalidName(_) | SecretsError::InvalidValue(_) => ApiError::BadRequest(e.to_string()),
            SecretsError::NotFound(_) => ApiError::NotFound(e.to_string()),
            // Names only, never a value: safe for the server log.
            SecretsError::MasterKey(_) | SecretsError::Undecryptable(_) | SecretsError::Database(_) => {
                ApiError::Internal(e.into())
            }
        }
    }
}

impl From<crate::database::schema::SchemaError> for ApiError {
    fn from(e: crate::database::schema::SchemaError) -> Self {
        use crate::database::schema::SchemaError;
        match e {
            SchemaError::Invalid(_) | SchemaError::Refused(_) => ApiError::BadRequest(e.to_string()),
            SchemaError::UnknownTable(_) => ApiError::NotFound(e.to_string()),
            SchemaError::Conflict(_) => ApiError::Conflict(e.to_string()),
            SchemaError::Database(_) => ApiError::Internal(e.into()),
        }
    }
}

impl From<crate::identity::IdentityError> for ApiError {
    fn from(e: crate::identity::IdentityError) -> Self {
        use crate::identity::IdentityError;
        match e {
            IdentityError::InvalidToken(_) | IdentityError::InvalidCredentials => ApiError::Unauthorized(e.to_string()),
            IdentityError::RateLimited { retry_after_secs } => {
                ApiError::TooManyRequests { message: e.to_string(), retry_after_secs }
            }
            IdentityError::SignupDisabled => ApiError::Forbidden(e.to_string()),
            IdentityError::Invalid(message) => ApiError::BadRequest(message),
            IdentityError::NotFound(message) => ApiError::NotFound(message),
            IdentityError::Conflict(message) => ApiError::Conflict(message),
            // The provider being down is not the caller's fault, but their
            // token cannot be checked either: 401 would tell them to sign in
            // again for nothing, so it is a 503.
            IdentityError::ProviderUnavailable(_) => ApiError::Unavailable(e.to_string()),
            IdentityError::Database(_) | IdentityError::Internal(_) => ApiError::Internal(e.into()),
        }
    }
}

impl From<crate::admin_keys::AdminKeyError> for ApiError {
    fn from(e: crate::admin_keys::AdminKeyError) -> Self {
        use crate::admin_keys::AdminKeyError;
        match e {
            AdminKeyError::NotFound(_) => ApiError::NotFound(e.to_string()),
            AdminKeyError::LastKey(_) => ApiError::Conflict(e.to_string()),
            AdminKeyError::Invalid(message) => ApiError::BadRequest(message),
            AdminKeyError::Database(_) => ApiError::Internal(e.into()),
        }
    }
}

impl From<crate::sandbox::Overloaded> for ApiError {
    fn from(_: crate::sandbox::Overloaded) -> Self {
        ApiError::Overloaded
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, json!({"error": "not_found", "message": message})),
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, json!({"error": "bad_request", "message": message})),
            ApiError::Compile(error) => {
                let mut body = json!({"error": "compile_error", "message": error.to_string()});
                if let CompileError::Invalid { line, column, .. } = error {
                    body["line"] = json!(line);
                    body["column"] = json!(column);
                }
                let status = match error {
                    CompileError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, body)
            }
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload_too_large", "message": self.to_string(), "limit_bytes": limit}),
            ),
            ApiError::Unauthorized(message) => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "unauthorized", "message": message}))).into_response();
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, json!({"error": "forbidden", "message": message})),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, json!({"error": "conflict", "message": message})),
            ApiError::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable", "message": message}))
            }
            ApiError::TooManyRequests { message, retry_after_secs } => {
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": "rate_limited", "message": message})))
                        .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                return response;
            }
            ApiError::Overloaded => {
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": "overloaded", "message": self.to_string()})))
                        .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "message": "edgefn hit an internal error; the server log has the details"}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
