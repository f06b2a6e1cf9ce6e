//! Shared set-up for edgefn's benchmarks.

use edgefn_host::sandbox::limits::Limits;
use edgefn_host::sandbox::{ModuleState, Sandbox, SandboxConfig, SlotGroup};
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

/// A function as the server runs it: its bytecode, its module state when
/// its module could be evaluated ahead, and the pool slots it runs in.
#[derive(Clone)]
pub struct Function {
    pub group: SlotGroup,
    pub bytecode: Arc<[u8]>,
    pub module_state: Option<Arc<ModuleState>>,
}

/// Compiles `source` with default limits and prepares its module state, as
/// the server does when it loads a deployment (the source stands in for the
/// function's name, which picks its slot group).
pub async fn compile(sandbox: &Sandbox, source: &str) -> Function {
    let execution = sandbox.compile(source, &Limits::DEFAULT).await.expect("sandbox capacity");
    let bytecode: Arc<[u8]> = execution.result.expect("the benchmark function compiles").into();
    let module_state = sandbox.prepare(&bytecode, &Limits::DEFAULT).await.expect("sandbox capacity");
    Function { group: sandbox.slot_group(source), bytecode, module_state }
}
