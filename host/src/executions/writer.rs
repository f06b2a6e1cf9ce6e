//! The record writer and retention: batches of records into the database,
//! off the request path, and old records out of it.
//!
//! Invariant (with `ExecutionLog::record`): a record handed to the writer is
//! stored; a failed batch is retried, whole, until the database takes it.

use super::row::{RecordRow, Text};
use super::{Retention, id_floor};
use crate::entities::execution;
use chrono::Utc;
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Records per batch, at most.
pub(super) const BATCH_SIZE: usize = 512;
/// How long the writer lets records gather before a batch that is not full:
/// each transaction costs far more than the rows in it (a commit, a lock, a
/// wake-up of a connection thread), so under load this keeps batches big.
const BATCH_GATHER: Duration = Duration::from_millis(20);

/// Starts the writer, which writes what arrives, in batches, until every
/// sender is gone and the channel is drained; the handle finishes then.
pub(super) fn spawn_writer(db: DatabaseConnection, receiver: mpsc::Receiver<RecordRow>) -> std::io::Result<JoinHandle<()>> {
    match db.get_database_backend() {
        DbBackend::Sqlite => super::sqlite_insert::spawn_writer(db.get_sqlite_connection_pool().clone(), receiver),
        DbBackend::Postgres => Ok(tokio::spawn(async move { write_postgres_batches(db.get_postgres_connection_pool(), receiver).await })),
        other => {
            tracing::error!("execution records are not written to {other:?}; they are dropped");
            Ok(tokio::spawn(async {}))
        }
    }
}

/// Waits for the next batch into `batch`: whatever is waiting, or what
/// arrives within [`BATCH_GATHER`] of the first record, up to [`BATCH_SIZE`].
/// False once every sender is gone and nothing is left.
pub(super) async fn gather(receiver: &mut mpsc::Receiver<RecordRow>, batch: &mut Vec<RecordRow>) -> bool {
    if receiver.recv_many(batch, BATCH_SIZE).await == 0 {
        return false;
    }
    if batch.len() < BATCH_SIZE {
        tokio::time::sleep(BATCH_GATHER).await;
        while batch.len() < BATCH_SIZE {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
    }
    true
}

/// The pause before a failed batch is tried again: doubling from 50 ms up
/// to 5 s.
pub(super) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(50))
    }
}

impl Backoff {
    pub(super) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// The PostgreSQL writer: multi-row INSERTs through sqlx.
async fn write_postgres_batches(pool: &sqlx::PgPool, mut receiver: mpsc::Receiver<RecordRow>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while gather(&mut receiver, &mut batch).await {
        let mut backoff = Backoff::default();
        while let Err(e) = insert_batch(pool, &batch).await {
            tracing::error!(error = %e, rows = batch.len(), "writing execution records failed; retrying");
            backoff.wait().await;
        }
        batch.clear();
    }
}

/// Rows per INSERT statement: powers of two only, so every statement's text
/// is one of a handful and stays prepared in the connection's statement
/// cache (a 300-row batch is 256 + 32 + 8 + 4 rows), instead of a new
/// statement to prepare for every batch size.
const INSERT_CHUNKS: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// The record table's columns, in the order the writers bind them.
pub(super) const COLUMNS: [&str; 20] = [
    "id", "function_name", "version", "received_at", "duration_us", "queue_us", "instantiate_us", "run_us", "caller",
    "method", "path", "status", "outcome", "console", "error", "fuel_consumed", "peak_memory_bytes", "details",
    "trace_id", "client_ip",
];

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds `row`'s values to `query`, in [`COLUMNS`] order.
fn bind_row<'q>(query: PgQuery<'q>, row: &'q RecordRow) -> PgQuery<'q> {
    let [duration, queue, instantiate, run] = row.durations_us;
    query
        .bind(row.text(Text::Id))
        .bind(row.text(Text::FunctionName))
        .bind(row.version)
        .bind(row.received_at)
        .bind(duration)
        .bind(queue)
        .bind(instantiate)
        .bind(run)
        .bind(row.text(Text::Caller))
        .bind(row.text(Text::Method))
        .bind(row.text(Text::Path))
        .bind(row.status)
        .bind(row.text(Text::Outcome))
        .bind(row.text(Text::Console))
        .bind(row.text(Text::Error))
        .bind(row.fuel_consumed)
        .bind(row.peak_memory_bytes)
        .bind(row.text(Text::Details))
        .bind(row.text(Text::TraceId))
        .bind(row.text(Text::ClientIp))
}

/// The INSERT for each of [`INSERT_CHUNKS`]' sizes, in that order, written
/// once per backend: writing a 256-row statement's placeholders again for
/// every batch cost about 4.8K instructions per record (callgrind,
/// `benches/instructions.sh`).
fn insert_statements(backend: DbBackend) -> &'static [String; INSERT_CHUNKS.len()] {
    type Statements = OnceLock<[String; INSERT_CHUNKS.len()]>;
    static SQLITE: Statements = OnceLock::new();
    static POSTGRES: Statements = OnceLock::new();
    let statements = if backend == DbBackend::Postgres { &POSTGRES } else { &SQLITE };
    statements.get_or_init(|| INSERT_CHUNKS.map(|size| insert_sql(backend, size)))
}

