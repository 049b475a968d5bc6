//! MQTT intake: scanner messages on a real broker (Mosquitto on 127.0.0.1:1883) become
//! stored events, bad ones land in quarantine, and a redelivered message is stored once.

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

#[tokio::test]
async fn scanner_messages_over_mqtt_are_captured() {
    let Some(broker) = tracery_e2e::mqtt_broker() else {
        return;
    };
    let run = uuid::Uuid::new_v4();
    let topic_root = format!("tracery-test/{run}");
    let mut app = TestApp::spawn_with(|config| {
        config.capture_mqtt = Some(MqttSettings {
            broker: format!("mqtt://{broker}"),
            topic: format!("{topic_root}/#"),
            client_id: format!("tracery-{run}"),
            username: None,
            password: None,
            tls: None,
            readers: BTreeMap::from([("dock-1".to_owned(), dock_reader(None, "operator"))]),
        });
    })
    .await
    .expect("suite starts");

    let (publisher, mut eventloop) = AsyncClient::new(
        MqttOptions::new(format!("scanner-{run}"), "127.0.0.1", 1883),
        16,
    );
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    // A broker drops messages for a topic nobody has subscribed to yet, so probe until the
    // intake stores one; its fixed eventID keeps repeats to one stored event.
    let probe = r#"{"type":"ObjectEvent","eventID":"urn:uuid:00000000-0000-4000-8000-00000000cafe","eventTime":"2026-11-26T09:00:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.0"]}"#;
    for _ in 0..50 {
        publisher
            .publish(
                format!("{topic_root}/probe"),
                QoS::AtLeastOnce,
                false,
                probe,
            )
            .await
            .expect("published");
        if !stored_events(&mut app, 1, Duration::from_millis(200))
            .await
            .is_empty()
        {
            break;
        }
    }
    let serial_scan = r#"{"reader":"dock-1","code":"]d201095060001343521726123110L1\u001d21SN-1","time":"2026-11-26T10:00:00+01:00"}"#;
    let messages = [
        serial_scan.to_owned(),
        // The broker may deliver a message twice; it must be stored once.
        serial_scan.to_owned(),
        r#"{"reader":"dock-1","code":"https://id.gs1.org/01/09506000134352/10/L2","time":"2026-11-26T10:01:00+01:00"}"#.to_owned(),
        r#"{"type":"ObjectEvent","eventID":"urn:uuid:6f1c2a9e-3b1f-4c52-9d1e-0a4b7c2d8e11","eventTime":"2026-11-26T10:02:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.9"]}"#.to_owned(),
        r#"{"reader":"dock-1","code":"(01)09506000134353(21)X","time":"2026-11-26T10:03:00+01:00"}"#.to_owned(),
        "not json".to_owned(),
    ];
    for message in messages {
        publisher
            .publish(
                format!("{topic_root}/dock-1"),
                QoS::AtLeastOnce,
                false,
                message,
            )
            .await
            .expect("published");
    }

    let mut events = stored_events(&mut app, 4, Duration::from_secs(15)).await;
    assert_eq!(
        events.remove(0).event_id,
        "urn:uuid:00000000-0000-4000-8000-00000000cafe"
    );
    assert_eq!(
        events.len(),
        3,
        "two scans and one full event, the repeated scan once"
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

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let quarantined = loop {
        let entries = app
            .capture
            .list_quarantine(pb::ListQuarantineRequest::default())
            .await
            .expect("lists")
            .into_inner()
            .entries;
        if entries.len() >= 2 || tokio::time::Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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
    let subject = format!("mqtt:{topic_root}/dock-1");
    let audited = app
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
    pump.abort();
    app.stop().await.expect("clean stop");
}

/// Messages over the limits — too large, nested too deep — are quarantined with the reason
/// and acknowledged, and the intake goes on with the next message.
#[tokio::test]
async fn messages_over_the_limits_are_quarantined_and_the_intake_goes_on() {
    let Some(broker) = tracery_e2e::mqtt_broker() else {
        return;
    };
    let run = uuid::Uuid::new_v4();
    let topic_root = format!("tracery-test/{run}");
    let mut app = TestApp::spawn_with(|config| {
        config.limits.max_body_bytes = 64 * 1024;
        config.capture_mqtt = Some(MqttSettings {
            broker: format!("mqtt://{broker}"),
            topic: format!("{topic_root}/#"),
            client_id: format!("tracery-{run}"),
            username: None,
            password: None,
            tls: None,
            readers: BTreeMap::new(),
        });
    })
    .await
    .expect("suite starts");
    let mut options = MqttOptions::new(format!("limits-{run}"), "127.0.0.1", 1883);
    // This client sends what the suite must refuse.
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (publisher, mut eventloop) = AsyncClient::new(options, 16);
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let event = |n: u32| {
        format!(
            r#"{{"type":"ObjectEvent","eventID":"urn:uuid:00000000-0000-4000-8000-0000000dd{n:03}","eventTime":"2026-11-26T09:00:00+01:00","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:4012345.011111.{n}"]}}"#
        )
    };
    let topic = format!("{topic_root}/line");
    // Probe until the intake has subscribed (a broker drops what nobody subscribed to).
    for _ in 0..50 {
        publisher
            .publish(&topic, QoS::AtLeastOnce, false, event(0))
            .await
            .expect("published");
        if !stored_events(&mut app, 1, Duration::from_millis(200))
            .await
            .is_empty()
        {
            break;
        }
    }
    let oversized = event(1).replace(
        "\"OBSERVE\"",
        &format!("\"OBSERVE\",\"ex:pad\":\"{}\"", "x".repeat(100 * 1024)),
    );
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for message in [oversized, deep, event(2)] {
        publisher
            .publish(&topic, QoS::AtLeastOnce, false, message)
            .await
            .expect("published");
    }
    let events = stored_events(&mut app, 2, Duration::from_secs(15)).await;
    assert_eq!(
        events.last().map(|e| e.event_id.as_str()),
        Some("urn:uuid:00000000-0000-4000-8000-0000000dd002"),
        "the message after the refused ones is stored"
    );
    let quarantined = app
        .capture
        .list_quarantine(pb::ListQuarantineRequest::default())
        .await
        .expect("lists")
        .into_inner()
        .entries;
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
    pump.abort();
    app.stop().await.expect("clean stop");
}
