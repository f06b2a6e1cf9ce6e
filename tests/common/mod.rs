//! The integration-test harness: a real `edgefn` server process on an
//! ephemeral port, talked to over HTTP, running functions from
//! `tests/functions/` compiled by our own compiler.

#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_KEY: &str = "efk_integration_tests_admin_key_0123456789";

/// A running edgefn server; killed when dropped (and, through its closed
/// stdin, when the test process dies).
pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    /// Every line the server printed to stdout so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    child: Child,
    client: reqwest::Client,
    extra_args: Vec<String>,
}

/// One response, body read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn unique_dir(label: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// All test servers share one engine cache, so only the first builds it.
pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("engine-cache")
}

/// The edgefn binary on `data_dir`, configured only by the test: a
/// DATABASE_URL or EDGEFN_* variable in the caller's environment must not
/// redirect it. `args` come last, so they may end with a subcommand.
pub fn edgefn_command(data_dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgefn"));
    for (name, _) in std::env::vars_os() {
        if name == "DATABASE_URL" || name.to_string_lossy().starts_with("EDGEFN_") {
            command.env_remove(name);
        }
    }
    command.arg("--data-dir").arg(data_dir);
    if !args.iter().any(|a| a == "--cache-dir") {
        command.arg("--cache-dir").arg(shared_cache_dir());
    }
    command.args(args).env("EDGEFN_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY).env("EDGEFN_LOG", "warn");
    command
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    pub async fn start_with(args: &[&str]) -> TestServer {
        Self::start_in(unique_dir("server"), args.iter().map(|s| s.to_string()).collect()).await
    }

    /// Starts a server on `data_dir` (which may hold a previous server's state).
    pub async fn start_in(data_dir: PathBuf, extra_args: Vec<String>) -> TestServer {
        let mut command = edgefn_command(&data_dir, &extra_args);
        command.args(["--listen", "127.0.0.1:0", "--exit-on-stdin-eof"]);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the edgefn binary");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("edgefn listening on ") {
                    let _ = sender.send(address.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the server exited before it listened (its stderr is above)"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the server did not report its address within 120 s"),
        };
        TestServer { base, data_dir, stdout: printed, child, client: reqwest::Client::new(), extra_args }
    }

    /// Stops this server and starts another on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        self.stop();
        let (data_dir, args) = (self.data_dir.clone(), self.extra_args.clone());
        std::mem::forget(self);
        TestServer::start_in(data_dir, args).await
    }

    /// Stops this server and keeps its data directory, for the caller to reuse.
    pub fn shut_down(mut self) -> PathBuf {
        self.stop();
        let data_dir = self.data_dir.clone();
        std::mem::forget(self);
        data_dir
    }

    /// Asks the server to shut down (closes its stdin) and says whether it
    /// exited by itself within 10 s; it is killed otherwise.
    pub fn exits_when_asked(mut self) -> bool {
        self.ask_to_exit(Duration::from_secs(10))
    }

    /// Closes the server's stdin, its signal to shut down, and waits up to
    /// `patience` for it to exit; true if it did.
    fn ask_to_exit(&mut self, patience: Duration) -> bool {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + patience;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        if !self.ask_to_exit(Duration::from_secs(5)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("reading the body").to_vec();
        Reply { status, headers, body }
    }

    /// `GET path` (outside `/admin/v1`) with the admin key.
    pub fn get_with_key(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(ADMIN_KEY)
    }

    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(ADMIN_KEY)
    }

    /// Deploys `source` as `name` through the build endpoint, as a raw JS
    /// upload, and makes the function public: most tests are not about
    /// access (tests/identity.rs is), and a new function is `authenticated`.
    pub async fn deploy_source(&self, name: &str, source: &str) -> Reply {
        let reply = self
            .send(
                self.admin(Method::POST, &format!("/functions/{name}/versions"))
                    .header("content-type", "application/javascript")
                    .body(source.to_owned()),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            let public = serde_json::json!({"policy": {"type": "public"}});
            let made_public = self.send(self.admin(Method::PUT, &format!("/functions/{name}/access")).json(&public)).await;
            assert_eq!(made_public.status, StatusCode::OK, "making {name} public: {}", made_public.text());
        }
        reply
    }

    /// Deploys `tests/functions/<fixture>.js` as `name`, asserting success.
    pub async fn deploy(&self, name: &str, fixture: &str) -> Value {
        let reply = self.deploy_source(name, &fixture_source(fixture)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "deploying {fixture}: {}", reply.text());
        reply.json()
    }

    pub fn function(&self, method: Method, name_and_path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(&format!("/functions/v1/{name_and_path}")))
    }

    pub async fn get(&self, name_and_path: &str) -> Reply {
        self.send(self.function(Method::GET, name_and_path)).await
    }

    /// The execution record of an invocation, waiting for the batch writer.
    pub async fn execution(&self, invocation_id: &str) -> Value {
        for _ in 0..100 {
            let reply = self.send(self.admin(Method::GET, &format!("/executions/{invocation_id}"))).await;
            if reply.status == StatusCode::OK {
                return reply.json();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no execution record {invocation_id} after 5 s");
    }
}

/// Password of every user the tests create.
pub const USER_PASSWORD: &str = "correct horse battery";

impl TestServer {
    /// Creates a user through the admin API; returns its id.
    pub async fn create_user(&self, email: &str, groups: &[&str], metadata: Value) -> String {
        let reply = self
            .send(self.admin(Method::POST, "/users").json(&serde_json::json!({
                "email": email, "password": USER_PASSWORD, "groups": groups, "metadata": metadata
            })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    /// Signs in with a password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.send(
            reqwest::Client::new()
                .post(self.url("/auth/v1/token?grant_type=password"))
                .json(&serde_json::json!({"email": email, "password": password})),
        )
        .await
    }

    /// Sets a secret through the admin API.
    pub async fn set_secret(&self, name: &str, value: &str) -> Reply {
        self.send(self.admin(Method::PUT, &format!("/secrets/{name}")).json(&serde_json::json!({ "value": value }))).await
    }

    /// Deploys `source` as a public function granted `secrets`, asserting success.
    pub async fn deploy_with_grants(&self, name: &str, source: &str, secrets: &[&str]) -> Value {
        let reply = self
            .send(self.admin(Method::POST, &format!("/functions/{name}/versions")).json(&serde_json::json!({
                "source": source,
                "secrets": secrets,
                "policy": {"type": "public"},
            })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "deploying {name}: {}", reply.text());
        reply.json()
    }

    /// An access token for a user made by [`TestServer::create_user`].
    pub async fn access_token(&self, email: &str) -> String {
        let reply = self.sign_in(email, USER_PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "signing in {email}: {}", reply.text());
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }
}

/// A PostgreSQL database of its own for one test, on the server the test
/// command provides (`EDGEFN_TEST_POSTGRES_URL`); dropped with [`Self::drop_now`].
pub struct PostgresDatabase {
    pub admin: sea_orm::DatabaseConnection,
    pub name: String,
    pub url: String,
}

impl PostgresDatabase {
    pub async fn create() -> PostgresDatabase {
        use sea_orm::ConnectionTrait;
        let admin_url = std::env::var("EDGEFN_TEST_POSTGRES_URL")
            .expect("EDGEFN_TEST_POSTGRES_URL must name a PostgreSQL database (scripts/test sets it)");
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let suffix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000;
        let name = format!("edgefn_it_{}_{suffix}_{n}", std::process::id());
        let admin = sea_orm::Database::connect(&admin_url).await.expect("connecting to PostgreSQL");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        PostgresDatabase { admin, name, url }
    }

    /// Drops the database (servers using it must be stopped or dropped first).
    pub async fn drop_now(self) {
        use sea_orm::ConnectionTrait;
        self.admin.execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn fixture_source(fixture: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/functions").join(format!("{fixture}.js"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
