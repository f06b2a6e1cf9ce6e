//! `wasi:http/outgoing-handler`: a function's `fetch()`.
//!
//! The guest builds a wasi-http request; wasmtime-wasi-http hands it to
//! [`Outbound::send_request`], which is where edgefn decides and sends:
//! 1. the per-invocation request limit;
//! 2. the URL, parsed like a browser parses it ([`egress::Destination`]);
//! 3. the function's allowlist, then the SSRF rules that need no DNS
//!    (IP literals in any spelling, `localhost`, metadata names);
//! 4. the request body, read up to its size limit;
//! 5. the request itself, through a client whose DNS resolver refuses names
//!    that resolve to internal addresses. The connection goes to the very
//!    addresses that were checked, so DNS rebinding gains nothing.
//!
//! Redirects are not followed here: the guest's `fetch` follows them, so
//! every hop comes back through these checks.
//!
//! Invariant: nothing leaves the host unless the rules allowed it, and an
//! invocation without an [`Outbound`] (compiling, pre-initializing) can send
//! nothing at all.

pub mod address;
pub mod egress;

use bytes::Bytes;
use egress::{Allowlist, Destination, EgressRules, Route};
use http_body_util::BodyExt;
use opentelemetry::trace::{Span, SpanKind, Status, Tracer};
use opentelemetry::KeyValue;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Per-invocation limits on outbound requests.
#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    /// Requests one invocation may start (redirect hops count).
    pub max_requests: u32,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
    /// One request, from connecting to the last byte of its response.
    pub timeout: Duration,
}

/// The server's outbound HTTP: rules, limits and the two HTTP clients.
pub struct OutboundHttp {
    rules: EgressRules,
    limits: OutboundLimits,
    /// Resolves names through [`CheckedResolver`].
    public: reqwest::Client,
    /// For hosts the operator allowed: no address checks.
    internal: reqwest::Client,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp").field("rules", &self.rules).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl OutboundHttp {
    pub fn new(rules: EgressRules, limits: OutboundLimits) -> anyhow::Result<Self> {
        // No proxy from the environment (it would bypass the address checks),
        // no redirects (the guest follows them, through the checks), no
        // decompression (the function sees what the server sent).
        let builder = || {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(limits.timeout.min(Duration::from_secs(10)))
                .pool_idle_timeout(Duration::from_secs(30))
        };
        Ok(OutboundHttp {
            public: builder().dns_resolver(Arc::new(CheckedResolver)).build()?,
            internal: builder().build()?,
            rules,
            limits,
        })
    }
}

/// One outbound request as the execution record shows it. The URL has no
/// query string and no headers are kept: either may carry a secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboundCall {
    pub method: String,
    /// Scheme, host, port and path.
    pub url: String,
    /// The response status, when one arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Until the response's headers arrived (or the request failed).
    pub duration_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one invocation's outbound requests did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboundUsage {
    /// Requests attempted, including refused ones.
    pub requests: u32,
    /// Refused by the egress rules or limits before anything was sent.
    pub denied: u32,
    /// Sent but failed (connection, TLS, timeout, size).
    pub failed: u32,
    /// Sum of the requests' durations, in microseconds (they may overlap).
    pub duration_us: u64,
    /// The first [`MAX_RECORDED_CALLS`] requests.
    pub calls: Vec<OutboundCall>,
}

/// Calls kept per record; the counters above still count every request.
const MAX_RECORDED_CALLS: usize = 32;

impl OutboundUsage {
    /// Counts a call and keeps it if there is room; returns where it is kept.
    fn record(&mut self, call: OutboundCall, denied: bool) -> Option<usize> {
        if denied {
            self.denied += 1;
        } else if call.error.is_some() {
            self.failed += 1;
        }
        self.duration_us += call.duration_us;
        (self.calls.len() < MAX_RECORDED_CALLS).then(|| {
            self.calls.push(call);
            self.calls.len() - 1
        })
    }

