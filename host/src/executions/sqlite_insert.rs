//! The record writer on SQLite: batches go in through a connection the
//! writer keeps for itself, bound into a few prepared multi-row INSERTs, one
//! transaction per batch.
//!
//! Why not sqlx, as everywhere else: counted with callgrind on the record
//! writer alone (`record_cost`, benches/README.md), sqlx's way in (an
//! argument list of reference-counted values built on the writer's task,
//! handed to its connection thread, bound there and cleared again) cost more
//! instructions per record than SQLite's insert itself. Here each value is
//! bound straight from the record, on the writer's thread, and nothing is
//! handed between threads. The connection is one of the server's own pool's,
//! detached from it, so it has exactly the pool's settings (WAL, sync, busy
//! timeout); it keeps its prepared statements for the writer's lifetime.
//!
//! The INSERTs are SQLite statements of our own, not rusqlite's: rusqlite
//! binds every text as transient, so SQLite copies each value into memory
//! of its own before the row is built (5K of a record's 7.5K instructions
//! of binding, callgrind on `record_cost`). Here text is bound in place
//! (`SQLITE_STATIC`): the batch outlives the statement's step, and the
//! bindings are cleared before the batch is let go.

use super::row::{RecordRow, Text};
use crate::rfc3339;
use super::writer::{self, COLUMNS, INSERT_STATEMENTS, insert_chunks};
use rusqlite::TransactionBehavior;
use rusqlite::ffi;
use std::ffi::c_int;
use std::ptr::NonNull;
use sea_orm::DbBackend;
use sea_orm::sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The writer connection's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 256;

/// Starts the writer on a thread of its own, with a runtime of its own for
/// its waits (for records, for its turn on the pool's connection, for a
/// backoff); it runs until every sender is gone and the channel is
/// drained, and the handle finishes then.
///
/// Why not a task on the server's runtime, as it was: SQLite blocks for as
/// long as a batch takes (about a millisecond for a full one), so the task
/// ran its inserts in `block_in_place`, which hands the worker's queue of
/// requests to another thread for every batch, and every wake-up of the
/// writer (its timer, the channel) went through the server's workers.
/// Measured with both servers loaded at the same time (benches/README.md),
/// records and traces cost a hello-world request 33 µs of CPU over a server
/// with both off while the writer was a task, and 17-23 µs with the writer
/// on this thread, which itself takes about 6 µs a record. A thread of its
/// own that waited on the server's runtime (`Handle::block_on`) could not
/// be told apart from the task.
pub(super) fn spawn_writer(pool: SqlitePool, receiver: mpsc::Receiver<RecordRow>) -> std::io::Result<JoinHandle<()>> {
    // Timers for the waits; I/O too, for whatever sqlx may run here while
    // the writer waits on the pool (it spawns onto the current runtime).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (finished, writer_finished) = oneshot::channel();
    std::thread::Builder::new().name("edgefn-records".into()).spawn(move || {
        runtime.block_on(write_batches(pool, receiver));
        let _ = finished.send(());
    })?;
    Ok(tokio::spawn(async move {
        // Dropped without a send only if the thread panicked.
        writer_finished.await.expect("the execution record writer's thread panicked");
    }))
}

