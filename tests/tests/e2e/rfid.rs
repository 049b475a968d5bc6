//! RFID reader intake through Mosquitto: reads shaped like a Zebra IoT Connector's and an
//! Impinj IoT device interface's become smoothed observations at the antenna's read point,
//! a tag that leaves is an event after the configured absence, a dock-door pass is one
//! event under its pallet, and bad reads are quarantined while the intake goes on.

use std::{collections::BTreeMap, time::Duration};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;
use tracery_runtime::config::{MqttSettings, RfidSettings};

const FLOOR: &str = "urn:epc:id:sgln:4012345.00010.0";
const GATE: &str = "urn:epc:id:sgln:4012345.00011.0";
const DOCK: &str = "urn:epc:id:sgln:4012345.00012.0";
const PROBE: &str = "urn:epc:id:sgln:4012345.00013.0";
const SLOW_DOCK: &str = "urn:epc:id:sgln:4012345.00014.0";
const POSTED: &str = "urn:epc:id:sgln:4012345.00015.0";
/// `limits.max_body_bytes` of the suite under test.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// SGTIN-96 hex of GTIN 04012345111118, serial `serial` (filter 1, 7-digit company
/// prefix), laid out bit by bit here rather than by the suite's encoder.
fn sgtin_hex(serial: u64) -> String {
    let mut bits: u128 = 0x30;
    for (value, width) in [
        (1u64, 3),
        (5, 3),
        (4_012_345, 24),
        (11_111, 20),
        (serial, 38),
    ] {
        bits = (bits << width) | u128::from(value);
    }
    format!("{bits:024x}")
}

/// SSCC-96 hex of company prefix 4012345, serial reference 1000000001 (filter 2).
fn sscc_hex() -> String {
    let mut bits: u128 = 0x31;
    for (value, width) in [
        (2u64, 3),
        (5, 3),
        (4_012_345, 24),
        (1_000_000_001, 34),
        (0, 24),
    ] {
        bits = (bits << width) | u128::from(value);
    }
    format!("{bits:024X}")
}

fn zebra_read(hex: &str, antenna: u32) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000");
    format!(
        r#"{{"type":"INVENTORY","timestamp":"{now}","data":{{"MAC":"C4:7D:CC:FF:FF:FF","antenna":{antenna},"format":"epc","idHex":"{hex}","peakRssi":-52,"reads":3}}}}"#
    )
}

