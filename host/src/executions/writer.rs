//! The record writer and retention: batches of records into the database,
//! off the request path, and old records out of it.
//!
//! Invariant (with `ExecutionLog::record`): a record handed to the writer is
//! stored; a failed batch is retried, whole, until the database takes it.

use super::{ExecutionRecord, Retention, id_floor};
use crate::entities::execution;
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Database, Encode, Type};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Records per INSERT.
const BATCH_SIZE: usize = 512;
/// How long the writer lets records gather before a batch that is not full:
/// each transaction costs far more than the rows in it (a commit, and a
/// wake-up of SQLite's worker thread), so under load this keeps batches big.
const BATCH_GATHER: Duration = Duration::from_millis(20);

/// Writes what arrives, in batches, until every sender is gone and the
/// channel is drained.
pub(super) async fn write_batches(db: DatabaseConnection, mut receiver: mpsc::Receiver<ExecutionRecord>) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while receiver.recv_many(&mut batch, BATCH_SIZE).await > 0 {
        if batch.len() < BATCH_SIZE {
            tokio::time::sleep(BATCH_GATHER).await;
            while batch.len() < BATCH_SIZE {
                match receiver.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
        }
        let rows: Vec<Row> = batch.drain(..).map(|record| Row::from(record.into_model())).collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            match insert_batch(&db, &rows).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, rows = rows.len(), "writing execution records failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Rows per INSERT statement: powers of two only, so every statement's text
/// is one of a handful and stays prepared in the connection's statement
/// cache (a 300-row batch is 256 + 32 + 8 + 4 rows), instead of a new
/// statement to prepare for every batch size.
const INSERT_CHUNKS: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// The record table's columns, in the order [`bind_row`] binds them.
const COLUMNS: [&str; 20] = [
    "id", "function_name", "version", "received_at", "duration_us", "queue_us", "instantiate_us", "run_us", "caller",
    "method", "path", "status", "outcome", "console", "error", "fuel_consumed", "peak_memory_bytes", "details",
    "trace_id", "client_ip",
];

/// A record as the values its INSERT binds. The writer binds them through
/// sqlx rather than sea-orm's `Value`s: text is shared (`Arc<str>`), so a
/// retry binds it again without copying, and sqlx's connection thread, which
/// drops the bound values, only lets go of references; the memory is freed
/// here, on the thread that allocated it. Freeing it on sqlx's thread cost
/// 6.7K of a record's 57K instructions (callgrind, `record_cost`).
struct Row {
    id: Arc<str>,
    function_name: Arc<str>,
    version: Option<i32>,
    received_at: DateTime<Utc>,
    durations_us: [i64; 4],
    caller: Option<Arc<str>>,
    method: Arc<str>,
    path: Arc<str>,
    status: i32,
    outcome: Arc<str>,
    console: Arc<str>,
    error: Option<Arc<str>>,
    fuel_consumed: Option<i64>,
    peak_memory_bytes: Option<i64>,
    details: Arc<str>,
    trace_id: Option<Arc<str>>,
    client_ip: Option<Arc<str>>,
}

impl From<execution::Model> for Row {
    fn from(m: execution::Model) -> Row {
        Row {
            id: m.id.into(),
            function_name: m.function_name.into(),
            version: m.version,
            received_at: m.received_at,
            durations_us: [m.duration_us, m.queue_us, m.instantiate_us, m.run_us],
            caller: m.caller.map(Arc::from),
            method: m.method.into(),
            path: m.path.into(),
            status: m.status,
            outcome: m.outcome.into(),
            console: m.console.into(),
            error: m.error.map(Arc::from),
            fuel_consumed: m.fuel_consumed,
            peak_memory_bytes: m.peak_memory_bytes,
            details: m.details.into(),
            trace_id: m.trace_id.map(Arc::from),
            client_ip: m.client_ip.map(Arc::from),
        }
    }
}

/// Binds `row`'s values to `query`, in [`COLUMNS`] order.
fn bind_row<'q, DB>(query: sqlx::query::Query<'q, DB, DB::Arguments>, row: &Row) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Database,
    Arc<str>: Encode<'q, DB> + Type<DB>,
    Option<Arc<str>>: Encode<'q, DB> + Type<DB>,
    i32: Encode<'q, DB> + Type<DB>,
    Option<i32>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let [duration, queue, instantiate, run] = row.durations_us;
    query
        .bind(row.id.clone())
        .bind(row.function_name.clone())
        .bind(row.version)
        .bind(row.received_at)
        .bind(duration)
        .bind(queue)
        .bind(instantiate)
        .bind(run)
        .bind(row.caller.clone())
        .bind(row.method.clone())
        .bind(row.path.clone())
        .bind(row.status)
        .bind(row.outcome.clone())
        .bind(row.console.clone())
        .bind(row.error.clone())
        .bind(row.fuel_consumed)
        .bind(row.peak_memory_bytes)
        .bind(row.details.clone())
        .bind(row.trace_id.clone())
        .bind(row.client_ip.clone())
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
async fn insert_batch(db: &DatabaseConnection, rows: &[Row]) -> Result<(), sqlx::Error> {
    match db.get_database_backend() {
        DbBackend::Sqlite => insert_on(db.get_sqlite_connection_pool(), DbBackend::Sqlite, rows).await,
        DbBackend::Postgres => insert_on(db.get_postgres_connection_pool(), DbBackend::Postgres, rows).await,
        other => Err(sqlx::Error::Configuration(format!("execution records are not written to {other:?}").into())),
    }
}

/// [`insert_batch`] on one backend's pool.
async fn insert_on<DB>(pool: &sqlx::Pool<DB>, backend: DbBackend, rows: &[Row]) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> Arc<str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Arc<str>>: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let mut transaction = pool.begin().await?;
    for (sql, chunk) in insert_chunks(backend, rows) {
        let query = chunk.iter().fold(sqlx::query(sql), bind_row);
        query.execute(&mut *transaction).await?;
    }
    transaction.commit().await
}

/// `rows` cut into [`INSERT_CHUNKS`] sizes, each with its statement (made
/// of the constant column names and placeholders only: no value is in it).
fn insert_chunks(backend: DbBackend, rows: &[Row]) -> impl Iterator<Item = (&'static str, &[Row])> {
    let statements = insert_statements(backend);
    let mut rest = rows;
    std::iter::from_fn(move || {
        let chunk = INSERT_CHUNKS.iter().position(|&size| size <= rest.len())?;
        let (rows, tail) = rest.split_at(INSERT_CHUNKS[chunk]);
        rest = tail;
        Some((statements[chunk].as_str(), rows))
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
