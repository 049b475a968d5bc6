//! Channels to peer services. In all-in-one mode a peer is this process's own gRPC
//! address, so calls take the same path as between separate deployments — including
//! authentication: calls carry the trace context and the process's credentials.

use std::{collections::BTreeMap, sync::Arc};

use tonic::{
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{ServiceKey, config::SecretSource, telemetry::TraceContextInjector};

/// What a peer call presents as `authorization`.
#[derive(Debug, Clone)]
pub enum PeerCredentials {
    /// Nothing (dev mode, or no peer token configured).
    None,
    /// This process's own token, for a peer served by this process.
    Internal(Arc<str>),
    /// A token read from its source at each call (rotated tokens need no restart).
    Token(SecretSource),
}

/// Adds the trace context and the credentials to every peer call.
#[derive(Debug, Clone)]
pub struct PeerHeaders {
    credentials: PeerCredentials,
}

impl Interceptor for PeerHeaders {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = TraceContextInjector.call(request)?;
        let token = match &self.credentials {
            PeerCredentials::None => return Ok(request),
            PeerCredentials::Internal(token) => token.to_string(),
            PeerCredentials::Token(source) => source
                .read("auth.peer_token")
                .map_err(|err| tonic::Status::unauthenticated(err.to_string()))?
                .expose()
                .trim()
                .to_owned(),
        };
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::unauthenticated("auth.peer_token is not a header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// A channel to a peer.
pub type PeerChannel = InterceptedService<Channel, PeerHeaders>;

/// Lazily connected channels to every peer service.
#[derive(Debug, Clone)]
pub struct Peers {
    channels: BTreeMap<ServiceKey, (Channel, PeerCredentials)>,
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
    /// Builds channels; `endpoint_of` gives each service's endpoint URI and what to
    /// present to it. No connection is made until the first call, so peers may start in
    /// any order.
    /// `https://` endpoints are dialled with `tls` (see [`crate::tls::TlsSource::client_config`]).
    pub fn new(
        endpoint_of: impl Fn(ServiceKey) -> Option<(String, PeerCredentials)>,
        tls: Option<&tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, PeerError> {
        let mut channels = BTreeMap::new();
        for service in ServiceKey::ALL {
            let Some((uri, credentials)) = endpoint_of(service) else {
                continue;
            };
            let endpoint = Endpoint::from_shared(uri.clone()).map_err(|err| PeerError {
                service,
                reason: format!("`{uri}`: {err}"),
            })?;
            let mut endpoint = endpoint
                .connect_timeout(std::time::Duration::from_secs(5))
                .tcp_nodelay(true);
            if uri.starts_with("https://") {
                let tls = tls.ok_or_else(|| PeerError {
                    service,
                    reason: format!("`{uri}` needs tls.peer_ca_file to verify the peer"),
                })?;
                endpoint = endpoint.tls_config(tls.clone()).map_err(|err| PeerError {
                    service,
                    reason: format!("`{uri}`: {err}"),
                })?;
            }
            channels.insert(service, (endpoint.connect_lazy(), credentials));
        }
        Ok(Self { channels })
    }

    /// The channel to `service`.
    pub fn channel(&self, service: ServiceKey) -> Result<PeerChannel, PeerError> {
        self.channels
            .get(&service)
            .cloned()
            .map(|(channel, credentials)| {
                InterceptedService::new(channel, PeerHeaders { credentials })
            })
            .ok_or_else(|| PeerError {
                service,
                reason: "not configured; set it when the service runs elsewhere".to_owned(),
            })
    }
}
