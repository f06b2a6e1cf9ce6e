//! The spans the host times itself on every invocation: the request's server
//! span, `authorize`, `instance start` and `execute function`.
//!
//! They are written as OTLP protobuf by the thread that ends them, straight
//! from what the host holds: each attribute is encoded as it is set, from
//! borrowed text, into one buffer per span. Through the SDK's `Span` (a boxed
//! span behind a mutex, in an `Arc` in a `Context`; the sampler; attributes
//! set one lock at a time) these four cost about 5K more instructions per
//! traced request. Building the SDK's `SpanData` for them (a `KeyValue` and
//! an owned copy for every attribute) cost 16.4K more than this per traced
//! request, and its larger struct, copied as the request's futures move,
//! cost even untraced requests 8.6K (callgrind, benches/README.md).
//!
//! The spans a capability makes (a query, a fetch, a secret read) are made
//! only when a function uses one: they keep the SDK, under the context
//! [`HostSpan::context`] gives them.
//!
//! Nothing is built when tracing is off, or when the caller's `traceparent`
//! asked not to sample; the trace id is then still the record's.

use super::TraceContext;
use super::otlp::{AttributeValue, HostSpanFields, SpanSink, push_span_attribute};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::borrow::Cow;
use std::time::SystemTime;

/// A span being timed; exported by [`HostSpan::end`].
#[derive(Debug)]
pub struct HostSpan {
    trace_id: TraceId,
    span_id: SpanId,
    /// The parent's id, and whether it is the caller's (remote).
    parent: Option<(SpanId, bool)>,
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    /// The attributes set so far, as encoded `Span.attributes` fields.
    attributes: Vec<u8>,
    /// The error status's description, once the span is marked failed.
    error: Option<Cow<'static, str>>,
    sink: &'static SpanSink,
}

/// Room for a span's attributes: the request span's eleven, with a short
/// path and an invocation id, take about 300 bytes.
const ATTRIBUTE_BYTES: usize = 384;

impl HostSpan {
    fn start(
        sink: &'static SpanSink,
        trace_id: TraceId,
        parent: Option<(SpanId, bool)>,
        name: Cow<'static, str>,
        kind: SpanKind,
        start: SystemTime,
    ) -> HostSpan {
        HostSpan {
            trace_id,
            span_id: new_span_id(),
            parent,
            name,
            kind,
            start,
            attributes: Vec::with_capacity(ATTRIBUTE_BYTES),
            error: None,
            sink,
        }
    }

    /// Sets a text attribute.
    pub fn set_str(&mut self, key: &str, value: &str) {
        push_span_attribute(&mut self.attributes, key, AttributeValue::Str(value));
    }

    /// Sets an integer attribute.
    pub fn set_i64(&mut self, key: &str, value: i64) {
        push_span_attribute(&mut self.attributes, key, AttributeValue::Int(value));
    }

    /// Sets a boolean attribute.
    pub fn set_bool(&mut self, key: &str, value: bool) {
        push_span_attribute(&mut self.attributes, key, AttributeValue::Bool(value));
    }

    /// Marks the span failed. `description` is exported: never a message
    /// that could quote a secret.
    pub fn set_error(&mut self, description: impl Into<Cow<'static, str>>) {
        self.error = Some(description.into());
    }

    /// An internal span under this one, started at `start`.
    pub fn child(&self, name: &'static str, start: SystemTime) -> HostSpan {
        HostSpan::start(self.sink, self.trace_id, Some((self.span_id, false)), name.into(), SpanKind::Internal, start)
    }

    /// The context the SDK's spans made under this one start from.
    pub fn context(&self) -> Context {
        // A local parent in the SDK's terms: not a remote span, so children
        // are flagged as having a local parent.
        let span = SpanContext::new(self.trace_id, self.span_id, TraceFlags::SAMPLED, false, TraceState::NONE);
        Context::new().with_remote_span_context(span)
    }

    /// Ends the span now and exports it.
    pub fn end(self) {
        self.end_at(SystemTime::now());
    }

    pub fn end_at(self, end: SystemTime) {
        self.sink.export_host(&HostSpanFields {
            trace_id: self.trace_id.to_bytes(),
            span_id: self.span_id.to_bytes(),
            parent: self.parent.map(|(id, remote)| (id.to_bytes(), remote)),
            name: &self.name,
            kind: self.kind,
            start: self.start,
            end,
            attributes: &self.attributes,
            error: self.error.as_deref(),
        });
    }
}

