//! OTLP span export: a span processor for the OpenTelemetry SDK that encodes
//! each span when it ends and sends the encoded batches to the collector.
//!
//! Why not the SDK's `BatchSpanProcessor` with `opentelemetry-otlp`'s
//! exporter: that pipeline moves every finished span through a channel to a
//! thread of its own, which clones it into a tree of owned protobuf structs
//! (a `String` for every attribute key and value, a `Vec` for every id),
//! encodes that, and frees there what the request threads allocated. Measured
//! on hello world (benches/README.md), it cost more per request than the span
//! building itself. Here the thread that ends a span writes its protobuf once,
//! from borrowed data, into a buffer shared by all threads, and drops the
//! span where it was made; a task on the server's runtime sends the buffer.
//!
//! Spans, unlike execution records, may be lost: when the collector is slower
//! than spans are made, spans past [`MAX_QUEUED_SPANS`] are dropped and counted
//! in a warning, so that tracing never holds a request back.

mod encode;
mod transport;
#[cfg(test)]
mod tests;

use super::traces::OtlpConfig;
use bytes::Bytes;
use encode::{Scratch, ScopeSpans, encode_request};
pub use encode::{AttributeValue, HostSpanFields, push_span_attribute};
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use transport::Transport;

/// Spans that make a batch worth sending before the delay is up. Each
/// export costs both ends an HTTP request, so batches are large (measured
/// under hello-world load, the local receiver's CPU per invocation fell
/// from 1.3 µs at 512 spans a batch to 0.9 µs at 2048); at a few hundred
/// bytes a span, 2048 stay well under collectors' 4 MiB message limit.
const BATCH_SPANS: usize = 2048;
/// Spans waiting to be sent, at most; past this they are dropped.
const MAX_QUEUED_SPANS: usize = 16384;

/// Spans encoded and waiting for the sender.
#[derive(Debug, Default)]
struct Pending {
    scopes: Vec<ScopeSpans>,
    spans: usize,
    dropped: u64,
}

impl Pending {
    /// Queues a span [`Scratch::encode`] wrote, under its scope.
    fn push(&mut self, scope: &opentelemetry::InstrumentationScope, encoded: &[u8]) {
        match self.scopes.iter_mut().find(|s| s.scope == *scope) {
            Some(queued) => queued.push_span(encoded),
            None => {
                let mut queued = ScopeSpans::new(scope.clone());
                queued.push_span(encoded);
                self.scopes.push(queued);
            }
        }
        self.spans += 1;
    }
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the sender when a full batch is waiting.
    batch_ready: Notify,
    /// What every exported span is about (set by the provider at start).
    resource: Mutex<Resource>,
}

