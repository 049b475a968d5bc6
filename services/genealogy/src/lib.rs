//! The genealogy service: trace queries over its own projection of the event stream.
//!
//! - [`domain`]: the error type; no I/O.
//! - [`store`]: the projection tables and the persisted capture cursor.
//! - [`projection`]: the sink that applies followed capture events to the store.
//! - [`grpc`]: the `tracery.v1.GenealogyService` adapter.

pub mod domain;
pub mod grpc;
pub mod projection;
pub mod store;

use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::task::JoinHandle;
use tracery_proto::v1::genealogy_service_server::GenealogyServiceServer;
use tracery_runtime::{
    Routes, ServiceContext, ServiceKey, ServiceModule,
    follow::{FollowStats, follow_capture},
};

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
        routes: &mut Routes,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let store = store::ProjectionStore::new(ctx.db.clone());
        let capture = ctx.peers.channel(ServiceKey::Capture)?;
        let stats = std::sync::Arc::new(FollowStats::default());
        let task = tokio::spawn(follow_capture(
            "genealogy",
            capture,
            projection::GenealogySink::new(store.clone()),
            std::sync::Arc::clone(&stats),
            ctx.shutdown.clone(),
        ));
        routes
            .grpc
            .add_service(GenealogyServiceServer::new(grpc::GenealogyApi::new(
                store, stats,
            )));
        Ok(vec![task])
    }
}
