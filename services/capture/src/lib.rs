//! The capture service: the front door for EPCIS 2.0 events.
//!
//! - [`domain`]: the error type, outcomes and admission decisions; no I/O.
//! - [`validation`]: GS1 identifier and CBV vocabulary rules for one event; no I/O.
//! - [`event_admission`]: one event read → validated → accepted or quarantined, the same
//!   for every channel.
//! - [`state_rules`]: lifecycle rules (retired, duplicate, unknown identifiers), decided
//!   where events are stored against capture's own lifecycle table.
//! - [`bom_rule`]: the BOM-conformance rule against integration's orders and BOMs.
//! - [`containment`]: the packing rule (a child inside one parent cannot go into another).
//! - [`batch_intake`]: one batch through event admission, the BOM rule and one durable
//!   store transaction.
//! - [`rest`]: the EPCIS 2.0 REST binding (capture jobs, events, queries) on the HTTP listener.
//! - [`mqtt`] and [`scan`]: scanner messages from an MQTT broker, acknowledged once durable.
//! - [`store`]: the append-only event store (sea-orm) with its monotonic sequence, and the
//!   quarantine.
//! - [`grpc`]: the `tracery.v1.CaptureService` adapter, including `Subscribe`.
//! - [`alerts`]: alert rules over the stored events, their alerts and notices
//!   (`tracery.v1.AlertService`).
//! - [`archive_api`]: its archive methods (export, drop, import of closed months).

pub mod alerts;
pub mod archive_api;
pub mod batch_intake;
pub mod bom_rule;
pub mod containment;
pub mod domain;
pub mod event_admission;
pub mod grpc;
pub mod mqtt;
pub mod query_language;
pub mod query_schedule;
pub mod rest;
pub mod rfid;
pub mod roles;
pub mod scan;
pub mod state_rules;
pub mod store;
pub mod validation;
pub mod webhooks;

use std::sync::Arc;

use tracery_proto::v1::capture_service_server::CaptureServiceServer;
use tracery_runtime::{
    Migrations, ModuleInfo, Routes, ServiceContext, ServiceKey, ServiceModule, Started,
};

/// Capture: the front door for EPCIS events (gRPC, REST, MQTT) and their store.
pub struct CaptureModule;

#[async_trait::async_trait]
impl ServiceModule for CaptureModule {
    async fn start(&self, ctx: &ServiceContext, routes: &mut Routes) -> Started {
        let mut policy = validation::Policy::from_settings(&ctx.config.capture_rules)
            .map_err(anyhow::Error::msg)?;
        policy.max_events_per_batch = ctx.config.limits.max_events_per_batch;
        policy.capture_queue = ctx.config.limits.capture_queue.max(1);
        policy.bounds =
            tracery_epcis::bounds::Bounds::with_depth(ctx.config.limits.max_nesting_depth);
        policy.clock = ctx.config.clock.clone();
        let integration = match ctx.peers.channel(ServiceKey::Integration) {
            Ok(channel) => Some(channel),
            Err(err) if policy.bom_conformance.is_some() => {
                tracing::warn!(error = %err, "capture runs without the BOM-conformance rule");
                None
            }
            Err(_) => None,
        };
        let peers = batch_intake::IntakePeers { integration };
        store::integrity::relink_legacy(&ctx.db, ctx.integrity.keys()).await?;
        let api = grpc::CaptureApi::new(
            ctx.db.clone(),
            Arc::clone(&ctx.integrity),
            policy,
            peers,
            ctx.shutdown.clone(),
        );
        let mut tasks = vec![api.store().maintain_payloads(ctx.shutdown.clone())];
        if let Some(settings) = ctx.config.capture_mqtt.clone() {
            let plant = ctx.config.auth.as_ref().map(|auth| auth.plant.clone());
            let mqtt = mqtt::MqttIntake::new(settings, plant, ctx.config.limits.max_body_bytes)?;
            tasks.push(tokio::spawn(mqtt::run(
                mqtt,
                api.intake(),
                ctx.shutdown.clone(),
            )));
        }
        let plant = ctx.config.auth.as_ref().map(|auth| auth.plant.clone());
        if let Some(rfid) =
            rfid::RfidIntake::new(&ctx.config.rfid, plant, ctx.config.limits.max_body_bytes)?
        {
            let (rfid_tasks, posted) =
                rfid.start(api.intake(), ctx.db.clone(), ctx.shutdown.clone());
            tasks.extend(rfid_tasks);
            routes.add_http(rfid::router(posted));
        }
        tasks.push(tokio::spawn(tracery_runtime::integrity::checkpoint_every(
            ctx.config.integrity.checkpoint_interval,
            Arc::clone(&ctx.integrity),
            ctx.db.clone(),
            store::integrity::CHAIN,
            ctx.shutdown.clone(),
            |db| Box::pin(async move { store::integrity::head(&db).await }),
        )));
        let webhooks = webhooks::Webhooks::new(api.store(), ctx.config.subscriptions.clone())?;
        tasks.push(tokio::spawn(
            webhooks.run(api.intake().committed(), ctx.shutdown.clone()),
        ));
        let (alerts, alert_tasks) = alerts::Alerts::start(
            api.store(),
            &ctx.config.alerts,
            &ctx.config.subscriptions,
            api.intake().committed(),
            &ctx.shutdown,
        )
        .await?;
        tasks.extend(alert_tasks);
        routes
            .grpc
            .add_service(tracery_proto::v1::alert_service_server::AlertServiceServer::new(alerts));
        let paging = rest::Paging {
            max_per_page: ctx.config.limits.max_page_size.max(1),
            token_lifetime: std::time::Duration::from_secs(
                ctx.config.limits.page_token_lifetime_secs,
            ),
        };
        routes.add_http(rest::router(
            api.intake(),
            api.store(),
            paging,
            ctx.config.subscriptions.clone(),
            ctx.shutdown.clone(),
        ));
        routes.grpc.add_service(CaptureServiceServer::new(api));
        Ok(tasks)
    }

    fn info(&self) -> ModuleInfo {
        ModuleInfo::new(ServiceKey::Capture, Migrations::of::<store::Migrator>())
    }
}
