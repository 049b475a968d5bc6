//! Channels to peer services. In all-in-one mode a peer is this process's own gRPC
//! address, so calls take the same path as between separate deployments.

use std::collections::BTreeMap;

use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::{ServiceKey, telemetry::TraceContextInjector};

/// A channel to a peer that propagates the trace context.
pub type PeerChannel = InterceptedService<Channel, TraceContextInjector>;

/// Lazily connected channels to every peer service.
#[derive(Debug, Clone)]
pub struct Peers {
    channels: BTreeMap<ServiceKey, Channel>,
}

/// A peer that has no usable endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{service}_endpoint: {reason}")]
pub struct PeerError {
    /// The peer.
    pub service: ServiceKey,
    /// Why it cannot be reached.
    pub reason: String,
}

impl Peers {
    /// Builds channels; `endpoint_of` gives each service's endpoint URI. No connection is
    /// made until the first call, so peers may start in any order.
    pub fn new(endpoint_of: impl Fn(ServiceKey) -> Option<String>) -> Result<Self, PeerError> {
        let mut channels = BTreeMap::new();
        for service in ServiceKey::ALL {
            let Some(uri) = endpoint_of(service) else {
                continue;
            };
            let endpoint = Endpoint::from_shared(uri.clone()).map_err(|err| PeerError {
                service,
                reason: format!("`{uri}`: {err}"),
            })?;
            let endpoint = endpoint
                .connect_timeout(std::time::Duration::from_secs(5))
                .tcp_nodelay(true);
            channels.insert(service, endpoint.connect_lazy());
        }
        Ok(Self { channels })
    }

    /// The channel to `service`.
    pub fn channel(&self, service: ServiceKey) -> Result<PeerChannel, PeerError> {
        self.channels
            .get(&service)
            .cloned()
            .map(|channel| InterceptedService::new(channel, TraceContextInjector))
            .ok_or_else(|| PeerError {
                service,
                reason: "not configured; set it when the service runs elsewhere".to_owned(),
            })
    }
}
