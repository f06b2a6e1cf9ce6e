//! Execution records: one per invocation, written off the request path.
//!
//! Invariant: an acknowledged record is never dropped. Requests hand records
//! to a bounded channel (waiting when it is full: back-pressure, not loss); a
//! single writer inserts them in batches and retries a failed batch until the
//! database takes it. On shutdown the writer drains the channel before exiting.

use crate::capabilities::console::ConsoleLine;
use crate::entities::execution;
use crate::error::ApiError;
use crate::sandbox::{ExecutionError, Timings};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::sync::Arc;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use row::RecordRow;
use writer::{enforce_retention, spawn_writer};

mod stats;
mod row;
mod sqlite_insert;
mod writer;

pub use stats::{FunctionStats, MAX_BUCKETS, Series, SeriesBucket};

/// Records waiting to be written before requests start to wait.
const CHANNEL_CAPACITY: usize = 4096;

/// One invocation, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRecord {
    /// Time-ordered id (UUIDv7), also the function's `ctx.invocationId`.
    pub id: String,
    /// The function called.
    pub function: String,
    /// The version that ran, if one was found.
    pub version: Option<i32>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// Total time in edgefn, in microseconds.
    pub duration_us: u64,
    /// Where the time went.
    pub timings: Timings,
    /// Who called: an admin key prefix, a user, or none (anonymous).
    pub caller: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status returned to the caller.
    pub status: u16,
    /// `ok`, `error`, `fuel_exhausted`, `memory_limit`, `deadline`, `bad_request`...
    pub outcome: String,
    /// Console output.
    pub console: Vec<ConsoleLine>,
    /// Why it failed, if it did.
    pub error: Option<ExecutionError>,
    /// Fuel used.
    pub fuel_consumed: Option<u64>,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// What the function returned, when it returned something.
    pub response: Option<CapturedResponse>,
    /// The W3C trace id it ran under (the caller's, when it sent `traceparent`).
    pub trace_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// Its use of the application database, when it used it (or ran with
    /// the service role, which is recorded whether it queried or not).
    pub database: Option<crate::capabilities::database::DatabaseUsage>,
    /// Its outbound requests, when it made any.
    pub outbound: Option<crate::capabilities::outbound_http::OutboundUsage>,
}

/// Every outcome a record can have.
pub const OUTCOMES: [&str; 7] = ["ok", "error", "denied", "fuel_exhausted", "memory_limit", "deadline", "bad_request"];

/// Which records to list; absent fields match everything.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RecordFilter {
    /// Function name.
    pub function: Option<String>,
    /// The version that ran.
    pub version: Option<i32>,
    /// One of [`OUTCOMES`], e.g. `denied` to see refused calls.
    pub outcome: Option<String>,
    /// HTTP status returned.
    pub status: Option<u16>,
    /// The start of the caller's label, e.g. `user:<id>` or `admin-key:`.
    pub caller: Option<String>,
    /// Received at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Received before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Text the console output or the error contains.
    pub q: Option<String>,
    /// A trace id.
    pub trace_id: Option<String>,
}

impl RecordFilter {
    fn apply(&self, mut query: sea_orm::Select<execution::Entity>) -> Result<sea_orm::Select<execution::Entity>, ApiError> {
        if let Some(function) = &self.function {
            query = query.filter(execution::Column::FunctionName.eq(function));
        }
        if let Some(version) = self.version {
            query = query.filter(execution::Column::Version.eq(version));
        }
        if let Some(outcome) = &self.outcome {
            if !OUTCOMES.contains(&outcome.as_str()) {
                return Err(ApiError::BadRequest(format!("unknown outcome {outcome:?}; use one of {}", OUTCOMES.join(", "))));
            }
            query = query.filter(execution::Column::Outcome.eq(outcome));
        }
        if let Some(status) = self.status {
            query = query.filter(execution::Column::Status.eq(i32::from(status)));
        }
        if let Some(caller) = &self.caller {
            // Labels are `user:<id> <email>`, `external:<sub> <email>`,
            // `admin-key:<prefix>`: a prefix finds one caller's calls.
            query = query.filter(execution::Column::Caller.starts_with(caller));
        }
        // Ids are UUIDv7 made within a moment of `received_at`, so an id
        // range (with a second of slack) narrows a time range through the
        // primary key, and no extra index slows every record's insert.
        if let Some(since) = self.since {
            query = query
                .filter(execution::Column::Id.gte(id_floor(since - chrono::Duration::seconds(1))))
                .filter(execution::Column::ReceivedAt.gte(since));
        }
        if let Some(until) = self.until {
            query = query
                .filter(execution::Column::Id.lt(id_floor(until + chrono::Duration::seconds(1))))
                .filter(execution::Column::ReceivedAt.lt(until));
        }
        if let Some(text) = self.q.as_deref().filter(|t| !t.is_empty()) {
            query = query.filter(
                sea_orm::Condition::any()
                    .add(execution::Column::Console.contains(text))
                    .add(execution::Column::Error.contains(text)),
            );
        }
        if let Some(trace_id) = &self.trace_id {
            query = query.filter(execution::Column::TraceId.eq(trace_id.to_lowercase()));
        }
        Ok(query)
    }

