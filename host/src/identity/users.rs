//! Users and groups, as the admin API manages them. Every change that can
//! narrow someone's access drops their cached profile at once on this server.

use super::sessions::{hash_password, validate_password};
use super::{Identity, IdentityError, now, validate_group_name};
use crate::entities::{group, group_member, refresh_token, user};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Metadata is kept small: it is read on every request of its user.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A user as the admin API and `/auth/v1/user` show it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub groups: Vec<String>,
    pub metadata: Map<String, Value>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user to create.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub disabled: bool,
}

/// Changes to a user; absent fields stay as they are. `groups` replaces the
/// user's groups; `metadata` replaces the metadata object.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub password: Option<String>,
    pub groups: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub disabled: Option<bool>,
}

/// Lower-cased and trimmed; one `@` with something on both sides.
pub fn normalize_email(email: &str) -> Result<String, IdentityError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid { Ok(email) } else { Err(IdentityError::Invalid(format!("{email:?} is not an email address"))) }
}

fn validate_metadata(metadata: &Map<String, Value>) -> Result<String, IdentityError> {
    let text = Value::Object(metadata.clone()).to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(IdentityError::Invalid(format!("metadata is limited to {MAX_METADATA_BYTES} bytes of JSON")));
    }
    Ok(text)
}

fn validate_groups(groups: &[String]) -> Result<(), IdentityError> {
    groups.iter().try_for_each(|g| validate_group_name(g).map_err(IdentityError::Invalid))
}