/// `INSERT INTO edgefn_executions (...) VALUES (...), ...` for `rows` rows.
fn insert_sql(backend: DbBackend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO edgefn_executions ({}) VALUES ", COLUMNS.map(|c| format!("\"{c}\"")).join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS.len() {
            n += 1;
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => sql.push_str(&format!("${n}")),
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// One batch in one transaction: all of it is stored, or none.
async fn insert_batch(pool: &sqlx::PgPool, rows: &[RecordRow]) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    for (_, sql, chunk) in insert_chunks(DbBackend::Postgres, rows) {
        let query = chunk.iter().fold(sqlx::query(sql), bind_row);
        query.execute(&mut *transaction).await?;
    }
    transaction.commit().await
}

/// The number of distinct INSERT statements (one per chunk size).
pub(super) const INSERT_STATEMENTS: usize = INSERT_CHUNKS.len();

/// `rows` cut into [`INSERT_CHUNKS`] sizes, each with its statement (made
/// of the constant column names and placeholders only: no value is in it)
/// and that statement's index below [`INSERT_STATEMENTS`], for a writer that
/// keeps its prepared statements in an array.
pub(super) fn insert_chunks<T>(backend: DbBackend, rows: &[T]) -> impl Iterator<Item = (usize, &'static str, &[T])> {
    let statements = insert_statements(backend);
    let mut rest = rows;
    std::iter::from_fn(move || {
        let chunk = INSERT_CHUNKS.iter().position(|&size| size <= rest.len())?;
        let (rows, tail) = rest.split_at(INSERT_CHUNKS[chunk]);
        rest = tail;
        Some((chunk, statements[chunk].as_str(), rows))
    })
}

/// Deletes records past their age, then the oldest beyond the count limit,
/// every `interval`, for as long as the server runs.
pub(super) async fn enforce_retention(db: DatabaseConnection, retention: Retention) {
    let mut ticks = tokio::time::interval(retention.interval);
    loop {
        ticks.tick().await;
        let cutoff = Utc::now() - chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
        // By id (time-ordered): a range of the primary key, not a table scan.
        let aged = execution::Entity::delete_many().filter(execution::Column::Id.lt(id_floor(cutoff))).exec(&db).await;
        // The newest `max_records` stay: delete below the id at that rank.
        let boundary = execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .order_by_desc(execution::Column::Id)
            .offset(retention.max_records)
            .limit(1)
            .into_tuple::<String>()
            .one(&db)
            .await;
        let counted = match boundary {
            Ok(Some(id)) => execution::Entity::delete_many().filter(execution::Column::Id.lte(id)).exec(&db).await.map(|r| r.rows_affected),
            Ok(None) => Ok(0),
            Err(e) => Err(e),
        };
        match (aged, counted) {
            (Ok(aged), Ok(counted)) if aged.rows_affected + counted > 0 => {
                tracing::info!(by_age = aged.rows_affected, by_count = counted, "deleted execution records past retention");
            }
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "enforcing execution record retention failed; will retry"),
        }
    }
}