    /// Whether a live record passes the filter (for the tail).
    fn matches(&self, record: &ExecutionRecord) -> bool {
        let text = |t: &str| {
            record.console.iter().any(|line| line.text.contains(t))
                || record.error.as_ref().is_some_and(|e| e.message.contains(t) || e.stack.as_deref().is_some_and(|s| s.contains(t)))
        };
        self.function.as_ref().is_none_or(|f| *f == record.function)
            && self.version.is_none_or(|v| record.version == Some(v))
            && self.outcome.as_ref().is_none_or(|o| *o == record.outcome)
            && self.status.is_none_or(|s| s == record.status)
            && self.caller.as_ref().is_none_or(|c| record.caller.as_deref().is_some_and(|r| r.starts_with(c.as_str())))
            && self.q.as_deref().is_none_or(text)
            && self.trace_id.as_ref().is_none_or(|t| record.trace_id.as_deref() == Some(t.as_str()))
    }
}

/// The smallest UUIDv7 (as text) made at or after `instant`.
fn id_floor(instant: DateTime<Utc>) -> String {
    let millis = u64::try_from(instant.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid().to_string()
}

/// One page of records, newest first.
#[derive(Debug, Serialize)]
pub struct RecordPage {
    /// The records.
    pub executions: Vec<StoredExecution>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// How long records are kept; both bounds apply.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Records older than this are deleted.
    pub max_age: Duration,
    /// Beyond this many records, the oldest are deleted.
    pub max_records: u64,
    /// How often retention runs.
    pub interval: Duration,
}

/// Bytes of a response body kept in its record.
pub const RESPONSE_CAPTURE_BYTES: usize = 4096;

/// The response a function returned, as recorded: the body is capped at
/// [`RESPONSE_CAPTURE_BYTES`] and kept as text (binary bodies are described).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CapturedResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body's first bytes as UTF-8 text, or a description of binary data.
    pub body: String,
    /// The whole body's size.
    pub body_bytes: usize,
    /// True when `body` holds only the beginning.
    pub truncated: bool,
}

impl CapturedResponse {
    /// Captures status, headers and the beginning of the body.
    pub fn new(status: u16, headers: &[(String, String)], body: &[u8]) -> Self {
        let kept = &body[..body.len().min(RESPONSE_CAPTURE_BYTES)];
        let text = match std::str::from_utf8(kept) {
            Ok(text) => text.to_owned(),
            // Cut inside a multi-byte character: keep the whole characters.
            Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned(),
            Err(_) => format!("<{} bytes of binary data>", body.len()),
        };
        CapturedResponse {
            status,
            headers: headers.to_vec(),
            body: text,
            body_bytes: body.len(),
            truncated: body.len() > RESPONSE_CAPTURE_BYTES,
        }
    }
}

/// The record's `details` column: what has no column of its own.
#[derive(Serialize)]
struct Details<'a> {
    response: &'a Option<CapturedResponse>,
    database: &'a Option<crate::capabilities::database::DatabaseUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound: &'a Option<crate::capabilities::outbound_http::OutboundUsage>,
}

impl ExecutionRecord {
    fn into_model(self) -> execution::Model {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (console, error, details) = (self.console_json(), self.error_json(), self.details_json());
        execution::Model {
            id: self.id,
            function_name: self.function,
            version: self.version,
            received_at: self.received_at,
            duration_us: as_i64(self.duration_us),
            queue_us: as_i64(self.timings.queue_us),
            instantiate_us: as_i64(self.timings.instantiate_us),
            run_us: as_i64(self.timings.run_us),
            caller: self.caller,
            method: self.method,
            path: self.path,
            status: i32::from(self.status),
            outcome: self.outcome,
            console,
            error,
            fuel_consumed: self.fuel_consumed.map(as_i64),
            peak_memory_bytes: self.peak_memory_bytes.map(as_i64),
            trace_id: self.trace_id,
            client_ip: self.client_ip,
            details,
        }
    }

