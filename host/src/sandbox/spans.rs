//! The sandbox's spans: `instance start` (drawn after the fact from its
//! measured interval) and `execute function`, the parent of every span a
//! capability makes while the function runs.

use super::{ExecutionError, Outcome};
use crate::telemetry::{HostSpan, InvocationTrace};
use opentelemetry::Context;
use std::time::SystemTime;

/// Records `instance start` from `started` to now and starts the execution
/// span, both under the request's span when it is recorded. Returns the
/// execution span and the context the capabilities' spans start from.
pub(super) fn started(trace: &InvocationTrace, started: SystemTime) -> (Option<HostSpan>, Context) {
    let Some(instance) = trace.child("instance start", started) else {
        return (None, trace.unrecorded_context());
    };
    let now = SystemTime::now();
    instance.end_at(now);
    let execute = trace.child("execute function", now).expect("the request's span is recorded");
    let cx = execute.context();
    (Some(execute), cx)
}

/// Ends the execution span with what stopped it. The error's kind is named,
/// never its message: a message can quote a secret.
pub(super) fn finished<T>(mut span: HostSpan, outcome: Outcome, result: &Result<T, ExecutionError>, fuel: u64) {
    span.set_str("edgefn.outcome", outcome.as_str());
    span.set_i64("edgefn.fuel_consumed", i64::try_from(fuel).unwrap_or(i64::MAX));
    if let Err(error) = result {
        span.set_str("error.type", error.error);
        span.set_error(error.error);
    }
    span.end();
}
