//! `ANY /functions/v1/<name>[/<sub-path>]`: run the function for this request.
//!
//! Route → deployment → CORS preflight → identity and policy → sandbox
//! instance → response → execution record.

use super::AppState;
use crate::access::{self, Decision, Policy};
use crate::deployments::ActiveDeployment;
use crate::identity::{Caller, IdentityError, Role};
use crate::capabilities::database::ApplicationDatabase;
use crate::capabilities::outbound_http::Outbound;
use crate::capabilities::secrets::GrantedSecrets;
use crate::database::DatabaseRole;
use crate::database::policy::AuthContext;
use crate::database::query::QueryContext;
use crate::error::ApiError;
use crate::executions::{CapturedResponse, ExecutionRecord};
use crate::sandbox::{Capabilities, Execution, ExecutionError, Outcome, Timings};
use crate::secrets::Redactor;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use edgefn_world::types::{Invocation, Request as FunctionRequest, Response as FunctionResponse};
use crate::telemetry::{HostSpan, InvocationTrace, TraceContext};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// Headers that describe one hop, not the message: the server sets its own.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

pub async fn invoke(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
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
    // A caller that sent `traceparent` gets this invocation in its trace.
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceContext::from_traceparent);
    let client_ip = client.ip().to_string();
    let mut trace = InvocationTrace::start(incoming.unwrap_or_else(TraceContext::new_root), |span| {
        request_span(span, &method, &uri, &name, &invocation_id, &client_ip)
    });
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
        trace_id: Some(trace.trace_id_hex()),
        client_ip: Some(client_ip),
        database: None,
        outbound: None,
    };

    let deployment = match state.deployments.active(&name).await {
        Ok(deployment) => deployment,
        Err(error) => {
            record.error = Some(ExecutionError::new("request refused", error.to_string()));
            let response = error.into_response();
            // Unknown functions are not recorded: anyone can make up names.
            end_request_span(trace, response.status(), "request refused");
            if response.status() != StatusCode::NOT_FOUND {
                record.outcome = "error".into();
                record.status = response.status().as_u16();
                record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                state.metrics.observe(&record);
                state.executions.record(record).await;
            }
            return response;
        }
    };
    record.version = Some(deployment.version);
    let cold = !deployment.served.swap(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(span) = trace.request_span() {
        span.set_str("faas.version", itoa::Buffer::new().format(deployment.version));
        span.set_bool("faas.coldstart", cold);
    }
    let cors = deployment.access.cors.as_ref();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        // A browser's preflight: answered from the settings, never run, and
        // not an execution (it carries no credentials to record).
        let response = access::preflight(cors, origin.as_deref(), &headers);
        end_request_span(trace, response.status(), "preflight");
        return response;
    }

    let authorized = authorize(&state, &deployment, &headers, &mut record, &trace).await;
    let mut response = match authorized {
        Ok(caller) => match run(&state, &deployment, caller, &invocation_id, method, &uri, headers, body, &mut record, &trace).await {
            Ok(response) => response,
            Err(error) => {
                record.error = Some(ExecutionError::new("request refused", error.to_string()));
                let response = error.into_response();
                if response.status().is_server_error() {
                    record.outcome = "error".into();
                }
                response
            }
        },
        Err(denied) => {
            // Read what the client is still sending, so it sees the 401/403
            // rather than a broken pipe; nothing of it is kept.
            discard_body(body).await;
            denied
        }
    };
    if let (Some(cors), Some(origin)) = (cors, origin.as_deref()) {
        access::decorate(cors, origin, response.headers_mut());
    }
    if let Ok(id) = HeaderValue::from_str(&invocation_id) {
        response.headers_mut().insert(HeaderName::from_static("x-edgefn-invocation-id"), id);
    }
    record.status = response.status().as_u16();
    record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    end_request_span(trace, response.status(), &record.outcome);
    state.metrics.observe(&record);
    state.executions.record(record).await;
    response
}

/// The caller, if the function's policy admits them; otherwise the 401/403
/// (or 503 when the identity provider cannot be reached), recorded as denied.
async fn authorize(
    state: &AppState,
    deployment: &ActiveDeployment,
    headers: &HeaderMap,
    record: &mut ExecutionRecord,
    trace: &InvocationTrace,
) -> Result<Option<Caller>, Response> {
    let span = trace.child("authorize", SystemTime::now()).map(|mut span| {
        span.set_str("edgefn.policy", deployment.access.policy.kind());
        span
    });
    let decided = decide_caller(state, deployment, headers, record).await;
    let Some(mut span) = span else { return decided };
    match &decided {
        Ok(caller) => {
            let role = caller.as_ref().map_or("anonymous", |c| c.role.as_str());
            span.set_str("edgefn.caller.role", role);
            if let Some(caller) = caller {
                span.set_str("enduser.id", &caller.id);
            }
        }
        Err(response) => {
            span.set_i64("http.response.status_code", i64::from(response.status().as_u16()));
            span.set_error(record.outcome.clone());
        }
    }
    span.end();
    decided
}