    /// The `console` column.
    fn console_json(&self) -> String {
        serde_json::to_string(&self.console).expect("console lines serialize")
    }

    /// The `error` column.
    fn error_json(&self) -> Option<String> {
        self.error.as_ref().map(|e| serde_json::to_string(e).expect("errors serialize"))
    }

    /// The `details` column.
    fn details_json(&self) -> String {
        serde_json::to_string(&Details { response: &self.response, database: &self.database, outbound: &self.outbound })
            .expect("details serialize")
    }
}

/// A stored record as the admin API returns it.
#[derive(Debug, Serialize)]
pub struct StoredExecution {
    id: String,
    function: String,
    version: Option<i32>,
    received_at: DateTime<Utc>,
    duration_us: i64,
    queue_us: i64,
    instantiate_us: i64,
    run_us: i64,
    caller: Option<String>,
    method: String,
    path: String,
    status: i32,
    outcome: String,
    console: serde_json::Value,
    error: Option<serde_json::Value>,
    fuel_consumed: Option<i64>,
    peak_memory_bytes: Option<i64>,
    response: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound: Option<serde_json::Value>,
    trace_id: Option<String>,
    /// The trace in the Jaeger UI, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_url: Option<String>,
    client_ip: Option<String>,
}

/// One part of a record's `details` JSON; null when absent.
fn detail(details: &mut serde_json::Value, key: &str) -> Option<serde_json::Value> {
    details.get_mut(key).map(serde_json::Value::take).filter(|value| !value.is_null())
}

impl From<execution::Model> for StoredExecution {
    fn from(m: execution::Model) -> Self {
        let mut details = serde_json::from_str::<serde_json::Value>(&m.details).unwrap_or_default();
        StoredExecution {
            id: m.id,
            function: m.function_name,
            version: m.version,
            received_at: m.received_at,
            duration_us: m.duration_us,
            queue_us: m.queue_us,
            instantiate_us: m.instantiate_us,
            run_us: m.run_us,
            caller: m.caller,
            method: m.method,
            path: m.path,
            status: m.status,
            outcome: m.outcome,
            console: serde_json::from_str(&m.console).unwrap_or_default(),
            error: m.error.and_then(|e| serde_json::from_str(&e).ok()),
            fuel_consumed: m.fuel_consumed,
            peak_memory_bytes: m.peak_memory_bytes,
            response: detail(&mut details, "response"),
            database: detail(&mut details, "database"),
            outbound: detail(&mut details, "outbound"),
            trace_id: m.trace_id,
            trace_url: None,
            client_ip: m.client_ip,
        }
    }
}

/// Where handlers send records.
#[derive(Clone)]
pub struct ExecutionLog {
    sender: mpsc::Sender<RecordRow>,
    live: broadcast::Sender<Arc<ExecutionRecord>>,
    /// Set once, at shutdown, to end every live tail.
    tails_ending: LiveTails,
    db: DatabaseConnection,
    /// The Jaeger UI, for each record's `trace_url`.
    jaeger_ui: Option<Arc<str>>,
    /// False only to measure what recording costs (`--record-executions false`).
    recording: bool,
}

/// Ends the live tails at shutdown: a tail's response never ends by itself,
/// and a server shutting down waits for its open responses (and its record
/// writer for the tails' handles on the log).
#[derive(Clone)]
pub struct LiveTails(Arc<watch::Sender<bool>>);

impl LiveTails {
    /// Ends every open tail, and any opened after.
    pub fn end_all(&self) {
        self.0.send_replace(true);
    }
}

/// Records a slow live-tail subscriber may fall behind before it misses some
/// (it is told how many); the log itself never waits for a subscriber.
const TAIL_CAPACITY: usize = 1024;

