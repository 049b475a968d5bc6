//! The genealogy service: trace queries over its own projection of the event stream.
//!
//! - [`errors`]: the error type; no I/O.
//! - [`common_cause`]: what failed units share that good ones do not.
//! - [`facts`]: what one EPCIS event says about the graph (pure).
//! - [`store`]: the projection tables (history, links) and the persisted capture cursor.
//! - [`projection`]: the sink that applies followed capture events to the store.
//! - [`graph`]: traces, containment, whereabouts and recall scope over the links.
//! - [`export`]: traces and recalls as JSON, DOT, SVG and CSV.
//! - [`trends`]: per-hour counts and dwell times kept as events are applied (pure).
//! - [`grpc`]: the `tracery.v1.GenealogyService` adapter.
//!
//! Storage layout: an adjacency table of links indexed by `(from_node, kind)` and
//! `(to_node, kind)` in the service's own database (SQLite or PostgreSQL). A trace walks
//! it breadth-first with one `IN (frontier)` lookup per level and direction, so its cost
//! grows with the size of the answer, not of the plant; the same layout serves
//! time travel (links carry their begin and end times) and error declarations (links
//! carry the event that made or ended them).

pub mod common_cause;
pub mod errors;
pub mod export;
pub mod facts;
pub mod graph;
pub mod grpc;
pub mod projection;
pub mod store;
pub mod trends;

use tracery_proto::v1::genealogy_service_server::GenealogyServiceServer;
use tracery_runtime::{
    Migrations, ModuleInfo, Routes, ServiceContext, ServiceKey, ServiceModule, Started,
    follow::{FollowStats, follow_capture},
};

/// Genealogy: the projection of capture's stream that answers traces and recalls.
pub struct GenealogyModule;

/// Fills the unit profiles of a store projected before they were kept, beside the
/// follower; until it is done, analyses read each good unit's history.
async fn fill_profiles(store: store::ProjectionStore, stop: tokio_util::sync::CancellationToken) {
    let started = std::time::Instant::now();
    match store.fill_profiles(&stop).await {
        Ok(0) => {}
        Ok(nodes) => tracing::info!(
            nodes,
            seconds = started.elapsed().as_secs(),
            "unit profiles filled"
        ),
        Err(err) => tracing::warn!(%err, "unit profiles not filled; analyses read each unit"),
    }
}

#[async_trait::async_trait]
impl ServiceModule for GenealogyModule {
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
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
        let fill = tokio::spawn(fill_profiles(store.clone(), ctx.shutdown.clone()));
        routes
            .grpc
            .add_service(GenealogyServiceServer::new(grpc::GenealogyApi::new(
                store, stats,
            )));
        Ok(vec![task, fill])
    }

    /// The projection follows capture's stream.
    fn info(&self) -> ModuleInfo {
        ModuleInfo::new(ServiceKey::Genealogy, Migrations::of::<store::Migrator>())
            .requiring(ServiceKey::Capture)
    }
}
