//! Functions and their immutable versions: deploy, activate (rollback),
//! and the cache of active deployments that requests run from.
//!
//! Invariants:
//! - a version, once stored, never changes, except that its bytecode may be
//!   rebuilt from its own source when the stored copy is corrupt or belongs
//!   to another engine build;
//! - a failed deploy changes nothing: compiling happens before any write, and
//!   the writes that follow happen in one transaction;
//! - activation is atomic: requests see the old version or the new one, never
//!   a mix, because the cache swap happens under the same lock that loads take.

use crate::access::Access;
use crate::capabilities::outbound_http::egress::Allowlist;
use crate::entities::{function, function_version};
use crate::error::ApiError;
use crate::sandbox::limits::{LimitOverrides, Limits};
use crate::sandbox::{ModuleState, Outcome, Sandbox, SlotGroup};
use crate::secrets::Secrets;
use chrono::{DateTime, Utc};
use edgefn_compiler::{Artifact, CompileError};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, ModelTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use crate::database::DatabaseRole;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// What a deployment asks for besides its source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Overrides of the server's default limits.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// The secrets the function may read. When present, it replaces the
    /// function's grants; when absent, the grants stay as they are. Grants
    /// belong to the function, so a rollback keeps today's grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Who may call the function (see `access::Policy`). When present, it
    /// replaces the function's policy; when absent, the policy stays (a new
    /// function's is `authenticated`). Like grants, it belongs to the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// Browser origins that may call the function (see `access::Cors`);
    /// replaces the function's CORS settings when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<serde_json::Value>,
    /// `"service"` runs the version's database queries with the service
    /// role, bypassing row-level security; every execution records it.
    /// Absent (or `"caller"`): queries run as the caller, under RLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_role: Option<DatabaseRole>,
    /// The hosts this version may fetch: `api.example.com`, `*.example.com`
    /// (subdomains), an IP address, or `*` (any public host). `[]` allows
    /// none; absent means the server's `--egress-default`. It belongs to the
    /// version, like its code: a rollback brings back the hosts that code
    /// was deployed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<String>>,
}

impl Manifest {
    /// The version's egress allowlist, validated; `None` when the manifest
    /// leaves it to the server's default.
    fn allowlist(&self) -> Result<Option<Arc<Allowlist>>, String> {
        self.egress.as_deref().map(|entries| Allowlist::parse(entries).map(Arc::new)).transpose()
    }

    /// The access settings this manifest asks for, validated, applied over `current`.
    fn access_over(&self, current: &Access) -> Result<Access, ApiError> {
        current.overridden(self.policy.as_ref(), self.cors.as_ref()).map_err(ApiError::BadRequest)
    }

    fn sets_access(&self) -> bool {
        self.policy.is_some() || self.cors.is_some()
    }
}

/// A deployment ready to serve requests.
#[derive(Debug)]
pub struct ActiveDeployment {
    /// The function's name.
    pub function: String,
    /// The version serving.
    pub version: i32,
    /// Its bytecode, verified against its hash when loaded.
    pub bytecode: Arc<[u8]>,
    /// Its module evaluated once when loaded, which instances resume
    /// instead of evaluating it per request; `None` when its evaluation
    /// calls the host (see `sandbox/module_state.rs`).
    pub module_state: Option<Arc<ModuleState>>,
    /// The pool slots its requests run in (see `sandbox::SlotGroup`).
    pub slot_group: SlotGroup,
    /// The limits in effect.
    pub limits: Limits,
    /// Who may call it; read with the deployment, so a policy change takes
    /// effect with the same cache invalidation as an activation.
    pub access: Access,
    /// Whose rights its database queries run with.
    pub database_role: DatabaseRole,
    /// The hosts it may fetch; `None` means the server's default.
    pub egress: Option<Arc<Allowlist>>,
    /// Set by the first invocation after this deployment was loaded into the
    /// cache: that one is the cold start (`faas.coldstart` in traces).
    pub served: std::sync::atomic::AtomicBool,
}

