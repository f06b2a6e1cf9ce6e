//! Deploy latency: from the start of the upload of a 10 KB function to its
//! first successful response, repeated, against a running server.
//! Usage: deploy_latency <base url> <admin key> [rounds]

use std::time::{Duration, Instant};

/// A realistic 10 KB function: a lookup table and a handler using it.
fn ten_kb_function(round: usize) -> String {
    let mut table = String::new();
    let mut i = 0;
    while table.len() < 9_600 {
        table.push_str(&format!("  [\"sku-{i:05}\", {{ price: {}, name: \"Product number {i}\" }}],\n", (i * 37) % 1000));
        i += 1;
    }
    format!(
        "// round {round}\nconst catalog = new Map([\n{table}]);\n\
         export default {{\n  async fetch(request) {{\n    const sku = new URL(request.url).searchParams.get(\"sku\") ?? \"sku-00001\";\n    \
         return Response.json(catalog.get(sku) ?? null);\n  }}\n}};\n"
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: deploy_latency <base url> <admin key> [rounds]");
    let key = args.next().expect("admin key");
    let rounds: usize = args.next().map(|r| r.parse().unwrap()).unwrap_or(40);
    let client = reqwest::Client::new();
    let mut samples = Vec::new();
    for round in 0..rounds {
        let source = ten_kb_function(round);
        assert!((9_500..=11_000).contains(&source.len()), "source is {} bytes", source.len());
        let started = Instant::now();
        let deployed = client
            .post(format!("{base}/admin/v1/functions/deploy-bench/versions"))
            .bearer_auth(&key)
            .body(source)
            .send()
            .await
            .unwrap();
        assert_eq!(deployed.status(), 201, "{}", deployed.text().await.unwrap());
        loop {
            // The admin key may call any function, whatever its policy.
            let reply = client.get(format!("{base}/functions/v1/deploy-bench?sku=sku-00002")).bearer_auth(&key).send().await.unwrap();
            if reply.status() == 200 {
                break;
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "deploy latency over {rounds} rounds (10 KB source): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(pick(1.0))
    );
}
