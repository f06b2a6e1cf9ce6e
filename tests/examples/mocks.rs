//! Stand-ins for the third-party APIs the examples call, on 127.0.0.1: each
//! checks the bearer key, answers in the service's own shapes, records
//! every request and fails on demand.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The third-party APIs the examples call, as the mocks play them.
#[derive(Clone, Copy)]
pub enum Service {
    /// Resend: `POST /emails`, JSON, bearer key.
    Email,
    /// OpenAI's chat completions: `POST /v1/chat/completions`, JSON, bearer key.
    OpenAi,
    /// Stripe's PaymentIntents: `POST /v1/payment_intents`, form-encoded, bearer key.
    Stripe,
}

impl Service {
    fn path(self) -> &'static str {
        match self {
            Service::Email => "/emails",
            Service::OpenAi => "/v1/chat/completions",
            Service::Stripe => "/v1/payment_intents",
        }
    }

    /// An error body in the service's own shape.
    fn error(self, status: StatusCode, message: &str) -> (StatusCode, Value) {
        let body = match self {
            Service::Email => json!({"statusCode": status.as_u16(), "name": "application_error", "message": message}),
            Service::OpenAi => json!({"error": {"message": message, "type": "invalid_request_error", "code": null}}),
            Service::Stripe => json!({"error": {"message": message, "type": "invalid_request_error"}}),
        };
        (status, body)
    }

    /// The service's answer to an authorized request, the `n`th it received.
    fn answer(self, request: &Received, n: usize) -> (StatusCode, Value) {
        match self {
            Service::Email => {
                let email: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let complete = ["from", "subject"].iter().all(|field| email[field].is_string())
                    && (email["to"].is_string() || email["to"].as_array().is_some_and(|to| !to.is_empty()))
                    && (email["text"].is_string() || email["html"].is_string());
                if !complete {
                    return self.error(StatusCode::UNPROCESSABLE_ENTITY, "from, to, subject and text or html are required");
                }
                (StatusCode::OK, json!({"id": format!("email-{n}")}))
            }
            Service::OpenAi => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let prompt = body["messages"].as_array().and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
                let (Some(model), Some(prompt)) = (body["model"].as_str(), prompt.and_then(|m| m["content"].as_str())) else {
                    return self.error(StatusCode::BAD_REQUEST, "model and messages are required");
                };
                (StatusCode::OK, json!({
                    "id": format!("chatcmpl-{n}"),
                    "object": "chat.completion",
                    "created": chrono::Utc::now().timestamp(),
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": prompt.to_uppercase()}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
                }))
            }
            Service::Stripe => {
                if !request.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
                    return self.error(StatusCode::BAD_REQUEST, "Stripe's API takes form-encoded parameters");
                }
                let form = request.form();
                let (Some(amount), Some(currency)) = (form.get("amount").and_then(|a| a.parse::<u64>().ok()), form.get("currency")) else {
                    return self.error(StatusCode::BAD_REQUEST, "Missing required param: amount or currency.");
                };
                let metadata: serde_json::Map<String, Value> = form
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), json!(v))))
                    .collect();
                let id = format!("pi_test_{n}");
                (StatusCode::OK, json!({
                    "id": id,
                    "object": "payment_intent",
                    "amount": amount,
                    "currency": currency,
                    "status": "requires_payment_method",
                    "client_secret": format!("{id}_secret_{}", hex::encode(n.to_be_bytes())),
                    "metadata": metadata,
                    "livemode": false
                }))
            }
        }
    }
}

/// One request a mock received.
#[derive(Debug, Clone)]
pub struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The form-encoded body's fields (a repeated name keeps its last value).
    pub fn form(&self) -> std::collections::HashMap<String, String> {
        // reqwest's URL parser decodes application/x-www-form-urlencoded.
        let url = reqwest::Url::parse(&format!("http://form.invalid/?{}", String::from_utf8_lossy(&self.body))).unwrap();
        url.query_pairs().into_owned().collect()
    }
}

/// A stand-in for a third-party API on 127.0.0.1.
#[derive(Clone)]
pub struct MockService {
    /// `http://127.0.0.1:<port>`, what the function is given instead of the service's URL.
    pub base: String,
    service: Service,
    /// The bearer key it accepts.
    key: &'static str,
    received: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicBool>,
}

impl MockService {
    /// Serves `service` on an ephemeral port, accepting requests with `key`.
    pub async fn start(service: Service, key: &'static str) -> MockService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mock = MockService {
            base: format!("http://{}", listener.local_addr().unwrap()),
            service,
            key,
            received: Arc::default(),
            failing: Arc::default(),
        };
        let app = axum::Router::new().route(service.path(), axum::routing::post(Self::handle)).with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        mock
    }

    async fn handle(State(mock): State<MockService>, headers: HeaderMap, body: Bytes) -> (StatusCode, axum::Json<Value>) {
        let request = Received { headers, body: body.to_vec() };
        let n = {
            let mut received = mock.received.lock().unwrap();
            received.push(request.clone());
            received.len()
        };
        let service = mock.service;
        let (status, body) = if mock.failing.load(Ordering::SeqCst) {
            service.error(StatusCode::INTERNAL_SERVER_ERROR, "the service is having a bad day")
        } else if request.header("authorization") != Some(format!("Bearer {}", mock.key).as_str()) {
            service.error(StatusCode::UNAUTHORIZED, "invalid API key")
        } else {
            service.answer(&request, n)
        };
        (status, axum::Json(body))
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// From now on, answer every request with a 500 (or stop doing so).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}
