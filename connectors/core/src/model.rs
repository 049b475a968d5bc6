//! The canonical model every connector maps its system's records into (ISA-95:
//! MaterialDefinition, ProductDefinition's material specifications, ProductionRequest).
//! Quantities are decimals: ERPs send `"50.000"` and `0.1 + 0.2` must stay `0.3`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a sync fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Items / materials / parts.
    Materials,
    /// Bills of materials with their lines.
    Boms,
    /// Production / work / manufacturing orders.
    Orders,
}

impl RecordKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Materials => "materials",
            Self::Boms => "boms",
            Self::Orders => "orders",
        }
    }
}

/// An item (material master record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Material {
    pub item_code: String,
    pub gtin: Option<String>,
    pub description: String,
    pub unit: String,
    pub revision: Option<String>,
}

/// Where a production order stands, across systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Planned,
    Released,
    InProgress,
    Completed,
    Closed,
    Cancelled,
}

/// A production order (ISA-95 ProductionRequest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionOrder {
    pub number: String,
    pub item_code: String,
    pub quantity: Decimal,
    pub unit: String,
    pub status: OrderStatus,
    pub planned_start: Option<DateTime<Utc>>,
    pub planned_end: Option<DateTime<Utc>>,
    pub actual_start: Option<DateTime<Utc>>,
    pub actual_end: Option<DateTime<Utc>>,
    pub plant: Option<String>,
    pub work_centre: Option<String>,
    /// The BOM revision the order is made to, when the system names it.
    pub bom_revision: Option<String>,
    /// The plants, warehouses and storage locations the order names, by the ERP's codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<ErpLocation>,
}

/// A plant, warehouse or storage location as an ERP names it. ERPs carry no GLN for their
/// warehouses, so a plant maps the codes it uses to SGLNs in its configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ErpLocation {
    /// The ERP's code, as its users see it (`Finished Goods - AC`, `WH/Stock`, `1010/FG01`).
    pub code: String,
    /// What the order does there.
    pub role: LocationRole,
}

/// What a production order does at one of its locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationRole {
    /// The plant that makes it.
    Plant,
    /// Where its components come from.
    Components,
    /// Where work in progress is kept.
    WorkInProgress,
    /// Where the finished goods go.
    FinishedGoods,
}

impl ErpLocation {
    /// `code` in `role`, when the ERP gave one.
    pub fn of(code: Option<String>, role: LocationRole) -> Option<Self> {
        code.filter(|c| !c.trim().is_empty())
            .map(|code| Self { code, role })
    }
}

/// One component line of a BOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BomLine {
    pub component: String,
    /// Quantity per one unit of the BOM's material.
    pub quantity_per: Decimal,
    pub unit: String,
    pub scrap_percent: Decimal,
    /// Lines sharing a group are alternatives to each other.
    pub alternative_group: Option<String>,
}

/// A bill of materials at one revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bom {
    pub material: String,
    pub revision: String,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub lines: Vec<BomLine>,
}

/// One fetched record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Material(Material),
    Bom(Bom),
    Order(ProductionOrder),
}

impl Record {
    /// The record's key within its kind.
    pub fn key(&self) -> String {
        match self {
            Self::Material(m) => m.item_code.clone(),
            Self::Bom(b) => format!("{}@{}", b.material, b.revision),
            Self::Order(o) => o.number.clone(),
        }
    }
}

/// Divides `quantity` by a BOM's base quantity, so lines read "per one unit".
pub fn per_unit(quantity: Decimal, base: Decimal) -> Decimal {
    if base.is_zero() {
        quantity
    } else {
        (quantity / base).normalize()
    }
}
