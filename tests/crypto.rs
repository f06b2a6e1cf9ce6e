//! `crypto` inside functions: a webhook signature verified with
//! `crypto.subtle` (HMAC-SHA256, constant-time) against signatures this test
//! makes with the RustCrypto crates, forgeries and stale timestamps refused,
//! SHA-256 digests and random UUIDs as other implementations produce them.

mod common;

use common::TestServer;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

const SECRET: &str = "whsec_crypto_test_secret";

fn signature(timestamp: i64, body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn webhook_signatures_verify_with_crypto_subtle() {
    let server = TestServer::start().await;
    assert_eq!(server.set_secret("WEBHOOK_SECRET", SECRET).await.status, StatusCode::CREATED);
    server.deploy_with_grants("webhook", &common::fixture_source("signed-webhook"), &["WEBHOOK_SECRET"]).await;

    let body = r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let now = chrono::Utc::now().timestamp();
    let send = |header: String| {
        server.send(server.function(Method::POST, "webhook").header("x-signature", header).body(body.to_owned()))
    };

    let accepted = send(signature(now, body, SECRET)).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let answer = accepted.json();
    assert_eq!(answer["verified"], true);
    assert_eq!(answer["sha256"], hex::encode(Sha256::digest(body.as_bytes())));
    let uuid = uuid::Uuid::parse_str(answer["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);

    let mut forged = signature(now, body, SECRET);
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for (header, why) in [
        (forged, "one hex digit changed"),
        (signature(now, body, "whsec_someone_else"), "another secret"),
        (signature(now, "{}", SECRET), "another body"),
        (signature(now - 3600, body, SECRET), "an hour old"),
        ("t=abc,v1=00".to_owned(), "malformed"),
    ] {
        let refused = send(header).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{why}: {}", refused.text());
    }
}
