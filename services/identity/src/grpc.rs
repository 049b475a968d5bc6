//! The `tracery.v1.IdentityService` gRPC adapter: protobuf ⇄ domain, errors ⇄ Status.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracery_gs1::{
    DigitalLink, KeyKind, Parsed, Syntax, digital_link::DEFAULT_RESOLVER, key::normalise_gtin,
};
use tracery_proto::v1::{self as pb, identity_service_server::IdentityService};
use tracery_runtime::proto_fields;

use crate::{
    domain::{IdentityError, Product},
    labels::{self, LabelFormat, Symbology},
    lifecycle::{self, LifecycleState, Transition},
    manual::ManualStates,
    resolve::Resolver,
    serials::{MAX_ALLOCATION, PoolSpec, SerialFormat, SerialOrder},
    store::{PoolStore, ProductRow, ProductStore, StateStore, pools},
};

/// Serials per streamed message of a randomised allocation.
const SERIALS_PER_MESSAGE: u64 = 10_000;

/// The gRPC service.
pub struct IdentityApi {
    products: ProductStore,
    pools: PoolStore,
    states: StateStore,
    resolver: Resolver,
    /// Where hand-set states go when identity follows capture (`None`: identity runs on
    /// its own and its states change only through this API).
    manual: Option<ManualStates>,
}

impl IdentityApi {
    /// The service over `db`.
    pub fn new(db: sea_orm::DatabaseConnection) -> Self {
        let products = ProductStore::new(db.clone());
        let pools = PoolStore::new(db.clone());
        Self {
            resolver: Resolver::new(products.clone(), pools.clone()),
            products,
            pools,
            states: StateStore::new(db),
            manual: None,
        }
    }

    /// Hand-set states are captured through `manual`, like every other state change.
    pub fn with_manual_states(mut self, manual: ManualStates) -> Self {
        self.manual = Some(manual);
        self
    }

