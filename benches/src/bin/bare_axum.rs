//! The ceiling: a bare axum handler returning the same bytes as the
//! hello-world function, with no sandbox at all.
//! Usage: bare_axum <listen address>

use axum::Router;
use axum::http::header;
use axum::routing::any;

#[tokio::main]
async fn main() {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".into());
    let app = Router::new().route(
        "/{*path}",
        any(|| async { ([(header::CONTENT_TYPE, "text/plain")], "Hello, world!\n") }),
    );
    let listener = tokio::net::TcpListener::bind(&address).await.expect("binding");
    println!("bare axum listening on http://{address}");
    axum::serve(listener, app).await.unwrap();
}
