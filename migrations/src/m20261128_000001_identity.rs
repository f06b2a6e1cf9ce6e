//! Identity: users, groups, refresh tokens, and each function's access policy.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Users who sign in with email and password. `metadata` is a JSON object of
/// custom attributes that metadata policies test.
#[derive(DeriveIden)]
enum EdgefnUsers {
    Table,
    Id,
    Email,
    PasswordHash,
    Metadata,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EdgefnGroups {
    Table,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EdgefnGroupMembers {
    Table,
    GroupName,
    UserId,
}

/// Refresh tokens are single-use: each use marks the row used and issues the
/// next one in the same family. Presenting a used token revokes the family.
#[derive(DeriveIden)]
enum EdgefnRefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    UserId,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

/// The access policy and CORS settings belong to the function, like secret
/// grants: an admin can change them without a redeploy, and a rollback never
/// brings back a looser policy.
#[derive(DeriveIden)]
enum EdgefnFunctions {
    Table,
    Access,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgefnUsers::Table)
                    .col(string(EdgefnUsers::Id).primary_key())
                    .col(string(EdgefnUsers::Email).unique_key())
                    .col(string(EdgefnUsers::PasswordHash))
                    .col(text(EdgefnUsers::Metadata))
                    .col(boolean(EdgefnUsers::Disabled))
                    .col(timestamp_with_time_zone(EdgefnUsers::CreatedAt))
                    .col(timestamp_with_time_zone(EdgefnUsers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnGroups::Table)
                    .col(string(EdgefnGroups::Name).primary_key())
                    .col(timestamp_with_time_zone(EdgefnGroups::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnGroupMembers::Table)
                    .col(string(EdgefnGroupMembers::GroupName))
                    .col(string(EdgefnGroupMembers::UserId))
                    .primary_key(Index::create().col(EdgefnGroupMembers::GroupName).col(EdgefnGroupMembers::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EdgefnGroupMembers::Table, EdgefnGroupMembers::GroupName)
                            .to(EdgefnGroups::Table, EdgefnGroups::Name)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EdgefnGroupMembers::Table, EdgefnGroupMembers::UserId)
                            .to(EdgefnUsers::Table, EdgefnUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_group_members_user")
                    .table(EdgefnGroupMembers::Table)
                    .col(EdgefnGroupMembers::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnRefreshTokens::Table)
                    .col(string(EdgefnRefreshTokens::TokenHash).primary_key())
                    .col(string(EdgefnRefreshTokens::FamilyId))
                    .col(string(EdgefnRefreshTokens::UserId))
                    .col(timestamp_with_time_zone(EdgefnRefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(EdgefnRefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(EdgefnRefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(EdgefnRefreshTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EdgefnRefreshTokens::Table, EdgefnRefreshTokens::UserId)
                            .to(EdgefnUsers::Table, EdgefnUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_refresh_tokens_family")
                    .table(EdgefnRefreshTokens::Table)
                    .col(EdgefnRefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(EdgefnFunctions::Table).add_column(text_null(EdgefnFunctions::Access)).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(EdgefnFunctions::Table).drop_column(EdgefnFunctions::Access).to_owned())
            .await?;
        for table in [
            EdgefnRefreshTokens::Table.into_iden(),
            EdgefnGroupMembers::Table.into_iden(),
            EdgefnGroups::Table.into_iden(),
            EdgefnUsers::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
