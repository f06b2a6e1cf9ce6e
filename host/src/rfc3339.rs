//! Times as RFC 3339 text, written without `core::fmt`: chrono's formatting
//! cost about 1K instructions for a record's `received_at` and 2.4K for each
//! console line's timestamp (callgrind, `record_cost`); this is a tenth of
//! that, and writes exactly what chrono writes.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

/// How UTC is written at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// `+00:00`, as sqlx stores a `DateTime<Utc>` in SQLite.
    Numeric,
    /// `Z`, as chrono's serde writes it into JSON.
    Z,
}

/// Appends `time` as `to_rfc3339_opts(SecondsFormat::AutoSi, offset == Z)`
/// would: as many fraction digits as needed, in steps of three.
pub fn write(out: &mut String, time: &DateTime<Utc>, offset: Offset) {
    let nanos = time.nanosecond();
    let year = time.year();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Years chrono writes with a sign, and leap seconds: its own way.
        out.push_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, offset == Offset::Z));
        return;
    }
    fn digits(out: &mut String, value: u32, width: u32) {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    digits(out, year as u32, 4);
    out.push('-');
    digits(out, time.month(), 2);
    out.push('-');
    digits(out, time.day(), 2);
    out.push('T');
    digits(out, time.hour(), 2);
    out.push(':');
    digits(out, time.minute(), 2);
    out.push(':');
    digits(out, time.second(), 2);
    if nanos != 0 {
        out.push('.');
        if nanos % 1_000_000 == 0 {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.push_str(match offset {
        Offset::Numeric => "+00:00",
        Offset::Z => "Z",
    });
}

/// `#[serde(serialize_with)]` for a `DateTime<Utc>`: the same JSON string
/// chrono's own `Serialize` writes.
pub fn serialize<S: serde::Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(32);
    write(&mut text, time, Offset::Z);
    serializer.serialize_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let base = Utc.with_ymd_and_hms(2026, 12, 6, 4, 5, 9).unwrap();
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        let nanos = [0, 7_000_000, 123_000_000, 123_456_000, 1_000, 123_456_789, 5];
        let times = nanos.map(|n| base + chrono::Duration::nanoseconds(n)).into_iter().chain([far]);
        for time in times {
            for (offset, z) in [(Offset::Numeric, false), (Offset::Z, true)] {
                let mut written = String::new();
                write(&mut written, &time, offset);
                assert_eq!(written, time.to_rfc3339_opts(SecondsFormat::AutoSi, z), "{time:?}");
            }
            #[derive(serde::Serialize)]
            struct Ours(#[serde(serialize_with = "serialize")] DateTime<Utc>);
            assert_eq!(serde_json::to_string(&Ours(time)).unwrap(), serde_json::to_string(&time).unwrap());
        }
    }
}