/// The result of a successful deploy.
#[derive(Debug, Serialize)]
pub struct DeployReport {
    /// The function's name.
    pub function: String,
    /// The new version, now active.
    pub version: i32,
    /// `sha256:<hex>` of the source.
    pub content_hash: String,
    /// Compile time, in milliseconds.
    pub build_ms: f64,
    /// The limits the version runs with.
    pub limits: Limits,
    /// The function's access settings after this deploy.
    pub access: serde_json::Value,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A function as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct FunctionSummary {
    /// The function's name.
    pub name: String,
    /// The version serving, if any.
    pub active_version: Option<i32>,
    /// First deploy.
    pub created_at: DateTime<Utc>,
    /// Last deploy or activation.
    pub updated_at: DateTime<Utc>,
    /// Policy and CORS settings.
    pub access: serde_json::Value,
}

impl FunctionSummary {
    fn from_model(f: function::Model) -> Self {
        let access = match Access::from_stored(f.access.as_deref()) {
            Ok(access) => access.to_json(),
            Err(error) => serde_json::json!({"error": error}),
        };
        FunctionSummary {
            name: f.name,
            active_version: f.active_version,
            created_at: f.created_at,
            updated_at: f.updated_at,
            access,
        }
    }
}

/// One version as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct VersionSummary {
    /// Version number, from 1.
    pub version: i32,
    /// `sha256:<hex>` of the source.
    pub content_hash: String,
    /// Compile time, in milliseconds.
    pub build_ms: f64,
    /// The manifest it was deployed with.
    pub manifest: Manifest,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// The source, when asked for one version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl VersionSummary {
    fn from_model(model: function_version::Model, with_source: bool) -> Self {
        VersionSummary {
            version: model.version,
            content_hash: format!("sha256:{}", model.source_hash),
            build_ms: model.build_us as f64 / 1000.0,
            manifest: serde_json::from_str(&model.settings).unwrap_or_default(),
            created_at: model.created_at,
            source: with_source.then_some(model.source),
        }
    }
}

/// Clone-able failure of a cache load (moka shares one load among waiters).
#[derive(Debug, Clone)]
enum LoadError {
    NotFound(String),
    Internal(String),
}

impl From<Arc<LoadError>> for ApiError {
    fn from(e: Arc<LoadError>) -> Self {
        match &*e {
            LoadError::NotFound(message) => ApiError::NotFound(message.clone()),
            LoadError::Internal(message) => ApiError::Internal(anyhow::anyhow!(message.clone())),
        }
    }
}

/// How long a node serves a cached active deployment before re-reading it.
pub const ACTIVE_DEPLOYMENT_TTL: Duration = Duration::from_secs(15);

/// Function names are URL path segments and stay readable in logs.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid function name {name:?}: use 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// The deployment store and its cache.
pub struct Deployments {
    db: DatabaseConnection,
    sandbox: Arc<Sandbox>,
    active: moka::future::Cache<String, Arc<ActiveDeployment>>,
    /// Module states by bytecode digest and memory limit, kept beyond the
    /// active deployments' short lives: each reload would otherwise
    /// evaluate the module again in an instance of its own.
    module_states: moka::future::Cache<(String, u64), Option<Arc<ModuleState>>>,
    /// Loads hold it shared; activations hold it exclusively.
    activation: RwLock<()>,
    default_limits: Limits,
    limit_ceiling: Limits,
    max_source_bytes: usize,
    /// Grants change with deploys; their cache is dropped after each.
    secrets: Arc<Secrets>,
    /// Lookups of `active` served from memory, and the ones that were not.
    cache_hits: prometheus_client::metrics::counter::Counter,
    cache_misses: prometheus_client::metrics::counter::Counter,
}

impl Deployments {
    /// A store over `db` that compiles with `sandbox`.
    pub fn new(
        db: DatabaseConnection,
        sandbox: Arc<Sandbox>,
        default_limits: Limits,
        limit_ceiling: Limits,
        max_source_bytes: usize,
        secrets: Arc<Secrets>,
    ) -> Self {
        let active = moka::future::Cache::builder()
            // Weighted by bytecode and module state size: 256 MiB of warm
            // functions at most.
            .weigher(|_, d: &Arc<ActiveDeployment>| {
                let state = d.module_state.as_ref().map_or(0, |state| state.len());
                u32::try_from(d.bytecode.len() + state).unwrap_or(u32::MAX).max(1)
            })
            .max_capacity(256 << 20)
            .time_to_idle(Duration::from_secs(3600))
            // Several servers may share one PostgreSQL: an activation on one
            // reaches the others' caches within this time (there is no
            // cross-node notification yet).
            .time_to_live(ACTIVE_DEPLOYMENT_TTL)
            .build();
        let module_states = moka::future::Cache::builder()
            .weigher(|_, state: &Option<Arc<ModuleState>>| {
                u32::try_from(state.as_ref().map_or(0, |state| state.len())).unwrap_or(u32::MAX).max(1)
            })
            .max_capacity(256 << 20)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        Deployments {
            cache_hits: Default::default(),
            cache_misses: Default::default(),
            db,
            sandbox,
            active,
            module_states,
            activation: RwLock::new(()),
            default_limits,
            limit_ceiling,
            max_source_bytes,
            secrets,
        }
    }

