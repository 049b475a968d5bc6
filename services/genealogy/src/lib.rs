//! The genealogy service: trace queries over its own projection of the event stream.
//!
//! - [`domain`]: the error type; no I/O.
//! - [`store`]: the projection tables and the persisted capture cursor.
//! - [`projection`]: follows `CaptureService.Subscribe` from the cursor and applies events.
//! - [`grpc`]: the `tracery.v1.GenealogyService` adapter.

pub mod domain;
pub mod grpc;
pub mod projection;
pub mod store;

use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::task::JoinHandle;
use tonic::service::RoutesBuilder;
use tracery_proto::v1::genealogy_service_server::GenealogyServiceServer;
use tracery_runtime::{ServiceContext, ServiceKey, ServiceModule};

/// The genealogy service as a [`ServiceModule`].
pub struct GenealogyModule;

#[async_trait::async_trait]
impl ServiceModule for GenealogyModule {
    fn key(&self) -> ServiceKey {
        ServiceKey::Genealogy
    }

    async fn migrate(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        store::Migrator::up(db, None).await
    }

    async fn start(
        &self,
        ctx: &ServiceContext,
        routes: &mut RoutesBuilder,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let store = store::ProjectionStore::new(ctx.db.clone());
        let capture = ctx.peers.channel(ServiceKey::Capture)?;
        let projection = projection::Projection::new(store.clone(), capture);
        let stats = projection.stats();
        let task = tokio::spawn(projection.run(ctx.shutdown.clone()));
        routes.add_service(GenealogyServiceServer::new(grpc::GenealogyApi::new(
            store, stats,
        )));
        Ok(vec![task])
    }
}
