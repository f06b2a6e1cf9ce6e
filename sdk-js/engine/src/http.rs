//! Outbound HTTP for `fetch()` (runtime/fetch.js), over
//! wasi:http/outgoing-handler. The host decides whether a request may go
//! out and enforces the limits; this side only moves bytes.
//!
//! Requests run concurrently: [`start`] hands a request to the host and
//! returns at once, and [`wait`] blocks on wasi:io/poll until at least one
//! request has its whole response (or a timer is due), so that
//! `Promise.all([fetch(a), fetch(b)])` overlaps the two on the host.

use crate::wasi::clocks::monotonic_clock;
use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use crate::wasi::io::poll::{self, Pollable};
use crate::wasi::io::streams::{InputStream, StreamError};

/// A finished request, for runtime/fetch.js.
pub enum Completion {
    Response { id: u32, status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    Failed { id: u32, message: String },
}

enum State {
    /// Sent; the response's head has not arrived.
    Waiting(FutureIncomingResponse),
    /// Reading the body. `stream` is a child of `body` and is dropped first.
    Reading { status: u16, headers: Vec<(String, String)>, stream: Option<InputStream>, body: Option<IncomingBody>, bytes: Vec<u8> },
}

struct InFlight {
    id: u32,
    state: State,
}

static mut IN_FLIGHT: Vec<InFlight> = Vec::new();
static mut NEXT_ID: u32 = 1;

fn in_flight() -> &'static mut Vec<InFlight> {
    // SAFETY: single-threaded component instance; no reference outlives a call.
    unsafe { &mut *std::ptr::addr_of_mut!(IN_FLIGHT) }
}

/// Sends a request; its response arrives through [`wait`].
pub fn start(method: &str, url: &str, headers: &[(String, String)], body: Option<&[u8]>) -> Result<u32, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL {url}: {e}"))?;
    let scheme = match parsed.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => return Err(format!("fetch() supports http: and https: URLs, not {other}:")),
    };
    let authority = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(format!("the URL {url} has no host")),
    };
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }

    let fields = Fields::new();
    for (name, value) in headers {
        match fields.append(name, value.as_bytes()) {
            // Browsers drop the headers a page may not set (Host, Connection,
            // ...) without a word; so do we.
            Ok(()) | Err(HeaderError::Forbidden) => {}
            Err(_) => return Err(format!("invalid header {name}: {value:?}")),
        }
    }
    let request = OutgoingRequest::new(fields);
    request.set_method(&method_of(method)).map_err(|()| format!("invalid method {method}"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| "invalid scheme".to_owned())?;
    request.set_authority(Some(&authority)).map_err(|()| format!("invalid host {authority}"))?;
    request.set_path_with_query(Some(&path)).map_err(|()| format!("invalid path {path}"))?;
    let outgoing_body = match body {
        Some(_) => Some(request.body().map_err(|()| "the request body was already taken".to_owned())?),
        None => None,
    };
    // Handed over before the body is written: the host reads the body while
    // it is being written, and writes would stall with nobody reading.
    let future = outgoing_handler::handle(request, None).map_err(|code| describe(&code))?;
    if let (Some(outgoing_body), Some(bytes)) = (outgoing_body, body) {
        write_body(outgoing_body, bytes);
    }

    // SAFETY: single-threaded component instance.
    let id = unsafe {
        let id = NEXT_ID;
        NEXT_ID = NEXT_ID.wrapping_add(1).max(1);
        id
    };
    in_flight().push(InFlight { id, state: State::Waiting(future) });
    Ok(id)
}

/// Writes the whole body. A write fails only when the host stopped reading
/// (the request was refused or failed); the response future then says why,
/// so the write error itself is dropped.
fn write_body(outgoing_body: OutgoingBody, bytes: &[u8]) {
    if let Ok(stream) = outgoing_body.write() {
        // 4096 bytes is the most one blocking-write-and-flush may take.
        let written = bytes.chunks(4096).all(|chunk| stream.blocking_write_and_flush(chunk).is_ok());
        drop(stream);
        if written {
            let _ = OutgoingBody::finish(outgoing_body, None);
        }
    }
}

fn method_of(method: &str) -> Method {
    match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    }
}

/// Forgets a request (its signal aborted): dropping the future tells the
/// host to stop.
pub fn cancel(id: u32) {
    in_flight().retain(|entry| entry.id != id);
}

