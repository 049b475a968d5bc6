//! RFID reader intake: fixed readers publish tag reads to an MQTT broker (Zebra IoT
//! Connector, Impinj IoT device interface; see [`payload`]); capture smooths them into
//! observations ([`smoothing`]) and stores those as EPCIS events at the read point of the
//! antenna that read them ([`reader`]).
//!
//! Delivery: reads arrive in batches; a batch's events are stored, then the tags it
//! added to portal passes (whose events come only when the pass ends), then its messages
//! are acknowledged, in order. Presences (tags in a zone) are stored every second: a crash
//! loses at most that second of them, which can only have a tag observed again, never an
//! observation lost. A crash before the acknowledgement has the broker deliver the batch
//! again; every event's eventID is derived from the reader, the zone, the tag and the
//! reader's time of the read, so a batch stored twice stores nothing new. A read the
//! reader sends without a time is timed on arrival, and a redelivered one may then be
//! observed twice; none is ever lost.
//!
//! Who speaks: a reader is known by the exact topic it publishes on; with `[auth]`, its
//! events need its configured roles (as scan readers' do). A message on no reader's topic,
//! one that is not a reader's JSON, or a tag whose EPC does not decode is quarantined
//! with the reason (a tag once per hold time, not once per read).

pub mod payload;
pub mod reader;
pub mod smoothing;
pub mod store;

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, FixedOffset, Utc};
use rumqttc::{AsyncClient, Event as MqttEvent, Packet, Publish, QoS};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracery_epcis::{
    Action, AggregationEvent, Event, EventKind, Location, ObjectEvent, bounds, hash::HashContext,
};
use tracery_gs1::tds::TagEpc;
use tracery_runtime::{
    audit::DeferredAudit, auth::Principal, config::RfidSettings, error::Violation,
};

use crate::{
    batch_intake::Intake,
    domain::{Admission, Channel, ErrorBehaviour, Rejected},
    event_admission::admit,
};
use reader::{Reader, Zone};
use smoothing::{Change, Key, Smoother};

/// Messages handled per batch, and how often time is looked at.
const BATCH: usize = 512;
const TICK: Duration = Duration::from_millis(100);
/// How often presences are stored (new and latest reads, and those forgotten), in ticks.
/// A crash loses at most this much of them, which only has tags observed again; a portal's
/// tags are stored before their reads are acknowledged, as its event comes later.
const STORE_LATEST_READS_EVERY: u32 = 10;
/// Decoded EPCs remembered: the tags of a plant's fields, many times over.
const DECODED_KEPT: usize = 100_000;

/// Reads to smooth, with whom to tell once they are stored.
enum Incoming {
    /// A broker's message, acknowledged on its connection.
    Mqtt {
        publish: Publish,
        client: AsyncClient,
    },
    /// A body posted to `POST /rfid/<reader>`, answered when stored.
    Http {
        reader: String,
        body: axum::body::Bytes,
        stored: tokio::sync::oneshot::Sender<bool>,
    },
}

/// Where `POST /rfid/<reader>` hands its reads to the intake.
#[derive(Clone)]
pub struct HttpReads {
    readers: Arc<std::collections::BTreeSet<String>>,
    tx: mpsc::Sender<Incoming>,
}

/// The readers and how to reach their broker.
pub struct RfidIntake {
    readers: HashMap<String, Reader>,
    /// Reader names by topic.
    topics: HashMap<String, String>,
    /// The broker, when readers publish to one.
    mqtt: Option<(tracery_runtime::config::MqttSettings, rumqttc::MqttOptions)>,
    /// `[auth].plant`; `None` in dev mode, where readers' roles are not checked.
    plant: Option<String>,
    max_message_bytes: usize,
}

impl RfidIntake {
    /// The intake of `[rfid]`, or `None` without readers; a bad reader stops the start.
    pub fn new(
        settings: &RfidSettings,
        plant: Option<String>,
        max_message_bytes: usize,
    ) -> anyhow::Result<Option<Self>> {
        let readers = reader::readers(&settings.readers).map_err(anyhow::Error::msg)?;
        if readers.is_empty() {
            return Ok(None);
        }
        let mqtt = match settings.mqtt.clone() {
            Some(mqtt) => {
                let options = crate::mqtt::intake_options(&mqtt, "rfid.mqtt")?;
                Some((mqtt, options))
            }
            None if readers.iter().any(|r| r.topic.is_some()) => {
                anyhow::bail!("rfid.mqtt: readers have topics but no broker is configured")
            }
            None => None,
        };
        Ok(Some(Self {
            topics: readers
                .iter()
                .filter_map(|r| Some((r.topic.clone()?, r.name.clone())))
                .collect(),
            readers: readers.into_iter().map(|r| (r.name.clone(), r)).collect(),
            mqtt,
            plant,
            max_message_bytes,
        }))
    }

