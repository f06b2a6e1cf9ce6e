//! The sandbox's spans: `instance start` (drawn after the fact from its
//! measured interval) and `execute function`, the parent of every span a
//! capability makes while the function runs.

use super::{ExecutionError, Outcome};
use crate::telemetry::traces::tracer;
use opentelemetry::trace::{Span, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use std::time::SystemTime;

/// Records `instance start` from `started` to now and starts the execution
/// span, both under `parent`; returns the execution span's context.
pub(super) fn started(parent: &Context, started: SystemTime) -> Context {
    let tracer = tracer();
    tracer.span_builder("instance start").with_start_time(started).start_with_context(tracer, parent).end();
    let span = tracer.span_builder("execute function").start_with_context(tracer, parent);
    parent.with_span(span)
}

/// Ends the execution span with what stopped it. The error's kind is named,
/// never its message: a message can quote a secret.
pub(super) fn finished<T>(cx: &Context, outcome: Outcome, result: &Result<T, ExecutionError>, fuel: u64) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("edgefn.outcome", outcome.as_str()));
    span.set_attribute(KeyValue::new("edgefn.fuel_consumed", i64::try_from(fuel).unwrap_or(i64::MAX)));
    if let Err(error) = result {
        span.set_attribute(KeyValue::new("error.type", error.error));
        span.set_status(Status::error(error.error));
    }
    span.end();
}