    fn limits_for(&self, manifest: &Manifest) -> Result<Limits, ApiError> {
        self.default_limits.with_overrides(&manifest.limits, &self.limit_ceiling).map_err(ApiError::BadRequest)
    }

    /// Compiles `source` in the sandbox; compile errors carry line and column.
    async fn compile(&self, source: &str, limits: &Limits) -> Result<Artifact, ApiError> {
        let execution = self.sandbox.compile(source, limits).await?;
        match execution.result {
            Ok(bytecode) => Ok(Artifact::new(source, bytecode)),
            Err(error) => {
                let message = match execution.outcome {
                    Outcome::Error => error.message,
                    // A module whose top level loops or allocates forever.
                    _ => format!("evaluating the module at deploy time: {}: {}", error.error, error.message),
                };
                Err(ApiError::Compile(CompileError::Invalid { message, line: error.line, column: error.column }))
            }
        }
    }

    /// Compiles and stores a new version and makes it active.
    pub async fn deploy(&self, name: &str, source: &[u8], manifest: Manifest) -> Result<DeployReport, ApiError> {
        validate_name(name)?;
        let source = edgefn_compiler::validate_source(source, self.max_source_bytes)?;
        let limits = self.limits_for(&manifest)?;
        let egress = manifest.allowlist().map_err(ApiError::BadRequest)?;
        for secret in manifest.secrets.iter().flatten() {
            crate::secrets::validate_name(secret)?;
        }
        // Validated before compiling; applied over the stored settings below.
        manifest.access_over(&Access::default())?;
        let started = Instant::now();
        let artifact = self.compile(source, &limits).await?;
        let build_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let settings = serde_json::to_string(&manifest).expect("manifests serialize");
        let now = Utc::now();

        let _exclusive = self.activation.write().await;
        let txn = self.db.begin().await?;
        let function = match function::Entity::find().filter(function::Column::Name.eq(name)).one(&txn).await? {
            Some(existing) => existing,
            None => {
                function::ActiveModel {
                    name: Set(name.to_owned()),
                    active_version: Set(None),
                    settings: Set(settings.clone()),
                    access: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?
            }
        };
        let latest: Option<i32> = function_version::Entity::find()
            .filter(function_version::Column::FunctionId.eq(function.id))
            .select_only()
            .column_as(function_version::Column::Version.max(), "latest")
            .into_tuple::<Option<i32>>()
            .one(&txn)
            .await?
            .flatten();
        let version = latest.unwrap_or(0) + 1;
        function_version::ActiveModel {
            function_id: Set(function.id),
            version: Set(version),
            source: Set(source.to_owned()),
            source_hash: Set(artifact.source_hash.clone()),
            bytecode: Set(artifact.bytecode.clone()),
            bytecode_hash: Set(artifact.bytecode_hash.clone()),
            engine: Set(artifact.engine.clone()),
            build_us: Set(build_us),
            settings: Set(settings.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let stored_access = Access::from_stored(function.access.as_deref()).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
        let access = manifest.access_over(&stored_access)?;
        let mut function = function.into_active_model();
        if manifest.sets_access() {
            function.access = Set(Some(access.to_json().to_string()));
        }
        function.active_version = Set(Some(version));
        function.settings = Set(settings);
        function.updated_at = Set(now);
        function.update(&txn).await?;
        if let Some(granted) = &manifest.secrets {
            Secrets::replace_grants(&txn, name, granted).await?;
        }
        txn.commit().await?;
        self.secrets.forget_grants(name).await;

        let report = DeployReport {
            function: name.to_owned(),
            version,
            content_hash: format!("sha256:{}", artifact.source_hash),
            build_ms: build_us as f64 / 1000.0,
            limits,
            access: access.to_json(),
            created_at: now,
        };
        let module_state = self.module_state(&artifact.bytecode, &artifact.bytecode_hash, &limits).await;
        let deployment = ActiveDeployment {
            function: name.to_owned(),
            version,
            bytecode: artifact.bytecode.into(),
            module_state,
            slot_group: self.sandbox.slot_group(name),
            limits,
            access,
            database_role: manifest.database_role.unwrap_or_default(),
            egress,
            served: Default::default(),
        };
        self.active.insert(name.to_owned(), Arc::new(deployment)).await;
        Ok(report)
    }

    /// The module state of `bytecode` under `limits`: prepared once per
    /// bytecode and memory limit (the same bytecode evaluates the same way;
    /// loads that race share one preparation), and again only once unused
    /// for an hour. `None` when its top level calls the host; also,
    /// uncached, when the sandbox was too busy to prepare it, which costs
    /// each request the module's evaluation until the deployment is loaded
    /// again. `bytecode_hash` is its digest, as stored and verified with it
    /// (not computed again here).
    async fn module_state(&self, bytecode: &[u8], bytecode_hash: &str, limits: &Limits) -> Option<Arc<ModuleState>> {
        let key = (bytecode_hash.to_owned(), limits.memory_bytes);
        self.module_states.try_get_with(key, self.sandbox.prepare(bytecode, limits)).await.ok()?
    }

    /// Counts cache lookups into these (exported) counters.
    pub fn count_cache_lookups(
        mut self,
        hits: prometheus_client::metrics::counter::Counter,
        misses: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        self.cache_hits = hits;
        self.cache_misses = misses;
        self
    }

    /// The deployment serving `name`.
    pub async fn active(&self, name: &str) -> Result<Arc<ActiveDeployment>, ApiError> {
        if let Some(hit) = self.active.get(name).await {
            self.cache_hits.inc();
            return Ok(hit);
        }
        self.cache_misses.inc();
        // Boxed: loading (queries, perhaps a rebuild) is a future of several
        // KB, and every request's future would otherwise be that much larger
        // (axum moves it into a box of its own on every request).
        Box::pin(self.active_miss(name)).await
    }

    async fn active_miss(&self, name: &str) -> Result<Arc<ActiveDeployment>, ApiError> {
        let _shared = self.activation.read().await;
        Ok(self.active.try_get_with_by_ref(name, self.load_active(name)).await?)
    }

    async fn load_active(&self, name: &str) -> Result<Arc<ActiveDeployment>, LoadError> {
        let internal = |e: sea_orm::DbErr| LoadError::Internal(e.to_string());
        let not_found = || LoadError::NotFound(format!("no function named {name:?} is deployed"));
        let function = function::Entity::find()
            .filter(function::Column::Name.eq(name))
            .one(&self.db)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let version = function.active_version.ok_or_else(not_found)?;
        // A policy we cannot read fails closed: the function does not run.
        let access = Access::from_stored(function.access.as_deref())
            .map_err(|e| LoadError::Internal(format!("the access settings of {name:?} are unreadable: {e}")))?;
        let row = function_version::Entity::find()
            .filter(function_version::Column::FunctionId.eq(function.id))
            .filter(function_version::Column::Version.eq(version))
            .one(&self.db)
            .await
            .map_err(internal)?
            .ok_or_else(|| LoadError::Internal(format!("function {name:?} points at missing version {version}")))?;
        // Never fall back to defaults here: a manifest we cannot read could
        // silently lift the limits its author set.
        let manifest: Manifest = serde_json::from_str(&row.settings)
            .map_err(|e| LoadError::Internal(format!("the stored manifest of {name:?} v{version} is unreadable: {e}")))?;
        let limits = self.limits_for(&manifest).map_err(|e| LoadError::Internal(e.to_string()))?;
        let egress = manifest.allowlist().map_err(LoadError::Internal)?;
        let (bytecode, bytecode_hash) = if Artifact::is_runnable(&row.bytecode, &row.bytecode_hash, &row.engine) {
            (row.bytecode, row.bytecode_hash)
        } else {
            self.rebuild(row, &limits).await?
        };
        let module_state = self.module_state(&bytecode, &bytecode_hash, &limits).await;
        Ok(Arc::new(ActiveDeployment {
            function: name.to_owned(),
            version,
            bytecode: bytecode.into(),
            module_state,
            slot_group: self.sandbox.slot_group(name),
            limits,
            access,
            database_role: manifest.database_role.unwrap_or_default(),
            egress,
            served: Default::default(),
        }))
    }

    /// Recompiles a stored version whose bytecode must not run (corrupt, or
    /// from another engine build) and stores the fresh bytecode; it and its
    /// digest.
    async fn rebuild(&self, row: function_version::Model, limits: &Limits) -> Result<(Vec<u8>, String), LoadError> {
        tracing::warn!(version_id = row.id, "stored bytecode is corrupt or stale; recompiling from source");
        let artifact = self
            .compile(&row.source, limits)
            .await
            .map_err(|e| LoadError::Internal(format!("recompiling a stored version failed: {e}")))?;
        let mut active = row.into_active_model();
        active.bytecode = Set(artifact.bytecode.clone());
        active.bytecode_hash = Set(artifact.bytecode_hash.clone());
        active.engine = Set(artifact.engine);
        active.update(&self.db).await.map_err(|e| LoadError::Internal(e.to_string()))?;
        Ok((artifact.bytecode, artifact.bytecode_hash))
    }

    async fn find_function(&self, name: &str) -> Result<function::Model, ApiError> {
        function::Entity::find()
            .filter(function::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no function named {name:?}")))
    }

    /// Makes an existing version active again, without recompiling.
    pub async fn activate(&self, name: &str, version: i32) -> Result<(), ApiError> {
        let function = self.find_function(name).await?;
        let exists = function_version::Entity::find()
            .filter(function_version::Column::FunctionId.eq(function.id))
            .filter(function_version::Column::Version.eq(version))
            .one(&self.db)
            .await?
            .is_some();
        if !exists {
            return Err(ApiError::NotFound(format!("function {name:?} has no version {version}")));
        }
        let _exclusive = self.activation.write().await;
        let mut active = function.into_active_model();
        active.active_version = Set(Some(version));
        active.updated_at = Set(Utc::now());
        active.update(&self.db).await?;
        // The next request loads the version (and verifies its bytecode).
        self.active.invalidate(name).await;
        Ok(())
    }

    /// Every function, by name.
    pub async fn list(&self) -> Result<Vec<FunctionSummary>, ApiError> {
        let functions = function::Entity::find().order_by_asc(function::Column::Name).all(&self.db).await?;
        Ok(functions.into_iter().map(FunctionSummary::from_model).collect())
    }

    /// One function with its versions, newest first.
    pub async fn describe(&self, name: &str) -> Result<(FunctionSummary, Vec<VersionSummary>), ApiError> {
        let function = self.find_function(name).await?;
        let versions = function
            .find_related(function_version::Entity)
            .order_by_desc(function_version::Column::Version)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|v| VersionSummary::from_model(v, false))
            .collect();
        Ok((FunctionSummary::from_model(function), versions))
    }

    /// One version, with its source.
    pub async fn version(&self, name: &str, version: i32) -> Result<VersionSummary, ApiError> {
        let function = self.find_function(name).await?;
        let row = function
            .find_related(function_version::Entity)
            .filter(function_version::Column::Version.eq(version))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("function {name:?} has no version {version}")))?;
        Ok(VersionSummary::from_model(row, true))
    }

    /// A function's access settings.
    pub async fn access(&self, name: &str) -> Result<Access, ApiError> {
        let function = self.find_function(name).await?;
        Access::from_stored(function.access.as_deref()).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
    }

    /// Replaces a function's access settings; the next request on this
    /// server is checked against them (other servers: within
    /// [`ACTIVE_DEPLOYMENT_TTL`]). No redeploy.
    pub async fn set_access(&self, name: &str, access: &Access) -> Result<(), ApiError> {
        let function = self.find_function(name).await?;
        let _exclusive = self.activation.write().await;
        let mut active = function.into_active_model();
        active.access = Set(Some(access.to_json().to_string()));
        active.updated_at = Set(Utc::now());
        active.update(&self.db).await?;
        self.active.invalidate(name).await;
        Ok(())
    }

    /// Deletes a function and all its versions.
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let function = self.find_function(name).await?;
        let _exclusive = self.activation.write().await;
        let txn = self.db.begin().await?;
        function_version::Entity::delete_many()
            .filter(function_version::Column::FunctionId.eq(function.id))
            .exec(&txn)
            .await?;
        function.delete(&txn).await?;
        // A new function of the same name starts with no grants.
        Secrets::replace_grants(&txn, name, &[]).await?;
        txn.commit().await?;
        self.active.invalidate(name).await;
        self.secrets.forget_grants(name).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_safe_path_segments() {
        for good in ["hello", "a", "contact-form", "v2_api", "0day"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Hello", "-x", "a/b", "a b", "..", "é", &"x".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
