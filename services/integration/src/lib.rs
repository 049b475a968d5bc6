//! The integration service: sync runs against ERP/PLM connectors, and post-back.
//!
//! - [`domain`]: the error type and sync-run states; no I/O.
//! - [`store`]: sync-run records (sea-orm).
//! - [`grpc`]: the `tracery.v1.IntegrationService` adapter.

pub mod domain;
pub mod grpc;
pub mod store;

use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::task::JoinHandle;
use tracery_proto::v1::integration_service_server::IntegrationServiceServer;
use tracery_runtime::{Routes, ServiceContext, ServiceKey, ServiceModule};

/// The integration service as a [`ServiceModule`].
pub struct IntegrationModule;

#[async_trait::async_trait]
impl ServiceModule for IntegrationModule {
    fn key(&self) -> ServiceKey {
        ServiceKey::Integration
    }

    async fn migrate(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        store::Migrator::up(db, None).await
    }

    async fn start(
        &self,
        ctx: &ServiceContext,
        routes: &mut Routes,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let store = store::SyncRunStore::new(ctx.db.clone());
        routes
            .grpc
            .add_service(IntegrationServiceServer::new(grpc::IntegrationApi::new(
                store,
            )));
        Ok(Vec::new())
    }
}
