//! `edgefn:function/database`: application data, queried as the caller.
//!
//! Invariants: no query runs without the caller's row-level security unless
//! the deployment's manifest asked for the service role (or the caller is an
//! admin key, which is the service role); every query counts against the
//! invocation's limits; a transaction the function leaves open is rolled
//! back when the invocation ends, whatever way it ends.

use crate::database::query::{self, Plan, QueryContext, QueryError};
use crate::database::{AppDatabase, write_transaction};
use edgefn_world::database::{DatabaseError, Host};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-invocation database limits, each with a server-wide default.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseLimits {
    /// How long one query may run.
    pub query_timeout: Duration,
    /// Most rows one query may return or change.
    pub max_rows: usize,
    /// Most queries one invocation may run.
    pub max_queries: u32,
}

impl Default for DatabaseLimits {
    fn default() -> Self {
        DatabaseLimits { query_timeout: Duration::from_secs(5), max_rows: 1000, max_queries: 100 }
    }
}

/// What one invocation did with the database, for its execution record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseUsage {
    /// Queries run (including refused ones).
    pub queries: u32,
    /// Of which failed.
    pub failed: u32,
    /// Time spent in them, in microseconds.
    pub duration_us: u64,
    /// The queries ran with the service role (RLS bypassed).
    pub service_role: bool,
    /// Transactions committed.
    pub commits: u32,
    /// Transactions rolled back, including any edgefn rolled back because
    /// the function left it open.
    pub rollbacks: u32,
}

/// The application database as one invocation sees it.
#[derive(Default)]
pub struct ApplicationDatabase {
    access: Option<Access>,
    transaction: Option<DatabaseTransaction>,
    usage: DatabaseUsage,
    /// The execution span each query's span goes under, when tracing.
    trace: Option<opentelemetry::Context>,
}

struct Access {
    app: Arc<AppDatabase>,
    context: QueryContext,
    limits: DatabaseLimits,
}

impl std::fmt::Debug for ApplicationDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationDatabase").field("usage", &self.usage).finish_non_exhaustive()
    }
}

fn error(code: &str, message: impl Into<String>) -> DatabaseError {
    DatabaseError { code: code.into(), message: message.into() }
}

impl From<QueryError> for DatabaseError {
    fn from(e: QueryError) -> Self {
        error(e.code, e.message)
    }
}

impl ApplicationDatabase {
    /// Access for one invocation running as `context`.
    pub fn new(app: Arc<AppDatabase>, context: QueryContext, limits: DatabaseLimits) -> Self {
        let usage = DatabaseUsage { service_role: context.bypass_rls, ..DatabaseUsage::default() };
        ApplicationDatabase { access: Some(Access { app, context, limits }), transaction: None, usage, trace: None }
    }

    /// Puts each query's span under `cx`.
    pub fn set_trace(&mut self, cx: opentelemetry::Context) {
        self.trace = Some(cx);
    }

    /// A client span for one query, named like `SELECT notes` (no values,
    /// no SQL text: the plan's values are the caller's data).
    fn query_span(&self, plan: &Result<Plan, QueryError>) -> Option<opentelemetry::global::BoxedSpan> {
        use opentelemetry::trace::{SpanKind, Tracer};
        use opentelemetry::KeyValue;
        let cx = self.trace.as_ref()?;
        let system = match self.access.as_ref()?.app.backend() {
            crate::database::sql::Backend::Sqlite => "sqlite",
            crate::database::sql::Backend::Postgres => "postgresql",
        };
        let tracer = crate::telemetry::traces::tracer();
        let (name, mut attributes) = match plan {
            Ok(plan) => (
                format!("{} {}", plan.operation(), plan.table()),
                vec![
                    KeyValue::new("db.operation.name", plan.operation()),
                    KeyValue::new("db.collection.name", plan.table().to_owned()),
                ],
            ),
            Err(_) => ("database query".to_owned(), Vec::new()),
        };
        attributes.push(KeyValue::new("db.system.name", system));
        attributes.push(KeyValue::new("edgefn.db.in_transaction", self.transaction.is_some()));
        Some(tracer.span_builder(name).with_kind(SpanKind::Client).with_attributes(attributes).start_with_context(tracer, cx))
    }

