//! The example functions in `examples/`, end to end: deployed from their own
//! manifests and table definitions into the real server, calling stand-ins
//! for the services they use (an email provider, an OpenAI-compatible API,
//! Stripe) that run on 127.0.0.1 and behave like the real ones. Stripe's
//! webhook signatures are made by Stripe's own library (tests/support), not
//! by our code. No secret value may reach an execution record.

mod common;
// In a folder of its own: each .rs file directly in tests/ is a test target.
#[path = "examples/mocks.rs"]
mod mocks;

use common::{Reply, TestServer};
use mocks::{MockService, Service};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

const EMAIL_KEY: &str = "re_test_email_key_5f1c0a9e77";
const OPENAI_KEY: &str = "sk-test-openai-key-8d2b7c4190";
const STRIPE_KEY: &str = "sk_test_stripe_key_3e9a6f2051";
const WEBHOOK_SECRET: &str = "whsec_test_webhook_secret_71c4d0b2";

#[tokio::test]
async fn contact_form_validates_stores_and_notifies() {
    let email = MockService::start(Service::Email, EMAIL_KEY).await;
    let mut h = Harness::start().await;
    h.set_secret("EMAIL_API_KEY", EMAIL_KEY).await;
    h.set_secret("EMAIL_API_URL", &email.base).await;
    h.create_table("contact-form", "contact_messages").await;
    h.deploy("contact-form", "contact-form", &["EMAIL_API_URL"]).await;
    let post = |body: Value| h.server.function(Method::POST, "contact-form").json(&body);

    // Every bad field gets its own message; nothing is stored or sent.
    let invalid = h.invoke(post(json!({"name": " ", "email": "ada@", "message": "x".repeat(5001)}))).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid.text());
    let answer = invalid.json();
    assert_eq!(answer["error"], "invalid_fields");
    for field in ["name", "email", "message"] {
        assert!(answer["fields"][field].is_string(), "{field}: {answer}");
    }
    // A line break in the name would end up in the email's subject.
    let injected = h
        .invoke(post(json!({"name": "Ada\r\nBcc: everyone@example.com", "email": "ada@example.com", "message": "hi"})))
        .await;
    assert_eq!(injected.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", injected.text());
    assert_eq!(injected.json()["fields"].as_object().unwrap().keys().collect::<Vec<_>>(), ["name"]);
    assert!(h.rows("contact_messages", "id").await.is_empty());
    assert!(email.received().is_empty());

    // Valid: stored, the team notified with the provider's key, 201 with the id.
    let sent = h
        .invoke(post(json!({"name": "Ada Lovelace", "email": "ada@example.com", "message": "Hello,\r\nis the engine ready?"})))
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text());
    let id = sent.json()["id"].as_str().unwrap().to_owned();
    let rows = h.rows("contact_messages", "id,name,email,message,status").await;
    assert_eq!(
        rows,
        [json!({"id": id, "name": "Ada Lovelace", "email": "ada@example.com", "message": "Hello,\nis the engine ready?", "status": "new"})]
    );
    let notification = email.received().pop().expect("the team is notified");
    assert_eq!(notification.header("authorization"), Some(format!("Bearer {EMAIL_KEY}").as_str()));
    let message = notification.json();
    assert_eq!(message["to"], json!(["hello@example.com"]));
    assert_eq!(message["reply_to"], "ada@example.com");
    assert!(message["subject"].as_str().unwrap().contains("Ada Lovelace"), "{message}");
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("Hello,\nis the engine ready?") && text.contains(&id), "{text}");

    // An HTML form posts URL-encoded fields.
    let form = h
        .invoke(
            h.server
                .function(Method::POST, "contact-form")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=Grace+Hopper&email=grace%40example.com&message=A+bug%2C+literally."),
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{}", form.text());
    assert_eq!(email.received().len(), 2);

    // The provider is down: the caller is told, the message is kept.
    email.fail(true);
    let kept = h.invoke(post(json!({"name": "Bob", "email": "bob@example.com", "message": "Anyone there?"}))).await;
    assert_eq!(kept.status, StatusCode::BAD_GATEWAY, "{}", kept.text());
    let answer = kept.json();
    assert_eq!(answer["error"], "notification_failed");
    assert!(answer["message"].as_str().unwrap().contains("saved"), "{answer}");
    let kept_id = answer["id"].as_str().unwrap();
    assert!(h.rows("contact_messages", "id").await.iter().any(|row| row["id"] == kept_id));
    email.fail(false);

    let get = h.invoke(h.server.function(Method::GET, "contact-form")).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let plain = h.invoke(h.server.function(Method::POST, "contact-form").header("content-type", "text/plain").body("hi")).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    h.assert_records_hold_no_secret().await;
}

