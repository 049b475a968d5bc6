//! Production reports as ERPNext stock entries: one submitted `Stock Entry` of type
//! `Manufacture` per report, issuing the consumed batches and receiving the finished item
//! (with its batch), linked to the work order, our reference in `reference_field`.

use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde_json::{Value, json};
use tracery_connector::{ConnectorError, PostBack, ProductionReport, http::Repeat};

use crate::{ErpNext, resource_path};

impl ErpNext {
    /// The Stock Entry document for `report`.
    fn stock_entry(&self, report: &ProductionReport) -> Value {
        let local = self.zone.to_local(report.made_at);
        let line = |material: &str,
                    quantity: Decimal,
                    unit: &str,
                    lot: &Option<String>,
                    warehouse: (&str, &Option<String>)| {
            let mut line = json!({"item_code": material, "qty": quantity.to_f64(), "uom": unit});
            let (field, warehouse) = warehouse;
            if let Some(warehouse) = warehouse {
                line[field] = json!(warehouse);
            }
            if let Some(lot) = lot {
                line["batch_no"] = json!(lot);
                line["use_serial_batch_fields"] = json!(1);
            }
            line
        };
        let mut items: Vec<Value> = report
            .consumed
            .iter()
            .map(|c| {
                line(
                    &c.material,
                    c.quantity,
                    &c.unit,
                    &c.lot,
                    ("s_warehouse", &self.wip_warehouse),
                )
            })
            .collect();
        let mut finished = line(
            &report.material,
            report.quantity,
            &report.unit,
            &report.lot,
            ("t_warehouse", &self.fg_warehouse),
        );
        finished["is_finished_item"] = json!(1);
        items.push(finished);
        let mut entry = json!({
            "stock_entry_type": "Manufacture",
            "work_order": report.order,
            "fg_completed_qty": report.quantity.to_f64(),
            "posting_date": local.format("%Y-%m-%d").to_string(),
            "posting_time": local.format("%H:%M:%S").to_string(),
            "set_posting_time": 1,
            // Without reported consumption ERPNext takes the components from the BOM.
            "from_bom": i32::from(report.consumed.is_empty()),
            "items": items,
            "docstatus": 1,
        });
        entry[self.reference_field.as_str()] = json!(report.reference);
        entry
    }
}

fn document_name(body: &Value) -> Result<String, ConnectorError> {
    body.pointer("/data/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ConnectorError::malformed("data.name", "the stock entry has no name"))
}

#[async_trait::async_trait]
impl PostBack for ErpNext {
    async fn find_posted(
        &self,
        report: &ProductionReport,
    ) -> Result<Option<String>, ConnectorError> {
        // Cancelled entries (docstatus 2) no longer count: posting again is right then.
        let filters = json!([
            [self.reference_field, "=", report.reference],
            ["docstatus", "<", 2]
        ]);
        let body = self
            .get(
                &resource_path("Stock Entry", None),
                &[
                    ("fields", r#"["name"]"#.to_owned()),
                    ("filters", filters.to_string()),
                    ("limit_page_length", "1".to_owned()),
                ],
            )
            .await?;
        let rows = body
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::malformed("data", "the list has no `data` array"))?;
        Ok(rows
            .first()
            .and_then(|row| row.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    #[tracing::instrument(skip_all, fields(system = "erpnext", reference = %report.reference))]
    async fn post(&self, report: &ProductionReport) -> Result<String, ConnectorError> {
        let body = self
            .call(
                Repeat::Once,
                reqwest::Method::POST,
                &resource_path("Stock Entry", None),
                &[],
                Some(&self.stock_entry(report)),
            )
            .await?;
        document_name(&body)
    }
}
