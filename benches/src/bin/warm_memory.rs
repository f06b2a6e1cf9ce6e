//! Memory per warm function: resident memory of the server before and after
//! deploying and calling N distinct functions; then, after a restart, what
//! bringing a cold function back costs (first request, loaded from storage).
//! Usage: warm_memory <base url> <admin key> <server pid> [functions]

use std::time::Instant;

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: warm_memory <base url> <admin key> <server pid> [functions]");
    let key = args.next().expect("admin key");
    let pid = args.next().expect("server pid");
    let count: usize = args.next().map(|n| n.parse().unwrap()).unwrap_or(2000);
    let client = reqwest::Client::new();
    // The admin key may call any function, whatever its policy.
    let call = |name: String| {
        let client = client.clone();
        let base = base.clone();
        let key = key.clone();
        async move {
            let reply = client.get(format!("{base}/functions/v1/{name}")).bearer_auth(&key).send().await.unwrap();
            assert_eq!(reply.status(), 200);
        }
    };

    if count == 0 {
        // Cold mode: time the first request to each already-deployed function.
        let mut cold = Vec::new();
        for i in 0..20 {
            let started = Instant::now();
            call(format!("warm-{i}")).await;
            cold.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        cold.sort_by(f64::total_cmp);
        println!("cold function (artifact in storage only), first request: p50 {:.2} ms, max {:.2} ms", cold[10], cold[19]);
        return;
    }

    // Warm the sandbox itself first so its one-time costs are not counted:
    // two functions for each group of pool slots functions are spread over
    // (each group warms slots of its own).
    for round in 0..2 * edgefn_host::sandbox::SLOT_GROUPS {
        let name = format!("baseline-{round}");
        client
            .post(format!("{base}/admin/v1/functions/{name}/versions"))
            .bearer_auth(&key)
            .body(format!("export default {{ fetch() {{ return new Response('{name}'); }} }};"))
            .send()
            .await
            .unwrap();
        for _ in 0..50 {
            call(name.clone()).await;
        }
    }
    let before = rss_kib(&pid);
    for i in 0..count {
        let name = format!("warm-{i}");
        let reply = client
            .post(format!("{base}/admin/v1/functions/{name}/versions"))
            .bearer_auth(&key)
            .body(format!(
                "const greeting = 'hello from function {i}';\nexport default {{ async fetch(request) {{ return Response.json({{ greeting, url: request.url }}); }} }};"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        call(name).await;
    }
    let after = rss_kib(&pid);
    let per_function = (after.saturating_sub(before)) as f64 / count as f64;
    println!(
        "resident memory: {before} KiB before, {after} KiB after {count} warm functions: {per_function:.1} KiB per warm function, \
         so about {} warm functions fit in 4 GiB",
        if per_function > 0.0 { ((4u64 << 20) as f64 / per_function) as u64 } else { u64::MAX }
    );
}