/// A user's stored metadata; the column only ever holds a JSON object.
pub(super) fn metadata_of(row: &user::Model) -> Map<String, Value> {
    match serde_json::from_str(&row.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn view(row: user::Model, groups: Vec<String>) -> UserView {
    let metadata = metadata_of(&row);
    UserView {
        id: row.id,
        email: row.email,
        groups,
        metadata,
        disabled: row.disabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Makes the groups exist and sets `user_id`'s membership to exactly them.
async fn replace_membership(txn: &impl sea_orm::ConnectionTrait, user_id: &str, groups: &[String]) -> Result<(), sea_orm::DbErr> {
    group_member::Entity::delete_many().filter(group_member::Column::UserId.eq(user_id)).exec(txn).await?;
    if groups.is_empty() {
        return Ok(());
    }
    let created = now();
    group::Entity::insert_many(groups.iter().map(|name| group::ActiveModel { name: Set(name.clone()), created_at: Set(created) }))
        .on_conflict_do_nothing_on([group::Column::Name])
        .exec(txn)
        .await?;
    let mut unique: Vec<&String> = groups.iter().collect();
    unique.sort();
    unique.dedup();
    group_member::Entity::insert_many(unique.into_iter().map(|name| group_member::ActiveModel {
        group_name: Set(name.clone()),
        user_id: Set(user_id.to_owned()),
    }))
    .exec(txn)
    .await?;
    Ok(())
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

impl Identity {
    /// Creates a user (admin API and sign-up).
    pub async fn create_user(&self, new: NewUser) -> Result<UserView, IdentityError> {
        let email = normalize_email(&new.email)?;
        validate_password(&new.password)?;
        validate_groups(&new.groups)?;
        let metadata = validate_metadata(&new.metadata)?;
        let password_hash = hash_password(&new.password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let created = now();
        let txn = self.db.begin().await?;
        let inserted = user::ActiveModel {
            id: Set(id.clone()),
            email: Set(email.clone()),
            password_hash: Set(password_hash),
            metadata: Set(metadata),
            disabled: Set(new.disabled),
            created_at: Set(created),
            updated_at: Set(created),
        }
        .insert(&txn)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(IdentityError::Conflict(format!("an account with the email {email:?} already exists")));
            }
            other => other?,
        };
        replace_membership(&txn, &id, &new.groups).await?;
        txn.commit().await?;
        self.user(&id).await
    }

    /// One user with their groups.
    pub async fn user(&self, id: &str) -> Result<UserView, IdentityError> {
        let row = user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no user with id {id:?}")))?;
        self.with_groups(row).await
    }

    /// A user row already read, with its groups.
    pub(super) async fn with_groups(&self, row: user::Model) -> Result<UserView, IdentityError> {
        let mut groups: Vec<String> = group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(&row.id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.group_name)
            .collect();
        groups.sort();
        Ok(view(row, groups))
    }

    /// Every user (optionally one email), oldest first.
    pub async fn list_users(&self, email: Option<&str>) -> Result<Vec<UserView>, IdentityError> {
        let mut query = user::Entity::find().order_by_asc(user::Column::CreatedAt);
        if let Some(email) = email {
            query = query.filter(user::Column::Email.eq(email.trim().to_lowercase()));
        }
        let rows = query.all(&self.db).await?;
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for member in group_member::Entity::find().order_by_asc(group_member::Column::GroupName).all(&self.db).await? {
            groups.entry(member.user_id).or_default().push(member.group_name);
        }
        Ok(rows.into_iter().map(|row| {
            let g = groups.remove(&row.id).unwrap_or_default();
            view(row, g)
        }).collect())
    }

    /// Applies `patch`. A new password or disabling revokes the user's sessions.
    pub async fn update_user(&self, id: &str, patch: UserPatch) -> Result<UserView, IdentityError> {
        let email = patch.email.as_deref().map(normalize_email).transpose()?;
        if let Some(password) = &patch.password {
            validate_password(password)?;
        }
        if let Some(groups) = &patch.groups {
            validate_groups(groups)?;
        }
        let metadata = patch.metadata.as_ref().map(validate_metadata).transpose()?;
        let password_hash = match &patch.password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        let txn = self.db.begin().await?;
        let row = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no user with id {id:?}")))?;
        let mut active = row.into_active_model();
        if let Some(email) = &email {
            active.email = Set(email.clone());
        }
        if let Some(hash) = password_hash.clone() {
            active.password_hash = Set(hash);
        }
        if let Some(metadata) = metadata {
            active.metadata = Set(metadata);
        }
        if let Some(disabled) = patch.disabled {
            active.disabled = Set(disabled);
        }
        active.updated_at = Set(now());
        match active.update(&txn).await {
            Err(e) if is_unique_violation(&e) => {
                return Err(IdentityError::Conflict(format!(
                    "an account with the email {:?} already exists",
                    email.unwrap_or_default()
                )));
            }
            other => other?,
        };
        if let Some(groups) = &patch.groups {
            replace_membership(&txn, id, groups).await?;
        }
        txn.commit().await?;
        if password_hash.is_some() || patch.disabled == Some(true) {
            self.revoke_sessions_of(id).await?;
        }
        self.forget_profile(id).await;
        self.user(id).await
    }

    /// Deletes a user, their memberships and sessions.
    pub async fn delete_user(&self, id: &str) -> Result<(), IdentityError> {
        let txn = self.db.begin().await?;
        group_member::Entity::delete_many().filter(group_member::Column::UserId.eq(id)).exec(&txn).await?;
        refresh_token::Entity::delete_many().filter(refresh_token::Column::UserId.eq(id)).exec(&txn).await?;
        let deleted = user::Entity::delete_by_id(id).exec(&txn).await?.rows_affected;
        if deleted == 0 {
            return Err(IdentityError::NotFound(format!("no user with id {id:?}")));
        }
        txn.commit().await?;
        self.forget_profile(id).await;
        Ok(())
    }

    /// Creates a group (nothing happens if it exists).
    pub async fn create_group(&self, name: &str) -> Result<bool, IdentityError> {
        validate_group_name(name).map_err(IdentityError::Invalid)?;
        let inserted = group::Entity::insert(group::ActiveModel { name: Set(name.to_owned()), created_at: Set(now()) })
            .on_conflict_do_nothing_on([group::Column::Name])
            .exec(&self.db)
            .await?;
        Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(_)))
    }

    /// Every group with its member count.
    pub async fn list_groups(&self) -> Result<Vec<Value>, IdentityError> {
        let groups = group::Entity::find().order_by_asc(group::Column::Name).all(&self.db).await?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for member in group_member::Entity::find().all(&self.db).await? {
            *counts.entry(member.group_name).or_default() += 1;
        }
        Ok(groups
            .into_iter()
            .map(|g| serde_json::json!({"name": g.name, "members": counts.get(&g.name).copied().unwrap_or(0), "created_at": g.created_at}))
            .collect())
    }

    /// Deletes a group; its members lose it at once on this server.
    pub async fn delete_group(&self, name: &str) -> Result<(), IdentityError> {
        let txn = self.db.begin().await?;
        let members = group_member::Entity::find().filter(group_member::Column::GroupName.eq(name)).all(&txn).await?;
        group_member::Entity::delete_many().filter(group_member::Column::GroupName.eq(name)).exec(&txn).await?;
        if group::Entity::delete_by_id(name).exec(&txn).await?.rows_affected == 0 {
            return Err(IdentityError::NotFound(format!("no group named {name:?}")));
        }
        txn.commit().await?;
        for member in members {
            self.forget_profile(&member.user_id).await;
        }
        Ok(())
    }

    /// Adds or removes one member.
    pub async fn set_membership(&self, group_name: &str, user_id: &str, member: bool) -> Result<(), IdentityError> {
        if group::Entity::find_by_id(group_name).one(&self.db).await?.is_none() {
            return Err(IdentityError::NotFound(format!("no group named {group_name:?}")));
        }
        if user::Entity::find_by_id(user_id).one(&self.db).await?.is_none() {
            return Err(IdentityError::NotFound(format!("no user with id {user_id:?}")));
        }
        if member {
            group_member::Entity::insert(group_member::ActiveModel {
                group_name: Set(group_name.to_owned()),
                user_id: Set(user_id.to_owned()),
            })
            .on_conflict_do_nothing_on([group_member::Column::GroupName, group_member::Column::UserId])
            .exec(&self.db)
            .await?;
        } else {
            group_member::Entity::delete_by_id((group_name.to_owned(), user_id.to_owned())).exec(&self.db).await?;
        }
        self.forget_profile(user_id).await;
        Ok(())
    }
}
