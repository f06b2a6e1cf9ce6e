//! Admin API for execution records: list with filters and a cursor, one
//! record, aggregate stats per function, a time series for charts, and a
//! live tail (server-sent events). Mounted inside `routes::admin`, behind its admin-key check.

use super::AppState;
use crate::error::ApiError;
use crate::executions::{MAX_BUCKETS, RecordFilter};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/executions", get(list_executions))
        .route("/executions/stats", get(stats))
        .route("/executions/series", get(series))
        .route("/executions/tail", get(tail))
        .route("/executions/{id}", get(get_execution))
}

/// The filters every route here takes, and the list's paging.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutionQuery {
    function: Option<String>,
    version: Option<i32>,
    outcome: Option<String>,
    status: Option<u16>,
    caller: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    q: Option<String>,
    trace_id: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
    /// How many slices `series` cuts its window into.
    buckets: Option<u32>,
}

type QueryResult = Result<Query<ExecutionQuery>, axum::extract::rejection::QueryRejection>;

fn parse(query: QueryResult) -> Result<(RecordFilter, ExecutionQuery), ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; filters are function, version, outcome, status, caller, since, until (RFC 3339), q, trace_id, limit, cursor and (for series) buckets",
            e.body_text()
        ))
    })?;
    let filter = RecordFilter {
        function: query.function.clone(),
        version: query.version,
        outcome: query.outcome.clone(),
        status: query.status,
        caller: query.caller.clone(),
        since: query.since,
        until: query.until,
        q: query.q.clone(),
        trace_id: query.trace_id.clone(),
    };
    Ok((filter, query))
}

/// Newest first; `next_cursor` pages to older records.
async fn list_executions(State(state): State<AppState>, query: QueryResult) -> Result<Json<serde_json::Value>, ApiError> {
    let (filter, query) = parse(query)?;
    let page = state.executions.page(&filter, query.cursor.as_deref(), query.limit.unwrap_or(50)).await?;
    Ok(Json(serde_json::to_value(page).expect("records serialize")))
}

async fn get_execution(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::to_value(state.executions.get(&id).await?).expect("records serialize")))
}

/// The window `since..until` of an aggregate: the last hour unless the
/// filter says otherwise.
fn window(filter: &RecordFilter) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let until = filter.until.unwrap_or_else(Utc::now);
    let since = filter.since.unwrap_or(until - chrono::Duration::hours(1));
    if since >= until {
        return Err(ApiError::BadRequest("since must be before until".into()));
    }
    Ok((since, until))
}

/// Per function: count, error rate and p50/p95/p99 duration, over the last
/// hour unless `since` / `until` say otherwise.
async fn stats(State(state): State<AppState>, query: QueryResult) -> Result<Json<serde_json::Value>, ApiError> {
    let (mut filter, _) = parse(query)?;
    let (since, until) = window(&filter)?;
    (filter.since, filter.until) = (Some(since), Some(until));
    let functions = state.executions.stats(&filter).await?;
    Ok(Json(json!({ "since": since, "until": until, "functions": functions })))
}

/// The window (the last hour by default) cut into `buckets` equal slices
/// (60 by default), each with count, errors and p50/p95/p99 duration: what
/// the admin interface charts.
async fn series(State(state): State<AppState>, query: QueryResult) -> Result<Json<serde_json::Value>, ApiError> {
    let (filter, query) = parse(query)?;
    let (since, until) = window(&filter)?;
    let buckets = query.buckets.unwrap_or(60);
    if !(1..=MAX_BUCKETS).contains(&buckets) {
        return Err(ApiError::BadRequest(format!("buckets is between 1 and {MAX_BUCKETS}, not {buckets}")));
    }
    let series = state.executions.series(&filter, since, until, buckets).await?;
    Ok(Json(serde_json::to_value(series).expect("series serialize")))
}

/// Each new record matching the filters as an `execution` event; a reader
/// too slow to keep up gets a `lagged` event saying how many it missed.
async fn tail(
    State(state): State<AppState>,
    query: QueryResult,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let (filter, _) = parse(query)?;
    let events = state.executions.tail(filter).map(|item| {
        Ok(match item {
            Ok(record) => Event::default().event("execution").json_data(record).expect("records serialize"),
            Err(missed) => Event::default().event("lagged").data(json!({ "missed": missed }).to_string()),
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
