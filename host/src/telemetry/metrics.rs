//! Prometheus metrics, served at `/metrics` (behind an admin key on the main
//! address, or open on `--metrics-listen` for a scraper on a private network).
//!
//! Invariant: labels are function names and fixed words only, never caller
//! ids, paths or anything a request chooses, so cardinality is bounded by
//! what the admin deploys. Unknown function names (404s) are not counted.

use crate::executions::ExecutionRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    function: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeployLabels {
    function: String,
    result: String,
}

type DurationFamily = Family<FunctionLabel, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 100 µs to ~26 s: from a warm hello world to a deadline.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric edgefn exports.
pub struct Metrics {
    registry: Registry,
    invocations: Family<InvocationLabels, Counter>,
    durations: DurationFamily,
    fuel: Family<FunctionLabel, Counter>,
    database_queries: Family<FunctionLabel, Counter>,
    deploys: Family<DeployLabels, Counter>,
    in_flight: Gauge,
    large_functions: Gauge,
    engine_copies_replaced: Gauge,
    /// Active-deployment cache lookups answered from memory.
    pub deployment_cache_hits: Counter,
    /// Lookups that read the database (and maybe rebuilt bytecode).
    pub deployment_cache_misses: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("edgefn");
        let invocations = Family::<InvocationLabels, Counter>::default();
        registry.register("invocations", "Function invocations by outcome (ok, error, denied, fuel_exhausted, ...)", invocations.clone());
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "invocation_duration",
            "Time from request received to response, per function",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        let fuel = Family::<FunctionLabel, Counter>::default();
        registry.register("fuel_consumed", "Wasm fuel consumed by function invocations", fuel.clone());
        let database_queries = Family::<FunctionLabel, Counter>::default();
        registry.register("database_queries", "Application database queries run by functions", database_queries.clone());
        let deploys = Family::<DeployLabels, Counter>::default();
        registry.register("deploys", "Deploys through the build endpoint, by result (ok, rejected)", deploys.clone());
        let in_flight = Gauge::default();
        registry.register("instances_in_flight", "Sandbox instances running right now", in_flight.clone());
        let large_functions = Gauge::default();
        registry.register(
            "large_functions",
            "Functions moved to the sandbox's group for large functions (a request grew their memory 1 MiB past a fresh instance's)",
            large_functions.clone(),
        );
        let engine_copies_replaced = Gauge::default();
        registry.register(
            "engine_copies_replaced",
            "Copies of the engine replaced by fresh ones since the server started, as large functions left their groups",
            engine_copies_replaced.clone(),
        );
        let deployment_cache_hits = Counter::default();
        registry.register("deployment_cache_hits", "Active-deployment lookups served from memory", deployment_cache_hits.clone());
        let deployment_cache_misses = Counter::default();
        registry.register("deployment_cache_misses", "Active-deployment lookups that read the database", deployment_cache_misses.clone());
        Metrics {
            registry,
            invocations,
            durations,
            fuel,
            database_queries,
            deploys,
            in_flight,
            large_functions,
            engine_copies_replaced,
            deployment_cache_hits,
            deployment_cache_misses,
        }
    }

    /// Counts a finished invocation from its execution record.
    pub fn observe(&self, record: &ExecutionRecord) {
        let function = FunctionLabel { function: record.function.clone() };
        self.invocations.get_or_create(&InvocationLabels { function: record.function.clone(), outcome: record.outcome.clone() }).inc();
        self.durations.get_or_create(&function).observe(record.duration_us as f64 / 1e6);
        if let Some(fuel) = record.fuel_consumed {
            self.fuel.get_or_create(&function).inc_by(fuel);
        }
        if let Some(database) = &record.database {
            self.database_queries.get_or_create(&function).inc_by(u64::from(database.queries));
        }
    }

    /// Counts a deploy attempt that reached the compiler.
    pub fn deployed(&self, function: &str, ok: bool) {
        let result = if ok { "ok" } else { "rejected" };
        self.deploys.get_or_create(&DeployLabels { function: function.into(), result: result.into() }).inc();
    }

    /// The OpenMetrics text, with the sandbox's state as of now.
    pub fn render(&self, sandbox: SandboxGauges) -> String {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.in_flight.set(gauge(sandbox.in_flight as u64));
        self.large_functions.set(gauge(sandbox.large_functions as u64));
        self.engine_copies_replaced.set(gauge(sandbox.engine_copies_replaced));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// What the sandbox reports at each scrape.
pub struct SandboxGauges {
    pub in_flight: usize,
    pub large_functions: usize,
    pub engine_copies_replaced: u64,
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::new();
        metrics.deployed("hello", true);
        metrics.deployment_cache_hits.inc();
        let text = metrics.render(SandboxGauges { in_flight: 3, large_functions: 1, engine_copies_replaced: 2 });
        assert!(text.contains("edgefn_deploys_total{function=\"hello\",result=\"ok\"} 1"), "{text}");
        assert!(text.contains("edgefn_instances_in_flight 3"), "{text}");
        assert!(text.contains("edgefn_large_functions 1"), "{text}");
        assert!(text.contains("edgefn_engine_copies_replaced 2"), "{text}");
        assert!(text.contains("edgefn_deployment_cache_hits_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
