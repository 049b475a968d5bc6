//! Production posted back to the ERP: what was made under an order and what it consumed,
//! as one document in the ERP (an ERPNext Stock Entry, an SAP order confirmation).
//!
//! No ERP here takes an idempotency key, so each document carries our `reference` in a
//! field of its own and [`PostBack::find_posted`] looks for it: the integration service
//! asks before sending again whenever an earlier attempt may have reached the ERP.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ConnectorError;

/// What one production event reports against an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionReport {
    /// Our idempotency key, kept in the ERP document (at most 40 characters: SAP's
    /// confirmation text is that long).
    pub reference: String,
    /// The production order's number in the ERP.
    pub order: String,
    /// The finished material's item code.
    pub material: String,
    /// Quantity made, in `unit`.
    pub quantity: Decimal,
    pub unit: String,
    /// The finished lot (batch), when the event names one.
    pub lot: Option<String>,
    /// The order's plant, as the ERP spells it.
    pub plant: Option<String>,
    /// When it was made (the event time).
    pub made_at: DateTime<Utc>,
    /// Components consumed.
    pub consumed: Vec<Consumed>,
}

/// One consumed component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumed {
    /// Item code.
    pub material: String,
    pub quantity: Decimal,
    pub unit: String,
    pub lot: Option<String>,
}

/// An ERP that takes production reports.
#[async_trait::async_trait]
pub trait PostBack: Send + Sync {
    /// The ERP document already carrying `report.reference`, if there is one.
    async fn find_posted(
        &self,
        report: &ProductionReport,
    ) -> Result<Option<String>, ConnectorError>;

    /// Sends `report` once (never again after it may have arrived) and returns the ERP's
    /// document number.
    async fn post(&self, report: &ProductionReport) -> Result<String, ConnectorError>;
}
