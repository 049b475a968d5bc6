//! Alert rules over a planted episode of the synthetic plant: each example rule of the
//! issue fires once for its episode and resolves after it, on a signed webhook, an MQTT
//! topic and in `ListAlerts`; a malformed rule is refused naming the field; a rule that
//! can never fire is accepted and said so.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use chrono::Utc;
use hmac::{KeyInit as _, Mac as _};
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use sha2::Sha256;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, alert_service_client::AlertServiceClient};

use crate::rest::{Client, document};

const TOKEN: &str = "alerts-3f1c9a";
const LINE: &str = "urn:epc:id:sgln:4012345.00003";
const BLOCKED_SUPPLIER: &str = "urn:epc:id:pgln:0614141.00002";

/// The issue's example rules, as a plant writes them in its configuration file (windows
/// of seconds, so that episodes pass while the test waits).
fn rules() -> String {
    format!(
        r#"
[[rules]]
name = "non-conformant-at-filler"
kind = "match"
query = {{ EQ_disposition = "non_conformant", EQ_readPoint = "{LINE}.1" }}
window_secs = 3

[[rules]]
name = "damage-rate-line-2"
kind = "rate"
query = {{ EQ_readPoint = "{LINE}.2" }}
numerator = {{ EQ_disposition = "damaged" }}
above = 0.5
min_events = 3
window_secs = 3

[[rules]]
name = "quarantine-rate-line-5"
kind = "quarantine_rate"
query = {{ EQ_readPoint = "{LINE}.5" }}
above = 0.3
min_events = 2
window_secs = 3

[[rules]]
name = "blocked-supplier"
kind = "blocked_source"
query = {{ EQ_bizStep = "receiving" }}
sources = ["{BLOCKED_SUPPLIER}"]
window_secs = 3

[[rules]]
name = "cold-chain"
kind = "sensor_range"
sensor_type = "gs1:Temperature"
min = 2.0
max = 8.0

[[rules]]
name = "line-9-silent"
kind = "silence"
query = {{ EQ_readPoint = "{LINE}.9" }}
window_secs = 2
"#
    )
}

/// The rules that end by their window or by a later event, each once.
const EPISODIC: [&str; 5] = [
    "non-conformant-at-filler",
    "damage-rate-line-2",
    "quarantine-rate-line-5",
    "blocked-supplier",
    "cold-chain",
];

/// An event at read point `line`, with `fields` over a plain inspection.
fn event(n: u32, line: u32, fields: Value) -> Value {
    let mut event = json!({
        "type": "ObjectEvent",
        "eventID": format!("urn:uuid:00000000-0000-4000-8000-0000000009{n:02}"),
        "eventTime": Utc::now().to_rfc3339(),
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "readPoint": {"id": format!("{LINE}.{line}")},
        "epcList": [format!("urn:epc:id:sgtin:4012345.011111.9{n:02}")],
    });
    let object = event.as_object_mut().expect("an object");
    for (key, value) in fields.as_object().expect("fields").clone() {
        object.insert(key, value);
    }
    event
}

fn temperature(n: u32, celsius: f64) -> Value {
    event(
        n,
        4,
        json!({"sensorElementList": [{
            "sensorMetadata": {"time": Utc::now().to_rfc3339()},
            "sensorReport": [{"type": "gs1:Temperature", "value": celsius, "uom": "CEL"}],
        }]}),
    )
}

/// The planted episode of every rule but the silence.
fn episode() -> Vec<Value> {
    vec![
        event(1, 1, json!({"disposition": "non_conformant"})),
        event(2, 2, json!({"disposition": "damaged"})),
        event(3, 2, json!({"disposition": "damaged"})),
        event(4, 2, json!({"disposition": "in_progress"})),
        event(5, 5, json!({})),
        // Not an EPC: quarantined, at line 5.
        event(6, 5, json!({"epcList": ["urn:epc:id:sgtin:not-an-epc"]})),
        event(
            7,
            3,
            json!({"bizStep": "receiving", "sourceList": [
                {"type": "owning_party", "source": BLOCKED_SUPPLIER}
            ]}),
        ),
        temperature(8, 12.5),
    ]
}

