//! MQTT intake: capture subscribes to scanner messages on a broker. Each message is either a
//! full EPCIS event in JSON-LD or a compact scan message (see [`crate::scan`]), goes through
//! the same pipeline as gRPC events, and is acknowledged (QoS 1 PUBACK) only once it is
//! durable — stored, or quarantined with its reasons. Until then the broker keeps it for this
//! client's persistent session and delivers it again after a reconnect.
//!
//! Who speaks: with `[auth]`, a message speaks for the reader whose configured `topic` it
//! arrived on, with that reader's roles and plant, and passes the same role check as gRPC
//! and REST ([`crate::roles`]). A message on no reader's topic, from another plant, or
//! asking for more than its reader may do is quarantined with the reason — acknowledged,
//! never lost, never applied. The broker itself is reached with a username and password
//! and/or TLS with a client certificate, so that only readers can publish at all.

use std::{collections::BTreeSet, time::Duration};

use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, Publish, QoS,
    TlsConfiguration, Transport,
};
use tokio_util::sync::CancellationToken;
use tracery_epcis::{EpcisError, bounds, hash::HashContext};
use tracery_runtime::{
    audit::DeferredAudit,
    auth::{Plants, Principal, Role},
    config::MqttSettings,
    error::Violation,
};

use crate::{
    batch_intake::Intake,
    domain::{Admission, Channel, ErrorBehaviour, Rejected},
    event_admission::{admit, admit_json},
    scan,
};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Largest packet capture sends (subscriptions and acknowledgements only).
const MAX_OUTGOING_PACKET: usize = 64 * 1024;
/// Largest packet capture reads: MQTT's own maximum. A message over the intake's limit is
/// read and quarantined rather than refused by the client library: a refused packet would
/// never be acknowledged, and the broker would deliver it again forever, holding up every
/// message behind it. The broker's `max_packet_size` is the bound on memory.
const MAX_INCOMING_PACKET: usize = 268_435_455;
/// How much of an over-limit message its quarantine entry keeps.
const KEPT_OF_OVERSIZED: usize = 4096;

/// How capture connects and whom it believes.
pub struct MqttIntake {
    settings: MqttSettings,
    options: MqttOptions,
    /// `[auth].plant`; `None` in dev mode, where messages are not checked.
    plant: Option<String>,
    /// Larger messages are quarantined unread (`limits.max_body_bytes`).
    max_message_bytes: usize,
}

impl MqttIntake {
    /// Reads the broker's credentials and TLS files now, so that a missing secret stops
    /// the start instead of a background task; messages up to `max_message_bytes`.
    pub fn new(
        settings: MqttSettings,
        plant: Option<String>,
        max_message_bytes: usize,
    ) -> anyhow::Result<Self> {
        let options = intake_options(&settings, "capture_mqtt")?;
        Ok(Self {
            settings,
            options,
            plant,
            max_message_bytes,
        })
    }
}

/// How to reach the broker of `settings` (the `table` of the configuration file) as
/// `client_id`: address, credentials (read now, so a missing secret stops the start) and
/// TLS.
pub fn broker_options(
    settings: &MqttSettings,
    client_id: &str,
    table: &str,
) -> anyhow::Result<MqttOptions> {
    let (host, port) = settings.broker_address().map_err(anyhow::Error::msg)?;
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(username) = &settings.username {
        let password = match &settings.password {
            Some(source) => source
                .read(&format!("{table}.password"))
                .map_err(anyhow::Error::msg)?
                .expose()
                .to_owned(),
            None => String::new(),
        };
        options.set_credentials(username.clone(), password);
    }
    if let Some(tls) = &settings.tls {
        let client = tls.cert_file.as_ref().zip(tls.key_file.as_ref());
        let config = tracery_runtime::tls::client_config_for(&tls.ca_file, client)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    Ok(options)
}

/// How an intake reaches the broker of `settings` (the `table` of the configuration
/// file): as [`broker_options`], acknowledging each message itself once it is stored, in
/// a session the broker keeps while the suite is away, and reading messages of any size
/// (see [`MAX_INCOMING_PACKET`]).
pub fn intake_options(settings: &MqttSettings, table: &str) -> anyhow::Result<MqttOptions> {
    let mut options = broker_options(settings, &settings.client_id, table)?;
    options
        .set_manual_acks(true)
        .set_clean_session(false)
        .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    Ok(options)
}

/// A client of the broker and its event loop, with Nagle's algorithm off: acknowledgements
/// are small, and one held back ~40 ms by delayed ACKs stalls the broker's in-flight
/// window and every message behind it.
pub fn client(options: &MqttOptions, capacity: usize) -> (AsyncClient, EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options.clone(), capacity);
    eventloop.network_options.set_tcp_nodelay(true);
    (client, eventloop)
}

