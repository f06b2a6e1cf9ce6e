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
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// Records waiting to be written before requests start to wait.
const CHANNEL_CAPACITY: usize = 4096;
/// Records per INSERT.
const BATCH_SIZE: usize = 256;

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
    /// Its use of the application database, when it used it (or ran with
    /// the service role, which is recorded whether it queried or not).
    pub database: Option<crate::capabilities::database::DatabaseUsage>,
}

/// Every outcome a record can have.
pub const OUTCOMES: [&str; 7] = ["ok", "error", "denied", "fuel_exhausted", "memory_limit", "deadline", "bad_request"];

/// Which records to list; absent fields match everything.
#[derive(Debug, Default)]
pub struct RecordFilter {
    /// Function name.
    pub function: Option<String>,
    /// One of [`OUTCOMES`], e.g. `denied` to see refused calls.
    pub outcome: Option<String>,
    /// The start of the caller's label, e.g. `user:<id>` or `admin-key:`.
    pub caller: Option<String>,
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

impl ExecutionRecord {
    fn into_active_model(self) -> execution::ActiveModel {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        execution::ActiveModel {
            id: Set(self.id),
            function_name: Set(self.function),
            version: Set(self.version),
            received_at: Set(self.received_at),
            duration_us: Set(as_i64(self.duration_us)),
            queue_us: Set(as_i64(self.timings.queue_us)),
            instantiate_us: Set(as_i64(self.timings.instantiate_us)),
            run_us: Set(as_i64(self.timings.run_us)),
            caller: Set(self.caller),
            method: Set(self.method),
            path: Set(self.path),
            status: Set(i32::from(self.status)),
            outcome: Set(self.outcome),
            console: Set(serde_json::to_string(&self.console).expect("console lines serialize")),
            error: Set(self.error.map(|e| serde_json::to_string(&e).expect("errors serialize"))),
            fuel_consumed: Set(self.fuel_consumed.map(as_i64)),
            peak_memory_bytes: Set(self.peak_memory_bytes.map(as_i64)),
            details: Set(serde_json::json!({ "response": self.response, "database": self.database }).to_string()),
        }
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
        }
    }
}

/// Where handlers send records.
#[derive(Clone)]
pub struct ExecutionLog {
    sender: mpsc::Sender<ExecutionRecord>,
    db: DatabaseConnection,
}

impl ExecutionLog {
    /// Starts the writer; it finishes once every `ExecutionLog` clone is
    /// dropped and the channel is drained.
    pub fn start(db: DatabaseConnection) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let writer = tokio::spawn(write_batches(db.clone(), receiver));
        (ExecutionLog { sender, db }, writer)
    }

    /// Queues a record; waits while the writer is behind.
    pub async fn record(&self, record: ExecutionRecord) {
        if self.sender.send(record).await.is_err() {
            tracing::error!("execution writer has stopped; a record was not written");
        }
    }

    /// The newest records, optionally for one function.
    pub async fn recent(&self, filter: &RecordFilter, limit: u64) -> Result<Vec<StoredExecution>, ApiError> {
        let mut query = execution::Entity::find().order_by_desc(execution::Column::Id).limit(limit.clamp(1, 1000));
        if let Some(function) = &filter.function {
            query = query.filter(execution::Column::FunctionName.eq(function));
        }
        if let Some(outcome) = &filter.outcome {
            if !OUTCOMES.contains(&outcome.as_str()) {
                return Err(ApiError::BadRequest(format!("unknown outcome {outcome:?}; use one of {}", OUTCOMES.join(", "))));
            }
            query = query.filter(execution::Column::Outcome.eq(outcome));
        }
        if let Some(caller) = &filter.caller {
            // Labels are `user:<id> <email>`, `external:<sub> <email>`,
            // `admin-key:<prefix>`: a prefix finds one caller's calls.
            query = query.filter(execution::Column::Caller.starts_with(caller));
        }
        Ok(query.all(&self.db).await?.into_iter().map(StoredExecution::from).collect())
    }

    /// One record by id.
    pub async fn get(&self, id: &str) -> Result<StoredExecution, ApiError> {
        execution::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(StoredExecution::from)
            .ok_or_else(|| ApiError::NotFound(format!("no execution record {id:?}")))
    }
}

async fn write_batches(db: DatabaseConnection, mut receiver: mpsc::Receiver<ExecutionRecord>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while receiver.recv_many(&mut batch, BATCH_SIZE).await > 0 {
        let rows: Vec<_> = batch.drain(..).map(ExecutionRecord::into_active_model).collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            match execution::Entity::insert_many(rows.clone()).exec(&db).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, rows = rows.len(), "writing execution records failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
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
