//! MQTT intake: scanner messages on a real broker (Mosquitto on 127.0.0.1:1883) become
//! stored events, bad ones land in quarantine, a redelivered message is stored once, and
//! scans without a time are stamped when they arrive.

use std::{collections::BTreeMap, time::Duration};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;
use tracery_runtime::config::{MqttSettings, ReaderSettings};

const READ_POINT: &str = "urn:epc:id:sgln:4012345.00001.0";

/// A receiving dock's reader, on `topic` with `role`.
fn dock_reader(topic: Option<String>, role: &str) -> ReaderSettings {
    ReaderSettings {
        topic,
        roles: vec![role.to_owned()],
        plant: None,
        read_point: READ_POINT.to_owned(),
        biz_step: Some("receiving".to_owned()),
        biz_location: None,
        disposition: Some("in_progress".to_owned()),
        require_time: false,
    }
}

/// The stored events, once there are `count` of them or `within` has passed.
async fn stored_events(app: &mut TestApp, count: usize, within: Duration) -> Vec<pb::EpcisEvent> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let events: Vec<pb::EpcisEvent> = app
            .capture
            .query_events(pb::QueryEventsRequest::default())
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

/// A suite whose MQTT intake has subscribed to `<root>/#` on the test broker, and a client
/// publishing to it.
struct Intake {
    app: TestApp,
    publisher: AsyncClient,
    root: String,
    pump: tokio::task::JoinHandle<()>,
}

impl Intake {
    /// `None` (the test skips) when no broker runs.
    async fn start(
        readers: BTreeMap<String, ReaderSettings>,
        max_body_bytes: Option<usize>,
    ) -> Option<Self> {
        let broker = tracery_e2e::mqtt_broker()?;
        let run = uuid::Uuid::new_v4();
        let root = format!("tracery-test/{run}");
        let app = TestApp::spawn_with(|config| {
            if let Some(most) = max_body_bytes {
                config.limits.max_body_bytes = most;
            }
            config.capture_mqtt = Some(MqttSettings {
                broker: format!("mqtt://{broker}"),
                topic: format!("{root}/#"),
                client_id: format!("tracery-{run}"),
                username: None,
                password: None,
                tls: None,
                readers,
            });
        })
        .await
        .expect("suite starts");
        let mut options = MqttOptions::new(
            format!("publisher-{run}"),
            broker.ip().to_string(),
            broker.port(),
        );
        // Some tests send what the suite must refuse for its size.
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (publisher, mut eventloop) = AsyncClient::new(options, 16);
        let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        let mut intake = Self {
            app,
            publisher,
            root,
            pump,
        };
        intake.await_subscribed().await;
        Some(intake)
    }

    /// A broker drops messages for a topic nobody has subscribed to yet, so this probes
    /// until the intake stores one; its fixed eventID keeps repeats to one stored event.
    async fn await_subscribed(&mut self) {
        let probe = r#"{"type":"ObjectEvent","eventID":"urn:uuid:00000000-0000-4000-8000-00000000cafe","eventTime":"2026-11-26T09:00:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.0"]}"#;
        for _ in 0..50 {
            self.publish("probe", probe).await;
            if !stored_events(&mut self.app, 1, Duration::from_millis(200))
                .await
                .is_empty()
            {
                return;
            }
        }
        panic!("the intake never subscribed");
    }

    async fn publish(&self, subtopic: &str, message: impl Into<Vec<u8>>) {
        self.publisher
            .publish(
                format!("{}/{subtopic}", self.root),
                QoS::AtLeastOnce,
                false,
                message,
            )
            .await
            .expect("published");
    }

    /// The quarantine, once it holds `count` entries or `within` has passed.
    async fn stop(self) {
        self.pump.abort();
        self.app.stop().await.expect("clean stop");
    }
}

fn dock_readers(reader: ReaderSettings) -> BTreeMap<String, ReaderSettings> {
    BTreeMap::from([("dock-1".to_owned(), reader)])
}

