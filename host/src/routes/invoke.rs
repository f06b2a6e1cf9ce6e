//! `ANY /functions/v1/<name>[/<sub-path>]`: run the function for this request.
//!
//! Route → deployment → sandbox instance → response → execution record.

use super::AppState;
use crate::capabilities::secrets::GrantedSecrets;
use crate::error::ApiError;
use crate::executions::{CapturedResponse, ExecutionRecord};
use crate::sandbox::{Execution, ExecutionError, Outcome, Timings};
use crate::secrets::Redactor;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use edgefn_world::types::{Invocation, Request as FunctionRequest, Response as FunctionResponse};
use std::collections::HashMap;
use std::time::Instant;

/// Headers that describe one hop, not the message: the server sets its own.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

pub async fn invoke(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at = chrono::Utc::now();
    let started = Instant::now();
    let name = params.get("name").cloned().unwrap_or_default();
    let invocation_id = uuid::Uuid::now_v7().to_string();
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| uri.path().to_owned());

    let mut record = ExecutionRecord {
        id: invocation_id.clone(),
        function: name.clone(),
        version: None,
        received_at,
        duration_us: 0,
        timings: Timings::default(),
        caller: None,
        method: method.to_string(),
        path,
        status: 0,
        outcome: "bad_request".into(),
        console: Vec::new(),
        error: None,
        fuel_consumed: None,
        peak_memory_bytes: None,
        response: None,
    };

    let mut response = match run(&state, &name, &invocation_id, method, &uri, headers, body, &mut record).await {
        Ok(response) => response,
        Err(error) => {
            record.error = Some(ExecutionError::new("request refused", error.to_string()));
            let response = error.into_response();
            if response.status() == StatusCode::NOT_FOUND {
                // Unknown functions are not recorded: anyone can make up names.
                return response;
            }
            if response.status().is_server_error() {
                record.outcome = "error".into();
            }
            response
        }
    };
    if let Ok(id) = HeaderValue::from_str(&invocation_id) {
        response.headers_mut().insert(HeaderName::from_static("x-edgefn-invocation-id"), id);
    }
    record.status = response.status().as_u16();
    record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    state.executions.record(record).await;
    response
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    name: &str,
    invocation_id: &str,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Body,
    record: &mut ExecutionRecord,
) -> Result<Response, ApiError> {
    let deployment = state.deployments.active(name).await?;
    record.version = Some(deployment.version);

    let body = read_body(body, state.max_body_bytes).await?;

    let request = FunctionRequest {
        method: method.to_string(),
        url: absolute_url(state, &headers, uri),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let invocation = Invocation {
        id: invocation_id.to_owned(),
        function_name: name.to_owned(),
        version: u32::try_from(deployment.version).unwrap_or(0),
        caller: None,
    };
    let secrets = state.secrets.granted_values(name).await?;
    let redactor = Redactor::new(&secrets);
    let mut execution = state
        .sandbox
        .invoke(deployment.bytecode.clone(), request, invocation, &deployment.limits, GrantedSecrets::new(secrets))
        .await?;
    if redactor.is_empty() {
        return Ok(respond(execution, record));
    }
    // A thrown error reaches the caller in edgefn's own 500 body, which the
    // function's author did not write: it is redacted for the caller too.
    if let Err(error) = &mut execution.result {
        redact_error(&redactor, error);
    }
    let response = respond(execution, record);
    redact_record(&redactor, record);
    Ok(response)
}

fn redact_error(redactor: &Redactor, error: &mut ExecutionError) {
    error.message = redactor.redact(&error.message);
    for text in [&mut error.stack, &mut error.name].into_iter().flatten() {
        *text = redactor.redact(text);
    }
}

/// What the function printed or returned goes to the record with every
/// granted secret value replaced; the caller still gets exactly what it returned.
fn redact_record(redactor: &Redactor, record: &mut ExecutionRecord) {
    if let Some(response) = &mut record.response {
        response.body = redactor.redact(&response.body);
        for (_, value) in &mut response.headers {
            *value = redactor.redact(value);
        }
    }
    for line in &mut record.console {
        line.text = redactor.redact(&line.text);
    }
}

/// Bodies this much over the limit are not drained: the connection is closed.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// Reads the whole body, or refuses it with a 413 once it passes `limit`.
///
/// A refused body is still read to its end (up to [`MAX_DRAIN_BYTES`]) and
/// discarded: answering while the client is still sending makes many clients
/// fail with a broken pipe instead of showing the 413.
async fn read_body(mut body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut buffer = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        seen += chunk.len();
        if seen <= limit {
            buffer.extend_from_slice(&chunk);
        } else if seen > MAX_DRAIN_BYTES {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(buffer.freeze())
}

/// The URL the caller used, as the function's `request.url`.
fn absolute_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let (scheme, public_host) = state.public_url.split_once("://").unwrap_or(("http", &state.public_url));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.parse::<axum::http::uri::Authority>().is_ok())
        .unwrap_or(public_host.trim_end_matches('/'));
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{scheme}://{host}{path}")
}

fn respond(execution: Execution<FunctionResponse>, record: &mut ExecutionRecord) -> Response {
    record.outcome = execution.outcome.as_str().into();
    record.timings = execution.timings;
    record.console = execution.console;
    record.fuel_consumed = Some(execution.fuel_consumed);
    record.peak_memory_bytes = Some(execution.peak_memory_bytes);
    match execution.result {
        Ok(response) => {
            record.response = Some(CapturedResponse::new(response.status, &response.headers, &response.body));
            function_response(response).unwrap_or_else(|message| {
                record.outcome = Outcome::Error.as_str().into();
                let error = ExecutionError::new("invalid response", message);
                record.error = Some(error.clone());
                error_response(StatusCode::INTERNAL_SERVER_ERROR, &error)
            })
        }
        Err(error) => {
            let status = match execution.outcome {
                Outcome::Deadline => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let response = error_response(status, &error);
            record.error = Some(error);
            response
        }
    }
}

fn error_response(status: StatusCode, error: &ExecutionError) -> Response {
    (status, axum::Json(error)).into_response()
}

/// Exactly what the function returned, less hop-by-hop headers.
fn function_response(response: FunctionResponse) -> Result<Response, String> {
    let status = StatusCode::from_u16(response.status)
        .map_err(|_| format!("the function returned the invalid status {}", response.status))?;
    let mut built = Response::new(Body::from(response.body));
    *built.status_mut() = status;
    for (name, value) in response.headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid response header name {name:?}"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| format!("invalid value for response header {name}"))?;
        built.headers_mut().append(name, value);
    }
    Ok(built)
}