    /// Rolls back a transaction left open and returns what was used.
    pub async fn finish(mut self) -> DatabaseUsage {
        if let Some(transaction) = self.transaction.take() {
            self.usage.rollbacks += 1;
            if let Err(e) = transaction.rollback().await {
                tracing::warn!(error = %e, "rolling back a transaction a function left open");
            }
        }
        self.usage
    }

    fn access(&self) -> Result<&Access, DatabaseError> {
        self.access.as_ref().ok_or_else(|| error("unavailable", "no application database is available while compiling"))
    }

    async fn run(&mut self, plan: Result<Plan, QueryError>) -> Result<String, DatabaseError> {
        let max_queries = self.access()?.limits.max_queries;
        if self.usage.queries >= max_queries {
            return Err(error(
                "too-many-queries",
                format!("this invocation already ran {max_queries} queries, the most one invocation may run"),
            ));
        }
        self.usage.queries += 1;
        let access = self.access()?;
        let plan = plan?;
        let catalog = access.app.catalog().await.map_err(|e| error("database-error", e.to_string()))?;
        let backend = access.app.backend();
        let timeout = access.limits.query_timeout;
        let running = async {
            match &self.transaction {
                Some(transaction) => query::execute(transaction, true, backend, &catalog, plan, &access.context).await,
                None => query::execute(access.app.connection(), false, backend, &catalog, plan, &access.context).await,
            }
        };
        let result = tokio::time::timeout(timeout, running).await.unwrap_or_else(|_| {
            Err(QueryError::new("timeout", format!("the query ran longer than its {} ms limit", timeout.as_millis())))
        })?;
        Ok(result.to_string())
    }
}

impl Host for ApplicationDatabase {
    async fn execute(&mut self, plan_json: String) -> wasmtime::Result<Result<String, DatabaseError>> {
        use opentelemetry::trace::{Span, Status};
        let started = Instant::now();
        let plan = Plan::parse(&plan_json);
        let mut span = self.query_span(&plan);
        let result = self.run(plan).await;
        self.usage.duration_us += u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Err(error) = &result {
            self.usage.failed += 1;
            if let Some(span) = &mut span {
                span.set_attribute(opentelemetry::KeyValue::new("error.type", error.code.clone()));
                span.set_status(Status::error(error.code.clone()));
            }
        }
        if let Some(mut span) = span {
            span.end();
        }
        Ok(result)
    }

    async fn begin(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        let access = match self.access() {
            Ok(access) => access,
            Err(e) => return Ok(Err(e)),
        };
        if self.transaction.is_some() {
            return Ok(Err(error("transaction-open", "a transaction is already open; nested transactions are not supported")));
        }
        let timeout = access.limits.query_timeout;
        Ok(match tokio::time::timeout(timeout, access.app.connection().begin_with_options(write_transaction())).await {
            Ok(Ok(transaction)) => {
                self.transaction = Some(transaction);
                Ok(())
            }
            Ok(Err(e)) => Err(QueryError::from(e).into()),
            Err(_) => Err(error(
                "timeout",
                format!("no database connection became free within {} ms (every one is in a transaction)", timeout.as_millis()),
            )),
        })
    }

    async fn commit(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        let Some(transaction) = self.transaction.take() else {
            return Ok(Err(error("no-transaction", "there is no open transaction to commit")));
        };
        self.usage.commits += 1;
        Ok(transaction.commit().await.map_err(|e| QueryError::from(e).into()))
    }

    async fn rollback(&mut self) -> wasmtime::Result<Result<(), DatabaseError>> {
        let Some(transaction) = self.transaction.take() else {
            return Ok(Err(error("no-transaction", "there is no open transaction to roll back")));
        };
        self.usage.rollbacks += 1;
        Ok(transaction.rollback().await.map_err(|e| QueryError::from(e).into()))
    }
}