/// Runs the MQTT intake until `shutdown`.
pub async fn run(mqtt: MqttIntake, intake: Intake, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let (client, eventloop) = client(&mqtt.options, 64);
        tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = serve(&mqtt, &client, eventloop, &intake) => {
                if let Err(err) = outcome {
                    tracing::warn!(error = %err, broker = %mqtt.settings.broker, ?backoff, "MQTT intake: reconnecting");
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
    mqtt: &MqttIntake,
    client: &AsyncClient,
    mut eventloop: EventLoop,
    intake: &Intake,
) -> anyhow::Result<()> {
    loop {
        match eventloop.poll().await? {
            MqttEvent::Incoming(Packet::ConnAck(_)) => {
                client
                    .subscribe(mqtt.settings.topic.clone(), QoS::AtLeastOnce)
                    .await?;
                tracing::info!(topic = %mqtt.settings.topic, "MQTT intake subscribed");
            }
            MqttEvent::Incoming(Packet::Publish(publish)) => {
                let received_at = chrono::Utc::now();
                let speaker = speaker(mqtt, &publish.topic);
                // Recorded in the transaction that stores it; a message that cannot be
                // stored and recorded is not acknowledged, so the broker delivers it again.
                let record = tracery_runtime::audit::Record {
                    subject: speaker.subject(&publish.topic),
                    action: "MQTT capture".to_owned(),
                    source: mqtt.settings.broker.clone(),
                    request_id: uuid::Uuid::now_v7().to_string(),
                };
                let admission = admission(mqtt, intake, &publish, &speaker, received_at);
                // Not acknowledging on a storage error makes the broker deliver it again.
                intake
                    .capture_admissions(
                        vec![admission],
                        Channel::Mqtt,
                        ErrorBehaviour::Proceed,
                        Some(DeferredAudit::new(record)),
                    )
                    .await?;
                client.ack(&publish).await?;
            }
            _ => {}
        }
    }
}

/// Who a message speaks for.
enum Speaker {
    /// Dev mode: no identities, nothing checked.
    Unchecked,
    /// The reader whose topic the message came on.
    Reader { name: String, principal: Principal },
    /// Nobody the suite knows: why.
    Unknown(String),
}

impl Speaker {
    fn subject(&self, topic: &str) -> String {
        match self {
            Self::Reader { principal, .. } => principal.subject.clone(),
            Self::Unchecked | Self::Unknown(_) => format!("mqtt:{topic}"),
        }
    }
}

/// The reader that publishes on `topic`, as a principal of this plant.
fn speaker(mqtt: &MqttIntake, topic: &str) -> Speaker {
    let Some(plant) = &mqtt.plant else {
        return Speaker::Unchecked;
    };
    let Some((name, reader)) = mqtt
        .settings
        .readers
        .iter()
        .find(|(_, reader)| reader.topic.as_deref() == Some(topic))
    else {
        return Speaker::Unknown(format!(
            "topic `{topic}` is no configured reader's (capture_mqtt.readers.*.topic)"
        ));
    };
    let reader_plant = reader.plant.as_deref().unwrap_or(plant);
    if reader_plant != plant {
        return Speaker::Unknown(format!(
            "reader `{name}` belongs to plant `{reader_plant}`; this suite serves `{plant}`"
        ));
    }
    Speaker::Reader {
        name: name.clone(),
        principal: reader_principal(name, &reader.roles, plant),
    }
}

/// Who a configured reader (scanner or RFID) is: `mqtt:<name>`, with its roles, in
/// `plant` only.
pub fn reader_principal(name: &str, roles: &[String], plant: &str) -> Principal {
    Principal {
        subject: format!("mqtt:{name}"),
        roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
        plants: Plants::Only(BTreeSet::from([plant.to_owned()])),
    }
}

/// A broker message read as JSON within the intake's limits (its size, then its nesting),
/// or what quarantine keeps of it on `channel`: an over-limit message only its first
/// bytes.
pub(crate) fn message_json(
    payload: &[u8],
    (max_bytes, bounds): (usize, &bounds::Bounds),
    channel: Channel,
) -> Result<serde_json::Value, Rejected> {
    let rejected = |kept: &[u8], violation: Violation| Rejected {
        payload: Some(String::from_utf8_lossy(kept).into_owned()),
        payload_protobuf: None,
        violations: vec![violation],
        channel,
    };
    if payload.len() > max_bytes {
        let kept = &payload[..KEPT_OF_OVERSIZED.min(payload.len())];
        let violation = Violation::new(
            "",
            format!(
                "a message of {} bytes; at most {max_bytes} (limits.max_body_bytes); the first {} bytes are kept",
                payload.len(),
                kept.len()
            ),
        );
        return Err(rejected(kept, violation.with_reason("OVER_LIMIT")));
    }
    bounds::parse_json(payload, bounds).map_err(|err| match err {
        EpcisError::MalformedJson(err) => rejected(
            payload,
            Violation::new("", format!("not JSON: {err}")).with_reason("MALFORMED_MESSAGE"),
        ),
        err => rejected(
            payload,
            Violation::new("", err.to_string()).with_reason("OVER_LIMIT"),
        ),
    })
}

fn admission(
    mqtt: &MqttIntake,
    intake: &Intake,
    publish: &Publish,
    speaker: &Speaker,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Admission {
    let settings = &mqtt.settings;
    let reject = |violation: Violation| {
        Admission::Reject(Rejected {
            payload: Some(String::from_utf8_lossy(&publish.payload).into_owned()),
            payload_protobuf: None,
            violations: vec![violation],
            channel: Channel::Mqtt,
        })
    };
    if let Speaker::Unknown(why) = speaker {
        return reject(Violation::new("topic", why.clone()).with_reason("UNAUTHENTICATED"));
    }
    let limits = (mqtt.max_message_bytes, &intake.policy().bounds);
    let value = match message_json(&publish.payload, limits, Channel::Mqtt) {
        Ok(value) => value,
        Err(rejected) => return Admission::Reject(rejected),
    };
    let admission = if !scan::is_scan(&value) {
        let context = HashContext::from_json(&value);
        admit_json(value, Channel::Mqtt, intake.policy(), &context)
    } else {
        let named = value.get("reader").and_then(|r| r.as_str()).unwrap_or("");
        if let Speaker::Reader { name, .. } = speaker
            && named != name
        {
            return reject(
                Violation::new(
                    "reader",
                    format!(
                        "the message names reader `{named}` but came on reader `{name}`'s topic"
                    ),
                )
                .with_reason("UNAUTHENTICATED"),
            );
        }
        match scan::to_event(&publish.payload, &value, &settings.readers, received_at) {
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
    };
    match (speaker, admission) {
        (Speaker::Reader { principal, .. }, Admission::Accept { event, warnings }) => {
            match crate::roles::check_event(Some(principal), 0, &event) {
                Ok(()) => Admission::Accept { event, warnings },
                Err(refused) => Admission::Reject(Rejected {
                    payload: Some(tracery_epcis::json::event_to_json(&event).to_string()),
                    payload_protobuf: None,
                    violations: vec![
                        Violation::new("", refused.to_string()).with_reason("PERMISSION_DENIED"),
                    ],
                    channel: Channel::Mqtt,
                }),
            }
        }
        (_, admission) => admission,
    }
}
