//! Sends alert notices (fired, acknowledged, resolved) from the outbox in the store to the
//! configured channels: a webhook, signed like query subscriptions (`GS1-Signature`), and
//! an MQTT topic per rule. Each channel has its own cursor, moved only once the receiver
//! has taken a notice (a 2xx answer; the broker's PUBACK), so a receiver that is down gets
//! every notice afterwards, in order. Delivery is at least once: a notice is identified by
//! its alert id and change.

use std::{sync::Arc, time::Duration};

use rumqttc::{Event as MqttEvent, Packet, QoS};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracery_runtime::config::{AlertWebhook, MqttSettings};

use super::store as alerts;
use crate::{domain::CaptureError, store::EventStore, webhooks};

/// How often the outbox is looked at without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// Longest wait for the broker's PUBACK.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Notices read at a time.
const BATCH: u64 = 100;

/// Sleeps `wait`, or less when the suite stops; whether it stopped.
async fn pause(wait: Duration, woken: &Notify, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = woken.notified() => false,
        () = tokio::time::sleep(wait) => false,
        () = shutdown.cancelled() => true,
    }
}

/// This replica's turn at a channel: the channel's lease, so that one replica at a time
/// delivers it, and the compare-and-set of its cursor.
struct Turn {
    store: EventStore,
    channel: &'static str,
    holder: String,
    lease: chrono::TimeDelta,
}

impl Turn {
    fn new(store: EventStore, channel: &'static str, longest_delivery: Duration) -> Self {
        let lease = chrono::TimeDelta::from_std(longest_delivery * 3).unwrap_or_default()
            + chrono::TimeDelta::seconds(30);
        Self {
            store,
            channel,
            holder: uuid::Uuid::now_v7().to_string(),
            lease,
        }
    }

    /// Where the channel stands and the notices after it, while this replica holds the
    /// channel; `None` when another does.
    async fn next(&self) -> Result<Option<(i64, Vec<alerts::Notice>)>, CaptureError> {
        let now = chrono::Utc::now();
        let db = self.store.db();
        if !alerts::lease(db, self.channel, &self.holder, now, now + self.lease).await? {
            return Ok(None);
        }
        Ok(Some(alerts::undelivered(db, self.channel, BATCH).await?))
    }

    /// The receiver took the notices through `to`; whether the cursor moved (it does not
    /// once the lease went to another replica).
    async fn took(&self, from: i64, to: i64) -> Result<bool, CaptureError> {
        alerts::delivered(self.store.db(), self.channel, &self.holder, (from, to)).await
    }

    async fn release(&self) {
        if let Err(err) = alerts::release(self.store.db(), self.channel, &self.holder).await {
            tracing::warn!(channel = self.channel, error = %err, "cannot release the alert channel");
        }
    }
}

/// The webhook channel.
pub struct WebhookChannel {
    store: EventStore,
    turn: Turn,
    url: String,
    token: Option<String>,
    http: reqwest::Client,
    max_retry: Duration,
}

const WEBHOOK: &str = "webhook";
const MQTT: &str = "mqtt";

impl WebhookChannel {
    /// Reads the token now: a missing secret stops the start.
    pub fn new(
        store: EventStore,
        settings: &AlertWebhook,
        timeout: Duration,
        max_retry: Duration,
    ) -> anyhow::Result<Self> {
        let token = match &settings.signature_token {
            Some(source) => Some(
                source
                    .read("alerts.webhook.signature_token")
                    .map_err(anyhow::Error::msg)?
                    .expose()
                    .to_owned(),
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            turn: Turn::new(store.clone(), WEBHOOK, timeout),
            store,
            url: settings.url.clone(),
            token,
            http,
            max_retry,
        })
    }

