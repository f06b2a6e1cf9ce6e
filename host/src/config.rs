//! Server configuration: flags, each with an environment variable and a
//! documented default. `edgefn --help` lists them all.

use crate::capabilities::outbound_http::egress::{DefaultEgress, InternalHost};
use crate::sandbox::limits::Limits;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The edgefn server.
#[derive(Debug, Clone, Parser)]
#[command(name = "edgefn", version, about = "Self-hosted edge functions: JS in, a URL out, a fresh Wasm sandbox per request.")]
pub struct Config {
    /// Address to listen on; port 0 picks a free one (the chosen address is printed).
    #[arg(long, env = "EDGEFN_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// Where edgefn keeps its SQLite database and caches.
    #[arg(long, env = "EDGEFN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where the compiled engine image is cached (default: <data dir>/cache).
    #[arg(long, env = "EDGEFN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Database URL; defaults to SQLite in the data directory. `postgres://...` for PostgreSQL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Base URL that function URLs are reported under (default: http://<listen address>).
    #[arg(long, env = "EDGEFN_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Use this as the first admin key instead of generating one (only when no key exists yet).
    #[arg(long, env = "EDGEFN_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<String>,

    /// Function instances that may run at once; further requests queue.
    #[arg(long, env = "EDGEFN_MAX_INSTANCES", default_value_t = 64)]
    pub max_instances: u32,

    /// How long a request may wait for a free instance before a 503.
    #[arg(long, env = "EDGEFN_QUEUE_TIMEOUT_MS", default_value_t = 10_000)]
    pub queue_timeout_ms: u64,

    /// Keep an execution record of every invocation. Turning it off exists
    /// only to measure what recording costs (benches/observability.sh).
    #[arg(long, env = "EDGEFN_RECORD_EXECUTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub record_executions: bool,

    /// Under load, write each response after the requests already waiting
    /// for the same worker have run, so that responses leave in bursts and
    /// wake the client less often (see `host/src/connection.rs`). Turning it
    /// off exists only to measure what it saves (benches/load.sh).
    #[arg(long, env = "EDGEFN_DEFER_WRITES", default_value_t = true, action = clap::ArgAction::Set)]
    pub defer_writes: bool,

    /// Execution records older than this are deleted (hours).
    #[arg(long, env = "EDGEFN_RECORD_RETENTION_HOURS", default_value_t = 24 * 7)]
    pub record_retention_hours: u64,

    /// At most this many execution records are kept; the oldest go first.
    #[arg(long, env = "EDGEFN_RECORD_RETENTION_MAX", default_value_t = 1_000_000)]
    pub record_retention_max: u64,

    /// How often record retention runs, in seconds.
    #[arg(long, env = "EDGEFN_RECORD_RETENTION_INTERVAL_SECS", default_value_t = 60)]
    pub record_retention_interval_secs: u64,

    /// Also serve `/metrics` here without an admin key (for a Prometheus on a
    /// private network); on the main address it always needs one.
    #[arg(long, env = "EDGEFN_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Export OpenTelemetry traces to this OTLP collector (e.g. Jaeger's
    /// `http://localhost:4317` for gRPC, `http://localhost:4318` for HTTP);
    /// tracing is off without it.
    #[arg(long, env = "EDGEFN_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport.
    #[arg(long, env = "EDGEFN_OTLP_PROTOCOL", value_enum, default_value = "grpc")]
    pub otlp_protocol: crate::telemetry::traces::OtlpProtocol,

    /// A header sent with every export, `name=value` (repeat for more), e.g.
    /// a collector's API key.
    #[arg(long = "otlp-header", env = "EDGEFN_OTLP_HEADERS", value_delimiter = ',')]
    pub otlp_headers: Vec<String>,

    /// Longest a finished span waits before its batch is exported.
    #[arg(long, env = "EDGEFN_OTLP_BATCH_DELAY_MS", default_value_t = 1_000)]
    pub otlp_batch_delay_ms: u64,

    /// The Jaeger UI's address; execution records then link to their trace.
    #[arg(long, env = "EDGEFN_JAEGER_UI_URL")]
    pub jaeger_ui_url: Option<String>,

    /// Connections in the pool functions' queries use (their transactions
    /// hold one each until they end).
    #[arg(long, env = "EDGEFN_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,

