//! edgefn's server. A request to a function's URL is followed through
//! `routes::invoke` → `deployments` → `identity` and `access` (who calls,
//! and may they) → `sandbox` → `capabilities::*` → `executions`; deploys
//! through `routes::admin` → `deployments` → `sandbox`.

pub mod access;
pub mod admin_keys;
pub mod capabilities;
pub mod config;
pub mod connection;
pub mod database;
pub mod deployments;
mod entities;
pub mod error;
pub mod executions;
pub mod identity;
pub mod routes;
pub mod rfc3339;
pub mod sandbox;
pub mod secrets;
pub mod telemetry;

use anyhow::Context;
use config::Config;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use edgefn_migrations::{Migrator, MigratorTrait};
use std::sync::Arc;
use axum::serve::ListenerExt;
use tokio::io::AsyncReadExt;

/// Starts edgefn with `config` and serves until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let otlp = config.otlp().map_err(anyhow::Error::msg)?;
    let identity_config = config.identity().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;

    let db = connect(&config, None).await.context("connecting to the database")?;
    Migrator::up(&db, None).await.context("migrating the database")?;
    // Functions' queries get a pool of their own: a function holding a
    // transaction (up to its deadline) must not take the connection edgefn
    // needs for records, sessions and deployments.
    let app_db = connect(&config, Some(config.db_pool_size)).await.context("connecting the application database")?;

    let secrets = Arc::new(secrets::Secrets::open(db.clone(), &config.key_source()).await.context("opening the secrets store")?);
    if let Some(config::Command::RotateMasterKey) = config.command {
        let count = secrets.reencrypt_all().await.context("re-encrypting secrets")?;
        println!("re-encrypted {count} secret(s) under the current master key");
        db.close().await?;
        return Ok(());
    }

    let admin_keys = admin_keys::AdminKeys::new(db.clone());
    let first_key = admin_keys.bootstrap(config.bootstrap_admin_key.as_deref()).await?;
    let identity = Arc::new(
        identity::Identity::new(
            db.clone(),
            identity_config,
            secrets.derived_keys(identity::SIGNING_KEY_PURPOSE),
            admin_keys.clone(),
        )
        .context("setting up identity")?,
    );

    let sandbox = Arc::new(
        sandbox::Sandbox::new(sandbox::SandboxConfig {
            max_instances: config.max_instances,
            max_memory_bytes: config.max_memory_bytes,
            queue_timeout: std::time::Duration::from_millis(config.queue_timeout_ms),
            console: Default::default(),
            cache_dir: config.cache_dir(),
        })
        .await
        .context("starting the sandbox")?,
    );
    let traces = telemetry::traces::Traces::start(otlp.as_ref()).context("starting the OTLP trace exporter")?;
    let metrics = Arc::new(telemetry::Metrics::new());
    let deployments = Arc::new(deployments::Deployments::new(
        db.clone(),
        sandbox.clone(),
        config.default_limits(),
        config.limit_ceiling(),
        config.max_source_bytes,
        secrets.clone(),
    ).count_cache_lookups(metrics.deployment_cache_hits.clone(), metrics.deployment_cache_misses.clone()));
    let retention = executions::Retention {
        max_age: std::time::Duration::from_secs(config.record_retention_hours.saturating_mul(3600)),
        max_records: config.record_retention_max,
        interval: std::time::Duration::from_secs(config.record_retention_interval_secs),
    };
    let (executions, writer) = executions::ExecutionLog::start(db.clone(), retention, config.jaeger_ui_url.clone())
        .context("starting the execution record writer")?;
    let executions = if config.record_executions {
        executions
    } else {
        tracing::warn!("execution records are off (--record-executions false): invocations leave no record");
        executions.recording_off()
    };

    let outbound = Arc::new(
        capabilities::outbound_http::OutboundHttp::new(
            capabilities::outbound_http::egress::EgressRules {
                default: config.egress_default,
                internal: config.egress_allow_internal.clone(),
            },
            capabilities::outbound_http::OutboundLimits {
                max_requests: config.outbound_max_requests,
                max_request_bytes: config.outbound_max_request_bytes,
                max_response_bytes: config.outbound_max_response_bytes,
                timeout: std::time::Duration::from_millis(config.outbound_timeout_ms),
            },
        )
        .context("setting up outbound HTTP")?,
    );

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{address}"));

    let state = routes::AppState::new(routes::Services {
        sandbox,
        deployments,
        executions,
        admin_keys,
        identity,
        secrets,
        database: Arc::new(database::AppDatabase::new(app_db.clone())),
        database_limits: capabilities::database::DatabaseLimits {
            query_timeout: std::time::Duration::from_millis(config.db_query_timeout_ms),
            max_rows: config.db_max_rows,
            max_queries: config.db_max_queries,
        },
        outbound,
        metrics: metrics.clone(),
        public_url: public_url.clone().into(),
        max_body_bytes: config.max_body_bytes,
        max_source_bytes: config.max_source_bytes,
    });

    println!("edgefn listening on http://{address}");
    if let Some(key) = first_key {
        println!("admin key created on first start (shown once; keep it safe): {key}");
    }
    println!("deploy:  curl -X POST -H 'Authorization: Bearer <admin key>' --data-binary @hello.js {public_url}/admin/v1/functions/hello/versions");

    // The metrics listener stops with the main one: its router holds the
    // app state, and with it a sender of records the writer waits out below.
    let (stop_metrics, metrics_stop) = tokio::sync::oneshot::channel::<()>();
    let mut metrics_server = None;
    if let Some(metrics_address) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(metrics_address)
            .await
            .with_context(|| format!("listening for metrics on {metrics_address}"))?;
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        let app = routes::metrics_router(state.clone());
        metrics_server = Some(tokio::spawn(async move {
            let stopped = async {
                let _ = metrics_stop.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        }));
    }
    let live_tails = state.executions.live_tails();
    let exit_on_stdin_eof = config.exit_on_stdin_eof;
    // Connection info gives the sign-in rate limit the client's address.
    let app = routes::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Wrapped in `tap_io`, which does nothing else, for axum's ConnectInfo:
    // it gives the client's address for any listener wrapped so.
    let listener = connection::BurstListener::new(listener, config.defer_writes).tap_io(|_| {});
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal(exit_on_stdin_eof).await;
            live_tails.end_all();
        })
        .await?;
    let _ = stop_metrics.send(());
    if let Some(metrics_server) = metrics_server {
        metrics_server.await.context("the metrics listener panicked")?;
    }
    // The routers (and every sender of records) are gone: let the writer drain.
    writer.await.context("the execution writer panicked")?;
    traces.shutdown().await;
    app_db.close().await?;
    db.close().await?;
    Ok(())
}