/// Writes what arrives, in batches, until every sender is gone and the
/// channel is drained. A batch that fails is retried, whole, until the
/// database takes it; a connection that cannot be had is asked for again.
/// Blocks its thread while SQLite writes: for the writer's own thread only.
async fn write_batches(pool: SqlitePool, mut receiver: mpsc::Receiver<RecordRow>) {
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
        // dropped before it. `from_handle` does not close the handle on drop;
        // `connection` closes it last.
        let sqlite = match unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
            Ok(sqlite) => sqlite,
            Err(e) => {
                tracing::error!(error = %e, "the execution record writer could not use its connection; retrying");
                backoff.wait().await;
                continue;
            }
        };
        // Declared after `sqlite`: finalized before the connection goes.
        // A small page cache: the writer only appends, so the pages it keeps
        // are the B-trees' right edges and a batch's dirty pages. SQLite's
        // default 2 MiB cache only cycles pages never read again through
        // memory, evicting the request path's from the CPU caches: measured
        // side by side (benches/README.md), 256 KiB took 4 µs of CPU off a
        // recorded request; 128 and 512 KiB did worse. (A negative
        // cache_size is in KiB, a positive one in pages.)
        if let Err(e) = sqlite.pragma_update(None, "cache_size", -WRITER_CACHE_KIB) {
            tracing::warn!(error = %e, "could not shrink the record writer's page cache; it keeps SQLite's default");
        }
        let mut inserts = Inserts::new(&sqlite);
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
            let written = insert(&sqlite, &mut inserts, &pending);
            // sqlx gives the connection back in a task spawned on this
            // thread's runtime; it runs at the writer's next wait.
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
fn insert(sqlite: &rusqlite::Connection, inserts: &mut Inserts, rows: &[RecordRow]) -> rusqlite::Result<()> {
    // IMMEDIATE: the write lock is taken (or waited for, up to the busy
    // timeout) at the start, so the batch never fails halfway on it.
    let transaction = rusqlite::Transaction::new_unchecked(sqlite, TransactionBehavior::Immediate)?;
    // A chunk's times, one after another, and where each ends.
    let (mut times, mut time_ends) = (String::new(), Vec::new());
    for (index, sql, chunk) in insert_chunks(DbBackend::Sqlite, rows) {
        // Times as sqlx writes them, so that sea-orm reads them back and
        // compares them the same way; made first, as they must outlive the
        // step that reads them in place.
        times.clear();
        time_ends.clear();
        for row in chunk {
            rfc3339::write(&mut times, &row.received_at, rfc3339::Offset::Numeric);
            time_ends.push(times.len());
        }
        let mut insert = inserts.statement(index, sql)?;
        let mut time_start = 0;
        for (row, &time_end) in chunk.iter().zip(&time_ends) {
            let [duration, queue, instantiate, run] = row.durations_us;
            // In `COLUMNS` order.
            insert.text(row.text(Text::Id))?;
            insert.text(row.text(Text::FunctionName))?;
            insert.integer(row.version.map(i64::from))?;
            insert.text(Some(&times[time_start..time_end]))?;
            time_start = time_end;
            insert.integer(Some(duration))?;
            insert.integer(Some(queue))?;
            insert.integer(Some(instantiate))?;
            insert.integer(Some(run))?;
            insert.text(row.text(Text::Caller))?;
            insert.text(row.text(Text::Method))?;
            insert.text(row.text(Text::Path))?;
            insert.integer(Some(i64::from(row.status)))?;
            insert.text(row.text(Text::Outcome))?;
            insert.text(row.text(Text::Console))?;
            insert.text(row.text(Text::Error))?;
            insert.integer(row.fuel_consumed)?;
            insert.integer(row.peak_memory_bytes)?;
            insert.text(row.text(Text::Details))?;
            insert.text(row.text(Text::TraceId))?;
            insert.text(row.text(Text::ClientIp))?;
        }
        debug_assert_eq!(insert.bound, chunk.len() * COLUMNS.len());
        insert.execute()?;
    }
    transaction.commit()
}

/// The writer's INSERT statements, prepared on first use and kept for the
/// connection's lifetime, one per chunk size.
struct Inserts {
    db: NonNull<ffi::sqlite3>,
    prepared: [Option<NonNull<ffi::sqlite3_stmt>>; INSERT_STATEMENTS],
}

// SAFETY: the statements and the connection handle are used only by the
// writer's task, one batch at a time, never from two threads at once, and
// SQLite (built thread-safe, as sqlx requires) allows a connection and its
// statements to move between threads.
unsafe impl Send for Inserts {}

impl Inserts {
    fn new(sqlite: &rusqlite::Connection) -> Self {
        // SAFETY: the raw handle is only used while `sqlite`'s handle lives
        // (the caller drops this first) and only from this writer.
        let db = NonNull::new(unsafe { sqlite.handle() }).expect("an open connection has a handle");
        Inserts { db, prepared: [None; INSERT_STATEMENTS] }
    }

