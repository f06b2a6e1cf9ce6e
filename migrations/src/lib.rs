//! The edgefn schema. Migrations are append-only: a released migration is
//! never edited, the next change is a new file.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_core;
mod m20261126_000001_secrets;
mod m20261128_000001_identity;
mod m20261128_000002_app_database;
mod m20261128_000003_execution_trace;

/// Runs every migration in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_core::Migration),
            Box::new(m20261126_000001_secrets::Migration),
            Box::new(m20261128_000001_identity::Migration),
            Box::new(m20261128_000002_app_database::Migration),
            Box::new(m20261128_000003_execution_trace::Migration),
        ]
    }
}
