//! Names beside identifiers: what captured master data calls a read point or location
//! (`LookupMasterData`), and what the ERP sync calls a product (`ResolveItem` by the GTIN
//! an identifier carries). The dashboard and the CLI ask the same way.
//!
//! Names help reading, they are not the answer: a failed or refused lookup leaves the
//! identifiers alone.

use tonic::{
    codegen::{Body, Bytes, StdError},
    metadata::AsciiMetadataValue,
};
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient,
    integration_service_client::IntegrationServiceClient,
};

use crate::views::{self, Names, gtin_of};

/// The most distinct products one view resolves (one call each).
const MAX_PRODUCTS: usize = 50;

/// Where names come from, over channels of type `T`.
pub struct NameSources<T> {
    pub capture: CaptureServiceClient<T>,
    pub integration: IntegrationServiceClient<T>,
    /// The caller's `authorization` header, where the channel does not add one itself.
    pub authorization: Option<AsciiMetadataValue>,
}

impl<T> NameSources<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// The names known for `ids`.
    pub async fn names(&mut self, ids: Vec<String>) -> Names {
        let mut names = Names::new();
        for lookup in views::name_lookups(ids.clone()) {
            match self.capture.lookup_master_data(self.request(lookup)).await {
                Ok(found) => names.extend(views::names(&found.into_inner())),
                Err(status) => {
                    tracing::debug!(error = %status.message(), "master data names not looked up");
                    break;
                }
            }
        }
        self.add_product_names(&ids, &mut names).await;
        names
    }

    /// Names the ids of `ids` without one by their product's description from the ERP
    /// sync (a lot or serial of a GTIN is named by the GTIN's item).
    async fn add_product_names(&mut self, ids: &[String], names: &mut Names) {
        let mut by_gtin: Vec<(String, &String)> = ids
            .iter()
            .filter(|id| !names.contains_key(*id))
            .filter_map(|id| Some((gtin_of(id)?, id)))
            .collect();
        by_gtin.sort();
        let mut gtins: Vec<&String> = by_gtin.iter().map(|(gtin, _)| gtin).collect();
        gtins.dedup();
        let mut described = Names::new();
        for gtin in gtins.into_iter().take(MAX_PRODUCTS) {
            let request = pb::ResolveItemRequest {
                key: Some(pb::resolve_item_request::Key::Gtin(gtin.clone())),
            };
            match self.integration.resolve_item(self.request(request)).await {
                Ok(found) => {
                    if let Some(item) = found.into_inner().material {
                        described.insert(gtin.clone(), item.description);
                    }
                }
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => {
                    tracing::debug!(error = %status.message(), "product names not looked up");
                    break;
                }
            }
        }
        for (gtin, id) in by_gtin {
            if let Some(description) = described.get(&gtin).filter(|d| !d.is_empty()) {
                names.insert(id.clone(), description.clone());
            }
        }
    }

    fn request<M>(&self, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gtin_is_read_from_a_digital_link() {
        assert_eq!(
            gtin_of("https://id.gs1.org/01/04012345111118/21/1").as_deref(),
            Some("04012345111118")
        );
        assert_eq!(
            gtin_of("https://id.gs1.org/01/04012345111118/10/LOT-A").as_deref(),
            Some("04012345111118")
        );
        assert_eq!(gtin_of("https://id.gs1.org/00/040123450000000016"), None);
        assert_eq!(gtin_of("urn:epc:id:sgln:4012345.00003.1"), None);
    }
}