impl ExecutionLog {
    /// Starts the writer and the retention task; the writer finishes once
    /// every `ExecutionLog` clone is dropped and the channel is drained.
    /// Fails only if the writer's thread (on SQLite) cannot be started.
    pub fn start(
        db: DatabaseConnection,
        retention: Retention,
        jaeger_ui: Option<String>,
    ) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (live, _) = broadcast::channel(TAIL_CAPACITY);
        let tails_ending = LiveTails(Arc::new(watch::channel(false).0));
        let writer = spawn_writer(db.clone(), receiver)?;
        tokio::spawn(enforce_retention(db.clone(), retention));
        let jaeger_ui = jaeger_ui.map(|url| Arc::from(url.trim_end_matches('/')));
        Ok((ExecutionLog { sender, live, tails_ending, db, jaeger_ui, recording: true }, writer))
    }

    /// A log that keeps nothing: only for measuring what records cost.
    pub fn recording_off(mut self) -> Self {
        self.recording = false;
        self
    }

    /// A stored record as the API shows it, linked to its trace in Jaeger.
    fn stored(&self, model: execution::Model) -> StoredExecution {
        let mut stored = StoredExecution::from(model);
        if let (Some(ui), Some(trace_id)) = (&self.jaeger_ui, &stored.trace_id) {
            stored.trace_url = Some(format!("{ui}/trace/{trace_id}"));
        }
        stored
    }

    /// Queues a record; waits while the writer is behind.
    pub async fn record(&self, record: ExecutionRecord) {
        if !self.recording {
            return;
        }
        let row = RecordRow::pack(&record);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(record));
        } else {
            // Here, on the thread that allocated it (see `row`).
            drop(record);
        }
        if self.sender.send(row).await.is_err() {
            tracing::error!("execution writer has stopped; a record was not written");
        }
    }

    /// Records as they are made (not yet necessarily stored), matching
    /// `filter`; `Err(n)` when a slow reader missed `n` of them.
    /// The stream ends when the server shuts down ([`LiveTails::end_all`]).
    pub fn tail(&self, filter: RecordFilter) -> impl futures_util::Stream<Item = Result<StoredExecution, u64>> + use<> {
        let receiver = self.live.subscribe();
        let ending = self.tails_ending.0.subscribe();
        let log = self.clone();
        futures_util::stream::unfold((receiver, ending, filter, log), |(mut receiver, mut ending, filter, log)| async move {
            loop {
                let received = tokio::select! {
                    received = receiver.recv() => received,
                    _ = ending.wait_for(|ending| *ending) => return None,
                };
                let item = match received {
                    Ok(record) if filter.matches(&record) => Ok(log.stored((*record).clone().into_model())),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => Err(missed),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((item, (receiver, ending, filter, log)));
            }
        })
    }

    /// What ends the live tails; it holds no sender of records.
    pub fn live_tails(&self) -> LiveTails {
        self.tails_ending.clone()
    }

    /// A page of records matching `filter`, newest first, older than `cursor`.
    pub async fn page(&self, filter: &RecordFilter, cursor: Option<&str>, limit: u64) -> Result<RecordPage, ApiError> {
        let limit = limit.clamp(1, 1000);
        let mut query = filter.apply(execution::Entity::find())?.order_by_desc(execution::Column::Id).limit(limit + 1);
        if let Some(cursor) = cursor {
            // Ids are UUIDv7, so id order is time order.
            query = query.filter(execution::Column::Id.lt(cursor));
        }
        let mut rows = query.all(&self.db).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        Ok(RecordPage { executions: rows.into_iter().map(|row| self.stored(row)).collect(), next_cursor })
    }

    /// One record by id.
    pub async fn get(&self, id: &str) -> Result<StoredExecution, ApiError> {
        execution::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| self.stored(row))
            .ok_or_else(|| ApiError::NotFound(format!("no execution record {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_bodies_are_capped_text() {
        let small = CapturedResponse::new(201, &[("a".into(), "b".into())], b"hello");
        assert_eq!((small.body.as_str(), small.body_bytes, small.truncated), ("hello", 5, false));

        let mut long = "é".repeat(RESPONSE_CAPTURE_BYTES); // 2 bytes each: the cap falls between characters
        long.push('!');
        let captured = CapturedResponse::new(200, &[], long.as_bytes());
        assert!(captured.truncated);
        assert_eq!(captured.body_bytes, long.len());
        assert_eq!(captured.body.chars().count(), RESPONSE_CAPTURE_BYTES / 2);

        let binary = CapturedResponse::new(200, &[], &[0xff, 0x00, 0xfe]);
        assert_eq!(binary.body, "<3 bytes of binary data>");
    }
}
