//! CPU cost of execution records: queues N hello-world-sized records into
//! the real `ExecutionLog` on SQLite and waits until all are stored.
//! Prints microseconds per record (wall time; the writer is the only work).
//! Usage: `record_cost [records, default 50000]`

use edgefn_host::capabilities::console::ConsoleLine;
use edgefn_host::executions::{CapturedResponse, ExecutionLog, ExecutionRecord, RecordFilter, Retention};
use edgefn_migrations::{Migrator, MigratorTrait};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    // As the server's `main` does.
    edgefn_host::sqlite_without_memory_statistics();
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(50_000);
    let dir = std::env::temp_dir().join(format!("edgefn-record-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The server's SQLite settings (host/src/lib.rs): WAL, NORMAL sync.
    let mut options = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=rwc", dir.join("records.db").display()));
    options.sqlx_logging(false).map_sqlx_sqlite_opts(|sqlite| {
        sqlite.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal).synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
    });
    let db = sea_orm::Database::connect(options).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let retention = Retention { max_age: Duration::from_secs(86_400), max_records: u64::MAX >> 1, interval: Duration::from_secs(3600) };
    let (log, writer) = ExecutionLog::start(db.clone(), retention, None).unwrap();
    let started = Instant::now();
    for _ in 0..count {
        let record = ExecutionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            function: "hello".into(),
            version: Some(1),
            received_at: chrono::Utc::now(),
            duration_us: 80,
            timings: Default::default(),
            caller: None,
            method: "GET".into(),
            path: "/functions/v1/hello".into(),
            status: 200,
            outcome: "ok".into(),
            console: vec![ConsoleLine { level: "log", at: chrono::Utc::now(), text: "greeting world".into() }],
            error: None,
            fuel_consumed: Some(250_000),
            peak_memory_bytes: Some(2 << 20),
            response: Some(CapturedResponse::new(200, &[("content-type".into(), "application/json".into())], br#"{"hello":"world"}"#)),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            client_ip: Some("127.0.0.1".into()),
            database: None,
            outbound: None,
        };
        log.record(record).await;
    }
    let queued = started.elapsed();
    drop(log);
    writer.await.unwrap();
    let stored = started.elapsed();
    let (check, _) = ExecutionLog::start(db, retention, None).unwrap();
    let page = check.page(&RecordFilter::default(), None, 1).await.unwrap();
    assert!(!page.executions.is_empty());
    println!(
        "{count} records: queued in {:.1} µs each, stored in {:.1} µs each (wall, writer included)",
        queued.as_secs_f64() * 1e6 / count as f64,
        stored.as_secs_f64() * 1e6 / count as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
