//! Aggregates over execution records: per-function totals and duration
//! percentiles for a window, and the same per time bucket for charts.
//!
//! Percentiles are nearest-rank (the smallest duration at or above p of the
//! records), computed the same way in both, so a chart's buckets and the
//! window's figures never disagree on what "p95" means.

use super::{ExecutionLog, RecordFilter};
use crate::entities::execution;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

/// The percentiles reported, in the order of the fields below.
const PERCENTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// Records read per query while bucketing a series (keyset pages by id).
const SERIES_PAGE: u64 = 10_000;

/// Most buckets a series may ask for.
pub const MAX_BUCKETS: u32 = 240;

/// Invocations of one function in a time window.
#[derive(Debug, Serialize)]
pub struct FunctionStats {
    /// Function name.
    pub function: String,
    /// Invocations recorded.
    pub count: u64,
    /// Of which did not end `ok`.
    pub errors: u64,
    /// `errors / count`.
    pub error_rate: f64,
    /// Duration percentiles, in microseconds.
    pub p50_us: i64,
    /// 95th percentile.
    pub p95_us: i64,
    /// 99th percentile.
    pub p99_us: i64,
}

/// Invocations in one slice of a window, for charts.
#[derive(Debug, Serialize, PartialEq)]
pub struct SeriesBucket {
    /// The slice starts here and lasts the series' `bucket_seconds`.
    pub start: DateTime<Utc>,
    /// Invocations recorded.
    pub count: u64,
    /// Of which did not end `ok`.
    pub errors: u64,
    /// Duration percentiles in microseconds; absent when `count` is 0.
    pub p50_us: Option<i64>,
    /// 95th percentile.
    pub p95_us: Option<i64>,
    /// 99th percentile.
    pub p99_us: Option<i64>,
}

/// A window cut into equal buckets, oldest first, empty ones included.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Start of the first bucket.
    pub since: DateTime<Utc>,
    /// End of the last bucket (the window's end, or a little after when the
    /// window does not divide evenly).
    pub until: DateTime<Utc>,
    /// Length of every bucket.
    pub bucket_seconds: i64,
    /// The buckets.
    pub buckets: Vec<SeriesBucket>,
}

/// The 0-based index of the nearest-rank `p` percentile among `count` sorted values.
fn rank(p: f64, count: u64) -> u64 {
    ((p * count as f64).ceil() as u64).clamp(1, count) - 1
}

impl ExecutionLog {
    /// Count, error rate and duration percentiles per function, for records
    /// matching `filter` (its time range is the window).
    pub async fn stats(&self, filter: &RecordFilter) -> Result<Vec<FunctionStats>, ApiError> {
        use sea_orm::FromQueryResult;
        #[derive(FromQueryResult)]
        struct Totals {
            function_name: String,
            count: i64,
            ok: i64,
        }
        let totals = filter
            .apply(execution::Entity::find())?
            .select_only()
            .column(execution::Column::FunctionName)
            .column_as(execution::Column::Id.count(), "count")
            .column_as(sea_orm::sea_query::Expr::cust("SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END)"), "ok")
            .group_by(execution::Column::FunctionName)
            .order_by_asc(execution::Column::FunctionName)
            .into_model::<Totals>()
            .all(&self.db)
            .await?;
        let mut stats = Vec::with_capacity(totals.len());
        for total in totals {
            let one = RecordFilter { function: Some(total.function_name.clone()), ..filter.clone() };
            let count = total.count.max(0) as u64;
            let mut percentiles = [0i64; 3];
            for (slot, p) in percentiles.iter_mut().zip(PERCENTILES) {
                let row = one
                    .apply(execution::Entity::find())?
                    .select_only()
                    .column(execution::Column::DurationUs)
                    .order_by_asc(execution::Column::DurationUs)
                    .offset(rank(p, count))
                    .limit(1)
                    .into_tuple::<i64>()
                    .one(&self.db)
                    .await?;
                *slot = row.unwrap_or(0);
            }
            let errors = count - total.ok.max(0) as u64;
            stats.push(FunctionStats {
                function: total.function_name,
                count,
                errors,
                error_rate: if count == 0 { 0.0 } else { errors as f64 / count as f64 },
                p50_us: percentiles[0],
                p95_us: percentiles[1],
                p99_us: percentiles[2],
            });
        }
        Ok(stats)
    }

    /// Records matching `filter`, counted per bucket over `since..until`.
    ///
    /// Reads each matching record's time, duration and outcome once, in
    /// pages along the primary key, and keeps one duration per record until
    /// its bucket is summarised: memory grows with the records in the window
    /// (8 bytes each), which retention bounds (`--record-retention-max`).
    pub async fn series(
        &self,
        filter: &RecordFilter,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        buckets: u32,
    ) -> Result<Series, ApiError> {
        let buckets = buckets.clamp(1, MAX_BUCKETS);
        let window_ms = (until - since).num_milliseconds().max(1);
        // Whole seconds, so bucket starts read well on an axis.
        let bucket_seconds = (window_ms as f64 / f64::from(buckets) / 1000.0).ceil().max(1.0) as i64;
        let bucket = chrono::Duration::seconds(bucket_seconds);
        let filter = RecordFilter { since: Some(since), until: Some(until), ..filter.clone() };

        let mut durations: Vec<Vec<i64>> = vec![Vec::new(); buckets as usize];
        let mut errors = vec![0u64; buckets as usize];
        let mut after: Option<String> = None;
        loop {
            let mut query = filter
                .apply(execution::Entity::find())?
                .select_only()
                .column(execution::Column::Id)
                .column(execution::Column::ReceivedAt)
                .column(execution::Column::DurationUs)
                .column(execution::Column::Outcome)
                .order_by_asc(execution::Column::Id)
                .limit(SERIES_PAGE);
            if let Some(after) = &after {
                query = query.filter(execution::Column::Id.gt(after.as_str()));
            }
            let rows = query.into_tuple::<(String, DateTime<Utc>, i64, String)>().all(&self.db).await?;
            let full_page = rows.len() as u64 == SERIES_PAGE;
            for (id, received_at, duration_us, outcome) in rows {
                let index = ((received_at - since).num_seconds() / bucket_seconds).clamp(0, i64::from(buckets) - 1) as usize;
                durations[index].push(duration_us);
                if outcome != "ok" {
                    errors[index] += 1;
                }
                after = Some(id);
            }
            if !full_page {
                break;
            }
        }

        let buckets = durations
            .into_iter()
            .zip(errors)
            .enumerate()
            .map(|(i, (mut durations, errors))| {
                durations.sort_unstable();
                let count = durations.len() as u64;
                let percentile = |p: f64| (count > 0).then(|| durations[rank(p, count) as usize]);
                SeriesBucket {
                    start: since + bucket * i as i32,
                    count,
                    errors,
                    p50_us: percentile(PERCENTILES[0]),
                    p95_us: percentile(PERCENTILES[1]),
                    p99_us: percentile(PERCENTILES[2]),
                }
            })
            .collect::<Vec<_>>();
        let until = since + bucket * buckets.len() as i32;
        Ok(Series { since, until, bucket_seconds, buckets })
    }
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn nearest_rank_percentiles() {
        // Of 100 values, p95 is the 95th smallest (index 94); of one, that one.
        assert_eq!(rank(0.95, 100), 94);
        assert_eq!(rank(0.50, 1), 0);
        assert_eq!(rank(0.99, 3), 2);
        assert_eq!(rank(0.50, 4), 1);
    }
}
