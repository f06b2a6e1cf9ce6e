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
            details: Set("{}".into()),
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
}

impl From<execution::Model> for StoredExecution {
    fn from(m: execution::Model) -> Self {
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
    pub async fn recent(&self, function: Option<&str>, limit: u64) -> Result<Vec<StoredExecution>, ApiError> {
        let mut query = execution::Entity::find().order_by_desc(execution::Column::Id).limit(limit.clamp(1, 1000));
        if let Some(function) = function {
            query = query.filter(execution::Column::FunctionName.eq(function));
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
