//! Alert rules: standing queries plus a condition over a time window, evaluated as events
//! are stored, raising one alert per episode of the condition and resolving it when the
//! condition clears.
//!
//! - [`rule`]: what a rule is, read the same from the configuration file and from gRPC.
//! - [`evaluate`]: follows the store for each rule and decides when an episode starts
//!   and ends.
//! - [`store`]: rules, alerts (one open episode per rule, held by the database) and the
//!   outbox of notices.
//! - [`notify`]: delivers the notices to a signed webhook and an MQTT topic.
//!
//! The dashboard shows the alerts and lets people acknowledge and resolve them over
//! `tracery.v1.AlertService`, which this module serves; both are audited.

pub mod evaluate;
pub mod notify;
pub mod rule;
pub mod store;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracery_proto::v1::{self as pb, alert_service_server::AlertService};
use tracery_runtime::{
    auth::Principal,
    config::{AlertSettings, SubscriptionSettings},
    proto_fields::{self, Page},
};

use crate::{domain::CaptureError, store::EventStore};

/// Rules of the configuration file are stored with this origin; rules of the API with
/// [`API`].
const CONFIG: &str = "config";
const API: &str = "api";

/// The alert side of capture in this process: the gRPC service and what wakes the
/// evaluator and the channels.
#[derive(Clone)]
pub struct Alerts {
    store: EventStore,
    /// Rules changed over gRPC.
    rules_changed: Arc<Notify>,
    /// Alerts changed by a person.
    notices_added: Arc<Notify>,
}

impl Alerts {
    /// Stores the file's rules (refusing a malformed one, naming its field), then starts
    /// the evaluator and the configured channels.
    pub async fn start(
        store: EventStore,
        settings: &AlertSettings,
        subscriptions: &SubscriptionSettings,
        committed: Arc<Notify>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<(Self, Vec<JoinHandle<()>>)> {
        load_config_rules(store.db(), &settings.rules).await?;
        let alerts = Self {
            store: store.clone(),
            rules_changed: Arc::new(Notify::new()),
            notices_added: Arc::new(Notify::new()),
        };
        let mut tasks = Vec::new();
        let evaluator = evaluate::Evaluator::new(store.clone(), Arc::clone(&alerts.rules_changed));
        // The evaluator's alerts wake the channels too, at its next round.
        let evaluator_committed = Arc::clone(&committed);
        tasks.push(tokio::spawn(
            evaluator.run(evaluator_committed, shutdown.clone()),
        ));
        if let Some(webhook) = &settings.webhook {
            check_destination(&webhook.url, subscriptions.allow_plain_http)?;
            let channel = notify::WebhookChannel::new(
                store.clone(),
                webhook,
                Duration::from_secs(subscriptions.timeout_secs.max(1)),
                Duration::from_secs(subscriptions.max_retry_secs.max(1)),
            )?;
            tasks.push(tokio::spawn(
                channel.run(Arc::clone(&alerts.notices_added), shutdown.clone()),
            ));
        }
        if let Some(mqtt) = &settings.mqtt {
            let channel = notify::MqttChannel::new(store, mqtt.clone())?;
            tasks.push(tokio::spawn(
                channel.run(Arc::clone(&alerts.notices_added), shutdown.clone()),
            ));
        }
        Ok((alerts, tasks))
    }
}

/// A webhook goes where a subscription's may ([`crate::webhooks::destination`]).
fn check_destination(url: &str, allow_plain_http: bool) -> anyhow::Result<()> {
    crate::webhooks::destination(url, allow_plain_http)
        .map(|_| ())
        .map_err(|refusal| anyhow::anyhow!("alerts.webhook.url: {}", refusal.detail))
}

/// Stores the `[[alerts.rules]]` of the file and removes file rules taken out of it.
async fn load_config_rules(
    db: &sea_orm::DatabaseConnection,
    tables: &[toml::Table],
) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut names = Vec::new();
    for (index, table) in tables.iter().enumerate() {
        let mut definition = serde_json::to_value(table)?;
        let name = definition
            .as_object_mut()
            .and_then(|object| object.remove("name"))
            .and_then(|name| name.as_str().map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("alerts.rules[{index}].name: missing"))?;
        let compiled = rule::read(&name, definition)
            .and_then(|definition| rule::compile(&name, definition, now))
            .map_err(|err| anyhow::anyhow!("alerts.rules[{index}]: {err}"))?;
        if let Some(why) = &compiled.never_matches {
            tracing::warn!(rule = %name, %why, "alert rule can never fire");
        }
        store::put_rule(db, stored(&compiled, CONFIG, now)?).await?;
        names.push(name);
    }
    store::retire_rules(db, CONFIG, &names, now).await?;
    Ok(())
}

fn stored(
    rule: &rule::Rule,
    origin: &str,
    now: chrono::DateTime<Utc>,
) -> Result<store::StoredRule, CaptureError> {
    Ok(store::StoredRule {
        name: rule.name.clone(),
        definition: serde_json::to_string(&rule.definition).map_err(|err| {
            CaptureError::Invalid {
                field: "definition_json".into(),
                reason: err.to_string(),
            }
        })?,
        origin: origin.to_owned(),
        updated_at: now,
    })
}

