//! Admin API keys: the credential for the build endpoint and the admin API.
//!
//! Invariant: a key's plaintext exists only in the response that created it
//! (or the first-start banner); the database holds its SHA-256. Keys are 256
//! random bits, so a fast hash is enough: there is nothing to brute-force.

use crate::entities::admin_key;
use chrono::Utc;
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, Set};
use std::time::Duration;

/// Every key starts with this, so leaked keys are easy to spot and scan for.
pub const KEY_PREFIX: &str = "efk_";
/// Characters of a key shown in lists to tell keys apart.
const DISPLAY_PREFIX_LEN: usize = 12;

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
        let verified = moka::future::Cache::builder().max_capacity(1024).time_to_live(Duration::from_secs(5)).build();
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

    async fn insert(&self, key: &str, label: &str) -> Result<(), sea_orm::DbErr> {
        admin_key::ActiveModel {
            prefix: Set(key.chars().take(DISPLAY_PREFIX_LEN).collect()),
            key_hash: Set(hash(key)),
            label: Set(label.to_owned()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map(|_| ())
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
