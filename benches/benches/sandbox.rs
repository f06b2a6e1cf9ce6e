//! Sandbox overhead: instantiate the pre-initialized engine, run a handler,
//! drop the instance. Target: p50 ≤ 50 µs for the empty handler.
//! Run: `cargo bench -p edgefn-benches --bench sandbox`

use criterion::{Criterion, criterion_group, criterion_main};
use edgefn_host::sandbox::limits::Limits;
use edgefn_world::types::{Invocation, Request};

const EMPTY_HANDLER: &str = "export default { fetch() { return new Response(null); } };";

fn request() -> Request {
    Request { method: "GET".into(), url: "http://bench.local/functions/v1/bench".into(), headers: vec![], body: vec![] }
}

fn invocation() -> Invocation {
    Invocation { id: "bench".into(), function_name: "bench".into(), version: 1, caller: None }
}

fn sandbox_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = runtime.block_on(edgefn_benches::sandbox());
    let empty = runtime.block_on(edgefn_benches::compile(&sandbox, EMPTY_HANDLER));
    let hello = runtime.block_on(edgefn_benches::compile(&sandbox, edgefn_benches::HELLO_WORLD));
    let limits = Limits::DEFAULT;

    let mut group = c.benchmark_group("sandbox");
    for (name, bytecode) in [("empty_handler", empty), ("hello_world", hello)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let execution = sandbox.invoke(bytecode.clone(), request(), invocation(), &limits, Default::default()).await.unwrap();
                assert!(execution.result.is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sandbox_overhead);
criterion_main!(benches);
