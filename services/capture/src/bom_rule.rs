//! The BOM-conformance rule: every input of a TransformationEvent made under a production
//! order (a `prodorder` bizTransaction) must be a component of that order's BOM, as the
//! integration service knows it from the ERP. Off unless the plant configures it, since
//! it needs the ERP's orders and BOMs synced.

use std::{collections::HashMap, time::Duration};

use tracery_epcis::{Event, EventKind};
use tracery_proto::v1::{self as pb, integration_service_client::IntegrationServiceClient};
use tracery_runtime::{error::Violation, peers::PeerChannel};

use crate::validation::{Finding, Severity};

/// How long capture waits for integration per check.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The inputs of a transformation, with the field each sits in.
fn inputs(event: &Event) -> Vec<(String, &str)> {
    let EventKind::Transformation(t) = &event.kind else {
        return Vec::new();
    };
    let epcs = t
        .input_epcs
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("inputEPCList/{i}"), e.as_str()));
    let classes = t.input_quantities.iter().enumerate().map(|(i, q)| {
        (
            format!("inputQuantityList/{i}/epcClass"),
            q.epc_class.as_str(),
        )
    });
    epcs.chain(classes).collect()
}

/// Verdicts per (order, component), asked once per batch.
#[derive(Default)]
pub struct BomVerdicts {
    verdicts: HashMap<(String, String), Option<String>>,
    /// Why integration could not be asked, if it could not.
    pub unavailable: Option<String>,
}

impl BomVerdicts {
    /// Asks integration about every (order, input) pair of `events`.
    pub async fn ask(
        integration: &IntegrationServiceClient<PeerChannel>,
        events: &[&Event],
    ) -> Self {
        let mut verdicts = Self::default();
        for event in events {
            for order in event.production_orders() {
                for (_, component) in inputs(event) {
                    let key = (order.to_owned(), component.to_owned());
                    if verdicts.verdicts.contains_key(&key) || verdicts.unavailable.is_some() {
                        continue;
                    }
                    let request = pb::CheckBomConformanceRequest {
                        order_number: key.0.clone(),
                        component: key.1.clone(),
                    };
                    let answer = tokio::time::timeout(
                        INTEGRATION_TIMEOUT,
                        integration.clone().check_bom_conformance(request),
                    )
                    .await;
                    match answer {
                        Ok(Ok(response)) => {
                            let response = response.into_inner();
                            verdicts
                                .verdicts
                                .insert(key, (!response.conforms).then_some(response.reason));
                        }
                        Ok(Err(status)) => {
                            verdicts.unavailable =
                                Some(format!("integration: {}", status.message()))
                        }
                        Err(_) => {
                            verdicts.unavailable = Some(format!(
                                "integration did not answer within {INTEGRATION_TIMEOUT:?}"
                            ))
                        }
                    }
                }
            }
        }
        verdicts
    }

    /// The findings for `event`: one per input not on its order's BOM.
    pub fn check(&self, event: &Event, severity: Severity) -> Vec<Finding> {
        let mut findings = Vec::new();
        for order in event.production_orders() {
            for (field, component) in inputs(event) {
                if let Some(Some(reason)) =
                    self.verdicts.get(&(order.to_owned(), component.to_owned()))
                {
                    findings.push(Finding {
                        field,
                        code: "NOT_IN_BOM".to_owned(),
                        message: reason.clone(),
                        severity,
                    });
                }
            }
        }
        findings
    }

    /// The warning for an event the rule could not check.
    pub fn unchecked(&self, event: &Event) -> Option<Violation> {
        let reason = self.unavailable.as_ref()?;
        (event.production_orders().next().is_some() && !inputs(event).is_empty()).then(|| {
            Violation::new("", format!("BOM conformance not checked: {reason}"))
                .with_reason("INTEGRATION_UNAVAILABLE")
        })
    }
}
