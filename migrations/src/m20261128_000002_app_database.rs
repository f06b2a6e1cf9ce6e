//! The application database's catalog: which app tables exist, their
//! definitions and row-level-security policies, and every schema change made.
//! The app tables themselves are created by edgefn at run time, in the `app`
//! schema on PostgreSQL and with the `app_` prefix on SQLite.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One row per app table. `definition` and `policies` are JSON as the admin
/// API takes them; `schema_version` counts the table's changes.
#[derive(DeriveIden)]
enum EdgefnAppTables {
    Table,
    Name,
    Definition,
    RlsEnabled,
    Policies,
    SchemaVersion,
    CreatedAt,
    UpdatedAt,
}

/// Append-only history of schema changes: what was asked, the SQL it ran.
#[derive(DeriveIden)]
enum EdgefnAppSchemaChanges {
    Table,
    Id,
    TableName,
    SchemaVersion,
    Kind,
    Request,
    Statements,
    AppliedBy,
    AppliedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            manager.get_connection().execute_unprepared("CREATE SCHEMA IF NOT EXISTS app").await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(EdgefnAppTables::Table)
                    .col(string(EdgefnAppTables::Name).primary_key())
                    .col(text(EdgefnAppTables::Definition))
                    .col(boolean(EdgefnAppTables::RlsEnabled))
                    .col(text(EdgefnAppTables::Policies))
                    .col(integer(EdgefnAppTables::SchemaVersion))
                    .col(timestamp_with_time_zone(EdgefnAppTables::CreatedAt))
                    .col(timestamp_with_time_zone(EdgefnAppTables::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnAppSchemaChanges::Table)
                    .col(string(EdgefnAppSchemaChanges::Id).primary_key())
                    .col(string(EdgefnAppSchemaChanges::TableName))
                    .col(integer(EdgefnAppSchemaChanges::SchemaVersion))
                    .col(string(EdgefnAppSchemaChanges::Kind))
                    .col(text(EdgefnAppSchemaChanges::Request))
                    .col(text(EdgefnAppSchemaChanges::Statements))
                    .col(string(EdgefnAppSchemaChanges::AppliedBy))
                    .col(timestamp_with_time_zone(EdgefnAppSchemaChanges::AppliedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_app_schema_changes_table")
                    .table(EdgefnAppSchemaChanges::Table)
                    .col(EdgefnAppSchemaChanges::TableName)
                    .col(EdgefnAppSchemaChanges::SchemaVersion)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EdgefnAppSchemaChanges::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(EdgefnAppTables::Table).to_owned()).await
    }
}
