//! The `tracery.v1.IdentityService` gRPC adapter: protobuf ⇄ domain, errors ⇄ Status.

use tonic::{Request, Response, Status};
use tracery_proto::v1::{self as pb, identity_service_server::IdentityService};
use tracery_runtime::wire;

use crate::{
    domain::{IdentityError, Product, normalise_gtin},
    store::{ProductRow, ProductStore},
};

/// The gRPC service.
pub struct IdentityApi {
    products: ProductStore,
}

impl IdentityApi {
    /// The service over `db`.
    pub fn new(db: sea_orm::DatabaseConnection) -> Self {
        Self {
            products: ProductStore::new(db),
        }
    }
}

fn product_to_proto(row: ProductRow) -> pb::Product {
    pb::Product {
        gtin: row.gtin,
        item_code: row.item_code,
        description: row.description,
        company_prefix_length: i32::from(row.company_prefix_length),
        unit_of_measure: row.unit_of_measure,
        create_time: Some(wire::timestamp(row.created_at)),
        update_time: Some(wire::timestamp(row.updated_at)),
    }
}

/// RPCs whose behaviour arrives with the identity issue; the contract is fixed already.
fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!("IdentityService.{rpc} is not implemented yet"))
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    #[tracing::instrument(skip_all)]
    async fn register_product(
        &self,
        request: Request<pb::RegisterProductRequest>,
    ) -> Result<Response<pb::RegisterProductResponse>, Status> {
        let p = request
            .into_inner()
            .product
            .ok_or_else(|| IdentityError::invalid("product", "required"))?;
        let product = Product::new(
            &p.gtin,
            &p.item_code,
            &p.description,
            p.company_prefix_length,
            &p.unit_of_measure,
        )?;
        let (row, created) = self.products.upsert(&product).await?;
        Ok(Response::new(pb::RegisterProductResponse {
            product: Some(product_to_proto(row)),
            created,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        use pb::get_product_request::Key;
        let row = match request.into_inner().key {
            Some(Key::Gtin(gtin)) => {
                self.products
                    .by_gtin(&normalise_gtin("gtin", &gtin)?)
                    .await?
            }
            Some(Key::ItemCode(code)) => self.products.by_item_code(&code).await?,
            None => {
                return Err(IdentityError::invalid("key", "gtin or item_code is required").into());
            }
        };
        Ok(Response::new(pb::GetProductResponse {
            product: Some(product_to_proto(row)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let page = wire::Page::from_request(request.into_inner().page.as_ref());
        let rows = self
            .products
            .list(page.after.as_deref(), page.fetch_limit())
            .await?;
        let (rows, next) = page.split(rows, |row| row.gtin.clone());
        Ok(Response::new(pb::ListProductsResponse {
            products: rows.into_iter().map(product_to_proto).collect(),
            page: Some(next),
        }))
    }

    async fn parse_identifier(
        &self,
        _: Request<pb::ParseIdentifierRequest>,
    ) -> Result<Response<pb::ParseIdentifierResponse>, Status> {
        Err(not_yet("ParseIdentifier"))
    }

    async fn create_serial_pool(
        &self,
        _: Request<pb::CreateSerialPoolRequest>,
    ) -> Result<Response<pb::CreateSerialPoolResponse>, Status> {
        Err(not_yet("CreateSerialPool"))
    }

    async fn get_serial_pool(
        &self,
        _: Request<pb::GetSerialPoolRequest>,
    ) -> Result<Response<pb::GetSerialPoolResponse>, Status> {
        Err(not_yet("GetSerialPool"))
    }

    type AllocateSerialsStream = tokio_stream::Empty<Result<pb::AllocateSerialsResponse, Status>>;

    async fn allocate_serials(
        &self,
        _: Request<pb::AllocateSerialsRequest>,
    ) -> Result<Response<Self::AllocateSerialsStream>, Status> {
        Err(not_yet("AllocateSerials"))
    }

    async fn get_identifier_state(
        &self,
        _: Request<pb::GetIdentifierStateRequest>,
    ) -> Result<Response<pb::GetIdentifierStateResponse>, Status> {
        Err(not_yet("GetIdentifierState"))
    }

    async fn batch_get_identifier_states(
        &self,
        _: Request<pb::BatchGetIdentifierStatesRequest>,
    ) -> Result<Response<pb::BatchGetIdentifierStatesResponse>, Status> {
        Err(not_yet("BatchGetIdentifierStates"))
    }

    async fn update_identifier_states(
        &self,
        _: Request<pb::UpdateIdentifierStatesRequest>,
    ) -> Result<Response<pb::UpdateIdentifierStatesResponse>, Status> {
        Err(not_yet("UpdateIdentifierStates"))
    }

    async fn render_label(
        &self,
        _: Request<pb::RenderLabelRequest>,
    ) -> Result<Response<pb::RenderLabelResponse>, Status> {
        Err(not_yet("RenderLabel"))
    }
}
