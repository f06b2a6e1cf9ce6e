//! The hard limits every instance runs under, and the memory limiter that
//! enforces (and remembers hitting) the memory one.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-invocation limits. The server has defaults (see [`crate::config`]); a
/// function's manifest may lower or raise them up to the server's ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wasm fuel: roughly one unit per executed Wasm instruction.
    pub fuel: u64,
    /// Linear memory the instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time from instantiation to response, in milliseconds.
    pub deadline_ms: u64,
}

impl Limits {
    /// Defaults: 2 billion fuel (~1 s of QuickJS work on this class of
    /// machine), 128 MiB, 10 s.
    pub const DEFAULT: Limits = Limits { fuel: 2_000_000_000, memory_bytes: 128 << 20, deadline_ms: 10_000 };

    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// `self` with any field `overrides` sets, checked against `ceiling`.
    pub fn with_overrides(self, overrides: &LimitOverrides, ceiling: &Limits) -> Result<Limits, String> {
        let pick = |name: &str, value: Option<u64>, default: u64, max: u64| match value {
            None => Ok(default),
            Some(0) => Err(format!("limits.{name} must be greater than zero")),
            Some(v) if v > max => Err(format!("limits.{name} is {v}; this server allows at most {max}")),
            Some(v) => Ok(v),
        };
        Ok(Limits {
            fuel: pick("fuel", overrides.fuel, self.fuel, ceiling.fuel)?,
            memory_bytes: pick("memory_bytes", overrides.memory_bytes, self.memory_bytes, ceiling.memory_bytes)?,
            deadline_ms: pick("deadline_ms", overrides.deadline_ms, self.deadline_ms, ceiling.deadline_ms)?,
        })
    }
}

/// The limits a deployment manifest may set; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// See [`Limits::deadline_ms`].
    pub deadline_ms: Option<u64>,
}

/// Caps linear memory and records whether the cap was what stopped the guest,
/// so that an out-of-memory exception or trap is reported as
/// `memory limit exceeded` rather than as a generic error.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    peak: usize,
    hit: bool,
}

/// Tables only hold function references; this is far above what QuickJS needs.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryLimiter { limit: usize::try_from(limit).unwrap_or(usize::MAX), peak: 0, hit: false }
    }

    /// The largest linear memory size granted, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Whether a growth request was refused.
    pub fn was_hit(&self) -> bool {
        self.hit
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn refuses_growth_past_the_limit_and_remembers_it() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 19, None).unwrap());
        assert!(!limiter.was_hit());
        assert!(!limiter.memory_growing(1 << 19, (1 << 20) + 1, None).unwrap());
        assert!(limiter.was_hit());
        assert_eq!(limiter.peak(), 1 << 19);
    }

    #[test]
    fn overrides_are_bounded_by_the_ceiling() {
        let ceiling = Limits { fuel: 100, memory_bytes: 100, deadline_ms: 100 };
        let defaults = Limits { fuel: 10, memory_bytes: 10, deadline_ms: 10 };
        let raised = defaults.with_overrides(&LimitOverrides { fuel: Some(50), ..Default::default() }, &ceiling);
        assert_eq!(raised.unwrap(), Limits { fuel: 50, memory_bytes: 10, deadline_ms: 10 });
        let too_high = defaults.with_overrides(&LimitOverrides { memory_bytes: Some(101), ..Default::default() }, &ceiling);
        assert_eq!(too_high.unwrap_err(), "limits.memory_bytes is 101; this server allows at most 100");
        let zero = defaults.with_overrides(&LimitOverrides { deadline_ms: Some(0), ..Default::default() }, &ceiling);
        assert!(zero.unwrap_err().contains("greater than zero"));
    }
}
