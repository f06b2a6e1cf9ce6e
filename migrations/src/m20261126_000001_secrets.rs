//! Secrets (values encrypted at rest) and which function may read which.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One row per secret: only the latest value is kept. `key_id` names the
/// master key the value is encrypted under, so a rotation can proceed row by
/// row while servers that know both keys keep reading.
#[derive(DeriveIden)]
enum EdgefnSecrets {
    Table,
    Name,
    Version,
    KeyId,
    Nonce,
    Ciphertext,
    CreatedAt,
    UpdatedAt,
}

/// Grants belong to the function, not to a version: changing them needs no
/// redeploy, and a rollback does not bring back a revoked grant.
#[derive(DeriveIden)]
enum EdgefnSecretGrants {
    Table,
    FunctionName,
    SecretName,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgefnSecrets::Table)
                    .col(string(EdgefnSecrets::Name).primary_key())
                    .col(integer(EdgefnSecrets::Version))
                    .col(string(EdgefnSecrets::KeyId))
                    .col(blob(EdgefnSecrets::Nonce))
                    .col(blob(EdgefnSecrets::Ciphertext))
                    .col(timestamp_with_time_zone(EdgefnSecrets::CreatedAt))
                    .col(timestamp_with_time_zone(EdgefnSecrets::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnSecretGrants::Table)
                    .col(string(EdgefnSecretGrants::FunctionName))
                    .col(string(EdgefnSecretGrants::SecretName))
                    .primary_key(
                        Index::create().col(EdgefnSecretGrants::FunctionName).col(EdgefnSecretGrants::SecretName),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EdgefnSecretGrants::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(EdgefnSecrets::Table).to_owned()).await
    }
}
