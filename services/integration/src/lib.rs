//! The integration service: syncs items, BOMs and production orders from the plant's ERP
//! (and later PLM) connectors into its store, answers order/BOM/item lookups, and checks
//! consumed components against BOMs for capture.
//!
//! - [`connector_config`]: the connectors named in the configuration file.
//! - [`sync`]: sync runs, page by page from persisted cursors; schedules.
//! - [`conformance`]: the BOM-conformance rule and BOM comparison.
//! - [`erp_master_data`]: the ERP's warehouses and plants, as master data locations.
//! - [`store`]: runs, synced records, cursors (sea-orm).
//! - [`grpc`]: the `tracery.v1.IntegrationService` adapter.

pub mod conformance;
pub mod connector_config;
pub mod domain;
pub mod erp_master_data;
pub mod grpc;
pub mod postback;
pub mod store;
pub mod sync;

use tracery_proto::v1::integration_service_server::IntegrationServiceServer;
use tracery_runtime::{
    Migrations, ModuleInfo, Routes, ServiceContext, ServiceKey, ServiceModule, Started,
    follow::{FollowStats, follow_capture},
};

/// Integration: ERP and PLM syncs, and production posted back.
pub struct IntegrationModule;

#[async_trait::async_trait]
impl ServiceModule for IntegrationModule {
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
        let connectors = connector_config::connectors(&ctx.config.connectors)?;
        // Only a plant mapping ERP locations sends capture master data.
        let capture = match connectors.iter().find(|c| !c.locations.is_empty()) {
            None => None,
            Some(mapping) => Some(ctx.peers.channel(ServiceKey::Capture).map_err(|err| {
                domain::IntegrationError::Config {
                    connector: mapping.name.clone(),
                    reason: format!("locations are master data for capture, and {err}"),
                }
            })?),
        };
        let syncer = sync::Syncer::new(
            ctx.db.clone(),
            ctx.integrity.keys().clone(),
            connectors,
            capture,
            ctx.shutdown.clone(),
        );
        // Runs a previous process left unfinished start again (from their cursors) before
        // anything is served, so no client sees them stopped but not yet resumed.
        for connector in syncer.interrupted().await? {
            tracing::info!(connector, "resuming an interrupted sync");
            syncer.trigger(&connector).await?;
        }
        let mut tasks = Vec::new();
        // Only a plant posting back follows capture; events captured before post-back was
        // first turned on are not posted (see `postback::sink`).
        if syncer.connectors().iter().any(|c| c.post_back) {
            let recorded = std::sync::Arc::new(tokio::sync::Notify::new());
            tasks.push(tokio::spawn(follow_capture(
                "integration post-back",
                ctx.peers.channel(ServiceKey::Capture)?,
                postback::sink::PostingSink::new(ctx.db.clone(), recorded.clone()),
                std::sync::Arc::new(FollowStats::default()),
                ctx.shutdown.clone(),
            )));
            tasks.push(tokio::spawn(
                postback::worker::PostingWorker::new(
                    ctx.db.clone(),
                    ctx.integrity.keys().clone(),
                    syncer.connectors().to_vec(),
                    recorded,
                    ctx.shutdown.clone(),
                )
                .run(),
            ));
        }
        routes
            .grpc
            .add_service(IntegrationServiceServer::new(grpc::IntegrationApi::new(
                std::sync::Arc::clone(&syncer),
            )));
        tasks.push(tokio::spawn(syncer.schedule()));
        Ok(tasks)
    }

    fn info(&self) -> ModuleInfo {
        ModuleInfo::new(ServiceKey::Integration, Migrations::of::<store::Migrator>())
    }
}