fn impinj_batch(hexes: &[String]) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let events: Vec<String> = hexes
        .iter()
        .map(|hex| {
            format!(
                r#"{{"timestamp":"{now}","hostname":"impinj-12-34-56","eventType":"tagInventory","tagInventoryEvent":{{"epcHex":"{}","antennaPort":1,"peakRssiCdbm":-5234,"lastSeenTime":"{now}"}}}}"#,
                hex.to_uppercase()
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// A suite with four readers on the test broker, and a client publishing as them.
struct Readers {
    app: TestApp,
    publisher: AsyncClient,
    root: String,
    pump: tokio::task::JoinHandle<()>,
}

impl Readers {
    async fn start() -> Option<Self> {
        let broker = tracery_e2e::mqtt_broker()?;
        let run = uuid::Uuid::new_v4();
        let root = format!("tracery-rfid-test/{run}");
        let readers: BTreeMap<String, toml::Table> = toml::from_str(&format!(
            r#"
            [floor]
            topic = "{root}/floor"
            read_point = "{FLOOR}"
            biz_step = "inspecting"
            hold_ms = 1000
            leave_after_ms = 1500
            min_rssi_dbm = -80
            [gate]
            topic = "{root}/gate"
            read_point = "{GATE}"
            biz_step = "receiving"
            [dock]
            topic = "{root}/dock"
            read_point = "{DOCK}"
            biz_step = "shipping"
            portal = {{ pass_gap_ms = 700 }}
            [slow-dock]
            topic = "{root}/slow-dock"
            read_point = "{SLOW_DOCK}"
            biz_step = "receiving"
            portal = {{ pass_gap_ms = 2500 }}
            [posted]
            read_point = "{POSTED}"
            biz_step = "receiving"
            [probe]
            topic = "{root}/probe"
            read_point = "{PROBE}"
            hold_ms = 100
            "#
        ))
        .expect("readers");
        let app = TestApp::spawn_with(|config| {
            config.rfid = RfidSettings {
                mqtt: Some(MqttSettings {
                    broker: format!("mqtt://{broker}"),
                    topic: format!("{root}/#"),
                    client_id: format!("tracery-rfid-{run}"),
                    username: None,
                    password: None,
                    tls: None,
                    readers: BTreeMap::new(),
                }),
                readers,
            };
            // Small enough that a test can send a message over it.
            config.limits.max_body_bytes = MAX_MESSAGE_BYTES;
        })
        .await
        .expect("suite starts");
        let mut options = MqttOptions::new(
            format!("readers-{run}"),
            broker.ip().to_string(),
            broker.port(),
        );
        options.set_max_packet_size(4 * MAX_MESSAGE_BYTES, 4 * MAX_MESSAGE_BYTES);
        let (publisher, mut eventloop) = AsyncClient::new(options, 64);
        let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        let mut readers = Self {
            app,
            publisher,
            root,
            pump,
        };
        readers.await_subscribed().await;
        Some(readers)
    }

    /// The broker drops messages nobody has subscribed to yet: reads a probe tag until
    /// the intake has observed it.
    async fn await_subscribed(&mut self) {
        for attempt in 0..50 {
            self.publish("probe", zebra_read(&sgtin_hex(900_000 + attempt), 1))
                .await;
            if !self
                .events_at(PROBE, 1, Duration::from_millis(200))
                .await
                .is_empty()
            {
                return;
            }
        }
        panic!("the RFID intake never subscribed");
    }

    async fn publish(&self, reader: &str, message: String) {
        self.publisher
            .publish(
                format!("{}/{reader}", self.root),
                QoS::AtLeastOnce,
                false,
                message,
            )
            .await
            .expect("published");
    }

    /// The events at `read_point`, once there are `count` or `within` has passed.
    async fn events_at(
        &mut self,
        read_point: &str,
        count: usize,
        within: Duration,
    ) -> Vec<pb::EpcisEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let events: Vec<pb::EpcisEvent> = self
                .app
                .capture
                .query_events(pb::QueryEventsRequest {
                    filter: Some(pb::EventFilter {
                        read_points: vec![read_point.to_owned()],
                        ..Default::default()
                    }),
                    page: Some(pb::PageRequest {
                        page_size: 1000,
                        page_token: String::new(),
                    }),
                })
                .await
                .expect("queries")
                .into_inner()
                .events
                .into_iter()
                .filter_map(|e| e.event)
                .collect();
            if events.len() >= count || tokio::time::Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.pump.abort();
        self.app.stop().await.expect("clean stop");
    }
}

fn epcs(event: &pb::EpcisEvent) -> Vec<String> {
    match event.body.clone() {
        Some(pb::epcis_event::Body::ObjectEvent(object)) => object.epcs,
        other => panic!("an ObjectEvent, not {other:?}"),
    }
}

#[tokio::test]
async fn a_burst_of_reads_is_one_observation_per_tag_and_an_absence_a_leave() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    // 50 tags on 4 antennas, 5 reads each, interleaved as a reader reports them.
    let tags: Vec<String> = (1..=50).map(sgtin_hex).collect();
    for _ in 0..5 {
        for antenna in 1..=4 {
            for tag in &tags {
                readers.publish("floor", zebra_read(tag, antenna)).await;
            }
        }
    }
    let entered = readers.events_at(FLOOR, 50, Duration::from_secs(20)).await;
    let mut observed: Vec<String> = entered.iter().flat_map(epcs).collect();
    observed.sort();
    observed.dedup();
    assert_eq!(
        observed.len(),
        50,
        "one observation per tag, whatever the antenna"
    );
    assert!(entered.iter().all(|e| e.biz_step == "inspecting"));
    assert!(
        observed.contains(&"https://id.gs1.org/01/04012345111118/21/7".to_owned()),
        "{observed:?}"
    );
    // Nothing more is read: 1.5 s later each tag has left.
    let all = readers.events_at(FLOOR, 100, Duration::from_secs(15)).await;
    assert_eq!(all.len(), 100, "50 arrivals, 50 departures");
    let left = all.iter().filter(|e| e.biz_step == "departing").count();
    assert_eq!(left, 50);
    // Counters are per process, shared with other tests: at least this test's reads.
    let counted = counter(
        &readers.app,
        r#"tracery_rfid_reads_total{outcome="smoothed",reader="floor"}"#,
    )
    .await;
    assert!(counted >= 1000, "{counted} reads counted");
    readers.stop().await;
}

/// The value of the metric `series` (name and labels as exported) on `/metrics`.
async fn counter(app: &TestApp, series: &str) -> u64 {
    app.metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

#[tokio::test]
async fn impinj_webhook_batches_are_observed_at_their_reader() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    let tags: Vec<String> = (101..=110).map(sgtin_hex).collect();
    for _ in 0..3 {
        readers.publish("gate", impinj_batch(&tags)).await;
    }
    let events = readers.events_at(GATE, 10, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = readers
        .events_at(GATE, 11, Duration::from_millis(100))
        .await;
    assert_eq!(
        (events.len(), again.len()),
        (10, 10),
        "ten tags, three batches"
    );
    assert!(events.iter().all(|e| e.biz_step == "receiving"));
    readers.stop().await;
}

#[tokio::test]
async fn a_dock_door_pass_is_one_event_under_its_pallet() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    let cases: Vec<String> = (201..=205).map(sgtin_hex).collect();
    let pallet = sscc_hex();
    for round in 0..6 {
        readers
            .publish("dock", zebra_read(&pallet, 1 + round % 2))
            .await;
        for case in &cases {
            readers
                .publish("dock", zebra_read(case, 1 + round % 2))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let passes = readers.events_at(DOCK, 1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        readers
            .events_at(DOCK, 2, Duration::from_millis(100))
            .await
            .len(),
        1
    );
    let Some(pb::epcis_event::Body::AggregationEvent(pass)) = passes[0].body.clone() else {
        panic!("an AggregationEvent: {:?}", passes[0]);
    };
    assert!(
        pass.parent_id.starts_with("https://id.gs1.org/00/"),
        "{}",
        pass.parent_id
    );
    assert_eq!(pass.child_epcs.len(), 5);
    assert_eq!(pass.action, pb::Action::Observe as i32);
    assert_eq!(passes[0].biz_step, "shipping");
    readers.stop().await;
}

#[tokio::test]
async fn bad_reads_are_quarantined_and_the_intake_goes_on() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    readers.publish("gate", "not json".to_owned()).await;
    readers
        .publish("nobody", zebra_read(&sgtin_hex(300), 1))
        .await;
    // A factory-default EPC: no TDS header. Read many times, quarantined once.
    for _ in 0..10 {
        readers
            .publish("gate", zebra_read("7EDA9038051002710002C0AE", 1))
            .await;
    }
    // The reader's own buffer overflowed: counted for an alert, not quarantined.
    readers
        .publish(
            "gate",
            r#"{"timestamp":"2025-03-14T09:26:54.120Z","eventType":"overflow","overflowEvent":{"eventsPurged":120}}"#.to_owned(),
        )
        .await;
    readers
        .publish("gate", zebra_read(&sgtin_hex(301), 1))
        .await;
    let quarantined = readers.app.quarantined(3, Duration::from_secs(15)).await;
    let mut reasons: Vec<(String, String)> = quarantined
        .iter()
        .map(|q| (q.violations[0].field.clone(), q.violations[0].code.clone()))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("".to_owned(), "MALFORMED_MESSAGE".to_owned()),
            ("data.idHex".to_owned(), "SYNTAX".to_owned()),
            ("topic".to_owned(), "UNKNOWN_READER".to_owned()),
        ]
    );
    assert!(quarantined.iter().all(|q| q.channel == "rfid"));
    let after = readers.events_at(GATE, 1, Duration::from_secs(10)).await;
    assert_eq!(
        after.len(),
        1,
        "the good read after the bad ones is observed"
    );
    let overflows = counter(
        &readers.app,
        r#"tracery_rfid_reader_overflows_total{reader="gate"}"#,
    )
    .await;
    assert!(overflows >= 1, "{overflows}");
    let undecodable = counter(
        &readers.app,
        r#"tracery_rfid_reads_total{outcome="undecodable",reader="gate"}"#,
    )
    .await;
    assert!(undecodable >= 10, "{undecodable}");
    readers.stop().await;
}

