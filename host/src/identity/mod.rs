//! Identity: who is calling. Users with passwords and groups, the access
//! tokens edgefn issues, tokens from an external identity provider, and
//! admin keys. `routes::invoke` asks [`Identity::authenticate`] for the
//! caller, then the function's [`crate::access::Policy`] decides.
//!
//! Invariants:
//! - a token proves who the caller is, never what they may do: groups,
//!   metadata and the disabled flag are read from the database at request
//!   time (cached for [`IdentityConfig::profile_ttl`], dropped at once on this
//!   server when an admin changes them), so revoking access does not wait for
//!   tokens to expire;
//! - only configured algorithms are accepted: HS256 for edgefn's own tokens,
//!   the configured asymmetric ones for the external provider, chosen by the
//!   token's issuer; `alg: none` is never accepted;
//! - the function sees a [`Caller`], never the token.

mod external;
mod sessions;
mod tokens;
mod users;

pub use external::ExternalProviderConfig;
pub use sessions::{ACTING_TOKEN_TTL, ActingToken, SessionTokens, SignInAttempt};
pub use tokens::SIGNING_KEY_PURPOSE;
pub use users::{NewUser, UserPatch, UserView};

use crate::admin_keys::{AdminKeys, KEY_PREFIX};
use crate::entities::{group_member, user};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// What a caller is to policies and to row-level security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A signed-in user (edgefn's own or the external provider's).
    Authenticated,
    /// An admin key: may call any function.
    Service,
}

impl Role {
    /// The name functions and policies see.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Authenticated => "authenticated",
            Role::Service => "service",
        }
    }
}

/// Where a caller's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerSource {
    /// A user in edgefn's database, with an edgefn access token.
    User,
    /// The external identity provider's token; groups and metadata come from its claims.
    External,
    /// An admin key.
    AdminKey,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// User id, the external `sub`, or the admin key's prefix.
    pub id: String,
    pub email: Option<String>,
    pub role: Role,
    pub groups: Vec<String>,
    pub metadata: Map<String, Value>,
    pub source: CallerSource,
    /// The admin acting as this user (`admin-key:<prefix>`), when the token
    /// came from [`Identity::acting_token`]: records name both.
    pub actor: Option<String>,
}

impl Caller {
    /// How execution records name the caller.
    pub fn record_label(&self) -> String {
        let email = self.email.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default();
        let actor = self.actor.as_deref().map(|a| format!(" via {a}")).unwrap_or_default();
        match self.source {
            CallerSource::User => format!("user:{}{email}{actor}", self.id),
            CallerSource::External => format!("external:{}{email}", self.id),
            CallerSource::AdminKey => format!("admin-key:{}", self.id),
        }
    }

    /// The caller as the function's `ctx.caller` shows it.
    pub fn to_wit(&self) -> edgefn_world::types::Caller {
        edgefn_world::types::Caller {
            id: self.id.clone(),
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
            groups: self.groups.clone(),
            metadata_json: Value::Object(self.metadata.clone()).to_string(),
        }
    }
}

/// Why identity could not be established or an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A token or key that is not valid; the message says why, for the caller.
    #[error("{0}")]
    InvalidToken(String),
    /// Wrong email or password (which one is not said).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failed sign-ins.
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Sign-up is turned off on this server.
    #[error("sign-up is disabled on this server; ask an administrator for an account")]
    SignupDisabled,
    /// Bad input, with a message for a person.
    #[error("{0}")]
    Invalid(String),
    /// The named user or group does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored (e.g. an email in use).
    #[error("{0}")]
    Conflict(String),
    /// The external provider's keys could not be fetched.
    #[error("the identity provider's signing keys are unavailable: {0}")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

