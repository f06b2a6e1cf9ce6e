//! Observability beyond the execution records (`crate::executions`): the
//! W3C trace context an invocation runs under, OpenTelemetry traces exported
//! over OTLP, and Prometheus metrics.

pub mod host_spans;
pub mod metrics;
mod otlp;
pub mod trace_context;
pub mod traces;

pub use host_spans::{HostSpan, InvocationTrace};
pub use metrics::Metrics;
pub use trace_context::TraceContext;
