//! How an encoded batch reaches the collector: `POST /v1/traces` over
//! HTTP/protobuf (reqwest), or the `TraceService/Export` call over gRPC
//! (tonic, with a codec that passes the encoded bytes through).

use crate::telemetry::traces::{OtlpConfig, OtlpProtocol};
use bytes::{Buf, BufMut, Bytes};
use std::time::Duration;

/// Longest an export may take before it counts as failed.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The gRPC method OTLP/gRPC collectors serve.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How a batch reaches the collector.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `POST <endpoint>` with a protobuf body.
    Http { client: reqwest::Client, endpoint: String, headers: reqwest::header::HeaderMap },
    /// A unary call on one HTTP/2 connection, made when first needed.
    Grpc { channel: tonic::transport::Channel, metadata: tonic::metadata::MetadataMap },
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the collector could not be reached: {0}")]
    Unreachable(String),
    #[error("the collector refused the spans with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the collector refused the spans: gRPC status {code:?}: {message}")]
    GrpcRefused { code: tonic::Code, message: String },
}

impl Transport {
    /// The transport `config` asks for; must be called within the server's
    /// runtime (a gRPC channel starts its connection task there).
    pub fn new(config: &OtlpConfig) -> anyhow::Result<Transport> {
        Ok(match config.protocol {
            OtlpProtocol::HttpProtobuf => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (name, value) in &config.headers {
                    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| anyhow::anyhow!("invalid OTLP header name {name:?}"))?;
                    let value = reqwest::header::HeaderValue::from_str(value)
                        .map_err(|_| anyhow::anyhow!("invalid value for OTLP header {name}"))?;
                    headers.insert(name, value);
                }
                headers.insert(reqwest::header::CONTENT_TYPE, reqwest::header::HeaderValue::from_static("application/x-protobuf"));
                let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
                Transport::Http { client, endpoint: http_traces_endpoint(&config.endpoint), headers }
            }
            OtlpProtocol::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (name, value) in &config.headers {
                    let name = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                        .map_err(|_| anyhow::anyhow!("invalid OTLP header name {name:?}"))?;
                    let value = value.parse().map_err(|_| anyhow::anyhow!("invalid value for OTLP header {name}"))?;
                    metadata.insert(name, value);
                }
                let channel = tonic::transport::Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|e| anyhow::anyhow!("invalid OTLP endpoint {:?}: {e}", config.endpoint))?
                    .timeout(EXPORT_TIMEOUT)
                    .connect_lazy();
                Transport::Grpc { channel, metadata }
            }
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest`.
    pub async fn send(&self, body: Bytes) -> Result<(), ExportError> {
        let answer = match self {
            Transport::Http { client, endpoint, headers } => {
                let response = client
                    .post(endpoint)
                    .headers(headers.clone())
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| ExportError::Unreachable(e.to_string()))?;
                let status = response.status();
                let answer = response.bytes().await.map_err(|e| ExportError::Unreachable(e.to_string()))?;
                if !status.is_success() {
                    let body = String::from_utf8_lossy(&answer[..answer.len().min(512)]).into_owned();
                    return Err(ExportError::Refused { status: status.as_u16(), body });
                }
                answer
            }
            Transport::Grpc { channel, metadata } => {
                let mut client = tonic::client::Grpc::new(channel.clone());
                client.ready().await.map_err(|e| ExportError::Unreachable(e.to_string()))?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                request.set_timeout(EXPORT_TIMEOUT);
                let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH);
                match client.unary(request, path, PreEncoded).await {
                    Ok(response) => response.into_inner(),
                    Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                        return Err(ExportError::Unreachable(status.message().to_owned()));
                    }
                    Err(status) => {
                        return Err(ExportError::GrpcRefused { code: status.code(), message: status.message().to_owned() });
                    }
                }
            }
        };
        report_partial_success(&answer);
        Ok(())
    }
}

/// A collector that took the request but rejected some spans says so in
/// the response; that is logged, as the exporter cannot do better.
fn report_partial_success(answer: &[u8]) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    let Ok(response) = ExportTraceServiceResponse::decode(answer) else { return };
    if let Some(partial) = response.partial_success.filter(|p| p.rejected_spans > 0 || !p.error_message.is_empty()) {
        tracing::warn!(rejected_spans = partial.rejected_spans, message = %partial.error_message, "the OTLP collector rejected some spans");
    }
}

/// OTLP/HTTP sends traces to `/v1/traces`; a bare collector address gets it.
pub(super) fn http_traces_endpoint(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let has_path = trimmed.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
    if has_path { trimmed.to_owned() } else { format!("{trimmed}/v1/traces") }
}

/// A gRPC codec for a request already encoded by [`encode_request`], whose
/// response is kept as bytes.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl tonic::codec::Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }

    fn decoder(&mut self) -> PreEncoded {
        PreEncoded
    }
}

impl tonic::codec::Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