/// Who is calling and whether the policy admits them.
async fn decide_caller(
    state: &AppState,
    deployment: &ActiveDeployment,
    headers: &HeaderMap,
    record: &mut ExecutionRecord,
) -> Result<Option<Caller>, Response> {
    // A header that is not even text cannot be a credential of ours.
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{0}"));
    let policy = &deployment.access.policy;
    let caller = match state.identity.authenticate(authorization).await {
        Ok(caller) => caller,
        // A public function may receive someone else's Authorization header
        // (a webhook sender's, say): it is the function's to check, and the
        // caller is anonymous to edgefn.
        Err(IdentityError::InvalidToken(_)) if *policy == Policy::Public => None,
        Err(error @ IdentityError::InvalidToken(_)) => {
            return Err(deny(record, ApiError::Unauthorized(error.to_string())));
        }
        Err(error) => {
            let error = ApiError::from(error);
            record.outcome = "error".into();
            record.error = Some(ExecutionError::new("identity unavailable", error.to_string()));
            return Err(error.into_response());
        }
    };
    record.caller = caller.as_ref().map(Caller::record_label);
    match policy.decide(caller.as_ref()) {
        Decision::Allow => Ok(caller),
        Decision::Unauthenticated(reason) => Err(deny(record, ApiError::Unauthorized(reason))),
        Decision::Forbidden(reason) => Err(deny(record, ApiError::Forbidden(reason))),
    }
}

fn deny(record: &mut ExecutionRecord, error: ApiError) -> Response {
    record.outcome = "denied".into();
    record.error = Some(ExecutionError::new("access denied", error.to_string()));
    error.into_response()
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    deployment: &ActiveDeployment,
    caller: Option<Caller>,
    invocation_id: &str,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Body,
    record: &mut ExecutionRecord,
    trace: &InvocationTrace,
) -> Result<Response, ApiError> {
    let name = deployment.function.as_str();
    let body = read_body(body, state.max_body_bytes).await?;

    // A credential edgefn accepted is edgefn's: the function gets the caller,
    // never the token it could leak.
    let consumed_credential = caller.is_some();
    let request = FunctionRequest {
        method: method.to_string(),
        url: absolute_url(state, &headers, uri),
        headers: headers
            .iter()
            .filter(|(name, _)| !(consumed_credential && *name == header::AUTHORIZATION))
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    let secrets = state.secrets.granted_values(name).await?;
    let invocation = Invocation {
        id: invocation_id.to_owned(),
        function_name: name.to_owned(),
        version: u32::try_from(deployment.version).unwrap_or(0),
        caller: caller.as_ref().map(Caller::to_wit),
        secret_names: secrets.names(),
    };
    let redactor = Redactor::new(&secrets);
    let database = ApplicationDatabase::new(state.database.clone(), query_context(state, deployment, caller.as_ref()), state.database_limits);
    let outbound = Outbound::new(state.outbound.clone(), deployment.egress.clone(), record.trace_id.clone().unwrap_or_default());
    let mut execution = state
        .sandbox
        .invoke(
            &deployment.slot_group,
            deployment.bytecode.clone(),
            deployment.module_state.clone(),
            request,
            invocation,
            &deployment.limits,
            Capabilities { secrets: GrantedSecrets::new(secrets), database, outbound },
            trace,
        )
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

/// The name and attributes of one request's server span (HTTP and FaaS
/// semantic conventions); it goes under the caller's span when it sent
/// `traceparent`.
fn request_span(span: &mut HostSpan, method: &Method, uri: &Uri, name: &str, invocation_id: &str, client_ip: &str) -> Cow<'static, str> {
    // Static names where they can be.
    let span_name: Cow<'static, str> = match *method {
        Method::GET => "GET /functions/v1/{name}".into(),
        Method::POST => "POST /functions/v1/{name}".into(),
        _ => format!("{method} /functions/v1/{{name}}").into(),
    };
    span.set_str("http.request.method", method.as_str());
    span.set_str("http.route", "/functions/v1/{name}");
    span.set_str("url.path", uri.path());
    span.set_str("client.address", client_ip);
    span.set_str("faas.trigger", "http");
    span.set_str("faas.name", name);
    span.set_str("faas.invocation_id", invocation_id);
    span_name
}

fn end_request_span(trace: InvocationTrace, status: StatusCode, outcome: &str) {
    trace.end(|span| {
        span.set_i64("http.response.status_code", i64::from(status.as_u16()));
        span.set_str("edgefn.outcome", outcome);
        if status.is_server_error() {
            span.set_str("error.type", status.as_str());
            span.set_error(outcome.to_owned());
        }
    });
}

/// Who the function's queries run as: the caller under row-level security,
/// or the service role when the manifest asks for it or an admin key calls.
fn query_context(state: &AppState, deployment: &ActiveDeployment, caller: Option<&Caller>) -> QueryContext {
    let auth = match caller {
        None => AuthContext { role: "anonymous".into(), ..AuthContext::default() },
        Some(caller) => AuthContext {
            uid: Some(caller.id.clone()),
            email: caller.email.clone(),
            role: caller.role.as_str().into(),
            groups: caller.groups.clone(),
            metadata: caller.metadata.clone(),
        },
    };
    let bypass_rls = deployment.database_role == DatabaseRole::Service || auth.role == Role::Service.as_str();
    QueryContext { auth, bypass_rls, max_rows: state.database_limits.max_rows }
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
    // A URL may carry a secret in its path (webhook URLs do), and a failed
    // request's message may quote what the server answered.
    for call in record.outbound.iter_mut().flat_map(|usage| usage.calls.iter_mut()) {
        call.url = redactor.redact(&call.url);
        if let Some(error) = &mut call.error {
            *error = redactor.redact(error);
        }
    }
}

/// A denied request's body is read and dropped up to this much; past it the
/// connection is closed instead.
const MAX_DISCARD_BYTES: usize = 1 << 20;

async fn discard_body(mut body: Body) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > MAX_DISCARD_BYTES {
            break;
        }
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
    if execution.database.queries > 0 || execution.database.service_role {
        record.database = Some(execution.database);
    }
    if execution.outbound.requests > 0 {
        record.outbound = Some(execution.outbound);
    }
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