impl Shared {
    /// Nothing queued, and an empty resource until the provider sets one.
    fn new() -> Shared {
        Shared { pending: Mutex::default(), batch_ready: Notify::new(), resource: Mutex::new(Resource::builder_empty().build()) }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the sender is asked to do besides its batches; the answer comes
/// back on a blocking channel because `SpanProcessor`'s methods are blocking.
#[derive(Debug)]
enum Command {
    Flush(std::sync::mpsc::SyncSender<OTelSdkResult>),
    Shutdown(std::sync::mpsc::SyncSender<OTelSdkResult>),
}

thread_local! {
    /// Each thread's encoding buffers.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// The span processor; see the module's documentation.
#[derive(Debug)]
pub struct OtlpSpanProcessor {
    sink: SpanSink,
    commands: mpsc::UnboundedSender<Command>,
}

/// Where finished spans go: encoded on the calling thread and queued for the
/// sender. The processor's `on_end` for the SDK's spans, and the way in for
/// the spans the host times itself (`super::host_spans`, through
/// [`SpanSink::export_host`]).
#[derive(Debug, Clone)]
pub struct SpanSink {
    shared: Arc<Shared>,
}

impl SpanSink {
    /// Encodes `span` and queues it, or drops it when the queue is full
    /// (counted, and reported by the sender). Unsampled spans are dropped.
    pub fn export(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let batch_full = SCRATCH.with_borrow_mut(|scratch| {
            let encoded = scratch.encode(&span);
            self.queue(&span.instrumentation_scope, encoded)
        });
        if batch_full {
            self.shared.batch_ready.notify_one();
        }
    }

    /// Encodes a span the host timed itself and queues it, as [`SpanSink::export`]
    /// does, under the scope of edgefn's own spans.
    pub fn export_host(&self, span: &HostSpanFields<'_>) {
        let batch_full = SCRATCH.with_borrow_mut(|scratch| {
            let encoded = scratch.encode_host(span);
            self.queue(&super::traces::SCOPE, encoded)
        });
        if batch_full {
            self.shared.batch_ready.notify_one();
        }
    }

    /// Queues an encoded span under `scope`, or counts it dropped when the
    /// queue is full; true when that made a full batch.
    fn queue(&self, scope: &opentelemetry::InstrumentationScope, encoded: &[u8]) -> bool {
        let mut pending = self.shared.pending();
        if pending.spans >= MAX_QUEUED_SPANS {
            pending.dropped += 1;
            return false;
        }
        pending.push(scope, encoded);
        pending.spans == BATCH_SPANS
    }

    /// A sink with no sender: spans queue up until it is full.
    #[cfg(test)]
    pub fn detached() -> SpanSink {
        SpanSink {
            shared: Arc::new(Shared::new()),
        }
    }

    /// Spans waiting for the sender.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shared.pending().spans
    }

    /// The `ScopeSpans.spans` fields waiting for the sender, of every scope.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> Vec<u8> {
        self.shared.pending().scopes.iter().flat_map(|scope| scope.encoded().to_vec()).collect()
    }
}

impl OtlpSpanProcessor {
    /// Starts the sender on the current runtime; it sends a batch when
    /// [`BATCH_SPANS`] are waiting, or `config.batch_delay` after the last.
    pub fn start(config: &OtlpConfig) -> anyhow::Result<OtlpSpanProcessor> {
        let transport = Transport::new(config)?;
        let shared = Arc::new(Shared::new());
        let (commands, received) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(shared.clone(), transport, config.batch_delay, received));
        Ok(OtlpSpanProcessor { sink: SpanSink { shared }, commands })
    }

    /// A handle that exports spans through this processor.
    pub fn sink(&self) -> SpanSink {
        self.sink.clone()
    }

    /// Sends `command` to the sender and waits for its answer. Blocking: the
    /// SDK calls this at shutdown, from outside the runtime's threads.
    fn ask(&self, command: impl FnOnce(std::sync::mpsc::SyncSender<OTelSdkResult>) -> Command, timeout: Duration) -> OTelSdkResult {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.commands.send(command(reply)).map_err(|_| OTelSdkError::AlreadyShutdown)?;
        answer.recv_timeout(timeout).map_err(|_| OTelSdkError::Timeout(timeout))?
    }
}

impl SpanProcessor for OtlpSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.sink.export(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Command::Flush, Duration::from_secs(15))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.ask(Command::Shutdown, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self.sink.shared.resource.lock().unwrap_or_else(PoisonError::into_inner) = resource.clone();
    }
}

/// The sender: one batch in flight at a time, until shut down (or until the
/// processor is dropped, after a last batch).
async fn send_batches(shared: Arc<Shared>, transport: Transport, delay: Duration, mut commands: mpsc::UnboundedReceiver<Command>) {
    loop {
        let command = tokio::select! {
            () = shared.batch_ready.notified() => None,
            () = tokio::time::sleep(delay) => None,
            command = commands.recv() => match command {
                Some(command) => Some(command),
                None => {
                    let _ = send_pending(&shared, &transport).await;
                    return;
                }
            },
        };
        let sent = send_pending(&shared, &transport).await;
        match command {
            None => {
                if let Err(error) = sent {
                    tracing::warn!(%error, "exporting spans failed; they are lost");
                }
            }
            Some(Command::Flush(reply)) => {
                let _ = reply.send(sent);
            }
            Some(Command::Shutdown(reply)) => {
                let _ = reply.send(sent);
                return;
            }
        }
    }
}

/// Sends what is waiting, if anything.
async fn send_pending(shared: &Shared, transport: &Transport) -> OTelSdkResult {
    let (scopes, dropped) = {
        let mut pending = shared.pending();
        pending.spans = 0;
        (std::mem::take(&mut pending.scopes), std::mem::take(&mut pending.dropped))
    };
    if dropped > 0 {
        tracing::warn!(dropped, "spans were dropped: the OTLP collector takes them more slowly than they are made");
    }
    if scopes.is_empty() {
        return Ok(());
    }
    let resource = shared.resource.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let body = Bytes::from(encode_request(&resource, &scopes));
    transport.send(body).await.map_err(|error| OTelSdkError::InternalFailure(error.to_string()))
}