    /// Delivers until `shutdown`; a failing receiver is tried again after a wait that
    /// doubles from one second up to `max_retry`.
    pub async fn run(self, woken: Arc<Notify>, shutdown: CancellationToken) {
        if let Err(err) = alerts::start_channel(self.store.db(), WEBHOOK).await {
            tracing::warn!(error = %err, "alert webhook: cannot start its cursor");
        }
        let mut wait = Duration::from_secs(1);
        loop {
            let stopped = match self.deliver().await {
                Ok(()) => {
                    wait = Duration::from_secs(1);
                    pause(POLL, &woken, &shutdown).await
                }
                Err(reason) => {
                    tracing::info!(url = %self.url, %reason, retry_in = ?wait, "alert webhook: not delivered");
                    let stopped = pause(wait, &Notify::new(), &shutdown).await;
                    wait = (wait * 2).min(self.max_retry.max(Duration::from_secs(1)));
                    stopped
                }
            };
            if stopped {
                self.turn.release().await;
                return;
            }
        }
    }

    /// Sends every notice not taken yet, in order; `Err` says why one was not.
    async fn deliver(&self) -> Result<(), String> {
        loop {
            let next = self.turn.next().await.map_err(|err| err.to_string())?;
            let Some((mut through, notices)) = next.filter(|(_, n)| !n.is_empty()) else {
                return Ok(());
            };
            for notice in notices {
                self.post(notice.body.as_bytes()).await?;
                let moved = self.turn.took(through, notice.id).await;
                if !moved.map_err(|err| err.to_string())? {
                    // Another replica has the channel now: it goes on from there.
                    return Ok(());
                }
                through = notice.id;
            }
        }
    }

    async fn post(&self, body: &[u8]) -> Result<(), String> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header(webhooks::SIGNATURE_HEADER, webhooks::signature(token, body));
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|err| err.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", response.status()))
        }
    }
}

/// The MQTT channel: each notice on `<topic>/<rule>`.
pub struct MqttChannel {
    store: EventStore,
    turn: Turn,
    settings: MqttSettings,
    options: rumqttc::MqttOptions,
}

impl MqttChannel {
    pub fn new(store: EventStore, settings: MqttSettings) -> anyhow::Result<Self> {
        let client_id = format!("{}-alerts", settings.client_id);
        let options = crate::mqtt::broker_options(&settings, &client_id, "alerts.mqtt")?;
        Ok(Self {
            turn: Turn::new(store.clone(), MQTT, ACK_WAIT),
            store,
            settings,
            options,
        })
    }

    /// Publishes until `shutdown`, reconnecting after a failure.
    pub async fn run(self, woken: Arc<Notify>, shutdown: CancellationToken) {
        if let Err(err) = alerts::start_channel(self.store.db(), MQTT).await {
            tracing::warn!(error = %err, "alert MQTT: cannot start its cursor");
        }
        let mut wait = Duration::from_millis(500);
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => None,
                outcome = self.connected(&woken) => Some(outcome),
            };
            if let Some(Err(err)) = &outcome {
                tracing::info!(broker = %self.settings.broker, error = %err, retry_in = ?wait, "alert MQTT: reconnecting");
            }
            if outcome.is_none() || pause(wait, &Notify::new(), &shutdown).await {
                self.turn.release().await;
                return;
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// One connection: publishes each notice and waits for its PUBACK before the next.
    async fn connected(&self, woken: &Notify) -> anyhow::Result<()> {
        let (client, mut eventloop) = crate::mqtt::client(&self.options, 10);
        loop {
            if let MqttEvent::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                break;
            }
        }
        loop {
            let (mut through, notices) = self.turn.next().await?.unwrap_or_default();
            for notice in &notices {
                let topic = format!(
                    "{}/{}",
                    self.settings.topic.trim_end_matches('/'),
                    notice.rule
                );
                client
                    .publish(topic, QoS::AtLeastOnce, false, notice.body.clone())
                    .await?;
                tokio::time::timeout(ACK_WAIT, async {
                    loop {
                        if let MqttEvent::Incoming(Packet::PubAck(_)) = eventloop.poll().await? {
                            return Ok::<_, rumqttc::ConnectionError>(());
                        }
                    }
                })
                .await??;
                if !self.turn.took(through, notice.id).await? {
                    break;
                }
                through = notice.id;
            }
            if notices.is_empty() {
                // Keeps the connection alive (pings) while waiting for notices.
                let idle = async {
                    loop {
                        if let Err(err) = eventloop.poll().await {
                            return err;
                        }
                    }
                };
                tokio::select! {
                    err = idle => return Err(err.into()),
                    () = woken.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}