/// Turns SQLite's memory statistics off, for the whole process. With them
/// on (the bundled build's default) every allocation SQLite makes takes one
/// global mutex, shared by every connection and thread; edgefn never reads
/// them. Counted on the record writer (`record_cost`, benches/README.md),
/// this saved 2.0K of 38.5K instructions per record.
///
/// Call it first thing in `main`, before any SQLite connection exists: SQLite
/// accepts the setting only before it initializes, and refuses it (harmlessly)
/// after.
pub fn sqlite_without_memory_statistics() {
    // SAFETY: `sqlite3_config` must not run while another thread uses SQLite;
    // the caller runs it before anything in the process has opened SQLite.
    let _ = unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
}

/// A connection pool on the configured database; `pool_size` None keeps
/// sea-orm's default (one connection on SQLite).
async fn connect(config: &Config, pool_size: Option<u32>) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    // Longer than any function may hold a transaction open.
    let busy_timeout = std::time::Duration::from_millis(config.max_deadline_ms) + std::time::Duration::from_secs(5);
    let mut options = sea_orm::ConnectOptions::new(config.database_url());
    if let Some(size) = pool_size {
        options.max_connections(size);
    }
    // SQLite's default rollback journal fsyncs several times per commit; WAL
    // with NORMAL sync keeps the file consistent across crashes at a fraction
    // of the cost (the execution log commits a batch every few milliseconds).
    // SQLite has one writer at a time: a write waits for a function's open
    // transaction (bounded by the function's deadline) instead of failing.
    options.sqlx_logging(false).map_sqlx_sqlite_opts(move |sqlite| {
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
    });
    sea_orm::Database::connect(options).await
}

async fn shutdown_signal(exit_on_stdin_eof: bool) {
    let stdin_closed = async {
        if exit_on_stdin_eof {
            let mut stdin = tokio::io::stdin();
            let mut buffer = [0u8; 64];
            while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
        _ = stdin_closed => {},
    }
    tracing::info!("shutting down");
}