    /// Runs the intake until `shutdown`: one task smooths, one holds the broker connection
    /// (with a broker); the handle takes posted reads.
    pub fn start(
        self,
        intake: Intake,
        db: DatabaseConnection,
        shutdown: CancellationToken,
    ) -> (Vec<tokio::task::JoinHandle<()>>, HttpReads) {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let http = HttpReads {
            readers: Arc::new(self.readers.keys().cloned().collect()),
            tx: tx.clone(),
        };
        let this = Arc::new(self);
        let mut tasks = Vec::new();
        if this.mqtt.is_some() {
            tasks.push(tokio::spawn(
                Arc::clone(&this).connect(tx, shutdown.clone()),
            ));
        }
        tasks.push(tokio::spawn(this.smooth(rx, intake, db, shutdown)));
        (tasks, http)
    }

    async fn connect(self: Arc<Self>, tx: mpsc::Sender<Incoming>, shutdown: CancellationToken) {
        let Some((settings, options)) = &self.mqtt else {
            return;
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let (client, mut eventloop) = crate::mqtt::client(options, 64);
            let served = async {
                loop {
                    match eventloop.poll().await? {
                        MqttEvent::Incoming(Packet::ConnAck(_)) => {
                            client
                                .subscribe(settings.topic.clone(), QoS::AtLeastOnce)
                                .await?;
                            tracing::info!(topic = %settings.topic, "RFID intake subscribed");
                        }
                        MqttEvent::Incoming(Packet::Publish(publish)) => {
                            let incoming = Incoming::Mqtt {
                                publish,
                                client: client.clone(),
                            };
                            if tx.send(incoming).await.is_err() {
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = served => {
                    if let Err(err) = outcome as anyhow::Result<()> {
                        tracing::warn!(error = %err, ?backoff, "RFID intake: reconnecting");
                    } else {
                        return;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn smooth(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Incoming>,
        intake: Intake,
        db: DatabaseConnection,
        shutdown: CancellationToken,
    ) {
        let mut state = State::default();
        match store::load(&db).await {
            Ok((present, passes)) => state.smoother.restore(present, passes),
            Err(err) => tracing::error!(error = %err, "RFID intake: smoothing state not read back"),
        }
        let mut ticker = tokio::time::interval(TICK);
        let mut messages = Vec::with_capacity(BATCH);
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return,
                received = rx.recv_many(&mut messages, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    let batch = std::mem::take(&mut messages);
                    self.handle_messages(&mut state, batch, &intake, &db).await
                }
                _ = ticker.tick() => self.handle_time(&mut state, &intake, &db).await,
            };
            if let Err(err) = outcome {
                // Unacknowledged messages come again after a reconnect.
                tracing::error!(error = %err, "RFID intake: a batch was not stored");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Smooths a batch of messages, stores what it concludes, then acknowledges them.
    async fn handle_messages(
        &self,
        state: &mut State,
        batch: Vec<Incoming>,
        intake: &Intake,
        db: &DatabaseConnection,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut outcome = Outcome::default();
        for incoming in &batch {
            let (reader, payload) = match incoming {
                Incoming::Mqtt { publish, .. } => {
                    (self.reader_of(&publish.topic), &publish.payload)
                }
                Incoming::Http { reader, body, .. } => (self.reader_named(reader), body),
            };
            let bounds = &intake.policy().bounds;
            self.handle_message(state, reader, payload, bounds, now, &mut outcome);
        }
        let stored = self.store(outcome, intake, db, "RFID capture").await;
        for incoming in batch {
            match incoming {
                // A connection that has gone cannot acknowledge: the broker delivers again.
                Incoming::Mqtt { publish, client } if stored.is_ok() => {
                    let _ = client.ack(&publish).await;
                }
                Incoming::Mqtt { .. } => {}
                Incoming::Http { stored: answer, .. } => {
                    let _ = answer.send(stored.is_ok());
                }
            }
        }
        stored
    }

    async fn handle_time(
        &self,
        state: &mut State,
        intake: &Intake,
        db: &DatabaseConnection,
    ) -> anyhow::Result<()> {
        let mut outcome = Outcome::default();
        for change in state.smoother.tick(&self.readers, Utc::now()) {
            self.conclude(state, change, &mut outcome);
        }
        state.ticks = state.ticks.wrapping_add(1);
        if state.ticks.is_multiple_of(STORE_LATEST_READS_EVERY) {
            outcome.touched = state.smoother.take_dirty();
            let forgotten = std::mem::take(&mut state.forgotten);
            outcome.gone = forgotten
                .into_iter()
                .filter(|key| !state.smoother.holds(key))
                .collect();
        }
        self.store(outcome, intake, db, "RFID smoothing").await
    }

    fn handle_message(
        &self,
        state: &mut State,
        reader: Result<&Reader, Violation>,
        payload: &[u8],
        bounds: &bounds::Bounds,
        now: DateTime<Utc>,
        outcome: &mut Outcome,
    ) {
        let raw = || String::from_utf8_lossy(payload).into_owned();
        let reject = |violation: Violation| {
            Admission::Reject(Rejected {
                payload: Some(raw()),
                payload_protobuf: None,
                violations: vec![violation],
                channel: Channel::Rfid,
            })
        };
        let reader = match reader {
            Ok(reader) => reader,
            Err(violation) => return outcome.admissions.push(reject(violation)),
        };
        let limits = (self.max_message_bytes, bounds);
        let value = match crate::mqtt::message_json(payload, limits, Channel::Rfid) {
            Ok(value) => value,
            Err(rejected) => return outcome.admissions.push(Admission::Reject(rejected)),
        };
        let message = match payload::tag_reads(&value) {
            Ok(message) => message,
            Err(violation) => return outcome.admissions.push(reject(violation)),
        };
        let counted = metrics();
        if message.overflows > 0 {
            tracing::warn!(reader = %reader.name, "an RFID reader's buffer overflowed: it dropped reads");
            counted
                .overflows
                .with_label_values(&[reader.name.as_str()])
                .inc_by(u64::from(message.overflows));
        }
        let count = |read_outcome: &str| {
            counted
                .reads
                .with_label_values(&[reader.name.as_str(), read_outcome])
                .inc();
        };
        for read in message.reads {
            if reader
                .min_rssi_dbm
                .zip(read.rssi_dbm)
                .is_some_and(|(min, rssi)| rssi < min)
            {
                count("below_rssi");
                continue;
            }
            let zone = reader.zone(read.antenna);
            let key = Key {
                reader: reader.name.clone(),
                zone: zone.read_point.clone(),
                hex: read.hex.clone(),
            };
            let time = read.time.unwrap_or_else(|| now.fixed_offset());
            match state.decoded(&read.hex).as_ref().err().cloned() {
                None => {
                    count("smoothed");
                    for change in state.smoother.read(reader, key, time, now) {
                        self.conclude(state, change, outcome);
                    }
                }
                Some(violation) => {
                    count("undecodable");
                    if state.smoother.read_unobservable(reader, key, time, now) {
                        let violation = Violation {
                            field: read.field.clone(),
                            ..violation
                        };
                        outcome.admissions.push(reject(violation));
                    }
                }
            }
        }
    }

    /// The reader posting as `name`, if it may speak here.
    fn reader_named(&self, name: &str) -> Result<&Reader, Violation> {
        let reader = self.readers.get(name).ok_or_else(|| {
            Violation::new("reader", format!("`{name}` is no configured RFID reader"))
                .with_reason("UNKNOWN_READER")
        })?;
        self.of_this_plant(reader)
    }

    /// The reader publishing on `topic`, if it may speak here.
    fn reader_of(&self, topic: &str) -> Result<&Reader, Violation> {
        let reader = self
            .topics
            .get(topic)
            .and_then(|name| self.readers.get(name))
            .ok_or_else(|| {
                Violation::new(
                    "topic",
                    format!(
                        "`{topic}` is no configured RFID reader's topic (rfid.readers.*.topic)"
                    ),
                )
                .with_reason("UNKNOWN_READER")
            })?;
        self.of_this_plant(reader)
    }

    /// `reader`, unless it belongs to another plant than this suite's.
    fn of_this_plant<'a>(&self, reader: &'a Reader) -> Result<&'a Reader, Violation> {
        if let (Some(plant), Some(own)) = (&self.plant, &reader.plant)
            && plant != own
        {
            return Err(Violation::new(
                "reader",
                format!(
                    "reader `{}` belongs to plant `{own}`; this suite serves `{plant}`",
                    reader.name
                ),
            )
            .with_reason("UNAUTHENTICATED"));
        }
        Ok(reader)
    }

    /// What a change stores: its event, and what smoothing must remember or forget.
    fn conclude(&self, state: &mut State, change: Change, outcome: &mut Outcome) {
        let Some(reader) = self.readers.get(change_reader(&change)) else {
            return;
        };
        match change {
            Change::Entered { key, time } => {
                let observed = state.decoded(&key.hex).as_ref().ok().map(|o| o.uri.clone());
                let zone = zone_of(reader, &key.zone);
                let id = event_id(&[
                    "enter",
                    &key.reader,
                    &key.zone,
                    &key.hex,
                    &time.to_rfc3339(),
                ]);
                if let Some(uri) = observed {
                    outcome.events.push((
                        reader.name.clone(),
                        observation(zone, zone.biz_step.clone(), vec![uri], time, id),
                    ));
                }
                // Its presence is stored with the next batch of latest reads: losing it
                // in a crash only observes the tag again.
            }
            Change::Left {
                key,
                first_time,
                time,
            } => {
                let zone = zone_of(reader, &key.zone);
                let id = event_id(&[
                    "leave",
                    &key.reader,
                    &key.zone,
                    &key.hex,
                    &first_time.to_rfc3339(),
                ]);
                if let Ok(observed) = state.decoded(&key.hex).as_ref() {
                    let uri = observed.uri.clone();
                    outcome.events.push((
                        reader.name.clone(),
                        observation(
                            zone,
                            Some(reader.leave_biz_step.clone()),
                            vec![uri],
                            time,
                            id,
                        ),
                    ));
                }
                state.forgotten.push(key);
            }
            Change::Joined { key, pass } => outcome.joined.push((key, pass)),
            Change::PassEnded {
                reader: name,
                zone,
                pass,
            } => {
                let observed: Vec<Observed> = pass
                    .tags
                    .iter()
                    .filter_map(|hex| state.decoded(hex).as_ref().ok().cloned())
                    .collect();
                let id = event_id(&["pass", &name, &zone, &pass.first_time.to_rfc3339()]);
                let place = zone_of(reader, &zone);
                outcome.events.push((
                    name.clone(),
                    pass_event(place, observed, pass.first_time, id),
                ));
                state.forgotten.extend(pass.tags.into_iter().map(|hex| Key {
                    reader: name.clone(),
                    zone: zone.clone(),
                    hex,
                }));
            }
        }
    }

    /// The principal a reader's events are checked as, with `[auth]`.
    fn principal(&self, reader: &str) -> Option<Principal> {
        let plant = self.plant.as_ref()?;
        let reader = self.readers.get(reader)?;
        Some(crate::mqtt::reader_principal(
            &reader.name,
            &reader.roles,
            plant,
        ))
    }
}

fn change_reader(change: &Change) -> &str {
    match change {
        Change::Entered { key, .. } | Change::Left { key, .. } | Change::Joined { key, .. } => {
            &key.reader
        }
        Change::PassEnded { reader, .. } => reader,
    }
}

fn zone_of<'a>(reader: &'a Reader, read_point: &str) -> &'a Zone {
    std::iter::once(&reader.zone)
        .chain(reader.antennas.values())
        .find(|zone| zone.read_point == read_point)
        .unwrap_or(&reader.zone)
}

/// A decoded tag: the EPC URI events carry, and whether it is a pallet (an SSCC).
#[derive(Debug, Clone)]
struct Observed {
    uri: String,
    sscc: bool,
}

/// Smoothing, and the EPCs decoded so far.
#[derive(Default)]
struct State {
    smoother: Smoother,
    ticks: u32,
    /// Keys smoothing forgot since their rows were last removed.
    forgotten: Vec<Key>,
    decoded: HashMap<String, Result<Observed, Violation>>,
}

impl State {
    /// `hex` decoded, once per distinct tag.
    fn decoded(&mut self, hex: &str) -> &Result<Observed, Violation> {
        if self.decoded.len() >= DECODED_KEPT && !self.decoded.contains_key(hex) {
            self.decoded.clear();
        }
        self.decoded
            .entry(hex.to_owned())
            .or_insert_with(|| decode(hex))
    }
}

fn decode(hex: &str) -> Result<Observed, Violation> {
    let refused = |err: tracery_gs1::Gs1Error| {
        Violation::new("epc", format!("`{hex}`: {err}")).with_reason(err.kind.code())
    };
    let tag = TagEpc::from_hex(hex).map_err(refused)?;
    match tag.identifier() {
        None => Ok(Observed {
            uri: tag.pure_identity(),
            sscc: false,
        }),
        Some(identified) => {
            let (identifier, _) = identified.map_err(refused)?;
            Ok(Observed {
                sscc: identifier.kind == tracery_gs1::KeyKind::Sscc,
                uri: identifier.canonical_link().map_err(refused)?,
            })
        }
    }
}

/// An eventID that is the same for the same parts (as scan messages' are).
fn event_id(parts: &[&str]) -> String {
    crate::scan::message_event_id(format!("rfid\u{1f}{}", parts.join("\u{1f}")).as_bytes())
}

fn location(id: &str) -> Location {
    Location {
        id: id.to_owned(),
        extensions: Default::default(),
    }
}

fn at_zone(
    zone: &Zone,
    kind: EventKind,
    biz_step: Option<String>,
    time: DateTime<FixedOffset>,
    id: String,
) -> Event {
    Event {
        event_id: Some(id),
        biz_step,
        disposition: zone.disposition.clone(),
        read_point: Some(location(&zone.read_point)),
        biz_location: zone.biz_location.as_deref().map(location),
        ..Event::new(kind, time)
    }
}

/// An ObjectEvent OBSERVE of `epcs` in `zone`.
fn observation(
    zone: &Zone,
    biz_step: Option<String>,
    epcs: Vec<String>,
    time: DateTime<FixedOffset>,
    id: String,
) -> Event {
    let kind = EventKind::Object(ObjectEvent {
        action: Action::Observe,
        epcs,
        quantities: Vec::new(),
        ilmd: None,
    });
    at_zone(zone, kind, biz_step, time, id)
}

/// A portal pass: with exactly one pallet (SSCC) among the tags, an AggregationEvent
/// OBSERVE of the rest under it; otherwise an ObjectEvent OBSERVE of them all.
fn pass_event(
    zone: &Zone,
    observed: Vec<Observed>,
    time: DateTime<FixedOffset>,
    id: String,
) -> Event {
    let (pallets, rest): (Vec<Observed>, Vec<Observed>) =
        observed.into_iter().partition(|o| o.sscc);
    if let [pallet] = pallets.as_slice() {
        let kind = EventKind::Aggregation(AggregationEvent {
            action: Action::Observe,
            parent_id: Some(pallet.uri.clone()),
            child_epcs: rest.into_iter().map(|o| o.uri).collect(),
            child_quantities: Vec::new(),
        });
        return at_zone(zone, kind, zone.biz_step.clone(), time, id);
    }
    let epcs = pallets.into_iter().chain(rest).map(|o| o.uri).collect();
    observation(zone, zone.biz_step.clone(), epcs, time, id)
}

/// The intake's metrics.
struct RfidMetrics {
    reads: prometheus::IntCounterVec,
    overflows: prometheus::IntCounterVec,
}

fn metrics() -> &'static RfidMetrics {
    use tracery_runtime::metrics::counter_vec;
    static METRICS: std::sync::OnceLock<RfidMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| RfidMetrics {
        reads: counter_vec(
            "tracery_rfid_reads_total",
            "Raw tag reads received, by reader and outcome (smoothed, below_rssi, undecodable)",
            &["reader", "outcome"],
        ),
        overflows: counter_vec(
            "tracery_rfid_reader_overflows_total",
            "Overflow events reported by readers: the reader's buffer dropped reads",
            &["reader"],
        ),
    })
}

/// What one batch or tick stores.
#[derive(Default)]
struct Outcome {
    /// Events with the reader that made them.
    events: Vec<(String, Event)>,
    /// Reads and messages quarantined.
    admissions: Vec<Admission>,
    /// Presences to remember: new, and read again.
    touched: Vec<(Key, smoothing::Presence)>,
    /// Tags of passes in progress to remember: before their reads are acknowledged, as a
    /// pass's event comes only at its end.
    joined: Vec<(Key, smoothing::Pass)>,
    /// What smoothing forgot: left, or in a pass that ended.
    gone: Vec<Key>,
}

impl RfidIntake {
    /// Stores `outcome`'s events and quarantined reads, then the smoothing state.
    async fn store(
        &self,
        outcome: Outcome,
        intake: &Intake,
        db: &DatabaseConnection,
        action: &str,
    ) -> anyhow::Result<()> {
        let mut admissions = outcome.admissions;
        for (reader, event) in outcome.events {
            admissions.push(self.admit(&reader, event, intake));
        }
        let most = intake.policy().max_events_per_batch.max(1);
        while !admissions.is_empty() {
            let rest = admissions.split_off(most.min(admissions.len()));
            let record = tracery_runtime::audit::Record {
                subject: "rfid".to_owned(),
                action: action.to_owned(),
                source: self.mqtt.as_ref().map_or_else(
                    || "http".to_owned(),
                    |(settings, _)| settings.broker.clone(),
                ),
                request_id: uuid::Uuid::now_v7().to_string(),
            };
            intake
                .capture_admissions(
                    admissions,
                    Channel::Rfid,
                    ErrorBehaviour::Proceed,
                    Some(DeferredAudit::new(record)),
                )
                .await?;
            admissions = rest;
        }
        let rows: Vec<store::Row> = outcome
            .touched
            .iter()
            .map(|(key, presence)| store::Row::Present(key, presence))
            .chain(
                outcome
                    .joined
                    .iter()
                    .map(|(key, pass)| store::Row::InPass(key, pass)),
            )
            .collect();
        store::save(db, &rows, &outcome.gone).await?;
        Ok(())
    }

    /// `event` validated as any captured event, and checked against its reader's roles.
    fn admit(&self, reader: &str, event: Event, intake: &Intake) -> Admission {
        let admission = admit(
            event,
            Channel::Rfid,
            intake.policy(),
            &HashContext::default(),
        );
        let (Some(principal), Admission::Accept { event, warnings }) =
            (self.principal(reader), &admission)
        else {
            return admission;
        };
        match crate::roles::check_event(Some(&principal), 0, event) {
            Ok(()) => Admission::Accept {
                event: event.clone(),
                warnings: warnings.clone(),
            },
            Err(refused) => Admission::Reject(Rejected {
                payload: Some(tracery_epcis::json::event_to_json(event).to_string()),
                payload_protobuf: None,
                violations: vec![
                    Violation::new("", refused.to_string()).with_reason("PERMISSION_DENIED"),
                ],
                channel: Channel::Rfid,
            }),
        }
    }
}

/// `POST /rfid/{reader}`: a reader's tag reads over HTTP (a Zebra IoT Connector HTTP
/// endpoint, an Impinj webhook batch), smoothed with its other reads. 204 once stored (a
/// bad body is quarantined, as over MQTT); 404 for a reader not configured; 503 when the
/// reads could not be stored (the reader sends them again).
pub fn router(reads: HttpReads) -> axum::Router {
    axum::Router::new()
        .route("/rfid/{reader}", axum::routing::post(post_reads))
        .with_state(reads)
}

async fn post_reads(
    axum::extract::State(reads): axum::extract::State<HttpReads>,
    axum::extract::Path(reader): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::{http::StatusCode, response::IntoResponse};
    if !reads.readers.contains(&reader) {
        return crate::rest::problem(
            tracery_runtime::error::ErrorKind::NotFound,
            format!("`{reader}` is no configured RFID reader (rfid.readers)"),
            serde_json::Value::Null,
        );
    }
    let (stored, answer) = tokio::sync::oneshot::channel();
    let incoming = Incoming::Http {
        reader,
        body,
        stored,
    };
    if reads.tx.send(incoming).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match answer.await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
