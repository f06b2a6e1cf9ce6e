//! Identity and access policies against the real server: sign-up, sign-in,
//! refresh rotation, an external identity provider (played by this test with
//! its own EC key and JWKS endpoint), admin keys, and a corpus of attacks on
//! function policies, each asserting the exact status.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN_KEY, Reply, TestServer, fixture_source};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const IDP_ISSUER: &str = "https://idp.test.example";
const IDP_AUDIENCE: &str = "edgefn-tests";

/// A signing key of the pretend identity provider.
struct IdpKey {
    kid: String,
    encoding: EncodingKey,
    public_pem: String,
    jwk: Value,
}

impl IdpKey {
    fn generate(kid: &str) -> IdpKey {
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
                break key;
            }
        };
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = secret.public_key();
        let mut jwk: Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        IdpKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The provider's JWKS endpoint, serving whatever keys the test puts in.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

async fn serve_jwks(initial: Vec<Value>) -> Jwks {
    let keys = Arc::new(Mutex::new(initial));
    let shared = keys.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = shared.lock().unwrap().clone();
            async move { axum::Json(json!({ "keys": keys })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks { url, keys }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid provider claims for `sub`, with `extra` merged in (overriding).
fn idp_claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": sub, "email": format!("{sub}@idp.example"),
        "iat": now(), "exp": now() + 300,
    });
    for (key, value) in extra.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

/// A JWT with any header and claims and a made-up signature.
fn forged(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

async fn start_with_idp(jwks: &Jwks, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--oidc-issuer",
        IDP_ISSUER,
        "--oidc-audience",
        IDP_AUDIENCE,
        "--oidc-jwks-url",
        &jwks.url,
        "--oidc-jwks-refetch-secs",
        "0",
        "--oidc-leeway-secs",
        "0",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with(&args).await
}

/// Deploys `fixture` as `name` with access `policy` (None: no policy given).
async fn deploy_with_policy(server: &TestServer, name: &str, fixture: &str, policy: Option<Value>) {
    let mut manifest = json!({ "source": fixture_source(fixture) });
    if let Some(policy) = policy {
        manifest["policy"] = policy;
    }
    let reply = server.send(server.admin(Method::POST, &format!("/functions/{name}/versions")).json(&manifest)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "deploying {name}: {}", reply.text());
}




async fn call(server: &TestServer, function: &str, token: Option<&str>) -> Reply {
    let mut request = server.function(Method::GET, function);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    server.send(request).await
}

async fn set_policy(server: &TestServer, function: &str, policy: Value) -> Reply {
    server.send(server.admin(Method::PUT, &format!("/functions/{function}/access")).json(&json!({ "policy": policy }))).await
}

async fn patch_user(server: &TestServer, id: &str, patch: Value) {
    let reply = server.send(server.admin(Method::PATCH, &format!("/users/{id}")).json(&patch)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Asserts a denial: status, JSON reason, and `WWW-Authenticate` on 401.
#[track_caller]
fn assert_denied(reply: &Reply, status: StatusCode, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.text());
    let body = reply.json();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {body}");
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{case}");
    }
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused() {
    let idp = IdpKey::generate("idp-1");
    let jwks = serve_jwks(vec![idp.jwk.clone()]).await;
    let server = start_with_idp(&jwks, &[]).await;
    deploy_with_policy(&server, "members", "whoami", None).await;
    server.create_user("ada@example.com", &[], json!({})).await;
    let token = server.access_token("ada@example.com").await;
    assert_eq!(call(&server, "members", Some(&token)).await.status, StatusCode::OK);

    let parts: Vec<&str> = token.split('.').collect();
    let own_claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let own_header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut tampered_claims = own_claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    let hs256_with_public_key = |claims: &Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(idp.public_pem.as_bytes()))
            .unwrap()
    };
    let stranger = IdpKey::generate("idp-1");

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage token", Some("not-a-token".into())),
        ("three garbage parts", Some("aaa.bbb.ccc".into())),
        ("payload swapped, signature kept", Some(format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered_claims.to_string()), parts[2]))),
        ("signature cut off", Some(format!("{}.{}.", parts[0], parts[1]))),
        ("alg none", Some(forged(json!({"alg": "none", "typ": "JWT"}), &own_claims, b""))),
        ("alg none, kid kept", Some(forged(json!({"alg": "none", "kid": own_header["kid"]}), &own_claims, b""))),
        ("HS256 signed with the provider's public key", Some(hs256_with_public_key(&idp_claims("mallory", json!({}))))),
        ("HS256 signed with the public key, our issuer", Some(hs256_with_public_key(&own_claims))),
        ("provider token, expired", Some(idp.sign(&idp_claims("u1", json!({"exp": now() - 60}))))),
        ("provider token, not valid yet", Some(idp.sign(&idp_claims("u1", json!({"nbf": now() + 600}))))),
        ("provider token, wrong issuer", Some(idp.sign(&idp_claims("u1", json!({"iss": "https://evil.example"}))))),
        ("provider token, wrong audience", Some(idp.sign(&idp_claims("u1", json!({"aud": "someone-else"}))))),
        ("provider token, no audience", Some(idp.sign(&json!({"iss": IDP_ISSUER, "sub": "u1", "exp": now() + 60})))),
        ("provider token, signed by a stranger's key with a known kid", Some(stranger.sign(&idp_claims("u1", json!({}))))),
        ("provider token, unknown kid", Some(IdpKey::generate("idp-unknown").sign(&idp_claims("u1", json!({}))))),
        ("revoked-looking admin key", Some("efk_0000000000000000000000000000".into())),
    ];
    for (case, token) in &cases {
        let reply = call(&server, "members", token.as_deref()).await;
        assert_denied(&reply, StatusCode::UNAUTHORIZED, case);
    }
    let basic = server.send(server.function(Method::GET, "members").header("authorization", "Basic YWRhOnB3")).await;
    assert_denied(&basic, StatusCode::UNAUTHORIZED, "Basic credentials");

    // The same forged tokens on a public function: anonymous, not refused.
    deploy_with_policy(&server, "open", "whoami", Some(json!({"type": "public"}))).await;
    let reply = call(&server, "open", Some("not-a-token")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["caller"], Value::Null);
    // ...and a valid token still identifies the caller there.
    let reply = call(&server, "open", Some(&token)).await;
    assert_eq!(reply.json()["caller"]["email"], "ada@example.com");
}

