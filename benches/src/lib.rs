//! Shared set-up for edgefn's benchmarks.

use edgefn_host::sandbox::limits::Limits;
use edgefn_host::sandbox::{Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::Duration;

/// The function every throughput comparison runs, in edgefn and in workerd.
pub const HELLO_WORLD: &str = include_str!("../reference/hello.js");

/// A sandbox as the server builds it, with its engine cache under `target/`.
pub async fn sandbox() -> Sandbox {
    let cache_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-engine-cache");
    Sandbox::new(SandboxConfig {
        max_instances: 64,
        max_memory_bytes: 512 << 20,
        queue_timeout: Duration::from_secs(10),
        console: Default::default(),
        cache_dir,
    })
    .await
    .expect("building the sandbox")
}

/// Compiles `source` to bytecode with default limits.
pub async fn compile(sandbox: &Sandbox, source: &str) -> Arc<[u8]> {
    let execution = sandbox.compile(source, &Limits::DEFAULT).await.expect("sandbox capacity");
    execution.result.expect("the benchmark function compiles").into()
}