#[tokio::test]
async fn ai_generations_are_stored_for_their_author_only() {
    let openai = MockService::start(Service::OpenAi, OPENAI_KEY).await;
    let mut h = Harness::start().await;
    h.set_secret("OPENAI_API_KEY", OPENAI_KEY).await;
    // Written the way OpenAI's SDKs take it, with /v1: the function accepts both.
    h.set_secret("OPENAI_BASE_URL", &format!("{}/v1", openai.base)).await;
    h.create_table("ai-generate", "generations").await;
    h.deploy("ai-generate", "ai-generate", &["OPENAI_BASE_URL"]).await;
    h.deploy("csv-export", "csv-export", &[]).await;
    let (ada_id, ada) = h.user("ada@example.com").await;
    let (_, bob) = h.user("bob@example.com").await;
    let generate = |token: &str, body: Value| h.server.function(Method::POST, "ai-generate").bearer_auth(token).json(&body);

    let anonymous = h.server.send(h.server.function(Method::POST, "ai-generate").json(&json!({"prompt": "hi"}))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "signed-in users only");

    let prompt = "Write a haiku about the edge";
    let generated = h.invoke(generate(&ada, json!({"prompt": prompt}))).await;
    assert_eq!(generated.status, StatusCode::CREATED, "{}", generated.text());
    let generation = generated.json();
    assert_eq!(generation["prompt"], prompt);
    assert_eq!(generation["result"], prompt.to_uppercase(), "the mock answers in capitals");
    assert_eq!(generation["model"], "gpt-4o-mini");
    assert_eq!(generation["finish_reason"], "stop");
    assert_eq!(generation["completion_tokens"], 5);
    let id = generation["id"].as_str().unwrap().to_owned();

    let request = openai.received().pop().expect("the provider was called");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    let body = request.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1], json!({"role": "user", "content": prompt}));
    let stored = h.rows("generations", "id,user_id,prompt,result").await;
    assert_eq!(stored, [json!({"id": id, "user_id": ada_id, "prompt": prompt, "result": prompt.to_uppercase()})]);

    // Refused before the provider is paid for; a failing provider stores nothing.
    let empty = h.invoke(generate(&ada, json!({"prompt": "   "}))).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", empty.text());
    assert!(empty.json()["fields"]["prompt"].is_string());
    assert_eq!(openai.received().len(), 1);
    openai.fail(true);
    let failed = h.invoke(generate(&ada, json!({"prompt": "again"}))).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text());
    assert_eq!(failed.json()["error"], "provider_failed");
    openai.fail(false);
    assert_eq!(h.rows("generations", "id").await.len(), 1);

    // Row-level security follows the data into the export: Ada gets her
    // generation, Bob a file with the header only.
    let mine = h.invoke(h.server.function(Method::GET, "csv-export/generations").bearer_auth(&ada)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text());
    let records = parse_csv(&csv_text(&mine));
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!((records[1][0].as_str(), records[1][3].as_str()), (id.as_str(), prompt));
    let theirs = h.invoke(h.server.function(Method::GET, "csv-export/generations").bearer_auth(&bob)).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text());
    assert_eq!(parse_csv(&csv_text(&theirs)), [records[0].clone()], "only the header");
    assert!(!theirs.text().contains(&id));
    h.assert_records_hold_no_secret().await;
}

