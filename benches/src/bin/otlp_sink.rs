//! A local OTLP/HTTP receiver for the observability benchmark: accepts
//! `POST /v1/traces` (protobuf), counts requests and bytes, and reports them
//! at `GET /count`. It decodes nothing: the benchmark measures the exporting
//! side. Usage: `otlp_sink <listen address>`

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[tokio::main]
async fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4318".into());
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (r, b) = (requests.clone(), bytes.clone());
    let app = Router::new()
        .route(
            "/v1/traces",
            post(move |body: Bytes| {
                r.fetch_add(1, Ordering::Relaxed);
                b.fetch_add(body.len() as u64, Ordering::Relaxed);
                // An empty ExportTraceServiceResponse is zero bytes of protobuf.
                async { ([("content-type", "application/x-protobuf")], Vec::<u8>::new()) }
            }),
        )
        .route(
            "/count",
            get(move || {
                let (requests, bytes) = (requests.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
                async move { format!("{requests} {bytes}\n") }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&address).await.expect("binding the sink's address");
    axum::serve(listener, app).await.expect("serving");
}
