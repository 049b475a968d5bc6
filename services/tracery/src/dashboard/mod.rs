//! The live plant dashboard at `/` of the HTTP listener: the floor as it happens, the
//! quarantine queue, identifier search with history, whereabouts and genealogy graph,
//! recall scope (with CSV), and the ERP/PLM integration's state.
//!
//! The page is Preact with htm (no build step), compiled into the binary with the rest of
//! [`assets`]; it needs no network beyond this suite. Its JSON API (`/dashboard/api/…`)
//! answers from the services' gRPC APIs and from [`floor::Floor`], which follows
//! capture's `Subscribe`. Each route has its roles in the one permission table, the same
//! roles as the gRPC methods it calls. The process that runs genealogy serves it.

mod api;
mod assets;
pub mod floor;
mod trends;

use std::sync::{Arc, Mutex};

use tracery_proto::v1::{self as pb, genealogy_service_client::GenealogyServiceClient};
use tracery_runtime::{
    Pages, Routes, ServiceContext, ServiceKey, Started,
    follow::{EventSink, FollowStats, follow_capture},
    peers::Peers,
};

use floor::Floor;

/// How many events before the store's head the floor picture starts from: enough for a
/// few shifts of a line, little enough to load in a second or two.
const WINDOW: i64 = 50_000;

/// The dashboard, for [`tracery_runtime::Application::with_pages`].
pub struct Dashboard;

/// What the API handlers share.
#[derive(Clone)]
struct State {
    floor: Arc<Mutex<Floor>>,
    peers: Peers,
}

#[async_trait::async_trait]
impl Pages for Dashboard {
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
        // One place serves it: the process with genealogy (all of them in one process;
        // the genealogy pods of a split deployment), so capture has one more follower,
        // not one per pod.
        if !ctx.config.services.contains(&ServiceKey::Genealogy) {
            return Ok(Vec::new());
        }
        let state = State {
            floor: Arc::new(Mutex::new(Floor::default())),
            peers: ctx.peers.clone(),
        };
        let mut tasks = Vec::new();
        match ctx.peers.channel(ServiceKey::Capture) {
            Ok(capture) => {
                let sink = FloorSink {
                    floor: Arc::clone(&state.floor),
                    peers: ctx.peers.clone(),
                    started: false,
                };
                tasks.push(tokio::spawn(follow_capture(
                    "dashboard",
                    capture,
                    sink,
                    Arc::new(FollowStats::default()),
                    ctx.shutdown.clone(),
                )));
            }
            Err(err) => tracing::warn!(%err, "the dashboard's live floor needs capture"),
        }
        routes.add_http(api::router(state));
        Ok(tasks)
    }
}

/// Feeds the followed events into the floor picture.
struct FloorSink {
    floor: Arc<Mutex<Floor>>,
    peers: Peers,
    started: bool,
}

/// The floor picture, for reading or applying events.
fn lock(floor: &Mutex<Floor>) -> std::sync::MutexGuard<'_, Floor> {
    // A panic while holding the lock leaves a picture that is still good to show.
    floor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait::async_trait]
impl EventSink for FloorSink {
    async fn applied_sequence(&self) -> anyhow::Result<i64> {
        if self.started {
            return Ok(lock(&self.floor).cursor());
        }
        // The first time: a window before the head, which genealogy's cursor tells.
        let head = match self.peers.channel(ServiceKey::Genealogy) {
            Ok(channel) => {
                GenealogyServiceClient::new(channel)
                    .get_projection_status(pb::GetProjectionStatusRequest {})
                    .await?
                    .into_inner()
                    .applied_sequence
            }
            Err(_) => 0,
        };
        Ok((head - WINDOW).max(0))
    }

    async fn apply(&mut self, events: Vec<pb::StoredEvent>) -> anyhow::Result<usize> {
        let mut floor = lock(&self.floor);
        if !self.started
            && let Some(first) = events.first()
        {
            *floor = Floor::starting_after(first.sequence - 1);
        }
        let before = floor.cursor();
        for event in &events {
            floor.apply(event);
        }
        drop(floor);
        self.started = true;
        Ok(events.iter().filter(|e| e.sequence > before).count())
    }
}
