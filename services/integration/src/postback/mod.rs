//! Posting production back to the ERP.
//!
//! A captured TransformationEvent, or an ObjectEvent that adds objects, made under a
//! production order (a `prodorder` bizTransaction) is production to report: [`sink`]
//! follows capture and records each such event in the outbox
//! ([`crate::store::postings`]) with the capture cursor; [`worker`] sends what is due
//! through the order's connector, checking the ERP first whenever an earlier attempt may
//! have reached it, and dead-letters what fails for good or past its budget.
//!
//! Error declarations are not posted back (reversing an ERP document is left to people).

pub mod sink;
pub mod worker;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::FromPrimitive};
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracery_connector::{Consumed, ProductionReport};
use tracery_epcis::{Action, Event, EventKind, QuantityElement};

use crate::{
    conformance,
    domain::IntegrationError,
    store::records::{self, record},
};

/// What one production event says, kept with its posting until it is resolved against
/// the synced order and items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionFacts {
    pub made_at: DateTime<Utc>,
    /// Objects made plus quantities made.
    pub produced: f64,
    /// The finished lot: the ilmd lot number, or the lot of an output class.
    pub lot: Option<String>,
    /// What was consumed: identifiers as written, with quantities (1 per object).
    pub inputs: Vec<Input>,
}

/// One consumed object or quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub identifier: String,
    pub quantity: f64,
}

/// Our reference for the posting of `event_id`: short enough for SAP's 40-character
/// confirmation text, the same however often the event is replayed.
pub fn reference(event_id: &str) -> String {
    let digest = Sha256::digest(event_id.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("TRC-{hex}")
}

/// The lot an ilmd names (`cbvmda:lotNumber` or any `…lotNumber` key).
fn ilmd_lot(ilmd: Option<&tracery_epcis::model::Extensions>) -> Option<String> {
    ilmd?
        .iter()
        .find(|(key, _)| key.ends_with("lotNumber"))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}

fn class_lot(class: &str) -> Option<String> {
    tracery_gs1::parse_any(class).ok()?.identifier?.lot
}

fn total(quantities: &[QuantityElement]) -> f64 {
    quantities.iter().filter_map(|q| q.quantity).sum()
}

/// The order reference and facts of `event`, when it is production to post.
pub fn facts_of(event: &Event) -> Option<(String, ProductionFacts)> {
    if event.error_declaration.is_some() {
        return None;
    }
    let order = event.production_orders().next()?.to_owned();
    let made_at = event.event_time.to_utc();
    let facts = match &event.kind {
        EventKind::Transformation(t) => ProductionFacts {
            made_at,
            produced: t.output_epcs.len() as f64 + total(&t.output_quantities),
            lot: ilmd_lot(t.ilmd.as_ref()).or_else(|| {
                t.output_quantities
                    .iter()
                    .find_map(|q| class_lot(&q.epc_class))
            }),
            inputs: t
                .input_epcs
                .iter()
                .map(|epc| Input {
                    identifier: epc.clone(),
                    quantity: 1.0,
                })
                .chain(t.input_quantities.iter().map(|q| Input {
                    identifier: q.epc_class.clone(),
                    quantity: q.quantity.unwrap_or(0.0),
                }))
                .collect(),
        },
        EventKind::Object(o) if o.action == Action::Add => ProductionFacts {
            made_at,
            produced: o.epcs.len() as f64 + total(&o.quantities),
            lot: ilmd_lot(o.ilmd.as_ref())
                .or_else(|| o.quantities.iter().find_map(|q| class_lot(&q.epc_class))),
            inputs: Vec::new(),
        },
        _ => return None,
    };
    (facts.produced > 0.0).then_some((order, facts))
}

/// A report resolved against the synced data, with the connector it goes to.
pub struct Resolved {
    pub connector: String,
    pub report: ProductionReport,
}

/// Resolves `facts` of the posting `reference` against the synced order and items; `Err`
/// with a reason when something is not synced (yet).
pub async fn resolve(
    conn: &impl ConnectionTrait,
    reference: &str,
    order_reference: &str,
    facts: &ProductionFacts,
) -> Result<Result<Resolved, String>, IntegrationError> {
    let Some(row) = conformance::order_record(conn, order_reference).await? else {
        return Ok(Err(format!(
            "production order `{order_reference}` has not been synced from the ERP"
        )));
    };
    let order = records::order_of(&row)?;
    let mut consumed: BTreeMap<(String, Option<String>), (Decimal, String)> = BTreeMap::new();
    for input in &facts.inputs {
        let material = match item_of(conn, &row, &input.identifier).await? {
            Ok(material) => material,
            Err(reason) => return Ok(Err(reason)),
        };
        let entry = consumed
            .entry((material.item_code, class_lot(&input.identifier)))
            .or_insert((Decimal::ZERO, material.unit));
        entry.0 += decimal(input.quantity);
    }
    Ok(Ok(Resolved {
        connector: row.connector.clone(),
        report: ProductionReport {
            reference: reference.to_owned(),
            order: order.number,
            material: order.item_code,
            quantity: decimal(facts.produced),
            unit: order.unit,
            lot: facts.lot.clone(),
            plant: order.plant,
            made_at: facts.made_at,
            consumed: consumed
                .into_iter()
                .map(|((material, lot), (quantity, unit))| Consumed {
                    material,
                    quantity,
                    unit,
                    lot,
                })
                .collect(),
        },
    }))
}

fn decimal(value: f64) -> Decimal {
    Decimal::from_f64(value).unwrap_or_default().normalize()
}

/// The ERP item a consumed identifier is, among the items synced from the order's
/// connector: by GTIN for GS1 identifiers, by item code otherwise.
async fn item_of(
    conn: &impl ConnectionTrait,
    order: &record::Model,
    identifier: &str,
) -> Result<Result<tracery_connector::Material, String>, IntegrationError> {
    let found = match conformance::normal_gtin(identifier) {
        Some(gtin) => records::material(conn, Some(&gtin), None).await?,
        None => records::material(conn, None, Some(identifier)).await?,
    };
    match found.filter(|row| row.connector == order.connector) {
        Some(row) => records::material_of(&row).map(Ok),
        None => Ok(Err(format!(
            "consumed `{identifier}` is not an item synced from `{}`",
            order.connector
        ))),
    }
}