    /// Statement `index` (its text `sql`), ready to bind from parameter 1.
    fn statement(&mut self, index: usize, sql: &str) -> rusqlite::Result<Binding<'_>> {
        let statement = match self.prepared[index] {
            Some(statement) => statement,
            None => {
                let mut statement = std::ptr::null_mut();
                let length = c_int::try_from(sql.len()).expect("an INSERT's text is far under 2 GiB");
                // SAFETY: `sql` is valid for `length` bytes; the handle is open.
                let code = unsafe {
                    ffi::sqlite3_prepare_v3(
                        self.db.as_ptr(),
                        sql.as_ptr().cast(),
                        length,
                        ffi::SQLITE_PREPARE_PERSISTENT as _,
                        &mut statement,
                        std::ptr::null_mut(),
                    )
                };
                check(self.db, code)?;
                let statement = NonNull::new(statement).expect("a prepared INSERT is a statement");
                self.prepared[index] = Some(statement);
                statement
            }
        };
        Ok(Binding { db: self.db, statement, bound: 0, _batch: std::marker::PhantomData })
    }
}

impl Drop for Inserts {
    fn drop(&mut self) {
        for statement in self.prepared.iter().flatten() {
            // SAFETY: prepared by this connection, finalized once, here.
            unsafe { ffi::sqlite3_finalize(statement.as_ptr()) };
        }
    }
}

/// One execution of an INSERT: values are bound in parameter order, text
/// in place, so everything bound must outlive `execute` (`'batch`).
struct Binding<'batch> {
    db: NonNull<ffi::sqlite3>,
    statement: NonNull<ffi::sqlite3_stmt>,
    bound: usize,
    _batch: std::marker::PhantomData<&'batch ()>,
}

impl<'batch> Binding<'batch> {
    fn next_parameter(&mut self) -> c_int {
        self.bound += 1;
        c_int::try_from(self.bound).expect("an INSERT has fewer than 2^31 parameters")
    }

    fn text(&mut self, value: Option<&'batch str>) -> rusqlite::Result<()> {
        let parameter = self.next_parameter();
        // SAFETY: the statement is live; `value` outlives the step (the
        // `'batch` borrow) and the bindings are cleared after it, so SQLite
        // never reads it once it is gone. An empty value is bound as a
        // static "", never as a dangling pointer.
        let code = unsafe {
            match value {
                None => ffi::sqlite3_bind_null(self.statement.as_ptr(), parameter),
                Some(text) => {
                    let text = if text.is_empty() { "" } else { text };
                    ffi::sqlite3_bind_text64(
                        self.statement.as_ptr(),
                        parameter,
                        text.as_ptr().cast(),
                        text.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    )
                }
            }
        };
        check(self.db, code)
    }

    fn integer(&mut self, value: Option<i64>) -> rusqlite::Result<()> {
        let parameter = self.next_parameter();
        // SAFETY: the statement is live.
        let code = unsafe {
            match value {
                None => ffi::sqlite3_bind_null(self.statement.as_ptr(), parameter),
                Some(value) => ffi::sqlite3_bind_int64(self.statement.as_ptr(), parameter, value),
            }
        };
        check(self.db, code)
    }

    /// Runs the INSERT; dropping the binding then resets the statement.
    fn execute(self) -> rusqlite::Result<()> {
        // SAFETY: the statement is live and every parameter is bound.
        let stepped = unsafe { ffi::sqlite3_step(self.statement.as_ptr()) };
        if stepped == ffi::SQLITE_DONE { Ok(()) } else { check(self.db, stepped) }
    }
}

impl Drop for Binding<'_> {
    /// Resets the statement and clears its bindings, executed or not (a
    /// failed bind returns early), so no pointer into the batch stays behind.
    fn drop(&mut self) {
        // SAFETY: the statement is live. `reset` repeats a failed step's
        // error, already returned by `execute`.
        unsafe {
            ffi::sqlite3_reset(self.statement.as_ptr());
            ffi::sqlite3_clear_bindings(self.statement.as_ptr());
        }
    }
}

/// `code` as a rusqlite error, with the connection's message, if it is one.
#[inline]
fn check(db: NonNull<ffi::sqlite3>, code: c_int) -> rusqlite::Result<()> {
    if code == ffi::SQLITE_OK { Ok(()) } else { Err(error(db, code)) }
}