    /// How long one database query from a function may run.
    #[arg(long, env = "EDGEFN_DB_QUERY_TIMEOUT_MS", default_value_t = 5_000)]
    pub db_query_timeout_ms: u64,

    /// Most rows one database query from a function may return or change.
    #[arg(long, env = "EDGEFN_DB_MAX_ROWS", default_value_t = 1_000)]
    pub db_max_rows: usize,

    /// Most database queries one invocation may run.
    #[arg(long, env = "EDGEFN_DB_MAX_QUERIES", default_value_t = 100)]
    pub db_max_queries: u32,

    /// What a function whose manifest has no "egress" list may fetch: any
    /// public host, or none. Internal addresses are refused either way.
    #[arg(long, env = "EDGEFN_EGRESS_DEFAULT", value_enum, default_value_t = DefaultEgress::Public)]
    pub egress_default: DefaultEgress,

    /// Internal hosts functions may reach despite the SSRF rules, as `host`
    /// or `host:port` (repeat, or separate with commas). For services on
    /// your own network that functions are meant to call.
    #[arg(long = "egress-allow-internal", env = "EDGEFN_EGRESS_ALLOW_INTERNAL", value_delimiter = ',')]
    pub egress_allow_internal: Vec<InternalHost>,

    /// Most outbound requests (fetch calls and redirect hops) one invocation may make.
    #[arg(long, env = "EDGEFN_OUTBOUND_MAX_REQUESTS", default_value_t = 50)]
    pub outbound_max_requests: u32,

    /// Largest request body a function may send, in bytes.
    #[arg(long, env = "EDGEFN_OUTBOUND_MAX_REQUEST_BYTES", default_value_t = 10 << 20)]
    pub outbound_max_request_bytes: usize,

    /// Largest response body a function may receive, in bytes.
    #[arg(long, env = "EDGEFN_OUTBOUND_MAX_RESPONSE_BYTES", default_value_t = 10 << 20)]
    pub outbound_max_response_bytes: usize,

    /// How long one outbound request may take, from connecting to its last byte.
    #[arg(long, env = "EDGEFN_OUTBOUND_TIMEOUT_MS", default_value_t = 30_000)]
    pub outbound_timeout_ms: u64,

    /// Largest request body a function accepts; larger ones get a 413.
    #[arg(long, env = "EDGEFN_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    pub max_body_bytes: usize,

    /// Largest function source the build endpoint accepts.
    #[arg(long, env = "EDGEFN_MAX_SOURCE_BYTES", default_value_t = edgefn_compiler::DEFAULT_MAX_SOURCE_BYTES)]
    pub max_source_bytes: usize,

    /// Default fuel per invocation (about one unit per Wasm instruction).
    #[arg(long, env = "EDGEFN_DEFAULT_FUEL", default_value_t = Limits::DEFAULT.fuel)]
    pub default_fuel: u64,

    /// Default memory limit per invocation, in bytes.
    #[arg(long, env = "EDGEFN_DEFAULT_MEMORY_BYTES", default_value_t = Limits::DEFAULT.memory_bytes)]
    pub default_memory_bytes: u64,

    /// Default wall-clock deadline per invocation, in milliseconds.
    #[arg(long, env = "EDGEFN_DEFAULT_DEADLINE_MS", default_value_t = Limits::DEFAULT.deadline_ms)]
    pub default_deadline_ms: u64,

    /// The most fuel a function's manifest may ask for.
    #[arg(long, env = "EDGEFN_MAX_FUEL", default_value_t = 20_000_000_000)]
    pub max_fuel: u64,

    /// The most memory a function's manifest may ask for, in bytes.
    #[arg(long, env = "EDGEFN_MAX_MEMORY_BYTES", default_value_t = 512 << 20)]
    pub max_memory_bytes: u64,

    /// The longest deadline a function's manifest may ask for, in milliseconds.
    #[arg(long, env = "EDGEFN_MAX_DEADLINE_MS", default_value_t = 60_000)]
    pub max_deadline_ms: u64,

    /// The secrets master key itself (base64 of 32 random bytes); takes
    /// precedence over the key file. Prefer the file on a single machine.
    #[arg(long = "master-key", env = "EDGEFN_MASTER_KEY", hide_env_values = true, value_name = "BASE64")]
    pub master_key: Option<String>,

