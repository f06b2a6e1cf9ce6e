use super::*;
use super::transport::http_traces_endpoint;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::SpanExporter;
use opentelemetry::trace::{Link, SpanContext, TraceContextExt, TraceFlags, TraceId, Tracer, TracerProvider};
use opentelemetry::{Context, StringValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SdkTracerProvider, SimpleSpanProcessor};
use prost::Message as _;
use std::sync::{Arc, Mutex};

/// Keeps what the SDK hands an exporter.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// Spans made through the real SDK, with every kind of field filled in.
fn sample_spans() -> (Resource, Vec<SpanData>) {
    let collected = Collected::default();
    let resource = Resource::builder()
        .with_service_name("edgefn")
        .with_attributes([KeyValue::new("service.version", "1.2.3"), KeyValue::new("faas.instance", "42")])
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(collected.clone()))
        .with_resource(resource.clone())
        .build();
    let tracer = provider.tracer("edgefn");
    let remote = SpanContext::new(
        TraceId::from_bytes(*b"0123456789abcdef"),
        SpanId::from_bytes(*b"parent!!"),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "x1")]).unwrap(),
    );
    let parent = Context::new().with_remote_span_context(remote.clone());
    let mut server = tracer
        .span_builder("POST /functions/v1/{name}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.path", String::from("/functions/v1/hello")),
            KeyValue::new("http.response.status_code", 0_i64),
            KeyValue::new("negative", -7_i64),
            KeyValue::new("faas.coldstart", false),
            KeyValue::new("ratio", 0.25),
            KeyValue::new("", "an empty key"),
            KeyValue::new("empty", ""),
            KeyValue::new("strings", Value::Array(Array::String(vec![StringValue::from("a"), StringValue::from("")]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, 0]))),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![1.5]))),
        ])
        .with_links(vec![Link::new(remote.clone(), vec![KeyValue::new("link.kind", "follows")], 0)])
        .start_with_context(&tracer, &parent);
    opentelemetry::trace::Span::add_event(&mut server, "retry", vec![KeyValue::new("attempt", 2_i64)]);
    opentelemetry::trace::Span::set_status(&mut server, Status::error("boom"));
    let cx = parent.with_span(server);
    let mut child = tracer.span_builder("execute function").start_with_context(&tracer, &cx);
    opentelemetry::trace::Span::set_status(&mut child, Status::Ok);
    opentelemetry::trace::Span::end(&mut child);
    tracer.span_builder("instance start").with_kind(SpanKind::Client).start_with_context(&tracer, &cx);
    cx.span().end();
    let other = provider.tracer_with_scope(
        InstrumentationScope::builder("other").with_version("0.1").with_schema_url("https://example.com/s").build(),
    );
    opentelemetry::trace::Span::end(&mut other.start("in another scope"));
    provider.shutdown().unwrap();
    let spans = collected.0.lock().unwrap().clone();
    assert_eq!(spans.len(), 4);
    (resource, spans)
}

/// The spans encoded and framed as the processor would send them.
fn encode(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let mut scratch = Scratch::default();
    let mut pending = Pending::default();
    for span in spans {
        pending.push(&span.instrumentation_scope, scratch.encode(span));
    }
    encode_request(resource, &pending.scopes)
}

fn sorted(mut resource_spans: Vec<ResourceSpans>) -> Vec<ResourceSpans> {
    for r in &mut resource_spans {
        r.scope_spans.sort_by(|a, b| a.scope.as_ref().map(|s| &s.name).cmp(&b.scope.as_ref().map(|s| &s.name)));
    }
    resource_spans
}

#[test]
fn batches_decode_to_what_opentelemetry_proto_would_send() {
    let (resource, spans) = sample_spans();
    let encoded = encode(&resource, &spans);
    let decoded = ExportTraceServiceRequest::decode(encoded.as_slice()).expect("valid OTLP protobuf");
    let reference = group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(&resource));
    assert_eq!(sorted(decoded.resource_spans), sorted(reference));
}

#[test]
fn an_empty_batch_is_a_valid_request() {
    let encoded = encode(&Resource::builder_empty().build(), &[]);
    let decoded = ExportTraceServiceRequest::decode(encoded.as_slice()).unwrap();
    assert!(decoded.resource_spans.iter().all(|r| r.scope_spans.is_empty()));
}

#[test]
fn http_endpoints_get_the_traces_path_once() {
    assert_eq!(http_traces_endpoint("http://localhost:4318"), "http://localhost:4318/v1/traces");
    assert_eq!(http_traces_endpoint("http://localhost:4318/"), "http://localhost:4318/v1/traces");
    assert_eq!(http_traces_endpoint("https://otel.example.com/v1/traces"), "https://otel.example.com/v1/traces");
}

/// An OTLP/HTTP receiver in this process; returns its endpoint and what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            keep.lock().unwrap().push(ExportTraceServiceRequest::decode(body).expect("OTLP protobuf"));
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, received)
}

fn span_names(received: &Mutex<Vec<ExportTraceServiceRequest>>) -> Vec<String> {
    let requests = received.lock().unwrap();
    let spans = requests.iter().flat_map(|r| &r.resource_spans).flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
    spans.map(|s| s.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_sends_full_batches_at_once_and_the_rest_at_shutdown() {
    use crate::telemetry::traces::{OtlpConfig, OtlpProtocol};
    let (endpoint, received) = receiver().await;
    let config = OtlpConfig { endpoint, protocol: OtlpProtocol::HttpProtobuf, headers: Vec::new(), batch_delay: Duration::from_secs(3600) };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(OtlpSpanProcessor::start(&config).unwrap())
        .with_resource(Resource::builder().with_service_name("edgefn-test").build())
        .build();
    let tracer = provider.tracer("edgefn");

    // A full batch goes without waiting for the (hour-long) delay.
    for _ in 0..BATCH_SPANS {
        opentelemetry::trace::Span::end(&mut tracer.start("batched"));
    }
    for _ in 0..100 {
        if span_names(&received).len() == BATCH_SPANS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(span_names(&received).len(), BATCH_SPANS, "a full batch was sent");

    // What is left when the provider shuts down is sent before it returns.
    for name in ["one", "two", "three"] {
        opentelemetry::trace::Span::end(&mut tracer.start(name));
    }
    tokio::task::spawn_blocking(move || provider.shutdown()).await.unwrap().unwrap();
    let names = span_names(&received);
    assert_eq!(names[BATCH_SPANS..], ["one", "two", "three"]);
    let requests = received.lock().unwrap();
    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"), "the provider's resource is sent");
}