    /// A call whose response arrived but whose body then failed (too large,
    /// cut off, too slow) is a failed call too.
    fn body_failed(&mut self, call: Option<usize>, error: &Error) {
        self.failed += 1;
        if let Some(call) = call.and_then(|index| self.calls.get_mut(index)) {
            call.error = Some(describe(error));
        }
    }
}

/// One invocation's outbound HTTP: the [`WasiHttpHooks`] wasmtime-wasi-http calls.
#[derive(Default)]
pub struct Outbound {
    /// `None` when the instance may send nothing (compiling a function).
    http: Option<Arc<OutboundHttp>>,
    /// The version's allowlist; `None` means the server's default.
    allowlist: Option<Arc<Allowlist>>,
    usage: Arc<Mutex<OutboundUsage>>,
    /// The execution span client spans go under.
    trace: Option<opentelemetry::Context>,
    /// The record's trace id, for `traceparent` when no span is recording.
    trace_id: Option<String>,
}

impl Outbound {
    pub fn new(http: Arc<OutboundHttp>, allowlist: Option<Arc<Allowlist>>, trace_id: String) -> Self {
        Outbound { http: Some(http), allowlist, trace_id: Some(trace_id), ..Outbound::default() }
    }

    pub fn set_trace(&mut self, cx: opentelemetry::Context) {
        self.trace = Some(cx);
    }

    /// What the invocation did, once it is over.
    pub fn finish(self) -> OutboundUsage {
        std::mem::take(&mut *self.usage.lock().unwrap())
    }

    /// Everything that can be decided before sending; the error is the
    /// message the function's `fetch` rejects with.
    /// `attempt` counts this invocation's requests, this one included.
    fn admit(
        &self,
        attempt: u32,
        destination: Result<Destination, String>,
    ) -> Result<(Arc<OutboundHttp>, Destination, Route), String> {
        let Some(http) = self.http.clone() else {
            return Err("fetch() is not available while a function is being compiled (at module top level)".into());
        };
        if attempt > http.limits.max_requests {
            return Err(format!(
                "this invocation already made {} outbound requests, the most one invocation may make \
                 (--outbound-max-requests; redirects count)",
                http.limits.max_requests
            ));
        }
        let destination = destination?;
        let route = http
            .rules
            .check(self.allowlist.as_deref(), &destination)
            .map_err(|refused| format!("egress denied: {refused}"))?;
        Ok((http, destination, route))
    }

    fn client_span(&self, method: &http::Method, destination: &Destination, url: &str) -> Option<opentelemetry::global::BoxedSpan> {
        let cx = self.trace.as_ref()?;
        let tracer = crate::telemetry::traces::tracer();
        let span = tracer
            .span_builder(method.to_string())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("server.address", destination.host.clone()),
                KeyValue::new("server.port", i64::from(destination.port)),
                KeyValue::new("url.full", url.to_owned()),
            ])
            .start_with_context(tracer, cx);
        Some(span)
    }

    /// `traceparent` for the request: the client span's, or, when no span is
    /// recording (tracing off and no caller's trace to carry on), the
    /// record's trace id with a fresh span id, so that the called service
    /// can still be matched to this execution.
    fn traceparent(&self, span: Option<&opentelemetry::global::BoxedSpan>) -> Option<String> {
        if let Some(context) = span.map(|s| s.span_context()).filter(|c| c.is_valid()) {
            let flags = if context.is_sampled() { "01" } else { "00" };
            return Some(format!("00-{}-{}-{flags}", context.trace_id(), context.span_id()));
        }
        self.trace_id.as_ref().map(|id| format!("00-{id}-{}-01", fresh_span_id()))
    }
}

fn fresh_span_id() -> String {
    let id: u64 = rand::random::<u64>().max(1);
    format!("{id:016x}")
}

/// The URL as records and spans show it: no query, no fragment.
fn recorded_url(destination: &Destination) -> String {
    let url = &destination.url;
    format!("{}://{}:{}{}", url.scheme(), destination.shown_host(), destination.port, url.path())
}

