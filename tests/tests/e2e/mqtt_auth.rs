//! MQTT with identities: a Mosquitto of the test's own, with a password file and ACLs, in
//! front of a suite with `[auth]`. A client without credentials cannot connect; each
//! reader speaks with its configured roles, so a scanner (`operator`) cannot declare errors
//! or retire units — its message is quarantined with the role reason, acknowledged and
//! kept — while a quality bench's same messages are stored.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;
use tracery_runtime::config::{MqttSettings, ReaderSettings, SecretSource};

use crate::auth::Provider;

const READ_POINT: &str = "urn:epc:id:sgln:4012345.00001.0";
/// How long a probe waits to be stored before it is sent again (a broker drops messages
/// published before the intake subscribed).
const PROBE_WAIT: Duration = Duration::from_millis(300);

/// A Mosquitto on its own port, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Mosquitto with `users` (name, password) and each user's topic rights, or `None`
/// (loudly) where Mosquitto is not installed; CI has it.
fn start_broker(dir: &Path, users: &[(&str, &str, &str)]) -> Option<Broker> {
    start_broker_with(dir, users, "")
}

/// The same with more `listener_settings` (TLS).
fn start_broker_with(
    dir: &Path,
    users: &[(&str, &str, &str)],
    listener_settings: &str,
) -> Option<Broker> {
    if Command::new("mosquitto_passwd").arg("-h").output().is_err() {
        assert!(
            std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
            "TRACERY_REQUIRE_FIXTURES=1 but mosquitto_passwd is not installed"
        );
        eprintln!("\n*** SKIPPED: Mosquitto is not installed; this test did not run ***\n");
        return None;
    }
    let passwords = dir.join("passwd");
    let mut acl = String::new();
    for (user, password, rights) in users {
        let status = Command::new("mosquitto_passwd")
            .arg("-b")
            .args(if passwords.exists() { None } else { Some("-c") })
            .arg(&passwords)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(status.success());
        acl.push_str(&format!("user {user}\n{rights}\n"));
    }
    std::fs::write(dir.join("acl"), acl).expect("acl file");
    for port in broker_ports() {
        let config = format!(
            "user root\nlistener {port} 127.0.0.1\n{listener_settings}allow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\n",
            passwords.display(),
            dir.join("acl").display()
        );
        std::fs::write(dir.join("mosquitto.conf"), config).expect("config");
        if let Some(broker) = run_broker(dir, port) {
            return Some(broker);
        }
    }
    panic!("mosquitto found no port to listen on");
}