fn new_span_id() -> SpanId {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return SpanId::from(id);
        }
    }
}

/// One invocation's trace: its id (the record's) and, when it is recorded,
/// the request's server span that the others go under.
#[derive(Debug)]
pub struct InvocationTrace {
    trace: TraceContext,
    request: Option<HostSpan>,
}

impl Default for InvocationTrace {
    /// A new trace that records no spans.
    fn default() -> Self {
        InvocationTrace { trace: TraceContext::new_root(), request: None }
    }
}

impl InvocationTrace {
    /// Starts the request's server span under the caller's span (when it sent
    /// `traceparent`), if spans are exported and the caller samples; `span`
    /// sets its attributes and returns its name, and is not called otherwise.
    pub fn start(trace: TraceContext, span: impl FnOnce(&mut HostSpan) -> Cow<'static, str>) -> InvocationTrace {
        InvocationTrace::start_with(super::traces::exporter(), trace, span)
    }

    fn start_with(
        sink: Option<&'static SpanSink>,
        trace: TraceContext,
        span: impl FnOnce(&mut HostSpan) -> Cow<'static, str>,
    ) -> InvocationTrace {
        let request = sink.filter(|_| trace.sampled).map(|sink| {
            let parent = trace.parent_span_id.map(|id| (SpanId::from_bytes(id), true));
            let trace_id = TraceId::from_bytes(trace.trace_id);
            let mut request = HostSpan::start(sink, trace_id, parent, Cow::Borrowed(""), SpanKind::Server, SystemTime::now());
            request.name = span(&mut request);
            request
        });
        InvocationTrace { trace, request }
    }

    /// The trace id the execution record keeps, recorded or not.
    pub fn trace_id_hex(&self) -> String {
        self.trace.trace_id_hex()
    }

    /// The server span, when it is recorded.
    pub fn request_span(&mut self) -> Option<&mut HostSpan> {
        self.request.as_mut()
    }

    /// An internal span under the server span, when it is recorded.
    pub fn child(&self, name: &'static str, start: SystemTime) -> Option<HostSpan> {
        self.request.as_ref().map(|request| request.child(name, start))
    }

    /// Where the SDK's spans start from when no host span is recorded: the
    /// caller's span, so that its trace and its sampling decision carry on
    /// (into an outbound `traceparent`, say), or an empty context.
    pub fn unrecorded_context(&self) -> Context {
        match self.trace.parent_span_id {
            Some(parent) => {
                let flags = if self.trace.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
                let remote = SpanContext::new(
                    TraceId::from_bytes(self.trace.trace_id),
                    SpanId::from_bytes(parent),
                    flags,
                    true,
                    TraceState::NONE,
                );
                Context::new().with_remote_span_context(remote)
            }
            None => Context::new(),
        }
    }

    /// Ends the server span, after `finish` adds what the response decided.
    pub fn end(self, finish: impl FnOnce(&mut HostSpan)) {
        if let Some(mut request) = self.request {
            finish(&mut request);
            request.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::Status;
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use std::time::Duration;

    fn sink() -> &'static SpanSink {
        Box::leak(Box::new(SpanSink::detached()))
    }

    fn request_span(span: &mut HostSpan) -> Cow<'static, str> {
        span.set_str("faas.name", "hello");
        "GET /functions/v1/{name}".into()
    }

