//! OpenTelemetry traces: an in-process OTLP receiver (HTTP/protobuf and
//! gRPC) decodes what edgefn exports and checks the span names, their
//! parent/child structure, the HTTP and FaaS attributes, that a caller's
//! `traceparent` is joined, and that no secret value is ever exported.

mod common;

use common::TestServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "tr4ce-s3cret-value-never-exported";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
/// `Span.flags` bits that say whether a span's parent is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;
const PARENT_FLAGS: u32 = HAS_IS_REMOTE | IS_REMOTE;

/// What the receiver got: decoded spans, raw bodies, and request headers.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    headers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Received {
    fn take(&self, request: &ExportTraceServiceRequest, raw: &[u8]) {
        self.raw.lock().unwrap().extend_from_slice(raw);
        let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| s.spans.iter().cloned());
        self.spans.lock().unwrap().extend(spans);
    }

    /// The spans of one trace, once its server span has arrived.
    async fn trace(&self, trace_id: &str) -> Vec<Span> {
        for _ in 0..200 {
            let spans: Vec<Span> =
                self.spans.lock().unwrap().iter().filter(|s| hex(&s.trace_id) == trace_id).cloned().collect();
            // The server span ends last: once it is here, its children are too.
            if spans.iter().any(|s| s.name == "POST /functions/v1/{name}") {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no server span for trace {trace_id} within 10 s");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn string(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(AnyValue::StringValue(s)) => s,
        other => panic!("{}: attribute {key} is {other:?}", span.name),
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!("no span {name:?} in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
    })
}

async fn serve_http(received: Received) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
                received.take(&request, &body);
                received.headers.lock().unwrap().extend(
                    headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())),
                );
                ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