#[tokio::test]
async fn csv_export_quotes_fields_and_defuses_formulas() {
    let h = Harness::start().await;
    h.create_table("ai-generate", "generations").await;
    h.deploy("csv-export", "csv-export", &[]).await;
    let (_, ada) = h.user("ada@example.com").await;
    // Written as Ada, so her row-level security applies as in production.
    let rows = json!([
        {"model": "m", "prompt": "plain", "result": "a, b and \"c\"", "prompt_tokens": -3, "created_at": "2025-01-01T00:00:00Z"},
        {"model": "m", "prompt": "=HYPERLINK(\"https://evil.example\",\"open\")", "result": "line one\nline two", "created_at": "2025-01-02T00:00:00Z"},
        {"model": "m", "prompt": "+1", "result": "-2", "created_at": "2025-01-03T00:00:00Z"},
        {"model": "m", "prompt": "@SUM(A1:A2)", "result": "\tindented", "created_at": "2025-01-04T00:00:00Z"},
    ]);
    let inserted = h.server.send(h.server.function(Method::POST, "db").bearer_auth(&ada).json(&json!({"table": "generations", "calls": [["insert", rows]]}))).await;
    assert!(inserted.json()["error"].is_null(), "{}", inserted.text());
    let stored = h.rows("generations", "id,created_at").await;

    let reply = h.invoke(h.server.function(Method::GET, "csv-export/generations").bearer_auth(&ada)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/csv; charset=utf-8"));
    let disposition = reply.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment; filename=\"generations-") && disposition.ends_with(".csv\""), "{disposition}");
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    let text = csv_text(&reply);
    // The raw text, where quoting is visible: doubled quotes, a quoted
    // line break, CRLF record ends, the apostrophe before formulas.
    for raw in ["\"a, b and \"\"c\"\"\"", "\"line one\nline two\"", "\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"open\"\")\"", ",-3,", "\r\n"] {
        assert!(text.contains(raw), "{raw:?} in {text:?}");
    }
    let id = |i: usize| stored[i]["id"].as_str().unwrap();
    let at = |i: usize| stored[i]["created_at"].as_str().unwrap();
    let expected = [
        vec!["id", "created_at", "model", "prompt", "result", "finish_reason", "prompt_tokens", "completion_tokens"],
        vec![id(0), at(0), "m", "plain", "a, b and \"c\"", "", "-3", ""],
        vec![id(1), at(1), "m", "'=HYPERLINK(\"https://evil.example\",\"open\")", "line one\nline two", "", "", ""],
        vec![id(2), at(2), "m", "'+1", "'-2", "", "", ""],
        vec![id(3), at(3), "m", "'@SUM(A1:A2)", "'\tindented", "", "", ""],
    ];
    assert_eq!(parse_csv(&text), expected.map(|r| r.into_iter().map(String::from).collect::<Vec<_>>()));

    let since = h.invoke(h.server.function(Method::GET, "csv-export/generations?since=2025-01-03T00:00:00Z").bearer_auth(&ada)).await;
    assert_eq!(parse_csv(&csv_text(&since)).len(), 3, "the header and two rows");

    // The spreadsheet: typed cells, and values are data, never formulas.
    let sheet = h.invoke(h.server.function(Method::GET, "csv-export/generations?format=xlsx").bearer_auth(&ada)).await;
    assert_eq!(sheet.status, StatusCode::OK, "{}", sheet.text());
    assert_eq!(sheet.header("content-type"), Some("application/vnd.ms-excel"));
    assert!(sheet.header("content-disposition").unwrap().ends_with(".xls\""));
    let xml = sheet.text();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?mso-application progid=\"Excel.Sheet\"?>"), "{xml}");
    for cell in [
        "<Data ss:Type=\"String\">=HYPERLINK(&quot;https://evil.example&quot;,&quot;open&quot;)</Data>",
        "<Data ss:Type=\"String\">line one&#10;line two</Data>",
        "<Data ss:Type=\"Number\">-3</Data>",
        "<Data ss:Type=\"DateTime\">2025-01-01T00:00:00.000</Data>",
    ] {
        assert!(xml.contains(cell), "{cell} in {xml}");
    }
    assert!(!xml.contains("ss:Formula"));
    assert_eq!(xml.matches("<Row>").count(), 5, "the header and four rows");

    let unknown = h.invoke(h.server.function(Method::GET, "csv-export/passwords").bearer_auth(&ada)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad_format = h.invoke(h.server.function(Method::GET, "csv-export/generations?format=pdf").bearer_auth(&ada)).await;
    assert_eq!(bad_format.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn payments_create_intents_and_only_stripe_marks_them_paid() {
    let stripe = MockService::start(Service::Stripe, STRIPE_KEY).await;
    let email = MockService::start(Service::Email, EMAIL_KEY).await;
    let mut h = Harness::start().await;
    h.set_secret("STRIPE_SECRET_KEY", STRIPE_KEY).await;
    h.set_secret("STRIPE_API_URL", &stripe.base).await;
    h.set_secret("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET).await;
    h.set_secret("EMAIL_API_KEY", EMAIL_KEY).await;
    h.set_secret("EMAIL_API_URL", &email.base).await;
    h.create_table("payments", "orders").await;
    h.deploy("create-payment-intent", "payments/create-payment-intent", &["STRIPE_API_URL"]).await;
    h.deploy("stripe-webhook", "payments/stripe-webhook", &["EMAIL_API_URL"]).await;
    h.deploy("csv-export", "csv-export", &[]).await;
    let (ada_id, ada) = h.user("ada@example.com").await;
    let checkout = |body: Value| h.server.function(Method::POST, "create-payment-intent").bearer_auth(&ada).json(&body);

    let anonymous = h.server.send(h.server.function(Method::POST, "create-payment-intent").json(&json!({"product": "pro-monthly"}))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let invalid = h.invoke(checkout(json!({"product": "pro-monthly", "quantity": 0}))).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid.text());
    assert!(invalid.json()["fields"]["quantity"].is_string());
    assert!(stripe.received().is_empty());

    // The client names a product; the price is the catalog's, never the client's.
    let created = h.invoke(checkout(json!({"product": "pro-monthly", "quantity": 2, "amount": 1}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let intent = created.json();
    let order_id = intent["order_id"].as_str().unwrap().to_owned();
    let intent_id = intent["payment_intent_id"].as_str().unwrap().to_owned();
    assert_eq!((intent["amount"].as_i64(), intent["currency"].as_str()), (Some(2400), Some("eur")));
    assert!(intent["client_secret"].as_str().unwrap().starts_with(&format!("{intent_id}_secret_")), "{intent}");
    let request = stripe.received().pop().expect("Stripe was called");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {STRIPE_KEY}").as_str()));
    assert_eq!(request.header("idempotency-key"), Some(format!("order-{order_id}").as_str()));
    let form = request.form();
    assert_eq!(form["amount"], "2400");
    assert_eq!(form["currency"], "eur");
    assert_eq!(form["metadata[order_id]"], order_id);
    assert_eq!(form["metadata[user_id]"], ada_id);
    assert_eq!(form["automatic_payment_methods[enabled]"], "true");
    let order = || async { h.rows("orders", "id,user_id,email,amount,status,payment_intent_id,paid_at,confirmation_sent_at").await.remove(0) };
    let pending = order().await;
    assert_eq!((pending["status"].as_str(), pending["payment_intent_id"].as_str()), (Some("pending"), Some(intent_id.as_str())));
    assert_eq!((pending["user_id"].as_str(), pending["email"].as_str()), (Some(ada_id.as_str()), Some("ada@example.com")));

    // The webhook. Stripe signs every delivery attempt anew.
    let now = chrono::Utc::now().timestamp();
    let succeeded = json!({
        "id": "evt_test_succeeded", "object": "event", "type": "payment_intent.succeeded", "created": now,
        "data": {"object": {"id": intent_id, "object": "payment_intent", "amount": 2400, "amount_received": 2400,
                            "currency": "eur", "status": "succeeded", "metadata": {"order_id": order_id}}}
    })
    .to_string();
    let deliver = |payload: String, signature: Option<String>| {
        let mut request = h.server.function(Method::POST, "stripe-webhook").header("content-type", "application/json").body(payload);
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        h.invoke(request)
    };

    // Refused, each with a 400 and nothing changed: the attacks the signature stops.
    let tampered = succeeded.replace("\"amount_received\":2400", "\"amount_received\":1");
    assert_ne!(tampered, succeeded);
    let refusals = [
        (succeeded.clone(), None, "no signature"),
        (succeeded.clone(), Some(stripe_signature(&succeeded, "whsec_someone_else", now).await), "signed with another secret"),
        (succeeded.clone(), Some(stripe_signature(&succeeded, WEBHOOK_SECRET, now - 600).await), "a replay after the tolerance"),
        (tampered, Some(stripe_signature(&succeeded, WEBHOOK_SECRET, now).await), "a body changed after signing"),
        (succeeded.clone(), Some(format!("t={now},v1={}", "0".repeat(64))), "a made-up signature"),
        (succeeded.clone(), Some("t=,v1=".to_owned()), "a malformed header"),
    ];
    for (payload, signature, attack) in refusals {
        let refused = deliver(payload, signature).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{attack}: {}", refused.text());
        assert_eq!(refused.json()["error"], "invalid_signature", "{attack}");
    }
    assert_eq!(order().await["status"], "pending");
    assert!(email.received().is_empty());

    // Valid, but the email provider is down: the order is paid, the delivery
    // fails so that Stripe retries it, and the retry sends the confirmation.
    email.fail(true);
    let first = deliver(succeeded.clone(), Some(stripe_signature(&succeeded, WEBHOOK_SECRET, now).await)).await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{}", first.text());
    let paid = order().await;
    assert_eq!(paid["status"], "paid");
    assert!(paid["paid_at"].is_string() && paid["confirmation_sent_at"].is_null(), "{paid}");
    email.fail(false);
    // During a secret roll Stripe signs with both secrets: any v1 may match.
    let retry = stripe_signature(&succeeded, WEBHOOK_SECRET, chrono::Utc::now().timestamp()).await;
    let (timestamp, v1) = retry.split_once(',').unwrap();
    let rolled = format!("{timestamp},v1={},{v1}", "ab".repeat(32));
    let confirmed = deliver(succeeded.clone(), Some(rolled.clone())).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text());
    assert_eq!(confirmed.json()["received"], true);
    let order_now = order().await;
    assert_eq!(order_now["paid_at"], paid["paid_at"], "paid once");
    assert!(order_now["confirmation_sent_at"].is_string(), "{order_now}");
    let emails = email.received();
    assert_eq!(emails.len(), 2, "the failed attempt and the retry");
    let confirmation = emails.last().unwrap();
    assert_eq!(confirmation.header("authorization"), Some(format!("Bearer {EMAIL_KEY}").as_str()));
    assert_eq!(confirmation.header("idempotency-key"), Some(format!("order-confirmation-{order_id}").as_str()));
    let message = confirmation.json();
    assert_eq!(message["to"], json!(["ada@example.com"]));
    let text = message["text"].as_str().unwrap();
    assert!(text.contains(&order_id) && text.contains("24.00 EUR") && text.contains("2 × Pro plan"), "{text}");

    // Stripe delivers at least once: a repeat changes nothing, sends nothing.
    let repeated = deliver(succeeded.clone(), Some(rolled)).await;
    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.text());
    assert_eq!(repeated.json()["duplicate"], true);
    assert_eq!(email.received().len(), 2);
    // Events the shop does not act on are acknowledged, so Stripe stops sending them.
    let refunded = json!({"id": "evt_test_other", "object": "event", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}).to_string();
    let other = deliver(refunded.clone(), Some(stripe_signature(&refunded, WEBHOOK_SECRET, now).await)).await;
    assert_eq!((other.status, other.json()["handled"].clone()), (StatusCode::OK, json!(false)));

    // Ada's order history, as she downloads it.
    let history = h.invoke(h.server.function(Method::GET, "csv-export/orders").bearer_auth(&ada)).await;
    let records = parse_csv(&csv_text(&history));
    assert_eq!(records.len(), 2, "{records:?}");
    let status = records[0].iter().position(|c| c == "status").unwrap();
    assert_eq!((records[1][0].as_str(), records[1][status].as_str()), (order_id.as_str(), "paid"));
    h.assert_records_hold_no_secret().await;
}

/// As tests/fixtures.rs does for tests/functions: an example no test deploys
/// is one nobody knows still works.
#[test]
fn every_example_is_deployed_by_a_test_here() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let this_file = include_str!("examples.rs");
    let (mut folders, mut untested) = (vec![root.clone()], Vec::new());
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.ends_with("index.js") {
                let example = path.parent().unwrap().strip_prefix(&root).unwrap().to_string_lossy().into_owned();
                if !this_file.contains(&format!("\"{example}\"")) {
                    untested.push(example);
                }
            }
        }
    }
    assert!(untested.is_empty(), "examples no test deploys: {untested:?}");
}

// ------------------------------------------------------------------ harness ---

/// A server with the examples' tables and functions, the requests made to
/// them, and the secret values that must never reach their records.
struct Harness {
    server: TestServer,
    secret_values: Vec<String>,
    invocations: Mutex<Vec<String>>,
}

impl Harness {
    /// A server that lets functions reach the mock services on 127.0.0.1
    /// (otherwise refused as internal), with the `db` driver for reading
    /// tables as the service role.
    async fn start() -> Harness {
        let server = TestServer::start_with(&["--egress-allow-internal", "127.0.0.1"]).await;
        let driver = server.deploy_source("db", &common::fixture_source("db-driver")).await;
        assert_eq!(driver.status, StatusCode::CREATED, "{}", driver.text());
        Harness { server, secret_values: Vec::new(), invocations: Mutex::new(Vec::new()) }
    }

    async fn set_secret(&mut self, name: &str, value: &str) {
        let reply = self.server.set_secret(name, value).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.text());
        self.secret_values.push(value.to_owned());
    }

    /// Creates `examples/<dir>/<table>.table.json` and sets its `<table>.policies.json`.
    async fn create_table(&self, dir: &str, table: &str) {
        let spec = example_json(&format!("{dir}/{table}.table.json"));
        let created = self.server.send(self.server.admin(Method::POST, "/tables").json(&spec)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{table}: {}", created.text());
        let policies = example_json(&format!("{dir}/{table}.policies.json"));
        let set = self.server.send(self.server.admin(Method::PUT, &format!("/tables/{table}/policies")).json(&policies)).await;
        assert_eq!(set.status, StatusCode::OK, "{table} policies: {}", set.text());
    }

    /// Deploys `examples/<dir>/index.js` as `name` with the example's own
    /// manifest, adding what only the test needs: `grants` (the secrets
    /// that point the function at the mocks) and, for an example that
    /// calls out at all, egress to 127.0.0.1, where the mocks stand in for
    /// the hosts its manifest lists.
    async fn deploy(&self, name: &str, dir: &str, grants: &[&str]) {
        let mut manifest = example_json(&format!("{dir}/manifest.json"));
        let egress = manifest["egress"].as_array_mut().expect("every example's manifest lists its egress");
        if !egress.is_empty() {
            egress.push(json!("127.0.0.1"));
        }
        let secrets = manifest["secrets"].as_array_mut().expect("every example's manifest lists its secrets");
        secrets.extend(grants.iter().map(|grant| json!(grant)));
        manifest["source"] = json!(example_file(&format!("{dir}/index.js")));
        let reply = self.server.send(self.server.admin(Method::POST, &format!("/functions/{name}/versions")).json(&manifest)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "deploying {dir}: {}", reply.text());
    }

    /// A user and their access token.
    async fn user(&self, email: &str) -> (String, String) {
        let id = self.server.create_user(email, &[], json!({})).await;
        (id, self.server.access_token(email).await)
    }

    /// Sends a request to a function, keeping its invocation id for
    /// [`Harness::assert_records_hold_no_secret`].
    async fn invoke(&self, request: RequestBuilder) -> Reply {
        let reply = self.server.send(request).await;
        let id = reply.header("x-edgefn-invocation-id").expect("an invocation id").to_owned();
        self.invocations.lock().unwrap().push(id);
        reply
    }

    /// Every row of `table`, oldest first, read as the service role (the
    /// admin key calling the db driver), whatever its policies say.
    async fn rows(&self, table: &str, columns: &str) -> Vec<Value> {
        let query = json!({"table": table, "calls": [["select", columns], ["order", "created_at"]]});
        let reply = self.server.send(self.server.function(Method::POST, "db").bearer_auth(common::ADMIN_KEY).json(&query)).await;
        let result = reply.json();
        assert!(result["error"].is_null(), "reading {table}: {result}");
        result["data"].as_array().unwrap().clone()
    }

    /// The records of every invocation made through [`Harness::invoke`]
    /// hold no secret value: not the API keys, not the URLs given as secrets.
    async fn assert_records_hold_no_secret(&self) {
        let ids = self.invocations.lock().unwrap().clone();
        assert!(!ids.is_empty());
        for id in ids {
            let record = self.server.execution(&id).await.to_string();
            for value in &self.secret_values {
                assert!(!record.contains(value.as_str()), "the record of {id} holds the secret value {value:?}: {record}");
            }
        }
    }
}

fn example_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn example_json(path: &str) -> Value {
    serde_json::from_str(&example_file(path)).unwrap_or_else(|e| panic!("examples/{path}: {e}"))
}

/// A `Stripe-Signature` header for `payload`, made by Stripe's own library
/// (`stripe.webhooks.generateTestHeaderString`, run by tests/support).
async fn stripe_signature(payload: &str, secret: &str, timestamp: i64) -> String {
    let input = json!({"payload": payload, "secret": secret, "timestamp": timestamp}).to_string();
    tokio::task::spawn_blocking(move || {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/stripe-signature.mjs");
        let mut node = Command::new("node")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running node (scripts/install-deps installs it)");
        node.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let output = node.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{} failed (scripts/install-deps installs its packages): {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// The body of a CSV export, which starts with a UTF-8 byte order mark.
fn csv_text(reply: &Reply) -> String {
    let text = String::from_utf8(reply.body.clone()).expect("UTF-8");
    text.strip_prefix('\u{feff}').unwrap_or_else(|| panic!("no byte order mark: {text:?}")).to_owned()
}

/// Parses CSV strictly as RFC 4180 writes it: records end with CRLF (the
/// last one too), fields with a quote, comma or line break are quoted and
/// their quotes doubled. Anything else fails the test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => panic!("a quote inside an unquoted field: {text:?}"),
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF: {text:?}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("a line break outside quotes: {text:?}"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && record.is_empty(), "the last record must end with CRLF: {text:?}");
    records
}
