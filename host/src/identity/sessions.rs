//! Sign-up, sign-in, refresh and sign-out.
//!
//! Refresh tokens are opaque, single-use and stored as SHA-256 hashes. Each
//! use marks the token used and issues its successor in the same family; a
//! used token presented again means it was copied, so the whole family is
//! revoked and both the thief and the user must sign in again.

use super::{Identity, IdentityError, UserView, now, users};
use crate::entities::{refresh_token, user};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const REFRESH_TOKEN_PREFIX: &str = "efr_";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// argon2 takes any length; a megabyte password would only cost us time.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// What a successful sign-in, sign-up or refresh returns.
#[derive(Serialize)]
pub struct SessionTokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: UserView,
}

/// How long an access token issued for an admin to act as a user lasts.
pub const ACTING_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// An access token an admin asked for, to call functions as a user (the
/// admin interface's test console). No refresh token: it cannot be renewed.
#[derive(Serialize)]
pub struct ActingToken {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Who it acts for.
    pub user: UserView,
    /// Who acts: the admin key's caller label.
    pub actor: String,
}

/// One sign-in request.
pub struct SignInAttempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    /// The client's address, for the per-address failure limit.
    pub client: Option<std::net::IpAddr>,
}

pub fn validate_password(password: &str) -> Result<(), IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(IdentityError::Invalid(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), off the async threads.
pub async fn hash_password(password: &str) -> Result<String, IdentityError> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || {
        let salt = random_salt();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| IdentityError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| IdentityError::Internal(e.to_string()))?
}

async fn password_matches(password: &str, stored: Option<String>) -> bool {
    let password = zeroize::Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || {
        // An unknown email costs the same as a wrong password, so timing
        // does not tell which emails have accounts.
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false)
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = random_salt();
    Argon2::default().hash_password(b"edgefn timing equaliser", &salt).expect("hashing works").to_string()
});

fn random_salt() -> SaltString {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    SaltString::encode_b64(&bytes).expect("16 bytes is a valid salt length")
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{REFRESH_TOKEN_PREFIX}{}", hex::encode(bytes))
}

fn token_hash(token: &str) -> String {
    edgefn_compiler::sha256_hex(token.as_bytes())
}