    #[test]
    fn a_callers_traceparent_is_the_server_spans_remote_parent() {
        let incoming = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let trace = InvocationTrace::start_with(Some(sink()), incoming, request_span);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let request = trace.request.as_ref().unwrap();
        assert_eq!(request.parent, Some((SpanId::from_hex("00f067aa0ba902b7").unwrap(), true)));
        assert_eq!(request.kind, SpanKind::Server);
        assert_eq!(request.name, "GET /functions/v1/{name}");
        assert_eq!(request.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");

        let child = trace.child("authorize", SystemTime::now()).unwrap();
        assert_eq!(child.parent, Some((request.span_id, false)));
        assert_eq!(child.trace_id, request.trace_id);
        assert_ne!(child.span_id, request.span_id);

        // The SDK's spans under a host span see a sampled, local parent.
        let cx = child.context();
        let parent = cx.span().span_context().clone();
        assert_eq!(parent.span_id(), child.span_id);
        assert!(parent.is_sampled() && !parent.is_remote());

        let sink = trace.request.as_ref().unwrap().sink;
        child.end();
        trace.end(|request| request.set_i64("http.response.status_code", 200));
        assert_eq!(sink.queued(), 2, "both spans were exported");
    }

    #[test]
    fn nothing_is_recorded_when_the_caller_does_not_sample_or_tracing_is_off() {
        let unsampled = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let mut built = false;
        let trace = InvocationTrace::start_with(Some(sink()), unsampled, |span| {
            built = true;
            request_span(span)
        });
        assert!(!built && trace.request.is_none() && trace.child("authorize", SystemTime::now()).is_none());
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // The caller's decision carries on to the capabilities' spans.
        let cx = trace.unrecorded_context();
        assert!(cx.span().span_context().is_remote() && !cx.span().span_context().is_sampled());

        let root = TraceContext::new_root();
        let off = InvocationTrace::start_with(None, root, request_span);
        assert!(off.request.is_none());
        assert_eq!(off.trace_id_hex(), root.trace_id_hex());
        assert!(!off.unrecorded_context().has_active_span());
    }

    /// The SDK's `SpanData` for what `span` holds, with `attributes` and `status`.
    fn as_span_data(span: &HostSpan, end: SystemTime, attributes: Vec<KeyValue>, status: Status) -> SpanData {
        let (parent_span_id, parent_span_is_remote) = span.parent.unwrap_or((SpanId::INVALID, false));
        SpanData {
            span_context: SpanContext::new(span.trace_id, span.span_id, TraceFlags::SAMPLED, false, TraceState::NONE),
            parent_span_id,
            parent_span_is_remote,
            span_kind: span.kind.clone(),
            name: span.name.clone(),
            start_time: span.start,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: super::super::traces::SCOPE.clone(),
        }
    }

    /// A host span is written byte for byte as the SDK's encoder (whose
    /// output the OTLP tests check against `opentelemetry-proto`) writes the
    /// same span as `SpanData`: every kind of attribute value, empty text,
    /// a remote and a local parent, an error status with and without text.
    #[test]
    fn host_spans_encode_as_the_same_span_data_does() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let end = start + Duration::from_micros(250);
        let incoming = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let path = String::from("/functions/v1/hello/a/much/longer/path/".repeat(4));
        let trace = InvocationTrace::start_with(Some(sink()), incoming, |span| {
            span.set_str("url.path", &path);
            span.set_str("empty", "");
            span.set_i64("http.response.status_code", 503);
            span.set_i64("negative", -7);
            span.set_i64("zero", 0);
            span.set_bool("faas.coldstart", false);
            span.set_bool("yes", true);
            "GET /functions/v1/{name}".into()
        });
        let request = trace.request.as_ref().unwrap();
        let request_attributes = vec![
            KeyValue::new("url.path", path.clone()),
            KeyValue::new("empty", ""),
            KeyValue::new("http.response.status_code", 503),
            KeyValue::new("negative", -7),
            KeyValue::new("zero", 0),
            KeyValue::new("faas.coldstart", false),
            KeyValue::new("yes", true),
        ];
        let mut child = request.child("execute function", start);
        child.set_str("edgefn.outcome", "error");
        child.set_error("uncaught exception");
        let mut quiet = request.child("authorize", start);
        quiet.set_error("");

        let cases = [
            (as_span_data(request, end, request_attributes, Status::Unset), request),
            (
                as_span_data(&child, end, vec![KeyValue::new("edgefn.outcome", "error")], Status::error("uncaught exception")),
                &child,
            ),
            (as_span_data(&quiet, end, Vec::new(), Status::error("")), &quiet),
        ];
        for (expected, span) in cases {
            // The same span, exported into a sink of its own.
            let from_host = sink();
            let copy = HostSpan {
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent: span.parent,
                name: span.name.clone(),
                kind: span.kind.clone(),
                start: span.start,
                attributes: span.attributes.clone(),
                error: span.error.clone(),
                sink: from_host,
            };
            copy.end_at(end);
            let from_sdk = SpanSink::detached();
            from_sdk.export(expected);
            assert_eq!(from_host.queued_bytes(), from_sdk.queued_bytes(), "{}", span.name);
        }
    }
}
