//! OpenTelemetry traces, exported over OTLP (gRPC or HTTP/protobuf) when an
//! endpoint is configured; off by default, and then no span is built.
//!
//! The spans of one invocation:
//! `<METHOD> /functions/v1/{name}` (server; FaaS and HTTP attributes, the
//! caller's `traceparent` as its parent) → `authorize` (identity and policy),
//! `instance start`, `execute function` → one span per database query, per
//! outbound request and per secret read (its name only). The first four are
//! the host's own (`super::host_spans`); the capabilities' spans are made
//! with the SDK's tracer below.
//!
//! Invariant: spans carry names, ids, sizes and outcomes, never a value a
//! function or caller supplied that could be secret: no secret values, no
//! request or response bodies, no console text, no exception messages (they
//! can quote secrets; the execution record has them, redacted).

use super::otlp::SpanSink;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry::global::BoxedTracer;
use std::sync::OnceLock;
use std::time::Duration;

/// The instrumentation scope of every edgefn span.
pub const TRACER_NAME: &str = "edgefn";

/// The scope of every edgefn span: the SDK's tracer gives its spans this
/// one, and the host's own spans are exported under it too.
pub(super) static SCOPE: std::sync::LazyLock<opentelemetry::InstrumentationScope> =
    std::sync::LazyLock::new(|| opentelemetry::InstrumentationScope::builder(TRACER_NAME).build());

/// The tracer, taken from the global provider once rather than on every
/// span (each take locks the provider and boxes a new tracer).
static TRACER: OnceLock<BoxedTracer> = OnceLock::new();

/// The exporter's own way in, for the spans the host builds itself
/// (`super::host_spans`); set with [`TRACER`] when the exporter starts.
static EXPORTER: OnceLock<SpanSink> = OnceLock::new();

/// Where the host's own spans go, when spans are exported.
pub(super) fn exporter() -> Option<&'static SpanSink> {
    EXPORTER.get()
}

/// The tracer the capabilities' spans are made with: the exporter's when
/// [`Traces::start`] installed one, a no-op otherwise.
pub fn tracer() -> &'static BoxedTracer {
    TRACER.get_or_init(|| opentelemetry::global::tracer(TRACER_NAME))
}

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (the collector's port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The collector's address, e.g. `http://localhost:4317`.
    pub endpoint: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// Headers (gRPC metadata) sent with every export, e.g. an API key.
    pub headers: Vec<(String, String)>,
    /// Longest wait before a batch of spans is sent.
    pub batch_delay: Duration,
}

/// The exporter while the server runs; flushed and stopped by [`Traces::shutdown`].
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Installs a tracer provider exporting over OTLP (`super::otlp`) as the
    /// global one, or nothing when `config` is None. Runs inside the server's
    /// runtime: the exporter's sender is a task on it.
    pub fn start(config: Option<&OtlpConfig>) -> anyhow::Result<Traces> {
        let Some(config) = config else { return Ok(Traces { provider: None }) };
        let processor = super::otlp::OtlpSpanProcessor::start(config)?;
        let sink = processor.sink();
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("edgefn")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("service.instance.id", uuid::Uuid::now_v7().to_string()),
                KeyValue::new("faas.instance", std::process::id().to_string()),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            // A caller that decided not to sample is respected.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        TRACER.set(opentelemetry::global::tracer(TRACER_NAME)).map_err(|_| {
            anyhow::anyhow!("a span was made before the trace exporter started; its tracer would never export")
        })?;
        EXPORTER.set(sink).map_err(|_| anyhow::anyhow!("the trace exporter was started twice"))?;
        Ok(Traces { provider: Some(provider) })
    }

    /// Whether spans are exported.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends what is buffered and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = stopped {
                tracing::warn!(error = %e, "flushing traces at shutdown failed");
            }
        }
    }
}
