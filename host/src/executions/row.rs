//! A record as the row the writer inserts, packed on the request's thread:
//! every text column in one buffer, the JSON columns already written.
//!
//! Why: a record is made on a request's thread and stored by the writer's.
//! Handed over as an `ExecutionRecord` (a dozen strings, the console lines,
//! the captured response's headers and body), every one of its allocations
//! was freed on the writer's thread, cold in its cache and against another
//! thread's malloc arena; under load, malloc and free took about 2.7 µs more
//! per request in the recording server than in one that does not record
//! (perf, benches/README.md). Packed where it was made, the record's own
//! allocations are freed while they are still in that thread's cache, the
//! writer has one to free, and the writer binds text without a copy per
//! column into `Arc<str>`s.

use super::ExecutionRecord;
use chrono::{DateTime, Utc};

/// The text columns, in the order they are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Text {
    Id,
    FunctionName,
    Caller,
    Method,
    Path,
    Outcome,
    Console,
    Error,
    Details,
    TraceId,
    ClientIp,
}

const TEXT_COLUMNS: usize = Text::ClientIp as usize + 1;

/// One record's column values.
#[derive(Debug)]
pub(super) struct RecordRow {
    /// The text columns, one after another.
    text: String,
    /// Where each text column ends in `text`, by [`Text`].
    ends: [u32; TEXT_COLUMNS],
    /// Bit `1 << column` set for each text column that is NULL.
    nulls: u16,
    pub(super) version: Option<i32>,
    pub(super) received_at: DateTime<Utc>,
    /// Total, queue, instantiate, run.
    pub(super) durations_us: [i64; 4],
    pub(super) status: i32,
    pub(super) fuel_consumed: Option<i64>,
    pub(super) peak_memory_bytes: Option<i64>,
}

impl RecordRow {
    /// Packs `record`'s columns, as `ExecutionRecord::into_model` makes them.
    pub(super) fn pack(record: &ExecutionRecord) -> RecordRow {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut row = RecordRow {
            text: String::with_capacity(256 + record.path.len()),
            ends: [0; TEXT_COLUMNS],
            nulls: 0,
            version: record.version,
            received_at: record.received_at,
            durations_us: [
                as_i64(record.duration_us),
                as_i64(record.timings.queue_us),
                as_i64(record.timings.instantiate_us),
                as_i64(record.timings.run_us),
            ],
            status: i32::from(record.status),
            fuel_consumed: record.fuel_consumed.map(as_i64),
            peak_memory_bytes: record.peak_memory_bytes.map(as_i64),
        };
        row.push(Text::Id, Some(&record.id));
        row.push(Text::FunctionName, Some(&record.function));
        row.push(Text::Caller, record.caller.as_deref());
        row.push(Text::Method, Some(&record.method));
        row.push(Text::Path, Some(&record.path));
        row.push(Text::Outcome, Some(&record.outcome));
        row.push(Text::Console, Some(&record.console_json()));
        row.push(Text::Error, record.error_json().as_deref());
        row.push(Text::Details, Some(&record.details_json()));
        row.push(Text::TraceId, record.trace_id.as_deref());
        row.push(Text::ClientIp, record.client_ip.as_deref());
        row
    }

    /// Appends `column`'s value; columns come in [`Text`] order.
    fn push(&mut self, column: Text, value: Option<&str>) {
        match value {
            Some(value) => self.text.push_str(value),
            None => self.nulls |= 1 << column as u16,
        }
        self.ends[column as usize] = u32::try_from(self.text.len()).expect("a record's text is under 4 GiB");
    }

    /// A text column's value; None for NULL.
    pub(super) fn text(&self, column: Text) -> Option<&str> {
        if self.nulls & (1 << column as u16) != 0 {
            return None;
        }
        let index = column as usize;
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        Some(&self.text[start..self.ends[index] as usize])
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::capabilities::console::ConsoleLine;
    use crate::executions::CapturedResponse;
    use crate::sandbox::{ExecutionError, Timings};

    /// A hello-world sized record, with or without a caller and an error.
    pub(in crate::executions) fn record(caller: Option<&str>, error: Option<ExecutionError>) -> ExecutionRecord {
        ExecutionRecord {
            id: "019af1c2-0000-7000-8000-000000000001".into(),
            function: "hello".into(),
            version: Some(3),
            received_at: Utc::now(),
            duration_us: 812,
            timings: Timings { queue_us: 1, instantiate_us: 20, run_us: 700 },
            caller: caller.map(str::to_owned),
            method: "POST".into(),
            path: "/functions/v1/hello/x?y=\"é\"".into(),
            status: 201,
            outcome: "ok".into(),
            console: vec![ConsoleLine { level: "log", at: Utc::now(), text: "line \"one\"\n".into() }],
            error,
            fuel_consumed: Some(150_000),
            peak_memory_bytes: None,
            response: Some(CapturedResponse::new(201, &[("content-type".into(), "application/json".into())], b"{}")),
            trace_id: None,
            client_ip: Some("127.0.0.1".into()),
            database: None,
            outbound: None,
        }
    }

    #[test]
    fn a_packed_row_holds_the_columns_the_model_has() {
        for (caller, error) in [(None, None), (Some("user:1 a@example.com"), Some(ExecutionError::new("uncaught exception", "boom".into())))] {
            let record = record(caller, error);
            let row = RecordRow::pack(&record);
            let model = record.into_model();
            let texts = [
                (Text::Id, Some(model.id.as_str())),
                (Text::FunctionName, Some(&model.function_name)),
                (Text::Caller, model.caller.as_deref()),
                (Text::Method, Some(&model.method)),
                (Text::Path, Some(&model.path)),
                (Text::Outcome, Some(&model.outcome)),
                (Text::Console, Some(&model.console)),
                (Text::Error, model.error.as_deref()),
                (Text::Details, Some(&model.details)),
                (Text::TraceId, model.trace_id.as_deref()),
                (Text::ClientIp, model.client_ip.as_deref()),
            ];
            for (column, expected) in texts {
                assert_eq!(row.text(column), expected, "{column:?}");
            }
            assert_eq!(row.durations_us, [model.duration_us, model.queue_us, model.instantiate_us, model.run_us]);
            assert_eq!(
                (row.version, row.received_at, row.status, row.fuel_consumed, row.peak_memory_bytes),
                (model.version, model.received_at, model.status, model.fuel_consumed, model.peak_memory_bytes)
            );
        }
    }
}
