//! The record writer on SQLite: batches go in through a connection the
//! writer keeps for itself, bound into a few prepared multi-row INSERTs, one
//! transaction per batch.
//!
//! Why not sqlx, as everywhere else: counted with callgrind on the record
//! writer alone (`record_cost`, benches/README.md), sqlx's way in (an
//! argument list of reference-counted values built on the writer's task,
//! handed to its connection thread, bound there and cleared again) cost more
//! instructions per record than SQLite's insert itself. Here each value is
//! bound straight from the record, on the writer's task, and nothing is
//! handed between threads. The connection is one of the server's own pool's,
//! detached from it, so it has exactly the pool's settings (WAL, sync, busy
//! timeout); it keeps its prepared statements for the writer's lifetime.

use super::row::{RecordRow, Text};
use crate::rfc3339;
use super::writer::{self, COLUMNS, insert_chunks};
use rusqlite::TransactionBehavior;
use sea_orm::DbBackend;
use sea_orm::sqlx::SqlitePool;
use tokio::sync::mpsc;

/// Writes what arrives, in batches, until every sender is gone and the
/// channel is drained. A batch that fails is retried, whole, until the
/// database takes it; a connection that cannot be had is asked for again.
pub(super) async fn write_batches(pool: SqlitePool, mut receiver: mpsc::Receiver<RecordRow>) {
    let mut backoff = writer::Backoff::default();
    // Received and not yet stored: they outlive a lost connection.
    let mut pending = Vec::with_capacity(writer::BATCH_SIZE);
    loop {
        let mut connection = match pool.acquire().await {
            // Out of the pool for good; the pool may open another in its place.
            Ok(connection) => connection.detach(),
            Err(e) => {
                tracing::error!(error = %e, "the execution record writer could not get a database connection; retrying");
                backoff.wait().await;
                continue;
            }
        };
        let mut handle = match connection.lock_handle().await {
            Ok(handle) => handle,
            Err(e) => {
                tracing::error!(error = %e, "the execution record writer could not lock its connection; retrying");
                backoff.wait().await;
                continue;
            }
        };
        // SAFETY: the handle is locked away from sqlx's connection thread for
        // as long as `handle` lives, and `sqlite`, declared after it, is
        // dropped before it. `from_handle` does not close the handle on drop
        // (it finalizes its cached statements); `connection` closes it last.
        let sqlite = match unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
            Ok(sqlite) => sqlite,
            Err(e) => {
                tracing::error!(error = %e, "the execution record writer could not use its connection; retrying");
                backoff.wait().await;
                continue;
            }
        };
        loop {
            if pending.is_empty() && !writer::gather(&mut receiver, &mut pending).await {
                return;
            }
            // The pool's connection, held while the batch is written: the
            // server's other transactions run on it (the pool has one on
            // SQLite), so records go in between them, as when the writer
            // used that connection itself, never while one that read is
            // about to write (it would fail on a snapshot gone stale).
            let turn = match pool.acquire().await {
                Ok(turn) => turn,
                Err(e) => {
                    tracing::error!(error = %e, "the execution record writer could not get a database connection; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            let written = without_blocking_others(|| insert(&sqlite, &pending));
            drop(turn);
            match written {
                Ok(()) => {
                    pending.clear();
                    backoff = writer::Backoff::default();
                }
                Err(e) => {
                    tracing::error!(error = %e, rows = pending.len(), "writing execution records failed; retrying");
                    backoff.wait().await;
                }
            }
        }
    }
}

/// One batch in one transaction: all of it is stored, or none (a failed
/// step drops the transaction, which rolls it back). Multi-row INSERTs, as
/// on PostgreSQL: a statement of one row cost SQLite about 7K instructions
/// more per record (opening its cursors, its statement journal) than a
/// row of a 256-row one.
fn insert(sqlite: &rusqlite::Connection, rows: &[RecordRow]) -> rusqlite::Result<()> {
    // IMMEDIATE: the write lock is taken (or waited for, up to the busy
    // timeout) at the start, so the batch never fails halfway on it.
    let transaction = rusqlite::Transaction::new_unchecked(sqlite, TransactionBehavior::Immediate)?;
    let mut received_at = String::with_capacity(40);
    for (sql, chunk) in insert_chunks(DbBackend::Sqlite, rows) {
        let mut insert = transaction.prepare_cached(sql)?;
        let mut parameter = 0;
        let mut bind = |value: &dyn rusqlite::ToSql| {
            parameter += 1;
            insert.raw_bind_parameter(parameter, value)
        };
        for row in chunk {
            let [duration, queue, instantiate, run] = row.durations_us;
            // Time as sqlx writes it, so that sea-orm reads it back and
            // compares it the same way.
            received_at.clear();
            rfc3339::write(&mut received_at, &row.received_at, rfc3339::Offset::Numeric);
            // In `COLUMNS` order.
            bind(&row.text(Text::Id))?;
            bind(&row.text(Text::FunctionName))?;
            bind(&row.version)?;
            bind(&received_at)?;
            bind(&duration)?;
            bind(&queue)?;
            bind(&instantiate)?;
            bind(&run)?;
            bind(&row.text(Text::Caller))?;
            bind(&row.text(Text::Method))?;
            bind(&row.text(Text::Path))?;
            bind(&row.status)?;
            bind(&row.text(Text::Outcome))?;
            bind(&row.text(Text::Console))?;
            bind(&row.text(Text::Error))?;
            bind(&row.fuel_consumed)?;
            bind(&row.peak_memory_bytes)?;
            bind(&row.text(Text::Details))?;
            bind(&row.text(Text::TraceId))?;
            bind(&row.text(Text::ClientIp))?;
        }
        debug_assert_eq!(parameter, chunk.len() * COLUMNS.len());
        insert.raw_execute()?;
    }
    transaction.commit()
}

/// Runs `work`, which blocks for as long as SQLite takes (about a
/// millisecond for a full batch), without holding up the requests queued on
/// this runtime thread: on the multi-threaded runtime they move to another.
fn without_blocking_others<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