/// Identity settings, from the server's configuration.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `iss` and `aud` of edgefn's own access tokens.
    pub issuer: String,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (each use issues a new one).
    pub refresh_ttl: Duration,
    /// How long a user's groups, metadata and disabled flag are cached.
    pub profile_ttl: Duration,
    /// Whether anyone may create an account.
    pub signup_enabled: bool,
    /// Failed sign-ins per email (and, times four, per client address)
    /// within [`IdentityConfig::sign_in_window`] before sign-in is refused.
    pub max_sign_in_failures: u32,
    pub sign_in_window: Duration,
    /// The external identity provider, if any.
    pub external: Option<ExternalProviderConfig>,
}

/// Group names: lower-case ASCII only, so that a look-alike (`Admin`,
/// `аdmin` with a Cyrillic `а`) cannot be created or written into a policy.
pub fn validate_group_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = (1..=63).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid group name {name:?}: use 1 to 63 lower-case ASCII letters, digits, '-', '_', '.' or ':', starting with a letter or digit"
        ))
    }
}

/// A token that verified.
#[derive(Clone)]
enum Verified {
    /// An edgefn access token for this user id.
    Own { user_id: Arc<str>, expires_at: u64, actor: Option<Arc<str>> },
    /// A provider token; its claims are the caller.
    External { caller: Arc<Caller>, expires_at: u64 },
}

impl Verified {
    fn expires_at(&self) -> u64 {
        match self {
            Verified::Own { expires_at, .. } | Verified::External { expires_at, .. } => *expires_at,
        }
    }
}

/// Verified tokens remembered, at most (a few hundred bytes each).
const VERIFIED_TOKENS: u64 = 20_000;

/// What is read from the database on each (uncached) request of a user.
#[derive(Debug, Clone)]
struct Profile {
    email: String,
    groups: Vec<String>,
    metadata: Map<String, Value>,
    disabled: bool,
}

/// Users, sessions and token verification.
pub struct Identity {
    db: DatabaseConnection,
    config: IdentityConfig,
    tokens: tokens::TokenKeys,
    external: Option<external::ExternalProvider>,
    admin_keys: AdminKeys,
    /// Tokens whose signature and claims were checked, until they expire:
    /// the same bytes verify the same way, so only `exp` is re-checked.
    /// Saves an HMAC (own tokens) or an ECDSA/RSA verification (provider
    /// tokens, ~100 µs) per request.
    verified: moka::future::Cache<Arc<str>, Verified>,
    /// User id → profile; `None` when the user no longer exists.
    profiles: moka::future::Cache<String, Arc<Option<Profile>>>,
    sign_in_failures: moka::future::Cache<String, Arc<std::sync::atomic::AtomicU32>>,
}

impl Identity {
    /// Identity over `db`; `signing_keys` come from [`crate::secrets::Secrets::derived_keys`].
    pub fn new(
        db: DatabaseConnection,
        config: IdentityConfig,
        signing_keys: Vec<(String, zeroize::Zeroizing<[u8; 32]>)>,
        admin_keys: AdminKeys,
    ) -> Result<Self, IdentityError> {
        let tokens = tokens::TokenKeys::new(&config.issuer, signing_keys);
        let external = config.external.clone().map(external::ExternalProvider::new).transpose()?;
        let profiles = moka::future::Cache::builder().max_capacity(100_000).time_to_live(config.profile_ttl).build();
        let sign_in_failures = moka::future::Cache::builder().max_capacity(100_000).time_to_live(config.sign_in_window).build();
        let verified = moka::future::Cache::builder().max_capacity(VERIFIED_TOKENS).time_to_live(Duration::from_secs(300)).build();
        Ok(Identity { db, config, tokens, external, admin_keys, verified, profiles, sign_in_failures })
    }