/// Candidate broker ports below the kernel's ephemeral range, so that no port another test
/// bound to port 0 is among them; each is tried only when it can be bound right now.
fn broker_ports() -> impl Iterator<Item = u16> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    std::iter::repeat_with(move || {
        base + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 200
    })
    .take(50)
    .filter(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// Starts Mosquitto on `port` and waits until it listens, or `None` when it exits first
/// (someone else took the port).
fn run_broker(dir: &Path, port: u16) -> Option<Broker> {
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let mut broker = Broker { child, port };
    for _ in 0..100 {
        if broker.child.try_wait().expect("mosquitto status").is_some() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(broker);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("mosquitto did not listen on {port}");
}

/// A connected publisher as `user`, or the broker's refusal.
async fn publisher(
    port: u16,
    id: &str,
    user: Option<(&str, &str)>,
) -> Result<AsyncClient, ConnectionError> {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    if let Some((user, password)) = user {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    loop {
        match eventloop.poll().await? {
            Event::Incoming(Packet::ConnAck(_)) => break,
            _ => continue,
        }
    }
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    Ok(client)
}

/// `message` with a bearer `token`.
fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("header");
    request.metadata_mut().insert("authorization", value);
    request
}

/// (stored eventIDs, quarantine), read as a planner.
async fn store(app: &TestApp, token: &str) -> (Vec<String>, Vec<pb::QuarantinedEvent>) {
    let mut capture = app.capture.clone();
    let stored = capture
        .query_events(authorized(pb::QueryEventsRequest::default(), token))
        .await
        .expect("queries")
        .into_inner()
        .events
        .into_iter()
        .filter_map(|stored| stored.event.map(|e| e.event_id))
        .collect();
    let quarantined = capture
        .list_quarantine(authorized(pb::ListQuarantineRequest::default(), token))
        .await
        .expect("lists")
        .into_inner()
        .entries;
    (stored, quarantined)
}

/// Polls until `done` holds of (stored eventIDs, quarantine) or `within` has passed.
async fn settle(
    app: &TestApp,
    token: &str,
    within: Duration,
    done: impl Fn(&[String], &[pb::QuarantinedEvent]) -> bool,
) -> (Vec<String>, Vec<pb::QuarantinedEvent>) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (stored, quarantined) = store(app, token).await;
        if done(&stored, &quarantined) || tokio::time::Instant::now() > deadline {
            return (stored, quarantined);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn object_event(id: &str, serial: &str, extra: serde_json::Value) -> String {
    let mut event = serde_json::json!({
        "type": "ObjectEvent", "eventID": id,
        "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
        "action": "OBSERVE", "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{serial}")],
        "readPoint": {"id": READ_POINT},
    });
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    event.to_string()
}

fn declaration(id: &str, serial: &str) -> String {
    object_event(
        id,
        serial,
        serde_json::json!({"errorDeclaration": {"declarationTime": "2026-11-26T11:00:00+01:00", "reason": "incorrect_data"}}),
    )
}

/// A DELETE without any bizStep: it retires the identifier all the same.
fn retirement(id: &str, serial: &str) -> String {
    object_event(id, serial, serde_json::json!({"action": "DELETE"}))
}

#[tokio::test]
async fn mqtt_readers_speak_with_their_own_roles_on_an_authenticated_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = "plant-1/scans";
    let Some(broker) = start_broker(
        dir.path(),
        &[
            ("tracery", "capture-secret", &format!("topic read {root}/#")),
            (
                "dock-1",
                "dock-secret",
                &format!("topic write {root}/dock-1"),
            ),
            (
                "bench",
                "bench-secret",
                &format!("topic write {root}/bench"),
            ),
        ],
    ) else {
        return;
    };
    let port = broker.port;

    let refused = publisher(port, "anonymous", None)
        .await
        .expect_err("no credentials, no connection");
    assert!(
        matches!(refused, ConnectionError::ConnectionRefused(_)),
        "{refused:?}"
    );
    let wrong = publisher(port, "guesser", Some(("dock-1", "guess"))).await;
    assert!(wrong.is_err(), "a wrong password is refused too");

    let password_file = dir.path().join("capture-password");
    std::fs::write(&password_file, "capture-secret\n").expect("secret file");
    let provider = Provider::new();
    let settings = provider.settings();
    let reader = |topic: &str, role: &str| ReaderSettings {
        topic: Some(format!("{root}/{topic}")),
        roles: vec![role.to_owned()],
        plant: None,
        read_point: READ_POINT.to_owned(),
        biz_step: Some("receiving".to_owned()),
        biz_location: None,
        disposition: None,
        require_time: false,
    };
    let app = TestApp::spawn_with(|config| {
        config.auth = Some(settings);
        config.capture_mqtt = Some(MqttSettings {
            broker: format!("mqtt://127.0.0.1:{port}"),
            topic: format!("{root}/#"),
            client_id: format!("tracery-{}", uuid::Uuid::new_v4()),
            username: Some("tracery".to_owned()),
            password: Some(SecretSource::file(&password_file)),
            tls: None,
            readers: BTreeMap::from([
                ("dock-1".to_owned(), reader("dock-1", "operator")),
                ("bench".to_owned(), reader("bench", "quality")),
            ]),
        });
    })
    .await
    .expect("suite starts");

    let planner = provider.token(&["planner"], &[crate::auth::PLANT]);
    let dock = publisher(port, "dock-1", Some(("dock-1", "dock-secret")))
        .await
        .expect("the dock's reader connects");
    let bench = publisher(port, "bench", Some(("bench", "bench-secret")))
        .await
        .expect("the bench connects");
    // A broker drops messages for a topic nobody has subscribed to yet: probe until the
    // intake has stored one (a fixed eventID keeps repeats to one).
    let probe_id = "urn:uuid:00000000-0000-4000-8000-0000000aa0a0";
    for _ in 0..50 {
        bench
            .publish(
                format!("{root}/bench"),
                QoS::AtLeastOnce,
                false,
                object_event(probe_id, "P", serde_json::json!({})),
            )
            .await
            .expect("published");
        let (stored, _) = settle(&app, &planner, PROBE_WAIT, |stored, _| !stored.is_empty()).await;
        if !stored.is_empty() {
            break;
        }
    }

    let from_dock = [
        declaration("urn:uuid:00000000-0000-4000-8000-0000000aa001", "D1"),
        retirement("urn:uuid:00000000-0000-4000-8000-0000000aa002", "D2"),
        object_event(
            "urn:uuid:00000000-0000-4000-8000-0000000aa005",
            "D3",
            serde_json::json!({"disposition": "destroyed"}),
        ),
    ];
    for message in from_dock {
        dock.publish(format!("{root}/dock-1"), QoS::AtLeastOnce, false, message)
            .await
            .expect("published");
    }
    let from_bench = [
        declaration("urn:uuid:00000000-0000-4000-8000-0000000aa003", "B1"),
        retirement("urn:uuid:00000000-0000-4000-8000-0000000aa004", "B2"),
    ];
    for message in from_bench {
        bench
            .publish(format!("{root}/bench"), QoS::AtLeastOnce, false, message)
            .await
            .expect("published");
    }
    let (stored, quarantined) = settle(
        &app,
        &planner,
        Duration::from_secs(15),
        |stored, quarantined| stored.len() >= 3 && quarantined.len() >= 3,
    )
    .await;
    assert_eq!(
        stored,
        [
            probe_id,
            "urn:uuid:00000000-0000-4000-8000-0000000aa003",
            "urn:uuid:00000000-0000-4000-8000-0000000aa004",
        ],
        "quality's declaration and retirement are stored"
    );
    assert_eq!(quarantined.len(), 3, "{quarantined:?}");
    for entry in &quarantined {
        assert_eq!(entry.channel, "mqtt");
        let violation = &entry.violations[0];
        assert_eq!(violation.code, "PERMISSION_DENIED", "{entry:?}");
        assert!(
            violation.description.contains("quality")
                && violation.description.contains("mqtt:dock-1"),
            "{}",
            violation.description
        );
    }
    // Each message is on the audit trail under its reader.
    let audit = app.audit_log().await.expect("audit trail");
    assert!(
        audit
            .iter()
            .filter(|(who, ..)| who == "mqtt:dock-1")
            .count()
            >= 2,
        "{audit:?}"
    );
    app.stop().await.expect("clean stop");
    drop(broker);
}

