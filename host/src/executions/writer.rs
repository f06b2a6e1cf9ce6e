//! The record writer and retention: batches of records into the database,
//! off the request path, and old records out of it.
//!
//! Invariant (with `ExecutionLog::record`): a record handed to the writer is
//! stored; a failed batch is retried, whole, until the database takes it.

use super::{ExecutionRecord, Retention, id_floor};
use crate::entities::execution;
use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
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
        let rows: Vec<[sea_orm::Value; COLUMNS.len()]> = batch.drain(..).map(|record| row_values(record.into_model())).collect();
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

/// The record table's columns, in the order [`row_values`] gives them.
const COLUMNS: [&str; 20] = [
    "id", "function_name", "version", "received_at", "duration_us", "queue_us", "instantiate_us", "run_us", "caller",
    "method", "path", "status", "outcome", "console", "error", "fuel_consumed", "peak_memory_bytes", "details",
    "trace_id", "client_ip",
];

/// A record as bound values. The writer builds its multi-row INSERT itself:
/// sea-orm's builder, per row and per column, cost more than SQLite's insert.
fn row_values(m: execution::Model) -> [sea_orm::Value; COLUMNS.len()] {
    use sea_orm::Value;
    [
        Value::String(Some(m.id)),
        Value::String(Some(m.function_name)),
        Value::Int(m.version),
        Value::ChronoDateTimeUtc(Some(m.received_at)),
        Value::BigInt(Some(m.duration_us)),
        Value::BigInt(Some(m.queue_us)),
        Value::BigInt(Some(m.instantiate_us)),
        Value::BigInt(Some(m.run_us)),
        Value::String(m.caller),
        Value::String(Some(m.method)),
        Value::String(Some(m.path)),
        Value::Int(Some(m.status)),
        Value::String(Some(m.outcome)),
        Value::String(Some(m.console)),
        Value::String(m.error),
        Value::BigInt(m.fuel_consumed),
        Value::BigInt(m.peak_memory_bytes),
        Value::String(Some(m.details)),
        Value::String(m.trace_id),
        Value::String(m.client_ip),
    ]
}

/// `INSERT INTO edgefn_executions (...) VALUES (...), ...` for `rows` rows.
fn insert_sql(backend: sea_orm::DbBackend, rows: usize) -> String {
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
                sea_orm::DbBackend::Postgres => sql.push_str(&format!("${n}")),
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// One batch in one transaction: all of it is stored, or none.
async fn insert_batch(db: &DatabaseConnection, rows: &[[sea_orm::Value; COLUMNS.len()]]) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let mut rest = rows;
    while !rest.is_empty() {
        let size = INSERT_CHUNKS.into_iter().find(|&size| size <= rest.len()).expect("1 always fits");
        let (chunk, tail) = rest.split_at(size);
        let values: Vec<sea_orm::Value> = chunk.iter().flat_map(|row| row.iter().cloned()).collect();
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(backend, insert_sql(backend, size), values)).await?;
        rest = tail;
    }
    txn.commit().await
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