#[tokio::test]
async fn external_provider_tokens_map_claims_and_follow_key_rotation() {
    let first = IdpKey::generate("2026-11-a");
    let jwks = serve_jwks(vec![first.jwk.clone()]).await;
    let server = start_with_idp(&jwks, &[]).await;
    deploy_with_policy(&server, "admins", "whoami", Some(json!({"type": "group", "groups": ["admin"]}))).await;
    deploy_with_policy(
        &server,
        "eng",
        "whoami",
        Some(json!({"type": "metadata", "all": [{"key": "department", "equals": "engineering"}]})),
    )
    .await;

    let admin = first.sign(&idp_claims("kc-1", json!({"groups": ["admin"], "metadata": {"department": "engineering"}})));
    let reply = call(&server, "admins", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let caller = &reply.json()["caller"];
    assert_eq!(caller["id"], "kc-1");
    assert_eq!(caller["email"], "kc-1@idp.example");
    assert_eq!(caller["role"], "authenticated");
    assert_eq!(caller["groups"], json!(["admin"]));
    assert_eq!(reply.json()["authorization"], Value::Null, "the token must not reach the function");
    assert_eq!(call(&server, "eng", Some(&admin)).await.status, StatusCode::OK);

    for (case, groups) in [("upper case", "Admin"), ("Cyrillic a", "\u{0430}dmin"), ("trailing space", "admin "), ("dotless i", "adm\u{0131}n")] {
        let token = first.sign(&idp_claims("kc-2", json!({"groups": [groups]})));
        assert_denied(&call(&server, "admins", Some(&token)).await, StatusCode::FORBIDDEN, case);
    }
    let groups_as_string = first.sign(&idp_claims("kc-3", json!({"groups": "admin"})));
    assert_denied(&call(&server, "admins", Some(&groups_as_string)).await, StatusCode::FORBIDDEN, "groups claim not a list");

    // The provider rotates: a token under the new key is accepted once the
    // JWKS says so, and the retired key stops working.
    let second = IdpKey::generate("2026-11-b");
    let early = second.sign(&idp_claims("kc-1", json!({"groups": ["admin"]})));
    assert_denied(&call(&server, "admins", Some(&early)).await, StatusCode::UNAUTHORIZED, "key not yet published");
    *jwks.keys.lock().unwrap() = vec![second.jwk.clone()];
    assert_eq!(call(&server, "admins", Some(&early)).await.status, StatusCode::OK, "key published");
    let old = first.sign(&idp_claims("kc-1", json!({"groups": ["admin"]})));
    assert_denied(&call(&server, "admins", Some(&old)).await, StatusCode::UNAUTHORIZED, "retired key");
}

#[tokio::test]
async fn every_policy_type_admits_exactly_its_callers() {
    let server = TestServer::start().await;
    let ada = server.create_user("ada@example.com", &["admin"], json!({"department": "engineering", "plan": "pro", "seats": 10})).await;
    let bob = server.create_user("bob@example.com", &[], json!({"department": "sales", "plan": "free", "seats": "10"})).await;
    deploy_with_policy(&server, "public", "whoami", Some(json!({"type": "public"}))).await;
    deploy_with_policy(&server, "members", "whoami", None).await;
    deploy_with_policy(&server, "admins", "whoami", Some(json!({"type": "group", "groups": ["admin"]}))).await;
    deploy_with_policy(&server, "ops-admins", "whoami", Some(json!({"type": "group", "groups": ["admin", "ops"], "require": "all"}))).await;
    deploy_with_policy(
        &server,
        "eng",
        "whoami",
        Some(json!({"type": "metadata", "all": [
            {"key": "department", "equals": "engineering"},
            {"key": "plan", "in": ["pro", "team"]}
        ]})),
    )
    .await;
    deploy_with_policy(&server, "big", "whoami", Some(json!({"type": "metadata", "any": [{"key": "seats", "gte": 5}]}))).await;
    let ada_token = server.access_token("ada@example.com").await;
    let bob_token = server.access_token("bob@example.com").await;

    // Positive case of every type, and the matching refusals.
    assert_eq!(call(&server, "public", None).await.status, StatusCode::OK);
    assert_denied(&call(&server, "members", None).await, StatusCode::UNAUTHORIZED, "no policy means authenticated");
    assert_eq!(call(&server, "members", Some(&bob_token)).await.status, StatusCode::OK);
    assert_eq!(call(&server, "admins", Some(&ada_token)).await.status, StatusCode::OK);
    let refused = call(&server, "admins", Some(&bob_token)).await;
    assert_denied(&refused, StatusCode::FORBIDDEN, "not in the group");
    assert!(!refused.text().contains("ada"), "a 403 names no other user: {}", refused.text());
    assert_denied(&call(&server, "admins", None).await, StatusCode::UNAUTHORIZED, "group policy, anonymous");
    assert_denied(&call(&server, "ops-admins", Some(&ada_token)).await, StatusCode::FORBIDDEN, "one of two required groups");
    assert_eq!(call(&server, "eng", Some(&ada_token)).await.status, StatusCode::OK);
    assert_denied(&call(&server, "eng", Some(&bob_token)).await, StatusCode::FORBIDDEN, "other department");
    assert_eq!(call(&server, "big", Some(&ada_token)).await.status, StatusCode::OK);
    assert_denied(&call(&server, "big", Some(&bob_token)).await, StatusCode::FORBIDDEN, "\"10\" is text, not a number");

    // Group names that only look like "admin" cannot even be created.
    for lookalike in ["Admin", "ADMIN", "\u{0430}dmin"] {
        let reply = server.send(server.admin(Method::POST, "/groups").json(&json!({"name": lookalike}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{lookalike}: {}", reply.text());
        let reply = server.send(server.admin(Method::PATCH, &format!("/users/{bob}")).json(&json!({"groups": [lookalike]}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{lookalike}");
    }
    assert_denied(&call(&server, "admins", Some(&bob_token)).await, StatusCode::FORBIDDEN, "look-alike groups were refused");

    // Changes apply to tokens already issued: groups and metadata are read
    // at request time, not from the token.
    patch_user(&server, &ada, json!({"groups": ["admin", "ops"]})).await;
    assert_eq!(call(&server, "ops-admins", Some(&ada_token)).await.status, StatusCode::OK, "added to ops");
    let reply = server.send(server.admin(Method::DELETE, &format!("/groups/ops/members/{ada}"))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_denied(&call(&server, "ops-admins", Some(&ada_token)).await, StatusCode::FORBIDDEN, "removed from ops after the token was issued");
    patch_user(&server, &bob, json!({"metadata": {"department": "engineering", "plan": "team", "seats": 10}})).await;
    assert_eq!(call(&server, "eng", Some(&bob_token)).await.status, StatusCode::OK, "metadata changed");
    assert_eq!(call(&server, "big", Some(&bob_token)).await.status, StatusCode::OK, "seats is now a number");

    // Policy edits take effect with no redeploy, both ways.
    assert_eq!(set_policy(&server, "members", json!({"type": "group", "groups": ["admin"]})).await.status, StatusCode::OK);
    assert_denied(&call(&server, "members", Some(&bob_token)).await, StatusCode::FORBIDDEN, "policy tightened");
    assert_eq!(set_policy(&server, "members", json!({"type": "public"})).await.status, StatusCode::OK);
    assert_eq!(call(&server, "members", None).await.status, StatusCode::OK, "policy loosened");
    let reply = server.send(server.admin(Method::GET, "/functions/members/access")).await;
    assert_eq!(reply.json()["policy"], json!({"type": "public"}));

    // A redeploy without a policy keeps the function's policy; a rollback too.
    deploy_with_policy(&server, "admins", "whoami", None).await;
    assert_denied(&call(&server, "admins", Some(&bob_token)).await, StatusCode::FORBIDDEN, "redeploy kept the policy");
    let reply = server.send(server.admin(Method::POST, "/functions/admins/activate").json(&json!({"version": 1}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_denied(&call(&server, "admins", Some(&bob_token)).await, StatusCode::FORBIDDEN, "rollback kept the policy");

    // Invalid policies are refused and change nothing.
    for bad in [
        json!({"type": "everyone"}),
        json!({"type": "group", "groups": ["Admin"]}),
        json!({"type": "metadata", "all": [{"key": "seats", "gte": "5"}]}),
    ] {
        let reply = set_policy(&server, "admins", bad.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text());
        assert!(reply.json()["message"].as_str().unwrap().contains("policy"), "{}", reply.text());
    }
    let reply = server
        .send(server.admin(Method::POST, "/functions/new/versions").json(&json!({"source": fixture_source("whoami"), "policy": {"type": "anyone"}})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(server.send(server.admin(Method::GET, "/functions/new")).await.status, StatusCode::NOT_FOUND, "nothing stored");
    assert_eq!(set_policy(&server, "nope", json!({"type": "public"})).await.status, StatusCode::NOT_FOUND);
    assert_denied(&call(&server, "admins", Some(&bob_token)).await, StatusCode::FORBIDDEN, "bad edits changed nothing");
}

#[tokio::test]
async fn disabled_and_deleted_users_lose_access_with_their_tokens() {
    let server = TestServer::start().await;
    let carol = server.create_user("carol@example.com", &[], json!({})).await;
    let dave = server.create_user("dave@example.com", &[], json!({})).await;
    deploy_with_policy(&server, "members", "whoami", None).await;
    let carol_token = server.access_token("carol@example.com").await;
    let dave_token = server.access_token("dave@example.com").await;
    assert_eq!(call(&server, "members", Some(&carol_token)).await.status, StatusCode::OK);

    patch_user(&server, &carol, json!({"disabled": true})).await;
    assert_denied(&call(&server, "members", Some(&carol_token)).await, StatusCode::UNAUTHORIZED, "disabled user's token");
    assert_denied(&server.sign_in("carol@example.com", "correct horse battery").await, StatusCode::UNAUTHORIZED, "disabled sign-in");

    let reply = server.send(server.admin(Method::DELETE, &format!("/users/{dave}"))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_denied(&call(&server, "members", Some(&dave_token)).await, StatusCode::UNAUTHORIZED, "deleted user's token");
    assert_eq!(server.send(server.admin(Method::DELETE, &format!("/users/{dave}"))).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sessions_rotate_refresh_tokens_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let signup = server
        .send(client.post(server.url("/auth/v1/signup")).json(&json!({"email": " Erin@Example.com ", "password": "a long enough pw"})))
        .await;
    assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.text());
    assert_eq!(signup.json()["user"]["email"], "erin@example.com");
    let again = server
        .send(client.post(server.url("/auth/v1/signup")).json(&json!({"email": "erin@example.com", "password": "another long pw"})))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    for bad in [
        json!({"email": "not-an-email", "password": "a long enough pw"}),
        json!({"email": "frank@example.com", "password": "short"}),
        // Metadata grants access: users cannot give it to themselves.
        json!({"email": "frank@example.com", "password": "a long enough pw", "metadata": {"department": "engineering"}}),
    ] {
        let reply = server.send(client.post(server.url("/auth/v1/signup")).json(&bad)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text());
    }

    let refresh = |token: String| {
        let client = client.clone();
        let url = server.url("/auth/v1/token?grant_type=refresh_token");
        async move { client.post(url).json(&json!({"refresh_token": token})) }
    };
    let first = signup.json()["refresh_token"].as_str().unwrap().to_owned();
    let rotated = server.send(refresh(first.clone()).await).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let second = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let me = server.send(client.get(server.url("/auth/v1/user")).bearer_auth(rotated.json()["access_token"].as_str().unwrap())).await;
    assert_eq!(me.json()["email"], "erin@example.com");

    // The first token is replayed (stolen): refused, and the family dies.
    assert_denied(&server.send(refresh(first).await).await, StatusCode::UNAUTHORIZED, "reused refresh token");
    assert_denied(&server.send(refresh(second).await).await, StatusCode::UNAUTHORIZED, "family revoked after reuse");
    assert_denied(&server.send(refresh("efr_made_up".into()).await).await, StatusCode::UNAUTHORIZED, "unknown refresh token");

    // Sign-out ends the session.
    let session = server.sign_in("erin@example.com", "a long enough pw").await;
    let token = session.json()["refresh_token"].as_str().unwrap().to_owned();
    let out = server.send(client.post(server.url("/auth/v1/logout")).json(&json!({"refresh_token": token}))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_denied(&server.send(refresh(token).await).await, StatusCode::UNAUTHORIZED, "signed out");
    let reply = server.send(client.post(server.url("/auth/v1/token?grant_type=magic"))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn brute_force_sign_in_is_rate_limited() {
    let server = TestServer::start().await;
    server.create_user("gina@example.com", &[], json!({})).await;
    for attempt in 1..=5 {
        let reply = server.sign_in("gina@example.com", &format!("guess number {attempt}")).await;
        assert_denied(&reply, StatusCode::UNAUTHORIZED, "wrong password");
        assert_eq!(reply.json()["message"], "invalid email or password");
    }
    // Even the right password is refused until the window passes.
    let reply = server.sign_in("gina@example.com", "correct horse battery").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
    assert!(reply.header("retry-after").is_some());
    // An unknown email fails exactly like a wrong password.
    let reply = server.sign_in("nobody@example.com", "whatever it is").await;
    assert_eq!(reply.json()["message"], "invalid email or password");
}

#[tokio::test]
async fn signup_can_be_turned_off() {
    let server = TestServer::start_with(&["--signup", "false"]).await;
    let reply = server
        .send(reqwest::Client::new().post(server.url("/auth/v1/signup")).json(&json!({"email": "h@example.com", "password": "a long enough pw"})))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    // Admins still create accounts.
    server.create_user("h@example.com", &[], json!({})).await;
    server.access_token("h@example.com").await;
}

#[tokio::test]
async fn admin_keys_are_created_listed_by_prefix_and_revoked() {
    let server = TestServer::start().await;
    deploy_with_policy(&server, "admins", "whoami", Some(json!({"type": "group", "groups": ["admin"]}))).await;
    let client = reqwest::Client::new();
    assert_denied(&server.send(client.get(server.url("/admin/v1/functions"))).await, StatusCode::UNAUTHORIZED, "admin API, no key");

    let created = server.send(server.admin(Method::POST, "/keys").json(&json!({"label": "ci deploys"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let prefix = created.json()["prefix"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&prefix));
    let list = server.send(server.admin(Method::GET, "/keys")).await;
    assert!(!list.text().contains(&key), "a list never shows a key");
    assert!(list.text().contains(&prefix));

    // An admin key is the service role: it may call any function.
    let reply = call(&server, "admins", Some(&key)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["caller"]["role"], "service");
    assert_eq!(reply.json()["caller"]["id"], prefix.as_str());

    let revoked = server.send(server.admin(Method::DELETE, &format!("/keys/{prefix}"))).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json()["revoked_at"].is_string());
    assert_denied(&server.send(client.get(server.url("/admin/v1/functions")).bearer_auth(&key)).await, StatusCode::UNAUTHORIZED, "admin API, revoked key");
    assert_denied(&call(&server, "admins", Some(&key)).await, StatusCode::UNAUTHORIZED, "function, revoked key");

    // The last active key cannot be revoked: that would lock the admin API.
    let bootstrap_prefix: String = ADMIN_KEY.chars().take(12).collect();
    let reply = server.send(server.admin(Method::DELETE, &format!("/keys/{bootstrap_prefix}"))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    assert_eq!(server.send(server.admin(Method::DELETE, "/keys/efk_nothere")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.send(server.admin(Method::POST, "/keys").json(&json!({"label": ""}))).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denied_calls_are_recorded_and_functions_see_the_caller_not_the_token() {
    let server = TestServer::start().await;
    let id = server.create_user("ivy@example.com", &["admin", "beta"], json!({"department": "engineering"})).await;
    deploy_with_policy(&server, "admins", "whoami", Some(json!({"type": "group", "groups": ["admin"]}))).await;
    let token = server.access_token("ivy@example.com").await;

    let reply = call(&server, "admins", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = reply.json();
    assert_eq!(seen["authorization"], Value::Null);
    assert_eq!(
        seen["caller"],
        json!({"id": id, "email": "ivy@example.com", "role": "authenticated", "groups": ["admin", "beta"], "metadata": {"department": "engineering"}})
    );
    let record = server.execution(reply.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["caller"], format!("user:{id} <ivy@example.com>"));

    let anonymous = call(&server, "admins", None).await;
    let record = server.execution(anonymous.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["status"], 401);
    assert_eq!(record["caller"], Value::Null);
    assert!(record["error"]["message"].as_str().unwrap().contains("signed-in"), "{record}");

    patch_user(&server, &id, json!({"groups": []})).await;
    let forbidden = call(&server, "admins", Some(&token)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let record = server.execution(forbidden.header("x-edgefn-invocation-id").unwrap()).await;
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["status"], 403);
    assert_eq!(record["caller"], format!("user:{id} <ivy@example.com>"));
    assert!(record["error"]["message"].as_str().unwrap().contains("admin"), "{record}");
    assert!(record["console"].as_array().unwrap().is_empty(), "the function never ran");

    // The logs show the attacks: refused calls can be listed on their own.
    let denied = server.send(server.admin(Method::GET, "/executions?function=admins&outcome=denied")).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text());
    let statuses: Vec<i64> = denied.json()["executions"].as_array().unwrap().iter().map(|r| r["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, vec![403, 401], "newest first");
    let by_caller = server.send(server.admin(Method::GET, &format!("/executions?caller=user:{id}"))).await;
    assert_eq!(by_caller.json()["executions"].as_array().unwrap().len(), 2, "the allowed call and the 403");
    let typo = server.send(server.admin(Method::GET, "/executions?outcome=refused")).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.json()["message"].as_str().unwrap().contains("denied"), "{}", typo.text());
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_host() {
    let server = TestServer::start().await;
    let manifest = json!({
        "source": fixture_source("whoami"),
        "cors": {"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "PUT"], "expose_headers": ["x-edgefn-invocation-id"]}
    });
    let reply = server.send(server.admin(Method::POST, "/functions/api/versions").json(&manifest)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());

    let preflight = |origin: &str, method: &str, headers: &str| {
        server
            .function(Method::OPTIONS, "api")
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
    };
    let allowed = server.send(preflight("https://app.example.com", "PUT", "authorization, content-type")).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT, "no credentials needed for a preflight");
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert!(allowed.header("access-control-allow-methods").unwrap().contains("PUT"));
    assert!(allowed.header("access-control-allow-headers").unwrap().contains("authorization"));
    assert!(allowed.header("x-edgefn-invocation-id").is_none(), "a preflight is not an execution");

    for (origin, method, headers) in [
        ("https://evil.example", "PUT", ""),
        ("https://app.example.com", "DELETE", ""),
        ("https://app.example.com", "PUT", "x-not-allowed"),
    ] {
        let reply = server.send(preflight(origin, method, headers)).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(reply.header("access-control-allow-origin"), None, "{origin} {method} {headers}");
    }

    // Actual requests carry the headers, refusals too (so the page can read them).
    let denied = server.send(server.function(Method::GET, "api").header("origin", "https://app.example.com")).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.header("access-control-allow-origin"), Some("https://app.example.com"));
    let ok = server.send(server.function(Method::GET, "api").header("origin", "https://app.example.com").bearer_auth(ADMIN_KEY)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("access-control-expose-headers"), Some("x-edgefn-invocation-id"));
    let bad = json!({"policy": {"type": "public"}, "cors": {"allow_origins": ["*"], "allow_credentials": true}});
    let reply = server.send(server.admin(Method::PUT, "/functions/api/access").json(&bad)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
}

#[tokio::test]
async fn edgefn_access_tokens_expire() {
    let server = TestServer::start_with(&["--access-token-ttl-secs", "1"]).await;
    server.create_user("jo@example.com", &[], json!({})).await;
    deploy_with_policy(&server, "members", "whoami", None).await;
    let token = server.access_token("jo@example.com").await;
    // Used once first, so the second use meets the verified-token cache.
    assert_eq!(call(&server, "members", Some(&token)).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = call(&server, "members", Some(&token)).await;
    assert_denied(&reply, StatusCode::UNAUTHORIZED, "expired");
    assert!(reply.text().contains("expired"), "{}", reply.text());
}