    /// The caller an `Authorization` header identifies: `Ok(None)` when there
    /// is none, an error when there is one and it is not valid.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Option<Caller>, IdentityError> {
        let Some(header) = authorization else { return Ok(None) };
        // Boxed: verifying (key lookups, perhaps the provider's keys) is a
        // future of several KB, which an anonymous request would otherwise
        // carry too (see `Deployments::active`).
        Box::pin(self.authenticate_header(header)).await
    }

    async fn authenticate_header(&self, header: &str) -> Result<Option<Caller>, IdentityError> {
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(IdentityError::InvalidToken("the Authorization header must be \"Bearer <token>\"".into())),
        };
        if token.starts_with(KEY_PREFIX) {
            if !self.admin_keys.verify(token).await? {
                return Err(IdentityError::InvalidToken("that admin key is not valid (unknown or revoked)".into()));
            }
            return Ok(Some(Caller {
                id: crate::admin_keys::display_prefix(token),
                email: None,
                role: Role::Service,
                groups: Vec::new(),
                metadata: Map::new(),
                source: CallerSource::AdminKey,
                actor: None,
            }));
        }
        let verified = match self.verified.get(token).await {
            Some(verified) if jsonwebtoken::get_current_timestamp() < verified.expires_at() => verified,
            Some(_) => return Err(IdentityError::InvalidToken("the token has expired".into())),
            None => {
                let verified = self.verify(token).await?;
                self.verified.insert(Arc::from(token), verified.clone()).await;
                verified
            }
        };
        match verified {
            Verified::Own { user_id, actor, .. } => {
                let mut caller = self.user_caller(&user_id).await?;
                caller.actor = actor.map(|a| a.to_string());
                Ok(Some(caller))
            }
            Verified::External { caller, .. } => Ok(Some(Caller::clone(&caller))),
        }
    }

    /// Checks a token's signature and claims with the verifier its issuer names.
    async fn verify(&self, token: &str) -> Result<Verified, IdentityError> {
        let issuer = tokens::unverified_issuer(token)?;
        if issuer == self.config.issuer {
            let claims = self.tokens.verify(token)?;
            let actor = claims.act.map(|actor| Arc::from(actor.sub));
            return Ok(Verified::Own { user_id: claims.sub.into(), expires_at: claims.exp, actor });
        }
        match &self.external {
            Some(provider) if provider.issuer() == issuer => {
                let (caller, expires_at) = provider.verify(token).await?;
                Ok(Verified::External { caller: Arc::new(caller), expires_at })
            }
            _ => Err(IdentityError::InvalidToken(format!("tokens from the issuer {issuer:?} are not accepted here"))),
        }
    }

    /// A user's current standing, from the profile cache or the database.
    async fn user_caller(&self, user_id: &str) -> Result<Caller, IdentityError> {
        let profile = self
            .profiles
            .try_get_with_by_ref(user_id, self.load_profile(user_id))
            .await
            .map_err(|e: Arc<sea_orm::DbErr>| IdentityError::Internal(e.to_string()))?;
        let Some(profile) = profile.as_ref() else {
            return Err(IdentityError::InvalidToken("the account this token was issued to no longer exists".into()));
        };
        if profile.disabled {
            return Err(IdentityError::InvalidToken("the account this token was issued to is disabled".into()));
        }
        Ok(Caller {
            id: user_id.to_owned(),
            email: Some(profile.email.clone()),
            role: Role::Authenticated,
            groups: profile.groups.clone(),
            metadata: profile.metadata.clone(),
            source: CallerSource::User,
            actor: None,
        })
    }

    async fn load_profile(&self, user_id: &str) -> Result<Arc<Option<Profile>>, sea_orm::DbErr> {
        let Some(row) = user::Entity::find_by_id(user_id).one(&self.db).await? else {
            return Ok(Arc::new(None));
        };
        let groups = group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(user_id))
            .select_only()
            .column(group_member::Column::GroupName)
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        let metadata = users::metadata_of(&row);
        Ok(Arc::new(Some(Profile { email: row.email, groups, metadata, disabled: row.disabled })))
    }

    /// Drops a user's cached profile after an admin change (this server only;
    /// others see it within the profile TTL).
    async fn forget_profile(&self, user_id: &str) {
        self.profiles.invalidate(user_id).await;
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}