#[cold]
fn error(db: NonNull<ffi::sqlite3>, code: c_int) -> rusqlite::Error {
    // SAFETY: the handle is open; the message is copied before any other call.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db.as_ptr());
        (!text.is_null()).then(|| std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executions::row::tests::record;
    use crate::sandbox::ExecutionError;

    /// A connection with the record table's columns, as the migrations make it.
    fn database() -> rusqlite::Connection {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let columns = COLUMNS.map(|c| format!("\"{c}\""));
        sqlite.execute(&format!("CREATE TABLE edgefn_executions ({} , PRIMARY KEY (\"id\"))", columns.join(", ")), []).unwrap();
        sqlite
    }

    fn row_with_id(id: &str, caller: Option<&str>, error: Option<ExecutionError>) -> RecordRow {
        let mut record = record(caller, error);
        record.id = id.into();
        RecordRow::pack(&record)
    }

    /// Every column of every row as text (NULL as None), by id.
    fn stored(sqlite: &rusqlite::Connection) -> Vec<Vec<Option<String>>> {
        let select = format!("SELECT {} FROM edgefn_executions ORDER BY \"id\"", COLUMNS.map(|c| format!("CAST(\"{c}\" AS TEXT)")).join(", "));
        let mut statement = sqlite.prepare(&select).unwrap();
        let rows = statement.query_map([], |row| (0..COLUMNS.len()).map(|i| row.get::<_, Option<String>>(i)).collect());
        rows.unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn rows_are_stored_as_packed_in_chunks_of_every_size() {
        let sqlite = database();
        let mut inserts = Inserts::new(&sqlite);
        // 7 rows: chunks of 4, 2 and 1; NULL and empty text among them.
        let rows: Vec<RecordRow> = (0..7)
            .map(|i| {
                let error = (i % 2 == 0).then(|| ExecutionError::new("uncaught exception", format!("boom {i}")));
                let caller = [None, Some(""), Some("user:1 a@example.com")][i % 3];
                row_with_id(&format!("id-{i}"), caller, error)
            })
            .collect();
        insert(&sqlite, &mut inserts, &rows).unwrap();

        let stored = stored(&sqlite);
        assert_eq!(stored.len(), rows.len());
        for (row, columns) in rows.iter().zip(&stored) {
            let text = |column: Text| row.text(column).map(str::to_owned);
            assert_eq!(columns[0], text(Text::Id));
            assert_eq!(columns[1], text(Text::FunctionName));
            assert_eq!(columns[2], row.version.map(|v| v.to_string()));
            let mut received_at = String::new();
            rfc3339::write(&mut received_at, &row.received_at, rfc3339::Offset::Numeric);
            assert_eq!(columns[3].as_deref(), Some(received_at.as_str()));
            let durations: Vec<Option<String>> = row.durations_us.iter().map(|d| Some(d.to_string())).collect();
            assert_eq!(&columns[4..8], durations.as_slice());
            assert_eq!(columns[8], text(Text::Caller));
            assert_eq!(columns[9], text(Text::Method));
            assert_eq!(columns[10], text(Text::Path));
            assert_eq!(columns[11], Some(row.status.to_string()));
            assert_eq!(columns[12], text(Text::Outcome));
            assert_eq!(columns[13], text(Text::Console));
            assert_eq!(columns[14], text(Text::Error));
            assert_eq!(columns[15], row.fuel_consumed.map(|v| v.to_string()));
            assert_eq!(columns[16], None, "peak memory is NULL in the sample");
            assert_eq!(columns[17], text(Text::Details));
            assert_eq!(columns[18], text(Text::TraceId));
            assert_eq!(columns[19], text(Text::ClientIp));
        }
    }

    #[test]
    fn a_failed_batch_stores_nothing_and_the_next_one_goes_in() {
        let sqlite = database();
        let mut inserts = Inserts::new(&sqlite);
        insert(&sqlite, &mut inserts, &[row_with_id("a", None, None)]).unwrap();

        // The second row's id is taken: the whole batch is refused.
        let clashing = [row_with_id("b", None, None), row_with_id("a", None, None)];
        let error = insert(&sqlite, &mut inserts, &clashing).unwrap_err();
        assert!(error.to_string().contains("UNIQUE constraint failed"), "{error}");
        assert_eq!(stored(&sqlite).len(), 1);

        // The same statements serve the next batch, with its own values.
        insert(&sqlite, &mut inserts, &[row_with_id("b", None, None), row_with_id("c", None, None)]).unwrap();
        let ids: Vec<_> = stored(&sqlite).into_iter().map(|columns| columns[0].clone().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