/// Messages over the limits — larger than `limits.max_body_bytes`, nested deeper than
/// `limits.max_nesting_depth` — are quarantined and acknowledged, not read again forever,
/// and the reads after them are observed.
#[tokio::test]
async fn messages_over_the_limits_are_quarantined_and_the_intake_goes_on() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    let oversized = zebra_read(&sgtin_hex(310), 1).replace(
        "\"peakRssi\"",
        &format!(
            "\"pad\":\"{}\",\"peakRssi\"",
            "x".repeat(2 * MAX_MESSAGE_BYTES)
        ),
    );
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for message in [oversized, deep, zebra_read(&sgtin_hex(311), 1)] {
        readers.publish("gate", message).await;
    }
    let after = readers.events_at(GATE, 1, Duration::from_secs(10)).await;
    assert_eq!(
        epcs(&after[0]),
        ["https://id.gs1.org/01/04012345111118/21/311"],
        "the read after them"
    );
    let quarantined = readers.app.quarantined(2, Duration::from_secs(5)).await;
    let reasons: Vec<(&str, &str)> = quarantined
        .iter()
        .map(|q| (q.channel.as_str(), q.violations[0].code.as_str()))
        .collect();
    assert_eq!(reasons, [("rfid", "OVER_LIMIT"); 2], "{quarantined:?}");
    let described: Vec<&str> = quarantined
        .iter()
        .map(|q| q.violations[0].description.as_str())
        .collect();
    assert!(described[0].contains("max_body_bytes"), "{described:?}");
    assert!(described[1].contains("max_nesting_depth"), "{described:?}");
    assert!(
        quarantined[0].payload.len() <= 4096,
        "only its first bytes kept"
    );
    readers.stop().await;
}

