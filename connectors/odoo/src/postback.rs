//! Production reports as completed Odoo manufacturing orders.
//!
//! Odoo takes production as a sequence of calls on the MO (each its own transaction), so
//! the first call leaves our mark: a chatter message on the MO naming our reference. Then
//! the MO is confirmed if still a draft, the finished lot found or created and set as
//! `lot_producing_id`, `qty_producing` written (Odoo recomputes the components for it),
//! and `button_mark_done` called with `skip_backorder` / `skip_consumption`, so one report
//! closes its MO. Every step can run again: [`PostBack::find_posted`] counts a report as
//! posted only when the mark is there *and* the MO is done, and a report whose earlier
//! attempt stopped half-way runs the steps again.
//!
//! Not done here: lots of consumed components on the MO's move lines (Odoo takes them
//! from its reservations) and partial production with backorders.

use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use tracery_connector::{ConnectorError, PostBack, ProductionReport, http::Repeat};

use crate::{Odoo, map::many2one_id};

/// The MO fields the steps read.
struct Order {
    id: i64,
    name: String,
    state: String,
    product: Option<i64>,
    company: Option<i64>,
}

impl Odoo {
    async fn order(&self, name: &str) -> Result<Order, ConnectorError> {
        let rows = self
            .transport
            .call(
                "mrp.production",
                "search_read",
                json!({
                    "domain": [["name", "=", name]],
                    "fields": ["id", "name", "state", "product_id", "company_id"],
                    "limit": 1,
                }),
            )
            .await?;
        let row = rows
            .as_array()
            .and_then(|rows| rows.first())
            .ok_or_else(|| ConnectorError::NotFound(format!("manufacturing order `{name}`")))?;
        Ok(Order {
            id: row
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| ConnectorError::malformed("id", "the MO has no id"))?,
            name: name.to_owned(),
            state: row
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            product: row.get("product_id").and_then(many2one_id),
            company: row.get("company_id").and_then(many2one_id),
        })
    }

    /// Whether the MO's chatter carries `reference`.
    async fn marked(&self, order: &Order, reference: &str) -> Result<bool, ConnectorError> {
        let count = self
            .transport
            .call(
                "mail.message",
                "search_count",
                json!({"domain": [
                    ["model", "=", "mrp.production"],
                    ["res_id", "=", order.id],
                    ["body", "ilike", reference],
                ]}),
            )
            .await?;
        Ok(count.as_i64().unwrap_or_default() > 0)
    }

    async fn on_order(
        &self,
        order: &Order,
        method: &str,
        kwargs: Value,
    ) -> Result<Value, ConnectorError> {
        self.transport
            .call_on(
                "mrp.production",
                method,
                Some(&[order.id]),
                kwargs,
                Repeat::Once,
            )
            .await
    }

    /// The finished lot's id, created when Odoo does not have it yet.
    async fn lot(&self, order: &Order, name: &str) -> Result<i64, ConnectorError> {
        let product = order
            .product
            .ok_or_else(|| ConnectorError::malformed("product_id", "the MO has no product"))?;
        let found = self
            .transport
            .call(
                "stock.lot",
                "search_read",
                json!({
                    "domain": [["name", "=", name], ["product_id", "=", product]],
                    "fields": ["id"],
                    "limit": 1,
                }),
            )
            .await?;
        if let Some(id) = found
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("id"))
            .and_then(Value::as_i64)
        {
            return Ok(id);
        }
        let mut values = json!({"name": name, "product_id": product});
        if let Some(company) = order.company {
            values["company_id"] = json!(company);
        }
        let created = self
            .transport
            .call_on(
                "stock.lot",
                "create",
                None,
                json!({"vals_list": [values]}),
                Repeat::Once,
            )
            .await?;
        // `create` answers one id, or a list of ids for a list of values.
        created
            .as_i64()
            .or_else(|| created.as_array()?.first()?.as_i64())
            .ok_or_else(|| ConnectorError::malformed("result", "stock.lot.create gave no id"))
    }
}

#[async_trait::async_trait]
impl PostBack for Odoo {
    async fn find_posted(
        &self,
        report: &ProductionReport,
    ) -> Result<Option<String>, ConnectorError> {
        let order = self.order(&report.order).await?;
        Ok(
            (order.state == "done" && self.marked(&order, &report.reference).await?)
                .then_some(order.name),
        )
    }

    #[tracing::instrument(skip_all, fields(system = "odoo", reference = %report.reference))]
    async fn post(&self, report: &ProductionReport) -> Result<String, ConnectorError> {
        let order = self.order(&report.order).await?;
        if order.state == "done" || order.state == "cancel" {
            return Err(ConnectorError::Status {
                status: 409,
                message: format!("manufacturing order {} is {}", order.name, order.state),
            });
        }
        if !self.marked(&order, &report.reference).await? {
            let body = format!(
                "Tracery posting {}: {} {} produced{}",
                report.reference,
                report.quantity.normalize(),
                report.unit,
                report
                    .lot
                    .as_ref()
                    .map(|lot| format!(", lot {lot}"))
                    .unwrap_or_default()
            );
            self.on_order(&order, "message_post", json!({"body": body}))
                .await?;
        }
        if order.state == "draft" {
            self.on_order(&order, "action_confirm", json!({})).await?;
        }
        let mut values = json!({"qty_producing": report.quantity.to_f64()});
        if let Some(lot) = &report.lot {
            values["lot_producing_id"] = json!(self.lot(&order, lot).await?);
        }
        self.on_order(&order, "write", json!({"vals": values}))
            .await?;
        let done = self
            .on_order(
                &order,
                "button_mark_done",
                json!({"context": {"skip_backorder": true, "skip_consumption": true}}),
            )
            .await?;
        // An action dict is a wizard Odoo wants answered: the MO is not done.
        if done != Value::Bool(true) {
            let wizard = done
                .get("res_model")
                .and_then(Value::as_str)
                .unwrap_or("an unknown wizard");
            return Err(ConnectorError::Status {
                status: 409,
                message: format!(
                    "manufacturing order {} was not closed: Odoo asks for {wizard}",
                    order.name
                ),
            });
        }
        Ok(order.name)
    }
}