type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for Outbound {
    // reqwest writes `Host` from the URL it was checked against.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let usage = self.usage.clone();
        let attempt = {
            let mut usage = usage.lock().unwrap();
            usage.requests += 1;
            usage.requests
        };
        let method = request.method().clone();
        let destination = Destination::parse(request.uri());
        let url = destination.as_ref().map(recorded_url).unwrap_or_default();
        let (http, destination, route) = match self.admit(attempt, destination) {
            Ok(admitted) => admitted,
            Err(message) => {
                let call = OutboundCall {
                    method: method.to_string(),
                    url,
                    status: None,
                    duration_us: 0,
                    error: Some(message.clone()),
                };
                usage.lock().unwrap().record(call, true);
                return Box::new(async move { Err(Error::InternalError(Some(message))) });
            }
        };
        let mut span = self.client_span(&method, &destination, &url);
        let traceparent = self.traceparent(span.as_ref());
        Box::new(async move {
            let started = Instant::now();
            let host = destination.shown_host();
            let result = send(&http, route, destination, request, traceparent).await;
            let duration_us = started.elapsed().as_micros() as u64;
            let (status, error) = match &result {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(e) => (None, Some(describe(e))),
            };
            if let Some(span) = &mut span {
                if let Some(status) = status {
                    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
                    if status >= 500 {
                        span.set_status(Status::error(status.to_string()));
                    }
                }
                if let Some(error) = &error {
                    span.set_attribute(KeyValue::new("error.type", error.clone()));
                    span.set_status(Status::error(error.clone()));
                }
                span.end();
            }
            let call = usage.lock().unwrap().record(OutboundCall { method: method.to_string(), url, status, duration_us, error }, false);
            let limit = http.limits.max_response_bytes;
            let response = result?.map(|inner| {
                CappedBody { inner, remaining: limit, limit, host, timeout: http.limits.timeout, usage, call, failed: false }
                    .boxed_unsync()
            });
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// Sends an admitted request; the caller streams the response body to the
/// guest through [`CappedBody`].
async fn send(
    http: &OutboundHttp,
    route: Route,
    destination: Destination,
    request: http::Request<WasiBody>,
    traceparent: Option<String>,
) -> Result<http::Response<reqwest::Body>, Error> {
    let limits = http.limits;
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, limits.max_request_bytes)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => Error::InternalError(Some(format!(
                "the request body is larger than {} bytes, the most a function may send (--outbound-max-request-bytes)",
                limits.max_request_bytes
            ))),
            Err(other) => Error::InternalError(Some(format!("reading the request body failed: {other}"))),
        })?
        .to_bytes();

    let client = match route {
        Route::Public => &http.public,
        Route::Internal => &http.internal,
    };
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    if let Some(traceparent) = traceparent.filter(|_| !headers.contains_key("traceparent")) {
        headers.insert("traceparent", http::HeaderValue::from_str(&traceparent).expect("hex and dashes"));
    }
    let response = client
        .request(parts.method, destination.url.clone())
        .headers(headers)
        .body(body)
        .timeout(limits.timeout)
        .send()
        .await
        .map_err(|e| send_error(e, &destination, limits.timeout))?;

    if let Some(length) = response.content_length()
        && length > limits.max_response_bytes as u64
    {
        return Err(too_large(&destination.shown_host(), Some(length), limits.max_response_bytes));
    }
    Ok(response.into())
}

/// A response body over the limit, in words.
fn too_large(host: &str, length: Option<u64>, limit: usize) -> Error {
    let size = length.map_or_else(|| "more than".to_owned(), |length| format!("{length} bytes, more than"));
    Error::InternalError(Some(format!(
        "the response from {host} is {size} the {limit} bytes a function may receive (--outbound-max-response-bytes)"
    )))
}