    /// File holding the secrets master key (default: <data dir>/master.key,
    /// created with owner-only permissions on first start when no secret is
    /// stored yet).
    #[arg(long, env = "EDGEFN_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// The master key being rotated away from: secrets still encrypted under
    /// it stay readable until `edgefn rotate-master-key` has re-encrypted them.
    #[arg(long, env = "EDGEFN_PREVIOUS_MASTER_KEY_FILE")]
    pub previous_master_key_file: Option<PathBuf>,

    /// `iss` and `aud` of the access tokens edgefn issues. Servers sharing a
    /// database must use the same value (and the same master key).
    #[arg(long, env = "EDGEFN_JWT_ISSUER", default_value = "edgefn")]
    pub jwt_issuer: String,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "EDGEFN_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token, in seconds (each use issues a new one).
    #[arg(long, env = "EDGEFN_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// How long a user's groups, metadata and disabled flag are cached, in
    /// milliseconds: an admin's change reaches other servers within this time.
    #[arg(long, env = "EDGEFN_IDENTITY_CACHE_TTL_MS", default_value_t = 30_000)]
    pub identity_cache_ttl_ms: u64,

    /// Let anyone create an account at POST /auth/v1/signup.
    #[arg(long, env = "EDGEFN_SIGNUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub signup: bool,

    /// Failed sign-ins allowed per email within the window (four times as
    /// many per client address) before sign-in answers 429.
    #[arg(long, env = "EDGEFN_SIGN_IN_MAX_FAILURES", default_value_t = 5)]
    pub sign_in_max_failures: u32,

    /// The failed sign-in window, in seconds.
    #[arg(long, env = "EDGEFN_SIGN_IN_WINDOW_SECS", default_value_t = 900)]
    pub sign_in_window_secs: u64,

    /// External identity provider: the exact `iss` of its tokens. With
    /// `--oidc-audience` and `--oidc-jwks-url`, its tokens are accepted.
    #[arg(long, env = "EDGEFN_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The `aud` the provider's tokens must carry.
    #[arg(long, env = "EDGEFN_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// Where the provider publishes its signing keys (JWKS).
    #[arg(long, env = "EDGEFN_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,

    /// Algorithms accepted from the provider, comma-separated (asymmetric only).
    #[arg(long, env = "EDGEFN_OIDC_ALGORITHMS", default_value = "RS256,ES256", value_delimiter = ',')]
    pub oidc_algorithms: Vec<String>,

    /// The provider's claim holding the user's groups (dots reach into objects).
    #[arg(long, env = "EDGEFN_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// The provider's claim holding the user's metadata (an object).
    #[arg(long, env = "EDGEFN_OIDC_METADATA_CLAIM", default_value = "metadata")]
    pub oidc_metadata_claim: String,

    /// Clock skew tolerated on the provider's `exp` and `nbf`, in seconds.
    #[arg(long, env = "EDGEFN_OIDC_LEEWAY_SECS", default_value_t = 30)]
    pub oidc_leeway_secs: u64,

    /// The least time between two fetches of the provider's JWKS, in seconds
    /// (a token naming an unknown key triggers one).
    #[arg(long, env = "EDGEFN_OIDC_JWKS_REFETCH_SECS", default_value_t = 10)]
    pub oidc_jwks_refetch_secs: u64,

    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Exit when standard input closes (lets a supervising process, such as
    /// the test suite, guarantee the server dies with it).
    #[arg(long, hide = true)]
    pub exit_on_stdin_eof: bool,
}

/// One-off commands; without one, edgefn serves.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Re-encrypts every secret under the current master key.
    ///
    /// To rotate without downtime: make a new key (`head -c 32 /dev/urandom |
    /// base64 > new.key`); restart the servers with `--master-key-file new.key
    /// --previous-master-key-file old.key` (they read both); run this command
    /// with the same two options; then drop `--previous-master-key-file`.
    RotateMasterKey,
}

impl Config {
    /// Where the secrets master key comes from.
    pub fn key_source(&self) -> crate::secrets::KeySource {
        crate::secrets::KeySource {
            key: self.master_key.clone().map(zeroize::Zeroizing::new),
            file: self.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master.key")),
            previous_file: self.previous_master_key_file.clone(),
        }
    }

