//! Execution records gain what observability needs to find and join them:
//! the W3C trace id the invocation ran under and the client's address. No
//! index is added: every one slows every record's insert, and time ranges are
//! found through the primary key (UUIDv7, time-ordered).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EdgefnExecutions {
    Table,
    TraceId,
    ClientIp,
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [EdgefnExecutions::ClientIp, EdgefnExecutions::TraceId] {
            manager.alter_table(Table::alter().table(EdgefnExecutions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
