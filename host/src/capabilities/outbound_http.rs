//! `wasi:http/outgoing-handler`: outbound requests from functions.
//!
//! Invariant: nothing leaves the host unless an egress rule allows it. Rules
//! and SSRF checks arrive with the outbound HTTP capability; until then the
//! policy denies every request, which the guest sees as `HTTP request denied`.

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The egress policy of one invocation.
#[derive(Debug, Default)]
pub struct EgressPolicy;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
