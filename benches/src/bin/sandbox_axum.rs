//! The sandbox's own ceiling: hello world run in a fresh instance per
//! request, as edgefn runs it, behind a bare axum handler and nothing else —
//! no routing by function name, no identity or access policy, no execution
//! record, no trace, no metrics. What edgefn's throughput could reach if
//! everything the server does around the sandbox cost nothing
//! (`benches/load.sh` runs it next to edgefn and workerd). Its connections
//! are edgefn's (`edgefn_host::connection`), as are its sandbox and its
//! allocator (mimalloc).
//! Usage: sandbox_axum <listen address> [function source, default hello world]
//! With another source (an empty handler, say) it measures that function
//! alone, with the same instance life cycle.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use edgefn_host::sandbox::Sandbox;
use edgefn_host::sandbox::limits::Limits;
use edgefn_world::types::{Invocation, Request};
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Hello {
    sandbox: Sandbox,
    function: edgefn_benches::Function,
}

async fn run(State(hello): State<Arc<Hello>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = Request {
        method: method.to_string(),
        url: format!("http://localhost{uri}"),
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let invocation = Invocation { id: "bench".into(), function_name: "hello".into(), version: 1, caller: None, secret_names: Vec::new() };
    let execution = hello
        .sandbox
        .invoke(&hello.function.group, hello.function.bytecode.clone(), hello.function.module_state.clone(), request, invocation, &Limits::DEFAULT, Default::default(), &Default::default())
        .await;
    let response = match execution {
        Ok(execution) => match execution.result {
            Ok(response) => response,
            Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.message).into_response(),
        },
        Err(overloaded) => return (StatusCode::SERVICE_UNAVAILABLE, overloaded.to_string()).into_response(),
    };
    let mut built = Response::new(Body::from(response.body));
    *built.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            built.headers_mut().append(name, value);
        }
    }
    built
}

#[tokio::main]
async fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18094".into());
    let sandbox = edgefn_benches::sandbox().await;
    let source = match std::env::args().nth(2) {
        Some(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}")),
        None => edgefn_benches::HELLO_WORLD.to_owned(),
    };
    let function = edgefn_benches::compile(&sandbox, &source).await;
    let app = Router::new().route("/{*path}", any(run)).with_state(Arc::new(Hello { sandbox, function }));
    let listener = tokio::net::TcpListener::bind(&address).await.expect("binding");
    // With edgefn's own connections, whose responses leave in bursts under
    // load: this measures the sandbox, not how responses are written.
    let listener = edgefn_host::connection::BurstListener::new(listener, true);
    println!("sandbox behind bare axum listening on http://{address}");
    axum::serve(listener, app).await.unwrap();
}
