//! Functions, their immutable versions, execution records and admin keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgefnFunctions {
    Table,
    Id,
    Name,
    ActiveVersion,
    Settings,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EdgefnFunctionVersions {
    Table,
    Id,
    FunctionId,
    Version,
    Source,
    SourceHash,
    Bytecode,
    BytecodeHash,
    Engine,
    BuildUs,
    Settings,
    CreatedAt,
}

/// One row per invocation. Later capabilities (identity, database, outbound
/// HTTP, traces) add columns; the `details` JSON holds what has no column yet.
#[derive(DeriveIden)]
enum EdgefnExecutions {
    Table,
    Id,
    FunctionName,
    Version,
    ReceivedAt,
    DurationUs,
    QueueUs,
    InstantiateUs,
    RunUs,
    Caller,
    Method,
    Path,
    Status,
    Outcome,
    Console,
    Error,
    FuelConsumed,
    PeakMemoryBytes,
    Details,
}

#[derive(DeriveIden)]
enum EdgefnAdminKeys {
    Table,
    Id,
    Prefix,
    KeyHash,
    Label,
    CreatedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgefnFunctions::Table)
                    .col(pk_auto(EdgefnFunctions::Id))
                    .col(string_uniq(EdgefnFunctions::Name))
                    .col(integer_null(EdgefnFunctions::ActiveVersion))
                    .col(text(EdgefnFunctions::Settings))
                    .col(timestamp_with_time_zone(EdgefnFunctions::CreatedAt))
                    .col(timestamp_with_time_zone(EdgefnFunctions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnFunctionVersions::Table)
                    .col(pk_auto(EdgefnFunctionVersions::Id))
                    .col(integer(EdgefnFunctionVersions::FunctionId))
                    .col(integer(EdgefnFunctionVersions::Version))
                    .col(text(EdgefnFunctionVersions::Source))
                    .col(string(EdgefnFunctionVersions::SourceHash))
                    .col(blob(EdgefnFunctionVersions::Bytecode))
                    .col(string(EdgefnFunctionVersions::BytecodeHash))
                    .col(string(EdgefnFunctionVersions::Engine))
                    .col(big_integer(EdgefnFunctionVersions::BuildUs))
                    .col(text(EdgefnFunctionVersions::Settings))
                    .col(timestamp_with_time_zone(EdgefnFunctionVersions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EdgefnFunctionVersions::Table, EdgefnFunctionVersions::FunctionId)
                            .to(EdgefnFunctions::Table, EdgefnFunctions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_function_versions_function_version")
                    .table(EdgefnFunctionVersions::Table)
                    .col(EdgefnFunctionVersions::FunctionId)
                    .col(EdgefnFunctionVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnExecutions::Table)
                    .col(string(EdgefnExecutions::Id).primary_key())
                    .col(string(EdgefnExecutions::FunctionName))
                    .col(integer_null(EdgefnExecutions::Version))
                    .col(timestamp_with_time_zone(EdgefnExecutions::ReceivedAt))
                    .col(big_integer(EdgefnExecutions::DurationUs))
                    .col(big_integer(EdgefnExecutions::QueueUs))
                    .col(big_integer(EdgefnExecutions::InstantiateUs))
                    .col(big_integer(EdgefnExecutions::RunUs))
                    .col(string_null(EdgefnExecutions::Caller))
                    .col(string(EdgefnExecutions::Method))
                    .col(text(EdgefnExecutions::Path))
                    .col(integer(EdgefnExecutions::Status))
                    .col(string(EdgefnExecutions::Outcome))
                    .col(text(EdgefnExecutions::Console))
                    .col(text_null(EdgefnExecutions::Error))
                    .col(big_integer_null(EdgefnExecutions::FuelConsumed))
                    .col(big_integer_null(EdgefnExecutions::PeakMemoryBytes))
                    .col(text(EdgefnExecutions::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_executions_function_received")
                    .table(EdgefnExecutions::Table)
                    .col(EdgefnExecutions::FunctionName)
                    .col(EdgefnExecutions::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EdgefnAdminKeys::Table)
                    .col(pk_auto(EdgefnAdminKeys::Id))
                    .col(string_uniq(EdgefnAdminKeys::Prefix))
                    .col(string(EdgefnAdminKeys::KeyHash))
                    .col(string(EdgefnAdminKeys::Label))
                    .col(timestamp_with_time_zone(EdgefnAdminKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(EdgefnAdminKeys::RevokedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EdgefnAdminKeys::Table.into_iden(),
            EdgefnExecutions::Table.into_iden(),
            EdgefnFunctionVersions::Table.into_iden(),
            EdgefnFunctions::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