/// What a webhook receiver took: bodies with their signatures.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(Bytes, String)>>>,
    /// Requests to turn away first (an outage), counting down.
    refuse: Arc<Mutex<u32>>,
    /// How long the receiver takes to answer.
    slowness: Duration,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    tokio::time::sleep(receiver.slowness).await;
    let mut refuse = receiver.refuse.lock().expect("state");
    if *refuse > 0 {
        *refuse -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let signature = headers
        .get("GS1-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    receiver.seen.lock().expect("state").push((body, signature));
    StatusCode::OK
}

impl Receiver {
    async fn start(refuse: u32) -> (Self, SocketAddr) {
        Self::start_answering_in(refuse, Duration::ZERO).await
    }

    async fn start_answering_in(refuse: u32, slowness: Duration) -> (Self, SocketAddr) {
        let receiver = Self {
            refuse: Arc::new(Mutex::new(refuse)),
            slowness,
            ..Self::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/alerts", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    /// (rule, change) of each notice taken, in order.
    fn changes(&self) -> Vec<(String, String)> {
        self.seen
            .lock()
            .expect("state")
            .iter()
            .map(|(body, _)| change_of(body))
            .collect()
    }
}

fn change_of(body: &[u8]) -> (String, String) {
    let notice: Value = serde_json::from_slice(body).expect("JSON");
    (
        notice["alert"]["rule"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        notice["change"].as_str().unwrap_or_default().to_owned(),
    )
}

fn hmac_hex(token: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Subscribes to `<root>/#` and collects what is published there.
async fn mqtt_listener(broker: SocketAddr, root: &str) -> Arc<Mutex<Vec<(String, Bytes)>>> {
    let mut options = MqttOptions::new(
        format!("alerts-listener-{}", uuid::Uuid::new_v4()),
        broker.ip().to_string(),
        broker.port(),
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client
        .subscribe(format!("{root}/#"), QoS::AtLeastOnce)
        .await
        .expect("subscribes");
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    tokio::spawn(async move {
        let _client = client;
        while let Ok(event) = eventloop.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    sink.lock()
                        .expect("state")
                        .push((publish.topic, publish.payload));
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("subscribed")
        .expect("subscribed");
    received
}

/// Every alert, resolved ones too, oldest first.
async fn all_alerts(client: &mut AlertServiceClient<tonic::transport::Channel>) -> Vec<pb::Alert> {
    let mut alerts = client
        .list_alerts(pb::ListAlertsRequest {
            include_resolved: true,
            page: None,
        })
        .await
        .expect("lists")
        .into_inner()
        .alerts;
    alerts.reverse();
    alerts
}

/// Waits (up to 30 s) until `check` holds of the alerts.
async fn alerts_until(
    client: &mut AlertServiceClient<tonic::transport::Channel>,
    what: &str,
    check: impl Fn(&[pb::Alert]) -> bool,
) -> Vec<pb::Alert> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = all_alerts(client).await;
        if check(&alerts) {
            return alerts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn first_of<'a>(alerts: &'a [pb::Alert], rule: &str) -> Option<&'a pb::Alert> {
    alerts.iter().find(|a| a.rule == rule)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_example_rule_fires_once_for_its_episode_and_resolves_after_it() {
    let broker = tracery_e2e::mqtt_broker();
    let root = format!("tracery-test/{}/alerts", uuid::Uuid::new_v4());
    let (receiver, addr) = Receiver::start(2).await;
    let mqtt_received = match broker {
        Some(broker) => Some(mqtt_listener(broker, &root).await),
        None => None,
    };
    let token_file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(token_file.path(), TOKEN).expect("token written");
    let mut settings: tracery_runtime::config::AlertSettings =
        toml::from_str(&rules()).expect("rules read");
    settings.webhook = Some(
        toml::from_str(&format!(
            "url = \"http://{addr}/alerts\"\nsignature_token = {{ file = \"{}\" }}",
            token_file.path().display()
        ))
        .expect("webhook"),
    );
    if let Some(broker) = broker {
        settings.mqtt = Some(tracery_runtime::config::MqttSettings {
            broker: format!("mqtt://{broker}"),
            topic: root.clone(),
            client_id: format!("tracery-{}", uuid::Uuid::new_v4()),
            username: None,
            password: None,
            tls: None,
            readers: BTreeMap::new(),
        });
    }
    let app = TestApp::spawn_with(|config| {
        config.alerts = settings;
        config.subscriptions.allow_plain_http = true;
        config.subscriptions.max_retry_secs = 1;
    })
    .await
    .expect("suite starts");
    let client = Client::new(&app);
    let mut alerts = AlertServiceClient::new(app.channel.clone());

    // Line 9 is silent from the start: its rule fires after its window.
    alerts_until(&mut alerts, "the silence", |a| {
        first_of(a, "line-9-silent").is_some()
    })
    .await;
    // The quarantined event must not roll the job back.
    let proceed = [("GS1-Capture-Error-Behaviour", "proceed")];
    let accepted = client
        .post("/capture", &document(episode()), &proceed)
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    alerts_until(&mut alerts, "every rule to fire", |a| {
        EPISODIC.iter().all(|rule| first_of(a, rule).is_some())
    })
    .await;
    // More of the same during the episodes: no new alerts. Line 9 speaks again; the cold
    // chain reads in range again.
    let more = vec![
        event(11, 1, json!({"disposition": "non_conformant"})),
        event(12, 9, json!({})),
        temperature(13, 5.0),
    ];
    let accepted = client.post("/capture", &document(more), &[]).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let ended = alerts_until(&mut alerts, "every episode to end", |a| {
        EPISODIC
            .iter()
            .chain(["line-9-silent"].iter())
            .all(|rule| first_of(a, rule).is_some_and(|alert| alert.cleared_at.is_some()))
    })
    .await;
    for rule in EPISODIC {
        let theirs: Vec<&pb::Alert> = ended.iter().filter(|a| a.rule == rule).collect();
        assert_eq!(
            theirs.len(),
            1,
            "{rule} fires once for its episode: {theirs:#?}"
        );
        assert_eq!(theirs[0].status, "resolved");
        assert_eq!(theirs[0].resolved_by, "condition cleared");
    }
    let cold = first_of(&ended, "cold-chain").expect("cold chain");
    assert!(cold.detail.contains("12.5"), "{}", cold.detail);
    assert_eq!(
        cold.event_id,
        "urn:uuid:00000000-0000-4000-8000-000000000908"
    );

    // The webhook: through its outage, each rule's alert fired then resolved, signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivered = |changes: &[(String, String)]| {
        EPISODIC.iter().all(|rule| {
            let mine: Vec<&str> = changes
                .iter()
                .filter(|(r, _)| r == rule)
                .map(|(_, c)| c.as_str())
                .collect();
            mine == ["fired", "resolved"]
        })
    };
    while !delivered(&receiver.changes()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook notices: {:?}",
            receiver.changes()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (body, signature) in receiver.seen.lock().expect("state").iter() {
        assert_eq!(*signature, hmac_hex(TOKEN, body), "signed with the token");
        assert_ne!(*signature, hmac_hex("another-token", body));
    }

    if let Some(received) = mqtt_received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let changes: Vec<(String, String)> = received
                .lock()
                .expect("state")
                .iter()
                .map(|(topic, body)| {
                    let (rule, change) = change_of(body);
                    assert_eq!(*topic, format!("{root}/{rule}"));
                    (rule, change)
                })
                .collect();
            if delivered(&changes) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "MQTT notices: {changes:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app.stop().await.expect("stops");
}

fn put(name: &str, definition: Value) -> pb::PutAlertRuleRequest {
    pb::PutAlertRuleRequest {
        name: name.to_owned(),
        definition_json: definition.to_string(),
    }
}

#[tokio::test]
async fn a_malformed_rule_is_refused_naming_the_field_and_one_that_cannot_fire_is_reported() {
    let app = TestApp::spawn_with(|config| {
        config.alerts = toml::from_str(
            "[[rules]]\nname = \"from-the-file\"\nkind = \"match\"\nquery = { EQ_bizStep = \"shipping\" }\n",
        )
        .expect("rules");
    })
    .await
    .expect("suite starts");
    let mut alerts = AlertServiceClient::new(app.channel.clone());
    let refusals = [
        (
            json!({"kind": "rate", "above": 2, "numerator": {"EQ_disposition": "damaged"}}),
            "above",
        ),
        (
            json!({"kind": "match", "query": {"EQ_colour": "red"}}),
            "query.EQ_colour",
        ),
        (
            json!({"kind": "sensor_range", "sensor_type": "gs1:Temperature", "min": 9, "max": 2}),
            "max",
        ),
        (json!({"kind": "silence", "window_sec": 60}), "window_sec"),
    ];
    for (definition, field) in refusals {
        let status = alerts
            .put_alert_rule(put("bad", definition.clone()))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{definition}");
        assert!(
            status.message().contains(field),
            "{definition}: {}",
            status.message()
        );
    }

    let never = alerts
        .put_alert_rule(put(
            "never",
            json!({"kind": "rate", "above": 1.0, "numerator": {"EQ_disposition": "damaged"}}),
        ))
        .await
        .expect("accepted")
        .into_inner()
        .rule
        .expect("the rule");
    assert!(never.never_matches.contains("1"), "{never:?}");
    let listed = alerts
        .list_alert_rules(pb::ListAlertRulesRequest {})
        .await
        .expect("lists")
        .into_inner()
        .rules;
    let names: Vec<(&str, &str, bool)> = listed
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.origin.as_str(),
                r.never_matches.is_empty(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("from-the-file", "config", true), ("never", "api", false)]
    );

    let file_rule = alerts
        .put_alert_rule(put("from-the-file", json!({"kind": "match"})))
        .await
        .expect_err("the file's");
    assert_eq!(file_rule.code(), tonic::Code::FailedPrecondition);
    let deleted = alerts
        .delete_alert_rule(pb::DeleteAlertRuleRequest {
            name: "never".into(),
        })
        .await
        .expect("deletes")
        .into_inner();
    assert!(deleted.deleted);
    app.stop().await.expect("stops");

    let malformed = TestApp::spawn_with(|config| {
        config.alerts =
            toml::from_str("[[rules]]\nname = \"typo\"\nkind = \"match\"\nwindow_secs = \"ten\"\n")
                .expect("rules");
    })
    .await;
    // The capture service refuses to start: the suite stops, saying why.
    let err = match malformed {
        Err(err) => err,
        Ok(app) => app.stop().await.expect_err("the suite does not start"),
    };
    let err = format!("{err:#}");
    assert!(
        err.contains("alerts.rules[0]") && err.contains("window_secs"),
        "{err}"
    );
}

fn one_rule(window_secs: u32) -> tracery_runtime::config::AlertSettings {
    toml::from_str(&format!(
        "[[rules]]\nname = \"non-conformant\"\nkind = \"match\"\n\
         query = {{ EQ_disposition = \"non_conformant\" }}\nwindow_secs = {window_secs}\n"
    ))
    .expect("rules")
}

fn non_conformant(numbers: std::ops::Range<u32>) -> Vec<Value> {
    numbers
        .map(|n| event(n, 1, json!({"disposition": "non_conformant"})))
        .collect()
}

/// Two replicas evaluate the same rule over the same store, both seeing its condition
/// start: the one-episode decision is taken where the alert is written, so there is one;
/// and both run the webhook channel, which one at a time delivers, so it is sent once.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_that_both_see_an_episode_raise_one_alert_sent_once() {
    // A slow receiver: both replicas look for notices while the first delivery is on its
    // way, so without the channel's lease both would send it.
    let (receiver, addr) = Receiver::start_answering_in(0, Duration::from_millis(2500)).await;
    let configure = |config: &mut tracery_runtime::config::Config| {
        config.alerts = one_rule(600);
        config.alerts.webhook = Some(tracery_runtime::config::AlertWebhook {
            url: format!("http://{addr}/alerts"),
            signature_token: None,
        });
        config.subscriptions.allow_plain_http = true;
    };
    let app = TestApp::spawn_with(configure).await.expect("suite starts");
    let replica = app
        .spawn_replica_with(configure)
        .await
        .expect("replica starts");
    let (first, second) = (Client::new(&app), Client::new(&replica));
    for round in 0..5 {
        let numbers = round * 10..round * 10 + 5;
        let (left, right) = (
            document(non_conformant(numbers.clone())),
            document(non_conformant(numbers.start + 5..numbers.end + 5)),
        );
        let (a, b) = tokio::join!(
            first.post("/capture", &left, &[]),
            second.post("/capture", &right, &[]),
        );
        assert_eq!(
            (a.status(), b.status()),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
    }
    let mut alerts = AlertServiceClient::new(app.channel.clone());
    alerts_until(&mut alerts, "the alert", |a| !a.is_empty()).await;
    // Both evaluators have looked at the condition, and both channels for notices, more
    // than once by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let raised = all_alerts(&mut alerts).await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    let sent = receiver.changes();
    assert_eq!(
        sent,
        [("non-conformant".to_owned(), "fired".to_owned())],
        "one notice, from one of the two replicas"
    );
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("stops");
}

/// A restart in the middle of an episode neither raises it again nor forgets to resolve
/// it: the evaluator rebuilds its window from the store and finds the open episode there.
#[tokio::test(flavor = "multi_thread")]
async fn an_episode_survives_a_restart_once_and_resolves_after_it() {
    let app = TestApp::spawn_with(|config| config.alerts = one_rule(4))
        .await
        .expect("suite starts");
    let accepted = Client::new(&app)
        .post("/capture", &document(non_conformant(1..3)), &[])
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let mut alerts = AlertServiceClient::new(app.channel.clone());
    alerts_until(&mut alerts, "the alert", |a| !a.is_empty()).await;

    let app = app.restart().await.expect("restarts");
    let mut alerts = AlertServiceClient::new(app.channel.clone());
    let ended = alerts_until(&mut alerts, "the episode to end", |a| {
        a.iter().all(|alert| alert.cleared_at.is_some())
    })
    .await;
    assert_eq!(ended.len(), 1, "{ended:#?}");
    app.stop().await.expect("stops");
}
