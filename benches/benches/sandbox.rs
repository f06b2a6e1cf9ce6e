//! Sandbox overhead: instantiate the pre-initialized engine, run a handler,
//! drop the instance. Target: p50 ≤ 50 µs for the empty handler.
//! Run: `cargo bench -p edgefn-benches --bench sandbox`

use criterion::{Criterion, criterion_group, criterion_main};
use edgefn_host::sandbox::limits::Limits;
use edgefn_world::types::{Caller, Invocation, Request};

const EMPTY_HANDLER: &str = include_str!("../reference/empty.js");

fn request() -> Request {
    Request { method: "GET".into(), url: "http://bench.local/functions/v1/bench".into(), headers: vec![], body: vec![] }
}

fn invocation(caller: Option<Caller>) -> Invocation {
    Invocation { id: "bench".into(), function_name: "bench".into(), version: 1, caller, secret_names: Vec::new() }
}

/// A signed-in caller as an authenticated function receives it.
fn signed_in() -> Caller {
    Caller {
        id: "0193a3c4-7f1e-7b2a-9c1d-2e3f4a5b6c7d".into(),
        email: Some("ada@example.com".into()),
        role: "authenticated".into(),
        groups: vec!["admin".into(), "ops".into()],
        metadata_json: r#"{"department":"engineering","plan":"pro","seats":12}"#.into(),
    }
}

fn sandbox_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = runtime.block_on(edgefn_benches::sandbox());
    let empty = runtime.block_on(edgefn_benches::compile(&sandbox, EMPTY_HANDLER));
    let hello = runtime.block_on(edgefn_benches::compile(&sandbox, edgefn_benches::HELLO_WORLD));
    let limits = Limits::DEFAULT;

    let mut group = c.benchmark_group("sandbox");
    // The last case is what an authenticated function pays for `ctx.caller`.
    for (name, function, caller) in [
        ("empty_handler", &empty, None),
        ("hello_world", &hello, None),
        ("hello_world_signed_in", &hello, Some(signed_in())),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let invocation = invocation(caller.clone());
                let execution = sandbox
                    .invoke(&function.group, function.bytecode.clone(), function.module_state.clone(), request(), invocation, &limits, Default::default(), &Default::default())
                    .await
                    .unwrap();
                assert!(execution.result.is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sandbox_overhead);
criterion_main!(benches);
