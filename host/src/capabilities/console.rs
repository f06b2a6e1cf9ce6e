//! `edgefn:function/console`: console output captured per invocation, capped,
//! and never printed to the host's own stdout.

use chrono::{DateTime, Utc};
use edgefn_world::console::{Host, Level};
use serde::Serialize;

/// One line a function printed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsoleLine {
    /// `debug`, `info`, `log`, `warn` or `error`.
    pub level: &'static str,
    /// When the host received it.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub at: DateTime<Utc>,
    /// The formatted text.
    pub text: String,
}

/// Caps keep one chatty function from filling memory or the execution log.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleLimits {
    /// Lines kept per invocation.
    pub max_lines: usize,
    /// Bytes of text kept per invocation.
    pub max_bytes: usize,
}

impl Default for ConsoleLimits {
    fn default() -> Self {
        ConsoleLimits { max_lines: 1000, max_bytes: 256 * 1024 }
    }
}

/// The console of one invocation.
#[derive(Debug)]
pub struct Console {
    limits: ConsoleLimits,
    lines: Vec<ConsoleLine>,
    bytes: usize,
    dropped: usize,
}

/// Text of the marker line that says output was cut.
pub fn truncation_marker(dropped: usize) -> String {
    format!("[edgefn] console output truncated: {dropped} more line(s) not recorded")
}

impl Console {
    /// An empty console with the given caps.
    pub fn new(limits: ConsoleLimits) -> Self {
        Console { limits, lines: Vec::new(), bytes: 0, dropped: 0 }
    }

    /// Records a line, or counts it as dropped once a cap is reached.
    pub fn record(&mut self, level: &'static str, text: String) {
        if self.dropped > 0 || self.lines.len() >= self.limits.max_lines || self.bytes + text.len() > self.limits.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += text.len();
        self.lines.push(ConsoleLine { level, at: Utc::now(), text });
    }

    /// The recorded lines, ending with a truncation marker if any were dropped.
    pub fn into_lines(mut self) -> Vec<ConsoleLine> {
        if self.dropped > 0 {
            self.lines.push(ConsoleLine { level: "warn", at: Utc::now(), text: truncation_marker(self.dropped) });
        }
        self.lines
    }
}

impl Host for Console {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Log => "log",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.record(level, message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_in_order_with_their_level() {
        let mut console = Console::new(ConsoleLimits::default());
        Host::log(&mut console, Level::Log, "greeting ada".into()).unwrap();
        Host::log(&mut console, Level::Error, "oops".into()).unwrap();
        let lines = console.into_lines();
        assert_eq!(lines.iter().map(|l| (l.level, l.text.as_str())).collect::<Vec<_>>(), [("log", "greeting ada"), ("error", "oops")]);
    }

    #[test]
    fn caps_lines_and_bytes_with_a_marker() {
        let mut console = Console::new(ConsoleLimits { max_lines: 2, max_bytes: 1024 });
        for i in 0..5 {
            console.record("log", format!("line {i}"));
        }
        let lines = console.into_lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].text, truncation_marker(3));

        let mut console = Console::new(ConsoleLimits { max_lines: 100, max_bytes: 10 });
        console.record("log", "12345".into());
        console.record("log", "123456".into());
        console.record("log", "1".into());
        let lines = console.into_lines();
        assert_eq!(lines[0].text, "12345");
        // Once a line is dropped, later (smaller) lines are dropped too, so the
        // record never has holes in the middle.
        assert_eq!(lines[1].text, truncation_marker(2));
    }
}
