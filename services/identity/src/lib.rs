//! The identity service: GS1 keys, the product master, serial-number pools and labels.
//!
//! GS1 syntax itself lives in `tracery-gs1`, shared with capture and genealogy.
//!
//! - [`domain`]: the error type and the product master's rules; no I/O.
//! - [`serials`]: serial pools, slot ⇄ serial (sequential or FF1-randomised); no I/O.
//! - [`lifecycle`]: identifier states and allowed transitions; no I/O.
//! - [`labels`]: GS1 DataMatrix / Digital Link QR as SVG, PNG and ZPL; no I/O.
//! - [`resolve`]: any identifier syntax → canonical EPC URN, with product and pool data.
//! - [`follow`]: follows capture and records commissioning/decommissioning in the states.
//! - [`store`]: sea-orm entities, migrations and queries.
//! - [`grpc`]: the `tracery.v1.IdentityService` adapter.

pub mod domain;
pub mod follow;
pub mod grpc;
pub mod labels;
pub mod lifecycle;
pub mod manual;
pub mod resolve;
pub mod serials;
pub mod store;

use std::sync::Arc;

use tracery_proto::v1::identity_service_server::IdentityServiceServer;
use tracery_runtime::{
    Migrations, ModuleInfo, Routes, ServiceContext, ServiceKey, ServiceModule, Started,
    follow::follow_capture,
};

/// Identity: GS1 identifiers, product master, serial pools, labels and lifecycle.
pub struct IdentityModule;

#[async_trait::async_trait]
impl ServiceModule for IdentityModule {
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
        let api = grpc::IdentityApi::new(ctx.db.clone());
        // Identity runs on its own too; then lifecycle states change only through the API.
        let capture = match ctx.peers.channel(ServiceKey::Capture) {
            Ok(channel) => channel,
            Err(err) => {
                tracing::warn!(error = %err, "identity does not follow capture");
                routes.grpc.add_service(IdentityServiceServer::new(api));
                return Ok(Vec::new());
            }
        };
        let states = store::StateStore::new(ctx.db.clone());
        let (applied, applied_watch) =
            tokio::sync::watch::channel(states.applied_sequence().await?);
        routes.grpc.add_service(IdentityServiceServer::new(
            api.with_manual_states(manual::ManualStates::new(capture.clone(), applied_watch)),
        ));
        let products = store::ProductStore::new(ctx.db.clone());
        let pools = store::PoolStore::new(ctx.db.clone());
        let sink =
            follow::LifecycleSink::new(resolve::Resolver::new(products, pools), states, applied);
        let lifecycle = tokio::spawn(follow_capture(
            "identity-lifecycle",
            capture,
            sink,
            Arc::default(),
            ctx.shutdown.clone(),
        ));
        Ok(vec![lifecycle])
    }

    fn info(&self) -> ModuleInfo {
        ModuleInfo::new(ServiceKey::Identity, Migrations::of::<store::Migrator>())
    }
}