    /// Identity settings.
    pub fn identity(&self) -> Result<crate::identity::IdentityConfig, String> {
        use std::time::Duration;
        let external = match (&self.oidc_issuer, &self.oidc_audience, &self.oidc_jwks_url) {
            (Some(issuer), Some(audience), Some(jwks_url)) => {
                if *issuer == self.jwt_issuer {
                    return Err("--oidc-issuer must differ from --jwt-issuer: tokens are routed to a verifier by issuer".into());
                }
                let algorithms = self
                    .oidc_algorithms
                    .iter()
                    .map(|name| {
                        name.trim().parse::<jsonwebtoken::Algorithm>().map_err(|_| format!("unknown JWT algorithm {name:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(crate::identity::ExternalProviderConfig {
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                    jwks_url: jwks_url.clone(),
                    algorithms,
                    groups_claim: self.oidc_groups_claim.clone(),
                    metadata_claim: self.oidc_metadata_claim.clone(),
                    leeway_secs: self.oidc_leeway_secs,
                    min_refetch: Duration::from_secs(self.oidc_jwks_refetch_secs),
                })
            }
            (None, None, None) => None,
            _ => return Err("--oidc-issuer, --oidc-audience and --oidc-jwks-url go together".into()),
        };
        if self.access_token_ttl_secs == 0 || self.sign_in_max_failures == 0 {
            return Err("--access-token-ttl-secs and --sign-in-max-failures must be at least 1".into());
        }
        Ok(crate::identity::IdentityConfig {
            issuer: self.jwt_issuer.clone(),
            access_ttl: Duration::from_secs(self.access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(self.refresh_token_ttl_secs.max(60)),
            profile_ttl: Duration::from_millis(self.identity_cache_ttl_ms.max(1)),
            signup_enabled: self.signup,
            max_sign_in_failures: self.sign_in_max_failures,
            sign_in_window: Duration::from_secs(self.sign_in_window_secs.max(1)),
            external,
        })
    }

    /// Limits applied when a manifest sets none.
    pub fn default_limits(&self) -> Limits {
        Limits { fuel: self.default_fuel, memory_bytes: self.default_memory_bytes, deadline_ms: self.default_deadline_ms }
    }

    /// The most a manifest may ask for.
    pub fn limit_ceiling(&self) -> Limits {
        Limits { fuel: self.max_fuel, memory_bytes: self.max_memory_bytes, deadline_ms: self.max_deadline_ms }
    }

    /// The engine cache directory in effect.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("edgefn.db").display()))
    }

    /// The OTLP exporter's settings, when tracing is on.
    pub fn otlp(&self) -> Result<Option<crate::telemetry::traces::OtlpConfig>, String> {
        let Some(endpoint) = &self.otlp_endpoint else { return Ok(None) };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!("--otlp-endpoint must be an http:// or https:// URL, not {endpoint:?}"));
        }
        let headers = self
            .otlp_headers
            .iter()
            .map(|header| {
                header
                    .split_once('=')
                    .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                    .filter(|(name, _)| !name.is_empty())
                    .ok_or_else(|| format!("--otlp-header takes name=value, not {header:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(crate::telemetry::traces::OtlpConfig {
            endpoint: endpoint.clone(),
            protocol: self.otlp_protocol,
            headers,
            batch_delay: std::time::Duration::from_millis(self.otlp_batch_delay_ms),
        }))
    }

    /// Checks the combinations flags alone cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let defaults = self.default_limits();
        let ceiling = self.limit_ceiling();
        if defaults.fuel > ceiling.fuel || defaults.memory_bytes > ceiling.memory_bytes || defaults.deadline_ms > ceiling.deadline_ms {
            return Err(format!("default limits {defaults:?} exceed the maximums {ceiling:?}"));
        }
        if self.max_instances == 0 {
            return Err("--max-instances must be at least 1".into());
        }
        if self.record_retention_interval_secs == 0 {
            return Err("--record-retention-interval-secs must be at least 1".into());
        }
        if self.outbound_max_requests == 0 || self.outbound_timeout_ms == 0 {
            return Err("--outbound-max-requests and --outbound-timeout-ms must be at least 1".into());
        }
        if self.db_max_rows == 0 || self.db_max_queries == 0 || self.db_query_timeout_ms == 0 || self.db_pool_size == 0 {
            return Err("--db-pool-size, --db-max-rows, --db-max-queries and --db-query-timeout-ms must be at least 1".into());
        }
        Ok(())
    }
}
