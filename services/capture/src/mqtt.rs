//! MQTT intake: capture subscribes to scanner messages on a broker. Each message is either a
//! full EPCIS event in JSON-LD or a compact scan message (see [`crate::scan`]), goes through
//! the same pipeline as gRPC events, and is acknowledged (QoS 1 PUBACK) only once it is
//! durable — stored, or quarantined with its reasons. Until then the broker keeps it for this
//! client's persistent session and delivers it again after a reconnect.

use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio_util::sync::CancellationToken;
use tracery_epcis::{EpcisError, bounds, hash::HashContext};
use tracery_runtime::{config::MqttSettings, error::Violation};

use crate::{
    domain::{Admission, Channel, Rejected},
    intake::Intake,
    pipeline::{admit, admit_json},
    scan,
};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the MQTT intake until `shutdown`.
pub async fn run(settings: MqttSettings, intake: Intake, shutdown: CancellationToken) {
    let (host, port) = match settings.broker_address() {
        Ok(address) => address,
        Err(err) => {
            tracing::error!(error = %err, "MQTT intake not started");
            return;
        }
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut options = MqttOptions::new(settings.client_id.clone(), host.clone(), port);
        options
            .set_manual_acks(true)
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(30));
        let (client, eventloop) = AsyncClient::new(options, 64);
        tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = serve(&settings, &client, eventloop, &intake) => {
                if let Err(err) = outcome {
                    tracing::warn!(error = %err, broker = %settings.broker, ?backoff, "MQTT intake: reconnecting");
                } else {
                    backoff = Duration::from_millis(100);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn serve(
    settings: &MqttSettings,
    client: &AsyncClient,
    mut eventloop: EventLoop,
    intake: &Intake,
) -> anyhow::Result<()> {
    loop {
        match eventloop.poll().await? {
            MqttEvent::Incoming(Packet::ConnAck(_)) => {
                client
                    .subscribe(settings.topic.clone(), QoS::AtLeastOnce)
                    .await?;
                tracing::info!(topic = %settings.topic, "MQTT intake subscribed");
            }
            MqttEvent::Incoming(Packet::Publish(publish)) => {
                // Recorded before it is captured, like every write; a message that cannot
                // be recorded is not acknowledged, so the broker delivers it again.
                let record = tracery_runtime::audit::Record {
                    subject: format!("mqtt:{}", publish.topic),
                    action: "MQTT capture".to_owned(),
                    source: settings.broker.clone(),
                    request_id: uuid::Uuid::now_v7().to_string(),
                };
                tracery_runtime::audit::append(intake.db(), record).await?;
                let admission = admission(settings, intake, &publish);
                // Not acknowledging on a storage error makes the broker deliver it again.
                intake
                    .capture_admissions(vec![admission], Channel::Mqtt)
                    .await?;
                client.ack(&publish).await?;
            }
            _ => {}
        }
    }
}

fn admission(settings: &MqttSettings, intake: &Intake, publish: &Publish) -> Admission {
    let reject = |violation: Violation| {
        Admission::Reject(Rejected {
            payload: Some(String::from_utf8_lossy(&publish.payload).into_owned()),
            payload_protobuf: None,
            violations: vec![violation],
            channel: Channel::Mqtt,
        })
    };
    let value = match bounds::parse_json(&publish.payload, &intake.policy().bounds) {
        Ok(value) => value,
        Err(EpcisError::MalformedJson(err)) => {
            return reject(
                Violation::new("", format!("not JSON: {err}")).with_reason("MALFORMED_MESSAGE"),
            );
        }
        Err(err) => {
            return reject(Violation::new("", err.to_string()).with_reason("OVER_LIMIT"));
        }
    };
    if !scan::is_scan(&value) {
        let context = HashContext::from_json(&value);
        return admit_json(value, Channel::Mqtt, intake.policy(), &context);
    }
    match scan::to_event(&publish.payload, &value, &settings.readers) {
        Ok(event) => admit(
            event,
            Channel::Mqtt,
            intake.policy(),
            &HashContext::default(),
        ),
        Err(violations) => Admission::Reject(Rejected {
            payload: Some(value.to_string()),
            payload_protobuf: None,
            violations,
            channel: Channel::Mqtt,
        }),
    }
}