#[tokio::test]
async fn a_pass_in_progress_survives_a_restart() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    let cases: Vec<String> = (401..=403).map(sgtin_hex).collect();
    for tag in cases.iter().chain([&sscc_hex()]) {
        readers.publish("slow-dock", zebra_read(tag, 1)).await;
    }
    // Once smoothing has stored the pass's four tags, the suite restarts mid-pass.
    remembered(&readers.app, 4).await;
    readers.app = readers.app.restart().await.expect("restarts");
    let passes = readers
        .events_at(SLOW_DOCK, 1, Duration::from_secs(20))
        .await;
    let Some(pb::epcis_event::Body::AggregationEvent(pass)) = passes[0].body.clone() else {
        panic!("an AggregationEvent: {:?}", passes[0]);
    };
    assert_eq!(
        pass.child_epcs.len(),
        3,
        "every tag read before the restart"
    );
    readers.stop().await;
}

/// Waits until the smoothing state holds `count` tags.
async fn remembered(app: &TestApp, count: i64) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(app.database_url()).await.expect("db");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM capture_rfid_presence",
            ))
            .await
            .expect("counts")
            .expect("a row");
        if row.try_get::<i64>("", "n").expect("n") >= count {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reader_posting_over_http_is_smoothed_alike() {
    let Some(mut readers) = Readers::start().await else {
        return;
    };
    let http = reqwest::Client::new();
    let base = format!("http://{}/rfid", readers.app.http_addr);
    let post = |reader: &str, body: String| {
        http.post(format!("{base}/{reader}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let tags: Vec<String> = (501..=503).map(sgtin_hex).collect();
    for _ in 0..3 {
        let answer = post("posted", impinj_batch(&tags)).await.expect("posted");
        assert_eq!(answer.status(), reqwest::StatusCode::NO_CONTENT);
    }
    let events = readers.events_at(POSTED, 3, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 3, "three tags, each once");
    let unknown = post("nobody", impinj_batch(&tags)).await.expect("answered");
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    readers.stop().await;
}