/// The rule as the API shows it, with what can be told wrong about it.
fn rule_to_proto(stored: &store::StoredRule) -> pb::AlertRule {
    let never_matches = rule::from_stored(&stored.name, &stored.definition, Utc::now())
        .ok()
        .and_then(|compiled| compiled.never_matches)
        .unwrap_or_default();
    pb::AlertRule {
        name: stored.name.clone(),
        definition_json: stored.definition.clone(),
        origin: stored.origin.clone(),
        never_matches,
    }
}

fn alert_to_proto(alert: store::Alert) -> pb::Alert {
    let time = |t: Option<chrono::DateTime<Utc>>| t.map(proto_fields::timestamp);
    pb::Alert {
        status: store::status(&alert).to_owned(),
        fired_at: Some(proto_fields::timestamp(alert.fired_at)),
        cleared_at: time(alert.cleared_at),
        acknowledged_at: time(alert.acknowledged_at),
        resolved_at: time(alert.resolved_at),
        id: alert.id,
        rule: alert.rule,
        detail: alert.detail,
        event_id: alert.event_id.unwrap_or_default(),
        acknowledged_by: alert.acknowledged_by.unwrap_or_default(),
        resolved_by: alert.resolved_by.unwrap_or_default(),
    }
}

/// Who acts: the caller, or the person the suite (the dashboard) acts for.
fn actor<T>(request: &Request<T>, on_behalf_of: &str) -> String {
    match request.extensions().get::<Principal>() {
        Some(principal) if principal.subject != "tracery" => principal.subject.clone(),
        _ if !on_behalf_of.is_empty() => on_behalf_of.to_owned(),
        Some(principal) => principal.subject.clone(),
        None => "anonymous (dev mode)".to_owned(),
    }
}

#[tonic::async_trait]
impl AlertService for Alerts {
    async fn put_alert_rule(
        &self,
        request: Request<pb::PutAlertRuleRequest>,
    ) -> Result<Response<pb::PutAlertRuleResponse>, Status> {
        let request = request.into_inner();
        rule::check_name(&request.name)?;
        let definition: serde_json::Value = serde_json::from_str(&request.definition_json)
            .map_err(|err| CaptureError::Invalid {
                field: "definition_json".into(),
                reason: format!("not JSON: {err}"),
            })?;
        let now = Utc::now();
        let compiled = rule::read(&request.name, definition)
            .and_then(|definition| rule::compile(&request.name, definition, now))?;
        let row = stored(&compiled, API, now)?;
        store::put_rule(self.store.db(), row.clone()).await?;
        self.rules_changed.notify_one();
        Ok(Response::new(pb::PutAlertRuleResponse {
            rule: Some(rule_to_proto(&row)),
        }))
    }

    async fn delete_alert_rule(
        &self,
        request: Request<pb::DeleteAlertRuleRequest>,
    ) -> Result<Response<pb::DeleteAlertRuleResponse>, Status> {
        let name = request.into_inner().name;
        let deleted = store::delete_rule(self.store.db(), &name, API, Utc::now()).await?;
        self.rules_changed.notify_one();
        self.notices_added.notify_waiters();
        Ok(Response::new(pb::DeleteAlertRuleResponse { deleted }))
    }

    async fn list_alert_rules(
        &self,
        _request: Request<pb::ListAlertRulesRequest>,
    ) -> Result<Response<pb::ListAlertRulesResponse>, Status> {
        let rules = store::rules(self.store.db()).await?;
        Ok(Response::new(pb::ListAlertRulesResponse {
            rules: rules.iter().map(rule_to_proto).collect(),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let request = request.into_inner();
        let page = Page::from_request(request.page.as_ref());
        let rows = store::list(
            self.store.db(),
            request.include_resolved,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let (rows, next) = page.split(rows, |alert| alert.id.clone());
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: rows.into_iter().map(alert_to_proto).collect(),
            page: Some(next),
        }))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AlertActionRequest>,
    ) -> Result<Response<pb::AlertActionResponse>, Status> {
        self.act(request, store::Action::Acknowledge).await
    }

    async fn resolve_alert(
        &self,
        request: Request<pb::AlertActionRequest>,
    ) -> Result<Response<pb::AlertActionResponse>, Status> {
        self.act(request, store::Action::Resolve).await
    }
}

impl Alerts {
    async fn act(
        &self,
        request: Request<pb::AlertActionRequest>,
        action: store::Action,
    ) -> Result<Response<pb::AlertActionResponse>, Status> {
        let by = actor(&request, &request.get_ref().on_behalf_of);
        let id = request.into_inner().id;
        let alert = store::act(self.store.db(), &id, action, &by, Utc::now())
            .await?
            .ok_or(CaptureError::AlertNotFound { what: "alert", id })?;
        self.notices_added.notify_waiters();
        Ok(Response::new(pb::AlertActionResponse {
            alert: Some(alert_to_proto(alert)),
        }))
    }
}