impl Identity {
    /// Creates an account and signs it in. Sign-up sets no groups or
    /// metadata: those grant access, so only an admin sets them.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<SessionTokens, IdentityError> {
        if !self.config.signup_enabled {
            return Err(IdentityError::SignupDisabled);
        }
        let created = self
            .create_user(users::NewUser { email: email.to_owned(), password: password.to_owned(), ..Default::default() })
            .await?;
        self.start_session(created).await
    }

    /// Signs in with email and password.
    pub async fn sign_in(&self, attempt: SignInAttempt<'_>) -> Result<SessionTokens, IdentityError> {
        let email = users::normalize_email(attempt.email)?;
        let counters = [Some(format!("email:{email}")), attempt.client.map(|ip| format!("ip:{ip}"))];
        for (key, limit) in counters.iter().zip([self.config.max_sign_in_failures, self.config.max_sign_in_failures * 4]) {
            if let Some(key) = key
                && let Some(failures) = self.sign_in_failures.get(key).await
                && failures.load(Ordering::Relaxed) >= limit
            {
                return Err(IdentityError::RateLimited { retry_after_secs: self.config.sign_in_window.as_secs().max(1) });
            }
        }
        let row = user::Entity::find().filter(user::Column::Email.eq(&email)).one(&self.db).await?;
        let matches = password_matches(attempt.password, row.as_ref().map(|r| r.password_hash.clone())).await;
        let row = match row {
            Some(row) if matches && !row.disabled => row,
            // A disabled account with the right password is told so: the
            // password proved it is theirs.
            Some(_) if matches => return Err(IdentityError::InvalidToken("this account is disabled".into())),
            _ => {
                for key in counters.iter().flatten() {
                    self.sign_in_failures
                        .get_with_by_ref(key, async { Arc::new(AtomicU32::new(0)) })
                        .await
                        .fetch_add(1, Ordering::Relaxed);
                }
                return Err(IdentityError::InvalidCredentials);
            }
        };
        self.sign_in_failures.invalidate(&format!("email:{email}")).await;
        let view = self.with_groups(row).await?;
        self.start_session(view).await
    }

    async fn start_session(&self, user: UserView) -> Result<SessionTokens, IdentityError> {
        let family = uuid::Uuid::now_v7().to_string();
        self.issue(user, &family).await
    }

    async fn issue(&self, user: UserView, family: &str) -> Result<SessionTokens, IdentityError> {
        let refresh = new_refresh_token();
        let now = now();
        refresh_token::ActiveModel {
            token_hash: Set(token_hash(&refresh)),
            family_id: Set(family.to_owned()),
            user_id: Set(user.id.clone()),
            expires_at: Set(now + self.config.refresh_ttl),
            used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(SessionTokens {
            access_token: self.tokens.issue(&user.id, family, self.config.access_ttl, None),
            token_type: "bearer",
            expires_in: self.config.access_ttl.as_secs(),
            refresh_token: refresh,
            user,
        })
    }

    /// A short-lived access token for `user_id`, acted on by the admin key
    /// whose caller label is `actor` (`admin-key:<prefix>`).
    ///
    /// Invariant: it admits no more than the user's own token would. It is
    /// refused for a disabled user; it carries the actor, so every execution
    /// record of its calls names the admin as well as the user; it lasts
    /// [`ACTING_TOKEN_TTL`] and has no refresh token; disabling or deleting
    /// the user ends it like any of their tokens.
    pub async fn acting_token(&self, user_id: &str, actor: &str) -> Result<ActingToken, IdentityError> {
        let user = self.user(user_id).await?;
        if user.disabled {
            return Err(IdentityError::Conflict(format!(
                "{} is disabled, so a token for them would be refused; enable the account to call functions as them",
                user.email
            )));
        }
        let session = format!("acting:{}", uuid::Uuid::now_v7());
        Ok(ActingToken {
            access_token: self.tokens.issue(&user.id, &session, ACTING_TOKEN_TTL, Some(actor)),
            token_type: "bearer",
            expires_in: ACTING_TOKEN_TTL.as_secs(),
            user,
            actor: actor.to_owned(),
        })
    }

    /// Exchanges a refresh token for new tokens; a reused token revokes its family.
    pub async fn refresh(&self, presented: &str) -> Result<SessionTokens, IdentityError> {
        let invalid = |why: &str| IdentityError::InvalidToken(format!("{why}; sign in again"));
        let hash = token_hash(presented.trim());
        let Some(row) = refresh_token::Entity::find_by_id(&hash).one(&self.db).await? else {
            return Err(invalid("that refresh token is not valid"));
        };
        if row.revoked_at.is_some() {
            return Err(invalid("that refresh token was revoked"));
        }
        if row.expires_at <= now() {
            return Err(invalid("that refresh token has expired"));
        }
        // Claim the token: only one request can turn `used_at` from NULL.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now()))
            .filter(refresh_token::Column::TokenHash.eq(&hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            self.revoke_family(&row.family_id).await?;
            tracing::warn!(user = %row.user_id, family = %row.family_id, "refresh token reused; its session is revoked");
            return Err(invalid("that refresh token was already used, so the session it belongs to is now revoked"));
        }
        let view = match self.user(&row.user_id).await {
            Ok(view) if !view.disabled => view,
            Ok(_) => return Err(invalid("the account is disabled")),
            Err(IdentityError::NotFound(_)) => return Err(invalid("the account no longer exists")),
            Err(e) => return Err(e),
        };
        self.issue(view, &row.family_id).await
    }

    /// Ends the session a refresh token belongs to.
    pub async fn sign_out(&self, presented: &str) -> Result<(), IdentityError> {
        let hash = token_hash(presented.trim());
        let Some(row) = refresh_token::Entity::find_by_id(&hash).one(&self.db).await? else {
            return Err(IdentityError::InvalidToken("that refresh token is not valid".into()));
        };
        self.revoke_family(&row.family_id).await
    }

    async fn revoke_family(&self, family: &str) -> Result<(), IdentityError> {
        self.revoke(refresh_token::Column::FamilyId.eq(family)).await
    }

    /// Revokes every session of a user (password change, disabling).
    pub(super) async fn revoke_sessions_of(&self, user_id: &str) -> Result<(), IdentityError> {
        self.revoke(refresh_token::Column::UserId.eq(user_id)).await
    }

    async fn revoke(&self, which: impl sea_orm::sea_query::IntoCondition) -> Result<(), IdentityError> {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(now()))
            .filter(which)
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
