//! Production reports as SAP production order confirmations: one `ProdnOrdConf2` per
//! report with the yield, our reference as `ConfirmationText`, and goods movements — 101
//! (finished goods receipt, with its batch) and 261 (component issue) — as deep-inserted
//! `to_ProdnOrdConfMatlDocItm` items.
//!
//! Confirmations are not idempotent; [`PostBack::find_posted`] reads the order's
//! confirmations back and matches `ConfirmationText`.

use serde_json::{Value, json};
use tracery_connector::{ConnectorError, PostBack, ProductionReport};

use crate::SapS4;

/// `/Date(ms)/`, OData v2's `Edm.DateTime`.
fn odata_date(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("/Date({})/", at.timestamp_millis())
}

/// An OData v2 string literal: quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl SapS4 {
    fn movement(
        &self,
        plant: &Option<String>,
        material: &str,
        quantity: rust_decimal::Decimal,
        unit: &str,
        lot: &Option<String>,
        movement_type: &str,
    ) -> Value {
        let mut item = json!({
            "Material": material,
            "GoodsMovementType": movement_type,
            "QuantityInEntryUnit": quantity.normalize().to_string(),
            "EntryUnit": unit,
        });
        if let Some(plant) = plant.as_ref().or(self.settings.plant.as_ref()) {
            item["Plant"] = json!(plant);
        }
        if let Some(location) = &self.settings.storage_location {
            item["StorageLocation"] = json!(location);
        }
        if let Some(lot) = lot {
            item["Batch"] = json!(lot);
        }
        item
    }

    /// The confirmation document for `report`.
    fn confirmation(&self, report: &ProductionReport) -> Value {
        let mut receipt = self.movement(
            &report.plant,
            &report.material,
            report.quantity,
            &report.unit,
            &report.lot,
            "101",
        );
        receipt["OrderItem"] = json!("1");
        let mut movements = vec![receipt];
        movements.extend(report.consumed.iter().map(|c| {
            self.movement(
                &report.plant,
                &c.material,
                c.quantity,
                &c.unit,
                &c.lot,
                "261",
            )
        }));
        json!({
            "OrderID": report.order,
            "Sequence": "0",
            "OrderOperation": self.settings.confirmation_operation,
            "ConfirmationYieldQuantity": report.quantity.normalize().to_string(),
            "ConfirmationScrapQuantity": "0",
            "ConfirmationUnit": report.unit,
            "PostingDate": odata_date(report.made_at),
            "IsFinalConfirmation": false,
            "ConfirmationText": report.reference,
            "to_ProdnOrdConfMatlDocItm": {"results": movements},
        })
    }
}

/// `ConfirmationGroup/ConfirmationCount`, how SAP names a confirmation.
fn confirmation_name(row: &Value) -> Option<String> {
    let field = |name: &str| row.get(name).and_then(Value::as_str);
    Some(format!(
        "{}/{}",
        field("ConfirmationGroup")?,
        field("ConfirmationCount")?
    ))
}

#[async_trait::async_trait]
impl PostBack for SapS4 {
    async fn find_posted(
        &self,
        report: &ProductionReport,
    ) -> Result<Option<String>, ConnectorError> {
        let url = format!(
            "{}/ProdnOrdConf2",
            self.service_url(&self.settings.confirmation_service)
        );
        let body = self
            .get(
                &url,
                &[
                    ("$filter", format!("OrderID eq {}", literal(&report.order))),
                    ("$format", "json".to_owned()),
                ],
            )
            .await?;
        let rows = body
            .pointer("/d/results")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::malformed("d.results", "not a collection"))?;
        Ok(rows
            .iter()
            .filter(|row| {
                row.get("ConfirmationText").and_then(Value::as_str)
                    == Some(report.reference.as_str())
            })
            // A cancelled confirmation no longer counts.
            .filter(|row| row.get("IsReversed").and_then(Value::as_bool) != Some(true))
            .find_map(confirmation_name))
    }

    #[tracing::instrument(skip_all, fields(system = "sap_s4", reference = %report.reference))]
    async fn post(&self, report: &ProductionReport) -> Result<String, ConnectorError> {
        let body = self
            .post(
                &self.settings.confirmation_service,
                "/ProdnOrdConf2",
                &self.confirmation(report),
            )
            .await?;
        body.get("d").and_then(confirmation_name).ok_or_else(|| {
            ConnectorError::malformed(
                "d.ConfirmationGroup",
                "the confirmation has no group and count",
            )
        })
    }
}
