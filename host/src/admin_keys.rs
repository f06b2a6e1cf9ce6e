//! Admin API keys: the credential for the build endpoint and the admin API.
//!
//! Invariant: a key's plaintext exists only in the response that created it
//! (or the first-start banner); the database holds its SHA-256. Keys are 256
//! random bits, so a fast hash is enough: there is nothing to brute-force.

use crate::entities::admin_key;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use serde::Serialize;
use std::time::Duration;

/// Every key starts with this, so leaked keys are easy to spot and scan for.
pub const KEY_PREFIX: &str = "efk_";
/// Characters of a key shown in lists to tell keys apart.
const DISPLAY_PREFIX_LEN: usize = 12;

/// The part of a key that lists show: enough to tell keys apart, far too
/// little to use.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_LEN).collect()
}

/// A key as the admin API lists it: never the key itself.
#[derive(Debug, Serialize)]
pub struct AdminKeySummary {
    pub prefix: String,
    pub label: String,
    pub created_at: chrono::DateTime<Utc>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

impl From<admin_key::Model> for AdminKeySummary {
    fn from(row: admin_key::Model) -> Self {
        AdminKeySummary { prefix: row.prefix, label: row.label, created_at: row.created_at, revoked_at: row.revoked_at }
    }
}

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error("no admin key starts with {0:?}")]
    NotFound(String),
    #[error("{0:?} is the last active admin key; create another before revoking it, or the admin API is locked for good")]
    LastKey(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
}

/// How long a verification (including "revoked") is cached on one server.
pub const VERIFY_TTL: Duration = Duration::from_secs(5);

/// Verifies presented admin keys, caching the answer briefly.
#[derive(Clone)]
pub struct AdminKeys {
    db: DatabaseConnection,
    verified: moka::future::Cache<String, bool>,
}

fn hash(key: &str) -> String {
    edgefn_compiler::sha256_hex(key.as_bytes())
}

/// A fresh random key.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

impl AdminKeys {
    /// Key verification backed by `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        // Short TTL: a revoked key stops working within seconds.
        let verified = moka::future::Cache::builder().max_capacity(1024).time_to_live(VERIFY_TTL).build();
        AdminKeys { db, verified }
    }

    /// Creates the first key when none exists; returns its plaintext to show once.
    pub async fn bootstrap(&self, preset: Option<&str>) -> anyhow::Result<Option<String>> {
        if admin_key::Entity::find().count(&self.db).await? > 0 {
            return Ok(None);
        }
        let key = match preset {
            Some(key) if key.len() < 24 => anyhow::bail!("the bootstrap admin key must be at least 24 characters long"),
            Some(key) => key.to_owned(),
            None => generate(),
        };
        self.insert(&key, "created on first start").await?;
        Ok(Some(key))
    }

    /// Creates a key; the returned plaintext is shown once and never again.
    pub async fn create(&self, label: &str) -> Result<(String, AdminKeySummary), AdminKeyError> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 200 {
            return Err(AdminKeyError::Invalid("a key needs a \"label\" of 1 to 200 characters saying who or what uses it".into()));
        }
        let key = generate();
        let row = self.insert(&key, label).await?;
        Ok((key, row.into()))
    }

    /// Every key, newest first, revoked ones included.
    pub async fn list(&self) -> Result<Vec<AdminKeySummary>, AdminKeyError> {
        let rows = admin_key::Entity::find().order_by_desc(admin_key::Column::Id).all(&self.db).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes the key with this display prefix. The last active key cannot
    /// be revoked. Other servers stop accepting it within [`VERIFY_TTL`].
    pub async fn revoke(&self, prefix: &str) -> Result<AdminKeySummary, AdminKeyError> {
        let txn = self.db.begin().await?;
        let row = admin_key::Entity::find()
            .filter(admin_key::Column::Prefix.eq(prefix))
            .one(&txn)
            .await?
            .ok_or_else(|| AdminKeyError::NotFound(prefix.to_owned()))?;
        if row.revoked_at.is_some() {
            return Ok(row.into());
        }
        let active = admin_key::Entity::find().filter(admin_key::Column::RevokedAt.is_null()).count(&txn).await?;
        if active <= 1 {
            return Err(AdminKeyError::LastKey(prefix.to_owned()));
        }
        let key_hash = row.key_hash.clone();
        let mut row = row.into_active_model();
        row.revoked_at = Set(Some(Utc::now()));
        let row = row.update(&txn).await?;
        txn.commit().await?;
        self.verified.invalidate(&key_hash).await;
        Ok(row.into())
    }

    async fn insert(&self, key: &str, label: &str) -> Result<admin_key::Model, sea_orm::DbErr> {
        admin_key::ActiveModel {
            prefix: Set(display_prefix(key)),
            key_hash: Set(hash(key)),
            label: Set(label.to_owned()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await
    }

    /// True when `presented` is a key that exists and is not revoked.
    pub async fn verify(&self, presented: &str) -> Result<bool, sea_orm::DbErr> {
        let digest = hash(presented);
        if let Some(valid) = self.verified.get(&digest).await {
            return Ok(valid);
        }
        let valid = admin_key::Entity::find()
            .filter(admin_key::Column::KeyHash.eq(digest.clone()))
            .filter(admin_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
            .is_some();
        self.verified.insert(digest, valid).await;
        Ok(valid)
    }
}