#[tokio::test]
async fn scanner_messages_over_mqtt_are_captured() {
    let Some(mut intake) = Intake::start(dock_readers(dock_reader(None, "operator")), None).await
    else {
        return;
    };
    let serial_scan = r#"{"reader":"dock-1","code":"]d201095060001343521726123110L1\u001d21SN-1","time":"2026-11-26T10:00:00+01:00"}"#;
    let messages = [
        serial_scan.to_owned(),
        // The broker may deliver a message twice; it must be stored once.
        serial_scan.to_owned(),
        r#"{"reader":"dock-1","code":"https://id.gs1.org/01/09506000134352/10/L2","time":"2026-11-26T10:01:00+01:00"}"#.to_owned(),
        r#"{"type":"ObjectEvent","eventID":"urn:uuid:6f1c2a9e-3b1f-4c52-9d1e-0a4b7c2d8e11","eventTime":"2026-11-26T10:02:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.9"]}"#.to_owned(),
        r#"{"reader":"dock-1","code":"(01)09506000134353(21)X","time":"2026-11-26T10:03:00+01:00"}"#.to_owned(),
        "not json".to_owned(),
        // An RFID tag's EPC as a reader reports it.
        r#"{"reader":"dock-1","code":"3074257BF7194E4000001A85","time":"2026-11-26T10:04:00+01:00"}"#.to_owned(),
    ];
    for message in messages {
        intake.publish("dock-1", message).await;
    }

    let mut events = stored_events(&mut intake.app, 5, Duration::from_secs(15)).await;
    assert_eq!(
        events.remove(0).event_id,
        "urn:uuid:00000000-0000-4000-8000-00000000cafe"
    );
    assert_eq!(
        events.len(),
        4,
        "three scans and one full event, the repeated scan once"
    );
    let scan = &events[0];
    let pb::epcis_event::Body::ObjectEvent(object) = scan.body.clone().expect("body") else {
        panic!("an ObjectEvent");
    };
    assert_eq!(
        object.epcs,
        ["https://id.gs1.org/01/09506000134352/21/SN-1"],
        "key and serial, as a Digital Link"
    );
    assert_eq!(object.action, pb::Action::Observe as i32);
    assert_eq!(
        scan.read_point.as_ref().map(|l| l.id.as_str()),
        Some(READ_POINT)
    );
    assert_eq!(
        (scan.biz_step.as_str(), scan.disposition.as_str()),
        ("receiving", "in_progress")
    );
    assert_eq!(scan.event_time_zone_offset, "+01:00");
    let pb::epcis_event::Body::ObjectEvent(lot) = events[1].body.clone().expect("body") else {
        panic!("an ObjectEvent");
    };
    assert_eq!(
        lot.quantities[0].epc_class, "https://id.gs1.org/01/09506000134352/10/L2",
        "a lot is a class"
    );
    assert_eq!(
        events[2].event_id,
        "urn:uuid:6f1c2a9e-3b1f-4c52-9d1e-0a4b7c2d8e11"
    );
    let pb::epcis_event::Body::ObjectEvent(tag) = events[3].body.clone().expect("body") else {
        panic!("an ObjectEvent");
    };
    assert_eq!(
        tag.epcs,
        ["https://id.gs1.org/01/80614141123458/21/6789"],
        "the tag's EPC"
    );

    let quarantined = intake.app.quarantined(2, Duration::from_secs(10)).await;
    let reasons: Vec<(String, String)> = quarantined
        .iter()
        .map(|e| (e.channel.clone(), e.violations[0].code.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("mqtt".to_owned(), "BAD_CHECK_DIGIT".to_owned()),
            ("mqtt".to_owned(), "MALFORMED_MESSAGE".to_owned())
        ]
    );
    assert_eq!(
        quarantined[1].payload, "not json",
        "kept exactly as received"
    );
    // Every message delivered is on the audit trail, under its topic.
    let subject = format!("mqtt:{}/dock-1", intake.root);
    let audited = intake
        .app
        .audit_log()
        .await
        .expect("audit trail")
        .into_iter()
        .filter(|(who, ..)| *who == subject)
        .count();
    assert!(
        audited >= 6,
        "each of the 6 messages audited, got {audited}"
    );
    intake.stop().await;
}