/// Blocks until at least one request finished or `timeout_ms` passed
/// (`None`: no timeout), and returns what finished.
pub fn wait(timeout_ms: Option<f64>) -> Vec<Completion> {
    let mut finished = Vec::new();
    loop {
        let requests = in_flight();
        let mut index = 0;
        while index < requests.len() {
            match advance(&mut requests[index]) {
                Some(done) => {
                    finished.push(done);
                    requests.remove(index);
                }
                None => index += 1,
            }
        }
        if !finished.is_empty() || requests.is_empty() {
            return finished;
        }
        let mut pollables: Vec<Pollable> = requests.iter().map(subscribe).collect();
        let timer = timeout_ms.map(|ms| {
            pollables.push(monotonic_clock::subscribe_duration((ms.max(0.0) * 1_000_000.0) as u64));
            pollables.len() - 1
        });
        let ready = poll::poll(&pollables.iter().collect::<Vec<_>>());
        drop(pollables);
        if timer.is_some_and(|timer| ready.contains(&(timer as u32))) {
            return finished;
        }
    }
}

fn subscribe(entry: &InFlight) -> Pollable {
    match &entry.state {
        State::Waiting(future) => future.subscribe(),
        State::Reading { stream: Some(stream), .. } => stream.subscribe(),
        State::Reading { stream: None, .. } => monotonic_clock::subscribe_duration(0),
    }
}

/// Moves a request as far as it can go without blocking.
fn advance(entry: &mut InFlight) -> Option<Completion> {
    let id = entry.id;
    let failed = |message: String| Some(Completion::Failed { id, message });
    if let State::Waiting(future) = &entry.state {
        let response = match future.get()? {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => return failed(describe(&code)),
            Err(()) => return failed("the response was already taken".into()),
        };
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let status = response.status();
        let Ok(body) = response.consume() else { return failed("the response body was already taken".into()) };
        let Ok(stream) = body.stream() else { return failed("the response body was already taken".into()) };
        entry.state = State::Reading { status, headers, stream: Some(stream), body: Some(body), bytes: Vec::new() };
    }
    let State::Reading { status, headers, stream, body, bytes } = &mut entry.state else { unreachable!() };
    loop {
        let read = stream.as_ref()?.read(64 * 1024);
        match read {
            Ok(chunk) if chunk.is_empty() => return None,
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => {
                drop(stream.take());
                if let Some(body) = body.take() {
                    drop(IncomingBody::finish(body));
                }
                return Some(Completion::Response {
                    id,
                    status: *status,
                    headers: std::mem::take(headers),
                    body: std::mem::take(bytes),
                });
            }
            Err(StreamError::LastOperationFailed(error)) => {
                let message = match crate::wasi::http::types::http_error_code(&error) {
                    Some(code) => describe(&code),
                    None => error.to_debug_string(),
                };
                return failed(format!("reading the response body failed: {message}"));
            }
        }
    }
}

/// An error code in words for the function's author. The host puts its own
/// decisions (egress denied, limits, timeouts) in `internal-error` messages.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::InternalError(Some(message)) => message.clone(),
        ErrorCode::DnsTimeout => "the DNS lookup timed out".into(),
        ErrorCode::DnsError(_) => "the DNS lookup failed".into(),
        ErrorCode::DestinationNotFound => "the host was not found".into(),
        ErrorCode::DestinationUnavailable => "the host is unavailable".into(),
        ErrorCode::DestinationIpProhibited => "the destination address is prohibited".into(),
        ErrorCode::DestinationIpUnroutable => "the destination address is unroutable".into(),
        ErrorCode::ConnectionRefused => "the connection was refused".into(),
        ErrorCode::ConnectionTerminated => "the connection was closed before the response was complete".into(),
        ErrorCode::ConnectionTimeout => "connecting timed out".into(),
        ErrorCode::ConnectionReadTimeout => "the server stopped sending".into(),
        ErrorCode::ConnectionWriteTimeout => "the server stopped receiving".into(),
        ErrorCode::TlsProtocolError => "the TLS handshake failed".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate is not valid".into(),
        ErrorCode::TlsAlertReceived(_) => "the server sent a TLS alert".into(),
        ErrorCode::HttpRequestDenied => "the request was denied".into(),
        ErrorCode::HttpResponseIncomplete => "the response was incomplete".into(),
        ErrorCode::HttpResponseTimeout => "the server did not answer in time".into(),
        ErrorCode::HttpProtocolError => "the server broke the HTTP protocol".into(),
        other => format!("{other:?}"),
    }
}
