//! Observability beyond the execution records (`crate::executions`): the
//! W3C trace context an invocation runs under, and Prometheus metrics.

pub mod metrics;
pub mod trace_context;

pub use metrics::Metrics;
pub use trace_context::TraceContext;
