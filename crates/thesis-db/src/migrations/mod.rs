//! Schema migrations, applied in order at start-up and by `thesis-api migrate`.

use sea_orm_migration::prelude::*;

mod m0001_platform_core;
mod m0002_billing;
mod m0003_responses;
mod m0004_usage_totals;
mod m0005_auth_generation;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_platform_core::Migration),
            Box::new(m0002_billing::Migration),
            Box::new(m0003_responses::Migration),
            Box::new(m0004_usage_totals::Migration),
            Box::new(m0005_auth_generation::Migration),
        ]
    }
}