/// Messages over the limits — too large, nested too deep — are quarantined with the reason
/// and acknowledged, and the intake goes on with the next message.
#[tokio::test]
async fn messages_over_the_limits_are_quarantined_and_the_intake_goes_on() {
    let Some(mut intake) = Intake::start(BTreeMap::new(), Some(64 * 1024)).await else {
        return;
    };
    let event = |n: u32| {
        format!(
            r#"{{"type":"ObjectEvent","eventID":"urn:uuid:00000000-0000-4000-8000-0000000dd{n:03}","eventTime":"2026-11-26T09:00:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.{n}"]}}"#
        )
    };
    let oversized = event(1).replace(
        "\"OBSERVE\"",
        &format!("\"OBSERVE\",\"ex:pad\":\"{}\"", "x".repeat(100 * 1024)),
    );
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for message in [oversized, deep, event(2)] {
        intake.publish("line", message).await;
    }
    let events = stored_events(&mut intake.app, 2, Duration::from_secs(15)).await;
    assert_eq!(
        events.last().map(|e| e.event_id.as_str()),
        Some("urn:uuid:00000000-0000-4000-8000-0000000dd002"),
        "the message after the refused ones is stored"
    );
    let quarantined = intake.app.quarantined(2, Duration::from_secs(5)).await;
    let reasons: Vec<&str> = quarantined
        .iter()
        .map(|e| e.violations[0].code.as_str())
        .collect();
    assert_eq!(reasons, ["OVER_LIMIT", "OVER_LIMIT"], "{quarantined:?}");
    assert!(
        quarantined[0].violations[0]
            .description
            .contains("max_body_bytes"),
        "{:?}",
        quarantined[0].violations
    );
    assert!(
        quarantined[1].violations[0]
            .description
            .contains("max_nesting_depth"),
        "{:?}",
        quarantined[1].violations
    );
    assert!(quarantined[0].payload.len() <= 4096);
    intake.stop().await;
}

/// A scan without `time` happened when it reached the suite: it is stamped then, and two
/// identical ones (a scanner reading the same label twice) are two events, not a repeat.
#[tokio::test]
async fn two_identical_scans_without_a_time_are_two_events() {
    let Some(mut intake) = Intake::start(dock_readers(dock_reader(None, "operator")), None).await
    else {
        return;
    };
    let before = chrono::Utc::now().timestamp();
    let scan = r#"{"reader":"dock-1","code":"https://id.gs1.org/01/09506000134352/21/T-1"}"#;
    intake.publish("dock-1", scan).await;
    intake.publish("dock-1", scan).await;
    let events = stored_events(&mut intake.app, 3, Duration::from_secs(15)).await;
    let scans = &events[1..];
    assert_eq!(scans.len(), 2, "both scans stored: {events:?}");
    assert_ne!(scans[0].event_id, scans[1].event_id);
    let after = chrono::Utc::now().timestamp();
    for scan in scans {
        let stamped = scan.event_time.as_ref().map_or(0, |t| t.seconds);
        assert!(
            (before..=after).contains(&stamped),
            "stamped on receipt: {stamped} not in {before}..={after}"
        );
    }
    intake.stop().await;
}

/// A reader configured with `require_time` has scans without one quarantined, naming the
/// field.
#[tokio::test]
async fn a_reader_that_requires_a_time_has_scans_without_one_quarantined() {
    let reader = ReaderSettings {
        require_time: true,
        ..dock_reader(None, "operator")
    };
    let Some(intake) = Intake::start(dock_readers(reader), None).await else {
        return;
    };
    intake
        .publish(
            "dock-1",
            r#"{"reader":"dock-1","code":"https://id.gs1.org/01/09506000134352/21/T-2"}"#,
        )
        .await;
    let quarantined = intake.app.quarantined(1, Duration::from_secs(15)).await;
    let fields: Vec<&str> = quarantined
        .iter()
        .flat_map(|e| e.violations.iter().map(|v| v.field.as_str()))
        .collect();
    assert_eq!(fields, ["time"], "{quarantined:?}");
    intake.stop().await;
}
