//! Execution records gain what observability needs to find and join them:
//! the W3C trace id the invocation ran under and the client's address, and
//! indexes for the admin API's time-range and outcome filters.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgefnExecutions {
    Table,
    TraceId,
    ClientIp,
    ReceivedAt,
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [string_null(EdgefnExecutions::TraceId), string_null(EdgefnExecutions::ClientIp)] {
            manager
                .alter_table(Table::alter().table(EdgefnExecutions::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("edgefn_executions_received")
                    .table(EdgefnExecutions::Table)
                    .col(EdgefnExecutions::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("edgefn_executions_outcome")
                    .table(EdgefnExecutions::Table)
                    .col(EdgefnExecutions::Outcome)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["edgefn_executions_outcome", "edgefn_executions_received"] {
            manager.drop_index(Index::drop().name(index).table(EdgefnExecutions::Table).to_owned()).await?;
        }
        for column in [EdgefnExecutions::ClientIp, EdgefnExecutions::TraceId] {
            manager.alter_table(Table::alter().table(EdgefnExecutions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
