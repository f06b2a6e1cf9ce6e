//! Outbound fetch: do fetches awaited together overlap, and what does one
//! fetch cost? Runs its own upstream on loopback (every answer delayed by
//! `delay_ms`), against a running edgefn started with
//! `--egress-allow-internal 127.0.0.1`.
//!
//! - overlap: one invocation fetching the upstream 5 times one after another
//!   vs 5 times with `Promise.all`; with real overlap the second takes one
//!   delay, not five.
//! - overhead: an invocation that fetches an undelayed upstream once vs this
//!   process fetching it directly; the difference is what the sandbox, the
//!   egress checks and the host's client add to a fetch.
//!
//! Usage: fetch_overlap <base url> <admin key> [rounds] [delay_ms]

use std::time::{Duration, Instant};

const SEQUENTIAL: &str = r#"
export default {
  async fetch(request) {
    const upstream = new URL(request.url).searchParams.get("upstream");
    const bodies = [];
    for (let i = 0; i < 5; i++) bodies.push(await (await fetch(`${upstream}/slow?i=${i}`)).text());
    return Response.json(bodies);
  }
};"#;

const PARALLEL: &str = r#"
export default {
  async fetch(request) {
    const upstream = new URL(request.url).searchParams.get("upstream");
    const responses = await Promise.all([0, 1, 2, 3, 4].map((i) => fetch(`${upstream}/slow?i=${i}`)));
    return Response.json(await Promise.all(responses.map((r) => r.text())));
  }
};"#;

const SINGLE: &str = r#"
export default {
  async fetch(request) {
    const upstream = new URL(request.url).searchParams.get("upstream");
    return new Response(await (await fetch(`${upstream}/fast`)).text());
  }
};"#;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: fetch_overlap <base url> <admin key> [rounds] [delay_ms]");
    let key = args.next().expect("admin key");
    let rounds: usize = args.next().map(|r| r.parse().unwrap()).unwrap_or(20);
    let delay = Duration::from_millis(args.next().map(|d| d.parse().unwrap()).unwrap_or(100));

    let app = axum::Router::new()
        .route("/slow", axum::routing::get(move || async move {
            tokio::time::sleep(delay).await;
            "slow"
        }))
        .route("/fast", axum::routing::get(|| async { "fast" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::new();
    for (name, source) in [("fetch-sequential", SEQUENTIAL), ("fetch-parallel", PARALLEL), ("fetch-single", SINGLE)] {
        let deployed = client
            .post(format!("{base}/admin/v1/functions/{name}/versions"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"source": source, "policy": {"type": "public"}, "egress": ["127.0.0.1"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(deployed.status(), 201, "{}", deployed.text().await.unwrap());
    }

    let time = |url: String| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let reply = client.get(url).send().await.unwrap();
            assert_eq!(reply.status(), 200);
            reply.bytes().await.unwrap();
            started.elapsed()
        }
    };
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64() * 1000.0
    };

    let (mut sequential, mut parallel) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        sequential.push(time(format!("{base}/functions/v1/fetch-sequential?upstream={upstream}")).await);
        parallel.push(time(format!("{base}/functions/v1/fetch-parallel?upstream={upstream}")).await);
    }
    let (sequential, parallel) = (median(sequential), median(parallel));
    println!(
        "5 fetches of a {} ms upstream, median of {rounds}: sequential {sequential:.1} ms, Promise.all {parallel:.1} ms \
         ({:.2}x faster; 5.00x is perfect overlap)",
        delay.as_millis(),
        sequential / parallel
    );

    let (mut through, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..rounds * 10 {
        through.push(time(format!("{base}/functions/v1/fetch-single?upstream={upstream}")).await);
        direct.push(time(format!("{upstream}/fast")).await);
    }
    let (through, direct) = (median(through), median(direct));
    println!(
        "one fetch, median of {}: invocation that fetches {through:.2} ms, direct request {direct:.2} ms \
         (an invocation with a fetch costs {:.2} ms more than the fetch alone)",
        rounds * 10,
        through - direct
    );
}
