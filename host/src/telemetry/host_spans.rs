//! The spans the host times itself on every invocation: the request's server
//! span, `authorize`, `instance start` and `execute function`.
//!
//! They are built as the SDK's `SpanData` and handed to the OTLP exporter
//! when they end, without the SDK's `Span` (a boxed span behind a mutex, in
//! an `Arc` in a `Context`; the sampler; attributes set one lock at a time).
//! Every request makes these four: through the SDK they cost about 5K more
//! instructions per traced request, and with tracing off its no-op spans
//! still built their attributes, 7.5K (callgrind, benches/README.md). The
//! spans a capability makes (a query, a fetch, a secret read) are made only
//! when a function uses one: they keep the SDK, under the context
//! [`HostSpan::context`] gives them.
//!
//! Nothing is built when tracing is off, or when the caller's `traceparent`
//! asked not to sample; the trace id is then still the record's.

use super::TraceContext;
use super::otlp::SpanSink;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::SpanData;
use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::SystemTime;

/// The scope the SDK's tracer gives edgefn's other spans, so that all of
/// them are exported as one scope.
static SCOPE: LazyLock<InstrumentationScope> = LazyLock::new(|| InstrumentationScope::builder(super::traces::TRACER_NAME).build());

/// A span being timed; exported by [`HostSpan::end`].
#[derive(Debug)]
pub struct HostSpan {
    data: SpanData,
    sink: &'static SpanSink,
}

impl HostSpan {
    fn start(
        sink: &'static SpanSink,
        trace_id: TraceId,
        parent: Option<(SpanId, bool)>,
        name: Cow<'static, str>,
        kind: SpanKind,
        start: SystemTime,
        attributes: Vec<KeyValue>,
    ) -> HostSpan {
        let (parent_span_id, parent_span_is_remote) = parent.unwrap_or((SpanId::INVALID, false));
        HostSpan {
            data: SpanData {
                span_context: SpanContext::new(trace_id, new_span_id(), TraceFlags::SAMPLED, false, TraceState::NONE),
                parent_span_id,
                parent_span_is_remote,
                span_kind: kind,
                name,
                start_time: start,
                end_time: start,
                attributes,
                dropped_attributes_count: 0,
                events: Default::default(),
                links: Default::default(),
                status: Status::Unset,
                instrumentation_scope: SCOPE.clone(),
            },
            sink,
        }
    }

    pub fn set_attribute(&mut self, attribute: KeyValue) {
        self.data.attributes.push(attribute);
    }

    /// Marks the span failed. `description` is exported: never a message
    /// that could quote a secret.
    pub fn set_error(&mut self, description: impl Into<Cow<'static, str>>) {
        self.data.status = Status::Error { description: description.into() };
    }

    /// An internal span under this one, started at `start`.
    pub fn child(&self, name: &'static str, start: SystemTime, attributes: Vec<KeyValue>) -> HostSpan {
        let parent = Some((self.data.span_context.span_id(), false));
        HostSpan::start(self.sink, self.data.span_context.trace_id(), parent, name.into(), SpanKind::Internal, start, attributes)
    }

    /// The context the SDK's spans made under this one start from.
    pub fn context(&self) -> Context {
        // A local parent in the SDK's terms: not a remote span, so children
        // are flagged as having a local parent.
        Context::new().with_remote_span_context(self.data.span_context.clone())
    }

    /// Ends the span now and exports it.
    pub fn end(self) {
        self.end_at(SystemTime::now());
    }

    pub fn end_at(mut self, end: SystemTime) {
        self.data.end_time = end;
        self.sink.export(self.data);
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
    /// gives its name and attributes, and is not called otherwise.
    pub fn start(trace: TraceContext, span: impl FnOnce() -> (Cow<'static, str>, Vec<KeyValue>)) -> InvocationTrace {
        InvocationTrace::start_with(super::traces::exporter(), trace, span)
    }

    fn start_with(
        sink: Option<&'static SpanSink>,
        trace: TraceContext,
        span: impl FnOnce() -> (Cow<'static, str>, Vec<KeyValue>),
    ) -> InvocationTrace {
        let request = sink.filter(|_| trace.sampled).map(|sink| {
            let (name, attributes) = span();
            let parent = trace.parent_span_id.map(|id| (SpanId::from_bytes(id), true));
            HostSpan::start(sink, TraceId::from_bytes(trace.trace_id), parent, name, SpanKind::Server, SystemTime::now(), attributes)
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

    /// An internal span under the server span, when it is recorded;
    /// `attributes` is not called otherwise.
    pub fn child(&self, name: &'static str, start: SystemTime, attributes: impl FnOnce() -> Vec<KeyValue>) -> Option<HostSpan> {
        self.request.as_ref().map(|request| request.child(name, start, attributes()))
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

    fn sink() -> &'static SpanSink {
        Box::leak(Box::new(SpanSink::detached()))
    }

    fn request_span() -> (Cow<'static, str>, Vec<KeyValue>) {
        ("GET /functions/v1/{name}".into(), vec![KeyValue::new("faas.name", "hello")])
    }

    #[test]
    fn a_callers_traceparent_is_the_server_spans_remote_parent() {
        let incoming = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let trace = InvocationTrace::start_with(Some(sink()), incoming, request_span);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let request = trace.request.as_ref().unwrap();
        assert_eq!(request.data.parent_span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(request.data.parent_span_is_remote);
        assert_eq!(request.data.span_kind, SpanKind::Server);
        assert_eq!(request.data.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");

        let child = trace.child("authorize", SystemTime::now(), Vec::new).unwrap();
        assert_eq!(child.data.parent_span_id, request.data.span_context.span_id());
        assert!(!child.data.parent_span_is_remote);
        assert_ne!(child.data.span_context.span_id(), request.data.span_context.span_id());

        // The SDK's spans under a host span see a sampled, local parent.
        let cx = child.context();
        let parent = cx.span().span_context().clone();
        assert_eq!(parent.span_id(), child.data.span_context.span_id());
        assert!(parent.is_sampled() && !parent.is_remote());

        let sink = trace.request.as_ref().unwrap().sink;
        child.end();
        trace.end(|request| request.set_attribute(KeyValue::new("http.response.status_code", 200)));
        assert_eq!(sink.queued(), 2, "both spans were exported");
    }

    #[test]
    fn nothing_is_recorded_when_the_caller_does_not_sample_or_tracing_is_off() {
        let unsampled = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let mut built = false;
        let trace = InvocationTrace::start_with(Some(sink()), unsampled, || {
            built = true;
            request_span()
        });
        assert!(!built && trace.request.is_none() && trace.child("authorize", SystemTime::now(), Vec::new).is_none());
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
}