/// Why a request failed, as the function will read it.
fn send_error(error: reqwest::Error, destination: &Destination, timeout: Duration) -> Error {
    let host = destination.shown_host();
    if let Some(blocked) = find_source::<Blocked>(&error) {
        return Error::InternalError(Some(format!("egress denied: {}", blocked.0)));
    }
    if error.is_timeout() {
        return Error::InternalError(Some(format!(
            "{host} did not answer within {} ms, the per-request timeout (--outbound-timeout-ms)",
            timeout.as_millis()
        )));
    }
    if let Some(io) = find_source::<std::io::Error>(&error) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return Error::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::UnexpectedEof => {
                return Error::ConnectionTerminated;
            }
            _ => {}
        }
    }
    if let Some(unresolved) = find_source::<Unresolved>(&error) {
        return Error::InternalError(Some(unresolved.to_string()));
    }
    let chain = error_chain(&error.without_url());
    Error::InternalError(Some(format!("the request to {host} failed: {chain}")))
}

fn find_source<'a, T: std::error::Error + 'static>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// How the record shows a failed request.
fn describe(error: &Error) -> String {
    match error {
        Error::InternalError(Some(message)) => message.clone(),
        other => format!("{other:?}"),
    }
}

/// A resolved address the SSRF rules refuse; travels through reqwest's
/// error chain so that [`send_error`] can say what happened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Blocked(String);

/// A name DNS could not resolve.
#[derive(Debug, thiserror::Error)]
#[error("the host name {host} could not be resolved: {source}")]
struct Unresolved {
    host: String,
    source: std::io::Error,
}

/// Resolves a name and refuses it if any address it resolves to is
/// internal: a name that answers with one public and one private address
/// could be steered to the private one.
struct CheckedResolver;

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let looked_up = tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect::<Vec<_>>);
            let addresses = match looked_up {
                Ok(found) => found,
                Err(source) => return Err(Box::new(Unresolved { host, source }) as _),
            };
            for address in &addresses {
                if let Some(reason) = address::forbidden_reason(address.ip()) {
                    return Err(Box::new(Blocked(egress::refused(&host, address.ip(), reason))) as _);
                }
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A response body that stops at the size limit, so a function (and the
/// host's memory) never receives more than it may, and that reports a
/// failure to the invocation's record.
struct CappedBody {
    inner: reqwest::Body,
    remaining: usize,
    limit: usize,
    host: String,
    timeout: Duration,
    usage: Arc<Mutex<OutboundUsage>>,
    /// Where the record keeps this call, if it does.
    call: Option<usize>,
    failed: bool,
}

impl CappedBody {
    fn fail(&mut self, error: Error) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        if !std::mem::replace(&mut self.failed, true) {
            self.usage.lock().unwrap().body_failed(self.call, &error);
        }
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if data.len() > this.remaining {
                        let error = too_large(&this.host, None, this.limit);
                        return this.fail(error);
                    }
                    this.remaining -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let error = if e.is_timeout() {
                    Error::InternalError(Some(format!(
                        "{} did not finish sending its response within {} ms, the per-request timeout \
                         (--outbound-timeout-ms)",
                        this.host,
                        this.timeout.as_millis()
                    )))
                } else {
                    Error::InternalError(Some(format!(
                        "reading the response from {} failed: {}",
                        this.host,
                        error_chain(&e.without_url())
                    )))
                };
                this.fail(error)
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    // Names reach internal addresses through DNS (here /etc/hosts) too; the
    // resolver refuses them after resolution, whatever the name looks like.
    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_internal_addresses() {
        let error = match CheckedResolver.resolve("localhost".parse().unwrap()).await {
            Ok(addresses) => panic!("localhost resolved to {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let blocked = error.downcast_ref::<Blocked>().expect("a Blocked error");
        assert!(blocked.0.starts_with("localhost resolves to "), "{}", blocked.0);
        assert!(blocked.0.contains("loopback"), "{}", blocked.0);
    }

    #[tokio::test]
    async fn names_that_do_not_resolve_say_so() {
        let error = match CheckedResolver.resolve("no-such-host.invalid".parse().unwrap()).await {
            Ok(_) => panic!("a .invalid name resolved"),
            Err(error) => error,
        };
        assert!(error.to_string().contains("no-such-host.invalid could not be resolved"), "{error}");
    }
}