    /// Checks that the states are what `transitions` asked for once captured: an event ID
    /// that capture had stored already with other content is a duplicate there and changes
    /// nothing, which the caller must hear about.
    async fn check_applied(&self, transitions: &[Transition]) -> Result<(), IdentityError> {
        let epcs: Vec<String> = transitions.iter().map(|t| t.epc.clone()).collect();
        let stored: HashMap<String, _> = self.states.get_many(&epcs).await?.into_iter().collect();
        for (index, transition) in transitions.iter().enumerate() {
            let state = stored.get(&transition.epc);
            if state.is_none_or(|s| s.state != transition.to || s.event_id != transition.event_id) {
                return Err(IdentityError::invalid(
                    format!("transitions/{index}/event_id"),
                    format!(
                        "event `{}` was captured before with other content; `{}` is {}",
                        transition.event_id,
                        transition.epc,
                        state.map_or("UNKNOWN", |s| s.state.name())
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The states of `texts`; `field` names the request field of the text at an index.
    /// With `tolerant`, an identifier that cannot be canonicalised comes back as written
    /// with state UNSPECIFIED instead of failing the call.
    async fn statuses(
        &self,
        texts: &[String],
        field: impl Fn(usize) -> String,
        tolerant: bool,
    ) -> Result<Vec<pb::IdentifierStatus>, IdentityError> {
        let mut resolved = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            match self.resolver.instance_epc(&field(index), text).await {
                Ok(found) => resolved.push(Ok(found)),
                Err(IdentityError::Gs1 { .. } | IdentityError::Invalid { .. }) if tolerant => {
                    resolved.push(Err(text.clone()));
                }
                Err(err) => return Err(err),
            }
        }
        let epcs: Vec<String> = resolved
            .iter()
            .flatten()
            .map(|(_, epc)| epc.clone())
            .collect();
        let stored: HashMap<String, _> = self.states.get_many(&epcs).await?.into_iter().collect();
        let mut statuses = Vec::with_capacity(resolved.len());
        let mut allocation = self.resolver.allocation_check();
        for found in resolved {
            let (identifier, epc) = match found {
                Ok(found) => found,
                Err(text) => {
                    statuses.push(pb::IdentifierStatus {
                        epc: text,
                        ..Default::default()
                    });
                    continue;
                }
            };
            let status = match stored.get(&epc) {
                Some(s) => pb::IdentifierStatus {
                    epc,
                    state: state_to_proto(s.state).into(),
                    update_time: Some(proto_fields::timestamp(s.updated_at)),
                    event_id: s.event_id.clone(),
                },
                None => {
                    let state = if allocation.was_allocated(&identifier).await? {
                        LifecycleState::Allocated
                    } else {
                        LifecycleState::Unknown
                    };
                    pb::IdentifierStatus {
                        epc,
                        state: state_to_proto(state).into(),
                        ..Default::default()
                    }
                }
            };
            statuses.push(status);
        }
        Ok(statuses)
    }
}

fn product_to_proto(row: ProductRow) -> pb::Product {
    pb::Product {
        gtin: row.gtin,
        item_code: row.item_code,
        description: row.description,
        company_prefix_length: i32::from(row.company_prefix_length),
        unit_of_measure: row.unit_of_measure,
        create_time: Some(proto_fields::timestamp(row.created_at)),
        update_time: Some(proto_fields::timestamp(row.updated_at)),
    }
}

fn pool_to_proto(row: &pools::PoolRow) -> Result<pb::SerialPool, IdentityError> {
    let codec = pools::codec(row)?;
    let spec = codec.spec();
    let remaining = spec.domain_size() - u128::try_from(row.next_index).unwrap_or_default();
    Ok(pb::SerialPool {
        name: row.name.clone(),
        gtin: row.gtin.clone().unwrap_or_default(),
        company_prefix: row.company_prefix.clone().unwrap_or_default(),
        format: match spec.format {
            SerialFormat::Numeric => pb::SerialFormat::Numeric,
            SerialFormat::Alphanumeric => pb::SerialFormat::Alphanumeric,
        }
        .into(),
        length: i32::from(spec.length),
        order: match spec.order {
            SerialOrder::Sequential => pb::SerialOrder::Sequential,
            SerialOrder::Randomised => pb::SerialOrder::Randomised,
        }
        .into(),
        remaining: u64::try_from(remaining).unwrap_or(u64::MAX),
    })
}

fn key_type(kind: KeyKind) -> pb::KeyType {
    match kind {
        KeyKind::Gtin => pb::KeyType::Gtin,
        KeyKind::Sscc => pb::KeyType::Sscc,
        KeyKind::Gln => pb::KeyType::Gln,
        KeyKind::Grai => pb::KeyType::Grai,
        KeyKind::Giai => pb::KeyType::Giai,
        KeyKind::Gsrn => pb::KeyType::Gsrn,
        KeyKind::Gdti => pb::KeyType::Gdti,
    }
}

fn state_to_proto(state: LifecycleState) -> pb::IdentifierState {
    match state {
        LifecycleState::Unknown => pb::IdentifierState::Unknown,
        LifecycleState::Allocated => pb::IdentifierState::Allocated,
        LifecycleState::Commissioned => pb::IdentifierState::Commissioned,
        LifecycleState::Decommissioned => pb::IdentifierState::Decommissioned,
        LifecycleState::Destroyed => pb::IdentifierState::Destroyed,
    }
}

fn digital_link_of(parsed: &Parsed) -> Option<String> {
    let stem = parsed.stem.as_deref().unwrap_or(DEFAULT_RESOLVER);
    DigitalLink::from_element_string(stem, &parsed.elements)
        .ok()
        .map(|link| link.to_uri())
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
                let gtin = normalise_gtin(&gtin).map_err(IdentityError::gs1("gtin"))?;
                self.products.by_gtin(&gtin).await?
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
        let page = proto_fields::Page::from_request(request.into_inner().page.as_ref());
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

    #[tracing::instrument(skip_all)]
    async fn parse_identifier(
        &self,
        request: Request<pb::ParseIdentifierRequest>,
    ) -> Result<Response<pb::ParseIdentifierResponse>, Status> {
        let request = request.into_inner();
        let (parsed, epc) = self
            .resolver
            .resolve("text", &request.text, request.company_prefix_length)
            .await?;
        Ok(Response::new(pb::ParseIdentifierResponse {
            syntax: match parsed.syntax {
                Syntax::EpcUrn => pb::IdentifierSyntax::EpcUrn,
                Syntax::DigitalLink => pb::IdentifierSyntax::DigitalLink,
                Syntax::ElementString => pb::IdentifierSyntax::ElementString,
                Syntax::EpcHex => pb::IdentifierSyntax::EpcHex,
                Syntax::EpcTagUri => pb::IdentifierSyntax::EpcTagUri,
            }
            .into(),
            tag_uri: parsed
                .tag
                .as_ref()
                .map(|tag| tag.tag_uri())
                .unwrap_or_default(),
            key: parsed.identifier.as_ref().map(|id| pb::Gs1Key {
                key_type: key_type(id.kind).into(),
                value: id.key.clone(),
                lot: id.lot.clone().unwrap_or_default(),
                serial: id.serial.clone().unwrap_or_default(),
            }),
            elements: parsed
                .elements
                .elements()
                .iter()
                .map(|e| pb::ApplicationIdentifierValue {
                    ai: e.ai().to_owned(),
                    value: e.value.clone(),
                })
                .collect(),
            epc_urn: epc.unwrap_or_default(),
            digital_link: DigitalLink::from_element_string(DEFAULT_RESOLVER, &parsed.elements)
                .map(|l| l.to_uri())
                .unwrap_or_default(),
            element_string: parsed.elements.to_bracketed(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_serial_pool(
        &self,
        request: Request<pb::CreateSerialPoolRequest>,
    ) -> Result<Response<pb::CreateSerialPoolResponse>, Status> {
        let pool = request
            .into_inner()
            .pool
            .ok_or_else(|| IdentityError::invalid("pool", "required"))?;
        let format = match pb::SerialFormat::try_from(pool.format) {
            Ok(pb::SerialFormat::Numeric) => Some(SerialFormat::Numeric),
            Ok(pb::SerialFormat::Alphanumeric) => Some(SerialFormat::Alphanumeric),
            _ => None,
        };
        let order = match pb::SerialOrder::try_from(pool.order) {
            Ok(pb::SerialOrder::Sequential) => Some(SerialOrder::Sequential),
            Ok(pb::SerialOrder::Randomised) => Some(SerialOrder::Randomised),
            _ => None,
        };
        let spec = PoolSpec::new(
            &pool.name,
            &pool.gtin,
            &pool.company_prefix,
            format,
            pool.length,
            order,
        )?;
        let row = self.pools.create(&spec).await?;
        Ok(Response::new(pb::CreateSerialPoolResponse {
            pool: Some(pool_to_proto(&row)?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_serial_pool(
        &self,
        request: Request<pb::GetSerialPoolRequest>,
    ) -> Result<Response<pb::GetSerialPoolResponse>, Status> {
        let row = self.pools.get(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetSerialPoolResponse {
            pool: Some(pool_to_proto(&row)?),
        }))
    }

    type AllocateSerialsStream = ReceiverStream<Result<pb::AllocateSerialsResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn allocate_serials(
        &self,
        request: Request<pb::AllocateSerialsRequest>,
    ) -> Result<Response<Self::AllocateSerialsStream>, Status> {
        let request = request.into_inner();
        if !(1..=MAX_ALLOCATION).contains(&request.count) {
            return Err(
                IdentityError::invalid("count", format!("must be 1 to {MAX_ALLOCATION}")).into(),
            );
        }
        let request_id = request.request_id.trim();
        if request_id.is_empty() || request_id.len() > 128 {
            return Err(
                IdentityError::invalid("request_id", "required, at most 128 characters").into(),
            );
        }
        let (row, allocation) = self
            .pools
            .allocate(&request.pool, request.count, request_id)
            .await?;
        let codec = pools::codec(&row)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        if codec.spec().order == SerialOrder::Sequential {
            let range = pb::SerialRange {
                first: codec.serial(u128::from(allocation.first))?,
                count: allocation.count,
            };
            // The channel has room, and a vanished client only means nobody reads the answer.
            let _ = sender.try_send(Ok(pb::AllocateSerialsResponse {
                ranges: vec![range],
                serials: Vec::new(),
            }));
        } else {
            // Encrypting millions of slots takes a while: stream it from a blocking thread.
            tokio::task::spawn_blocking(move || {
                let end = allocation.first + allocation.count;
                let mut next = allocation.first;
                while next < end {
                    let chunk_end = end.min(next + SERIALS_PER_MESSAGE);
                    let serials: Result<Vec<String>, IdentityError> = (next..chunk_end)
                        .map(|i| codec.serial(u128::from(i)))
                        .collect();
                    let message = serials
                        .map(|serials| pb::AllocateSerialsResponse {
                            ranges: Vec::new(),
                            serials,
                        })
                        .map_err(Status::from);
                    let failed = message.is_err();
                    if sender.blocking_send(message).is_err() || failed {
                        break;
                    }
                    next = chunk_end;
                }
            });
        }
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_identifier_state(
        &self,
        request: Request<pb::GetIdentifierStateRequest>,
    ) -> Result<Response<pb::GetIdentifierStateResponse>, Status> {
        let epc = request.into_inner().epc;
        let status = self.statuses(&[epc], |_| "epc".to_owned(), false).await?;
        Ok(Response::new(pb::GetIdentifierStateResponse {
            status: status.into_iter().next(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn batch_get_identifier_states(
        &self,
        request: Request<pb::BatchGetIdentifierStatesRequest>,
    ) -> Result<Response<pb::BatchGetIdentifierStatesResponse>, Status> {
        let epcs = request.into_inner().epcs;
        if epcs.len() > 10_000 {
            return Err(IdentityError::invalid("epcs", "at most 10000 per call").into());
        }
        Ok(Response::new(pb::BatchGetIdentifierStatesResponse {
            statuses: self
                .statuses(&epcs, |index| format!("epcs/{index}"), true)
                .await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_identifier_states(
        &self,
        request: Request<pb::UpdateIdentifierStatesRequest>,
    ) -> Result<Response<pb::UpdateIdentifierStatesResponse>, Status> {
        let mut transitions = Vec::new();
        for (index, t) in request.into_inner().transitions.into_iter().enumerate() {
            let field = |name: &str| format!("transitions/{index}/{name}");
            let (_, epc) = self.resolver.instance_epc(&field("epc"), &t.epc).await?;
            let to = match pb::IdentifierState::try_from(t.state) {
                Ok(pb::IdentifierState::Commissioned) => LifecycleState::Commissioned,
                Ok(pb::IdentifierState::Decommissioned) => LifecycleState::Decommissioned,
                Ok(pb::IdentifierState::Destroyed) => LifecycleState::Destroyed,
                _ => {
                    return Err(IdentityError::invalid(
                        field("state"),
                        "must be COMMISSIONED, DECOMMISSIONED or DESTROYED",
                    )
                    .into());
                }
            };
            if t.event_id.trim().is_empty() {
                return Err(IdentityError::invalid(field("event_id"), "required").into());
            }
            let at = t
                .update_time
                .and_then(|ts| {
                    DateTime::<Utc>::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
                })
                .ok_or_else(|| {
                    IdentityError::invalid(field("update_time"), "required (the event time)")
                })?;
            transitions.push(Transition {
                epc,
                to,
                event_id: t.event_id,
                at,
            });
        }
        match &self.manual {
            Some(manual) => {
                manual.capture(&transitions).await?;
                self.check_applied(&transitions).await?;
            }
            None => {
                self.states
                    .apply(&transitions, |transition, stored| {
                        let before = stored.map_or(LifecycleState::Unknown, |s| s.state);
                        lifecycle::decide(transition, before, stored.map(|s| s.event_id.as_str()))
                    })
                    .await?;
            }
        }
        Ok(Response::new(pb::UpdateIdentifierStatesResponse {
            statuses: transitions
                .into_iter()
                .map(|t| pb::IdentifierStatus {
                    epc: t.epc,
                    state: state_to_proto(t.to).into(),
                    update_time: Some(proto_fields::timestamp(t.at)),
                    event_id: t.event_id,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn render_label(
        &self,
        request: Request<pb::RenderLabelRequest>,
    ) -> Result<Response<pb::RenderLabelResponse>, Status> {
        let request = request.into_inner();
        let symbology = match pb::Symbology::try_from(request.symbology) {
            Ok(pb::Symbology::Gs1Datamatrix) => Symbology::Gs1DataMatrix,
            Ok(pb::Symbology::Gs1DigitalLinkQr) => Symbology::DigitalLinkQr,
            _ => return Err(IdentityError::invalid("symbology", "required").into()),
        };
        let format = match pb::LabelFormat::try_from(request.format) {
            Ok(pb::LabelFormat::Svg) => LabelFormat::Svg,
            Ok(pb::LabelFormat::Png) => LabelFormat::Png,
            Ok(pb::LabelFormat::Zpl) => LabelFormat::Zpl,
            _ => return Err(IdentityError::invalid("format", "required").into()),
        };
        let prefix_length = request.rfid.as_ref().map_or(0, |r| r.company_prefix_length);
        let (parsed, epc) = self
            .resolver
            .resolve("identifier", &request.identifier, prefix_length)
            .await?;
        let link = digital_link_of(&parsed).unwrap_or_default();
        if symbology == Symbology::DigitalLinkQr && link.is_empty() {
            return Err(
                IdentityError::invalid("identifier", "holds no Digital Link primary key").into(),
            );
        }
        let tag = match &request.rfid {
            None => None,
            Some(rfid) => {
                let epc = epc.ok_or_else(|| {
                    IdentityError::invalid(
                        "rfid.company_prefix_length",
                        "unknown for this identifier: give it, or register the product",
                    )
                })?;
                Some(labels::tag_write(&epc, &rfid.scheme, rfid.filter)?)
            }
        };
        let label = labels::render(symbology, format, &parsed.elements, &link, tag.as_ref())?;
        Ok(Response::new(pb::RenderLabelResponse {
            content: label.content,
            content_type: label.content_type.to_owned(),
            epc_hex: tag.as_ref().map(|t| t.hex.clone()).unwrap_or_default(),
            tag_uri: tag.map(|t| t.tag_uri).unwrap_or_default(),
        }))
    }
}