struct GrpcCollector(Received);

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        self.0.take(&request, &request.encode_to_vec());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn serve_grpc(received: Received) -> String {
    let app = axum::Router::new().fallback_service(TraceServiceServer::new(GrpcCollector(received)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// A server exporting to `endpoint`, with the traced function deployed.
async fn traced_server(endpoint: &str, protocol: &str) -> TestServer {
    let server = TestServer::start_with(&[
        "--otlp-endpoint",
        endpoint,
        "--otlp-protocol",
        protocol,
        "--otlp-batch-delay-ms",
        "100",
        "--otlp-header",
        "x-collector-key=k-123",
        "--jaeger-ui-url",
        "http://jaeger.test:16686/",
        "--egress-allow-internal",
        "127.0.0.1",
    ])
    .await;
    let table = json!({"name": "items", "rls_enabled": false, "columns": [{"name": "id", "type": "integer", "primary_key": true}]});
    assert_eq!(server.send(server.admin(Method::POST, "/tables").json(&table)).await.status, StatusCode::CREATED);
    assert_eq!(server.set_secret("TRACE_TOKEN", SECRET).await.status, StatusCode::CREATED);
    server.deploy_with_grants("traced", &common::fixture_source("traced"), &["TRACE_TOKEN"]).await;
    server
}

#[tokio::test]
async fn spans_over_http_join_the_callers_trace_and_carry_faas_attributes() {
    let received = Received::default();
    let endpoint = serve_http(received.clone()).await;
    let server = traced_server(&endpoint, "http/protobuf").await;

    // An upstream service the first invocation calls; it keeps the
    // traceparent it was sent.
    let upstream_traceparent = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = upstream_traceparent.clone();
    let upstream = axum::Router::new().route(
        "/hook",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            *seen.lock().unwrap() = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, upstream).await.unwrap() });

    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let call = |path: String| server.send(server.function(Method::POST, &path).header("traceparent", &traceparent));
    let first = call(format!("traced?upstream={upstream_url}%3Fsecret%3Dq")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let second = call("traced".into()).await;
    let failed = call("traced?fail=1".into()).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);

    // Three invocations, one trace (the caller's); wait for all three.
    let mut spans = received.trace(CALLER_TRACE).await;
    for _ in 0..100 {
        if spans.iter().filter(|s| s.name == "POST /functions/v1/{name}").count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        spans = received.trace(CALLER_TRACE).await;
    }
    let invocation = |reply: &common::Reply| reply.header("x-edgefn-invocation-id").unwrap().to_owned();
    let server_span = |id: &str| {
        spans
            .iter()
            .find(|s| s.name == "POST /functions/v1/{name}" && string(s, "faas.invocation_id") == id)
            .unwrap_or_else(|| panic!("no server span for invocation {id}"))
            .clone()
    };

    let root = server_span(&invocation(&first));
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN, "joined the caller's span");
    assert_eq!(root.flags & PARENT_FLAGS, HAS_IS_REMOTE | IS_REMOTE, "the caller's span is a remote parent");
    assert_eq!(root.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(string(&root, "faas.name"), "traced");
    assert_eq!(string(&root, "faas.version"), "1");
    assert_eq!(string(&root, "http.request.method"), "POST");
    assert_eq!(string(&root, "http.route"), "/functions/v1/{name}");
    assert_eq!(attribute(&root, "http.response.status_code"), Some(AnyValue::IntValue(200)));
    assert_eq!(attribute(&root, "faas.coldstart"), Some(AnyValue::BoolValue(true)));
    assert_eq!(attribute(&server_span(&invocation(&second)), "faas.coldstart"), Some(AnyValue::BoolValue(false)));

    // Children of the request, then of the JS execution.
    let children: Vec<Span> = spans.iter().filter(|s| s.parent_span_id == root.span_id).cloned().collect();
    let authorize = named(&children, "authorize");
    assert_eq!(string(authorize, "edgefn.policy"), "public");
    named(&children, "instance start");
    let execute = named(&children, "execute function");
    assert_eq!(string(execute, "edgefn.outcome"), "ok");
    let work: Vec<Span> = spans.iter().filter(|s| s.parent_span_id == execute.span_id).cloned().collect();
    let secret = named(&work, "secret read");
    assert_eq!(string(secret, "edgefn.secret.name"), "TRACE_TOKEN");
    let query = named(&work, "SELECT items");
    assert_eq!(query.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(query.flags & PARENT_FLAGS, HAS_IS_REMOTE, "the execution span is a local parent");
    assert_eq!(string(query, "db.system.name"), "sqlite");
    assert_eq!(string(query, "db.collection.name"), "items");
    // The outbound call: a client span whose id the upstream received.
    let outbound = named(&work, "GET");
    assert_eq!(outbound.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(string(outbound, "http.request.method"), "GET");
    assert_eq!(string(outbound, "server.address"), "127.0.0.1");
    assert_eq!(string(outbound, "url.full"), upstream_url, "no query string in the span");
    assert_eq!(attribute(outbound, "http.response.status_code"), Some(AnyValue::IntValue(200)));
    let sent = upstream_traceparent.lock().unwrap().clone().expect("the upstream got a traceparent");
    assert_eq!(sent, format!("00-{CALLER_TRACE}-{}-01", hex(&outbound.span_id)), "the upstream continues the client span");
    for span in [authorize, execute, secret, query, outbound] {
        assert!(span.start_time_unix_nano >= root.start_time_unix_nano && span.end_time_unix_nano <= root.end_time_unix_nano, "{} inside the request", span.name);
    }

    let failed_root = server_span(&invocation(&failed));
    assert_eq!(attribute(&failed_root, "http.response.status_code"), Some(AnyValue::IntValue(500)));
    assert_eq!(failed_root.status.as_ref().map(|s| s.code), Some(2), "STATUS_CODE_ERROR");

    // The secret's value was thrown in an error: it reached no span.
    let raw = received.raw.lock().unwrap().clone();
    assert!(!raw.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "a secret value was exported");
    assert!(received.headers.lock().unwrap().iter().any(|(k, v)| k == "x-collector-key" && v == "k-123"));

    // The record knows its trace and links to it in Jaeger.
    let record = server.execution(&invocation(&first)).await;
    assert_eq!(record["trace_id"], CALLER_TRACE);
    assert_eq!(record["trace_url"], format!("http://jaeger.test:16686/trace/{CALLER_TRACE}"));
}

#[tokio::test]
async fn spans_over_grpc_start_a_trace_the_record_names() {
    let received = Received::default();
    let endpoint = serve_grpc(received.clone()).await;
    let server = traced_server(&endpoint, "grpc").await;
    // A caller that decided not to sample: its trace goes on (in the
    // record), but no span of it is exported.
    let unsampled = server
        .send(server.function(Method::POST, "traced").header("traceparent", format!("00-{UNSAMPLED_TRACE}-{CALLER_SPAN}-00")))
        .await;
    assert_eq!(unsampled.status, StatusCode::OK, "{}", unsampled.text());
    assert_eq!(server.execution(unsampled.header("x-edgefn-invocation-id").unwrap()).await["trace_id"], UNSAMPLED_TRACE);
    let reply = server.send(server.function(Method::POST, "traced")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    let trace_id = record["trace_id"].as_str().unwrap().to_owned();
    let spans = received.trace(&trace_id).await;
    let root = named(&spans, "POST /functions/v1/{name}");
    assert!(root.parent_span_id.is_empty(), "a new trace has no parent");
    let execute = named(&spans, "execute function");
    assert_eq!(execute.parent_span_id, root.span_id);
    assert_eq!(execute.flags & PARENT_FLAGS, HAS_IS_REMOTE, "a local parent");
    assert!(spans.iter().any(|s| s.name == "SELECT items" && s.parent_span_id == execute.span_id));
    // Spans are sent in the order they end: the unsampled request's would
    // have come no later than these.
    assert!(
        !received.spans.lock().unwrap().iter().any(|s| hex(&s.trace_id) == UNSAMPLED_TRACE),
        "a span of the unsampled trace was exported"
    );
}