/// TLS with client certificates: the broker takes only certificates of the plant's CA and
/// knows each client by its certificate's common name (its ACL user); capture connects
/// with its own certificate, and a reader's messages still speak with the reader's roles.
#[tokio::test]
async fn mqtt_intake_connects_over_tls_with_a_client_certificate() {
    use crate::tls::{Ca, write};
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::new("plant-1 MQTT CA");
    let server = ca.sign("localhost", true);
    let (capture_leaf, bench_leaf) = (ca.sign("tracery", false), ca.sign("bench", false));
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let settings = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\n",
        ca_file.display(),
        write(dir.path(), "server.pem", &server.cert).display(),
        write(dir.path(), "server.key", &server.key).display(),
    );
    let root = "plant-1/scans";
    // Known by certificate: the password file only satisfies Mosquitto's configuration.
    let Some(broker) = start_broker_with(
        dir.path(),
        &[
            ("tracery", "unused", &format!("topic read {root}/#")),
            ("bench", "unused", &format!("topic write {root}/bench")),
        ],
        &settings,
    ) else {
        return;
    };
    let port = broker.port;
    let tls_client = |leaf: Option<&crate::tls::Leaf>| {
        let files = leaf.map(|leaf| {
            let name = uuid::Uuid::new_v4().to_string();
            (
                write(dir.path(), &format!("{name}.pem"), &leaf.cert),
                write(dir.path(), &format!("{name}.key"), &leaf.key),
            )
        });
        tracery_runtime::tls::client_config_for(&ca_file, files.as_ref().map(|(c, k)| (c, k)))
            .expect("client TLS")
    };
    let connect = |id: &str, config| {
        let mut options = MqttOptions::new(id, "localhost", port);
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
        options
    };
    let (_, mut refused) = AsyncClient::new(connect("no-certificate", tls_client(None)), 4);
    let without_certificate = loop {
        match refused.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break None,
            Ok(_) => continue,
            Err(err) => break Some(err),
        }
    };
    assert!(
        without_certificate.is_some(),
        "no certificate, no connection"
    );

    let provider = Provider::new();
    let auth = provider.settings();
    let capture_cert = write(dir.path(), "capture.pem", &capture_leaf.cert);
    let capture_key = write(dir.path(), "capture.key", &capture_leaf.key);
    let app = TestApp::spawn_with(|config| {
        config.auth = Some(auth);
        config.capture_mqtt = Some(MqttSettings {
            broker: format!("mqtts://localhost:{port}"),
            topic: format!("{root}/#"),
            client_id: format!("tracery-{}", uuid::Uuid::new_v4()),
            username: None,
            password: None,
            tls: Some(tracery_runtime::config::MqttTls {
                ca_file: ca_file.clone(),
                cert_file: Some(capture_cert),
                key_file: Some(capture_key),
            }),
            readers: BTreeMap::from([(
                "bench".to_owned(),
                ReaderSettings {
                    topic: Some(format!("{root}/bench")),
                    roles: vec!["quality".to_owned()],
                    plant: None,
                    read_point: READ_POINT.to_owned(),
                    biz_step: None,
                    biz_location: None,
                    disposition: None,
                    require_time: false,
                },
            )]),
        });
    })
    .await
    .expect("suite starts");
    let (bench, mut eventloop) =
        AsyncClient::new(connect("bench", tls_client(Some(&bench_leaf))), 16);
    loop {
        match eventloop
            .poll()
            .await
            .expect("the bench connects with its certificate")
        {
            Event::Incoming(Packet::ConnAck(_)) => break,
            _ => continue,
        }
    }
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let planner = provider.token(&["planner"], &[crate::auth::PLANT]);
    let retirement_id = "urn:uuid:00000000-0000-4000-8000-0000000bb001";
    let mut stored = Vec::new();
    for _ in 0..50 {
        bench
            .publish(
                format!("{root}/bench"),
                QoS::AtLeastOnce,
                false,
                retirement(retirement_id, "TLS1"),
            )
            .await
            .expect("published");
        (stored, _) = settle(&app, &planner, PROBE_WAIT, |stored, _| !stored.is_empty()).await;
        if !stored.is_empty() {
            break;
        }
    }
    assert_eq!(stored, [retirement_id], "quality's retirement, over TLS");
    app.stop().await.expect("clean stop");
    drop(broker);
}
