//! Webhook subscriptions of the EPCIS REST binding against a real HTTP receiver: every
//! matching event once and in order across the receiver's outage and the suite's restart,
//! signed with the subscriber's token; and the refusals of subscriptions that could not
//! deliver.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use tracery_e2e::TestApp;

use crate::rest::{Client, document, event, event_ids, job_id};

const TOKEN: &str = "13df38d8275b13f05704629e5f1cf3d45d6132d5";

/// What the receiver saw: the bodies it acknowledged with their signatures, and how many
/// deliveries it turned away.
#[derive(Default)]
struct Seen {
    answer: u16,
    acknowledged: Vec<(Bytes, String)>,
    turned_away: usize,
}

/// A webhook receiver on a loopback port, answering what the test tells it to.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen.lock().expect("receiver state");
    let answer = StatusCode::from_u16(seen.answer).unwrap_or(StatusCode::OK);
    if answer.is_success() {
        let signature = headers
            .get("GS1-Signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.acknowledged.push((body, signature));
    } else {
        seen.turned_away += 1;
    }
    answer
}

impl Receiver {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen {
            answer: 200,
            ..Seen::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/epcis-callback", post(receive))
            .with_state(Arc::clone(&seen));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/epcis-callback", self.addr)
    }

    fn answer(&self, status: u16) {
        self.seen.lock().expect("receiver state").answer = status;
    }

    fn turned_away(&self) -> usize {
        self.seen.lock().expect("receiver state").turned_away
    }

    /// The acknowledged documents, each with its `GS1-Signature`.
    fn acknowledged(&self) -> Vec<(Bytes, String)> {
        self.seen
            .lock()
            .expect("receiver state")
            .acknowledged
            .clone()
    }

    /// The eventIDs of the acknowledged documents, in the order they arrived.
    fn event_ids(&self) -> Vec<String> {
        self.acknowledged()
            .iter()
            .flat_map(|(body, _)| event_ids(&serde_json::from_slice(body).expect("JSON")))
            .collect()
    }

    /// Waits (up to 20 s) until `check` holds.
    async fn until(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !check(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; acknowledged {:?}, turned away {}",
                self.event_ids(),
                self.turned_away()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
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

/// A suite whose subscriptions may deliver over plain HTTP on loopback and retry quickly.
async fn suite() -> TestApp {
    TestApp::spawn_with(|config| {
        config.subscriptions.allow_plain_http = true;
        config.subscriptions.max_retry_secs = 1;
        config.subscriptions.batch_events = 2;
    })
    .await
    .expect("suite starts")
}

/// Captures receiving events `numbers` and one shipping event in one job; their ids, the
/// shipping one left out.
async fn capture_received(client: &Client, numbers: std::ops::RangeInclusive<u32>) -> Vec<String> {
    let ids: Vec<String> = numbers.clone().map(job_id).collect();
    let mut events: Vec<Value> = ids
        .iter()
        .zip(numbers.clone())
        .map(|(id, minute)| event(id, "receiving", minute))
        .collect();
    // Minutes past the hour: receiving ones up to 29, shipping ones from 30.
    let shipped = job_id(*numbers.end() + 30);
    events.push(event(&shipped, "shipping", *numbers.end() + 30));
    let accepted = client.post("/capture", &document(events), &[]).await;
    assert_eq!(accepted.status(), reqwest::StatusCode::ACCEPTED);
    ids
}

async fn subscribe(client: &Client, receiver: &Receiver) -> String {
    let definition = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
    let created = client.post("/queries", &definition, &[]).await;
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let subscription = json!({"dest": receiver.url(), "signatureToken": TOKEN, "stream": true});
    let subscribed = client
        .post("/queries/received/subscriptions", &subscription, &[])
        .await;
    assert_eq!(subscribed.status(), reqwest::StatusCode::CREATED);
    let location = subscribed.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let shown: Value = subscribed.json().await.expect("JSON");
    assert!(
        shown.get("signatureToken").is_none(),
        "the token is never shown"
    );
    assert!(location.ends_with(shown["subscriptionID"].as_str().expect("an id")));
    location
}

#[tokio::test]
async fn a_webhook_gets_every_event_once_in_order_across_an_outage_and_a_restart() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    let client = Client::new(&app);
    let subscription = subscribe(&client, &receiver).await;
    let mut expected = capture_received(&client, 1..=3).await;
    receiver
        .until("the first events", |r| r.event_ids().len() == 3)
        .await;

    receiver.answer(503);
    expected.extend(capture_received(&client, 4..=6).await);
    receiver.until("retries", |r| r.turned_away() >= 2).await;
    let during: Value = client.get(&subscription).await.json().await.expect("JSON");
    assert!(during["deliveryFailures"].as_i64() >= Some(1), "{during}");
    assert!(
        during["lastDeliveryError"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{during}"
    );
    receiver.answer(200);
    receiver
        .until("the events of the outage", |r| r.event_ids().len() == 6)
        .await;

    let app = app.restart().await.expect("suite restarts");
    let client = Client::new(&app);
    expected.extend(capture_received(&client, 7..=8).await);
    // Deliveries follow capture order, so a batch sent twice would arrive before the last.
    let last = expected.last().cloned();
    receiver
        .until("the events after the restart", |r| {
            r.event_ids().last() == last.as_ref()
        })
        .await;
    assert_eq!(
        receiver.event_ids(),
        expected,
        "each once, in capture order"
    );

    for (body, signature) in receiver.acknowledged() {
        assert_eq!(signature, hmac_hex(TOKEN, &body), "signed with the token");
        assert_ne!(signature, hmac_hex("another token", &body));
        let document: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(document["type"], "EPCISQueryDocument");
        assert_eq!(
            document["epcisBody"]["queryResults"]["queryName"],
            "received"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_subscription_that_could_not_deliver_is_refused_with_the_field_named() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    let client = Client::new(&app);
    let definition = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
    client.post("/queries", &definition, &[]).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let cases = [
        (
            json!({"dest": format!("http://{closed}/hook"), "stream": true}),
            "dest",
        ),
        (
            json!({"dest": "ftp://example.com/hook", "stream": true}),
            "dest",
        ),
        (json!({"dest": receiver.url()}), "stream"),
        (
            json!({"dest": receiver.url(), "schedule": {"hour": "25"}}),
            "schedule.hour",
        ),
        (
            json!({"dest": receiver.url(), "schedule": {"dayOfMonth": "30", "month": "2"}}),
            "schedule",
        ),
        (
            json!({"dest": receiver.url(), "stream": true, "schedule": {"hour": "1"}}),
            "schedule",
        ),
        (
            json!({"dest": receiver.url(), "stream": true, "reportIfEmpty": true}),
            "reportIfEmpty",
        ),
        (
            json!({"dest": receiver.url(), "stream": true, "sign": "x"}),
            "sign",
        ),
        (
            json!({"dest": receiver.url(), "stream": true, "initialRecordTime": "soon"}),
            "initialRecordTime",
        ),
    ];
    for (request, field) in cases {
        let refused = client
            .post("/queries/received/subscriptions", &request, &[])
            .await;
        assert_eq!(
            refused.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{request}"
        );
        let problem: Value = refused.json().await.expect("problem");
        assert_eq!(
            problem["type"],
            "epcisException:SubscriptionControlsException"
        );
        assert_eq!(problem["parameter"], field, "{problem}");
    }
    let unknown = client
        .post(
            "/queries/nothing/subscriptions",
            &json!({"dest": receiver.url(), "stream": true}),
            &[],
        )
        .await;
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    let problem: Value = unknown.json().await.expect("problem");
    assert_eq!(problem["type"], "epcisException:NoSuchNameException");
    app.stop().await.expect("clean stop");

    let strict = TestApp::spawn().await.expect("suite starts");
    let client = Client::new(&strict);
    client.post("/queries", &definition, &[]).await;
    let plain = client
        .post(
            "/queries/received/subscriptions",
            &json!({"dest": receiver.url(), "stream": true}),
            &[],
        )
        .await;
    let problem: Value = plain.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("HTTPS")),
        "{problem}"
    );
    strict.stop().await.expect("clean stop");
}

#[tokio::test]
async fn deleting_a_query_ends_its_subscriptions() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    let client = Client::new(&app);
    let subscription = subscribe(&client, &receiver).await;
    let listed: Value = client
        .get("/queries/received/subscriptions")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(
        client.get(&subscription).await.status(),
        reqwest::StatusCode::OK
    );
    client.delete("/queries/received").await;
    assert_eq!(
        client.get(&subscription).await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    // A subscription to the shipping events shows deliveries are made; those of the
    // deleted query would be made in the same round.
    let shipped = json!({"name": "shipped", "query": {"EQ_bizStep": ["shipping"]}});
    client.post("/queries", &shipped, &[]).await;
    let stream = json!({"dest": receiver.url(), "stream": true});
    client
        .post("/queries/shipped/subscriptions", &stream, &[])
        .await;
    capture_received(&client, 1..=2).await;
    receiver
        .until("the shipping event", |r| !r.event_ids().is_empty())
        .await;
    assert_eq!(
        receiver.event_ids(),
        [job_id(32)],
        "only the shipping event"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn replicas_side_by_side_deliver_each_event_once() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    // Subscribed before the replicas start: the test is about their deliveries.
    subscribe(&Client::new(&app), &receiver).await;
    let replicas = [
        app.spawn_replica().await.expect("replica starts"),
        app.spawn_replica().await.expect("replica starts"),
    ];
    let mut expected = Vec::new();
    // Captured in rounds, so the replicas' delivery workers race for each new batch.
    let client = Client::new(&app);
    for round in 0..6 {
        let first = round * 4 + 1;
        expected.extend(capture_received(&client, first..=first + 3).await);
    }
    let last = expected.last().cloned();
    receiver
        .until("every event", |r| r.event_ids().last() == last.as_ref())
        .await;
    assert_eq!(
        receiver.event_ids(),
        expected,
        "each once, in capture order"
    );
    for replica in replicas {
        replica.stop().await.expect("replica stops");
    }
    app.stop().await.expect("clean stop");
}

/// Subscriptions created while their query is deleted: each is refused (404) or created
/// and then deleted with the query; none is left behind and none fails (on SQLite the
/// subscribes queue for the write lock instead of failing on a stale read).
#[tokio::test]
async fn subscribing_while_the_query_is_deleted_leaves_no_subscription_behind() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    let client = std::sync::Arc::new(Client::new(&app));
    for round in 0..5 {
        let definition = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
        assert_eq!(
            client.post("/queries", &definition, &[]).await.status(),
            reqwest::StatusCode::CREATED
        );
        let subscription = json!({"dest": receiver.url(), "stream": true});
        let subscribes: Vec<_> = (0..6)
            .map(|_| {
                let (client, subscription) = (client.clone(), subscription.clone());
                tokio::spawn(async move {
                    client
                        .post("/queries/received/subscriptions", &subscription, &[])
                        .await
                        .status()
                })
            })
            .collect();
        let deleted = client.delete("/queries/received").await.status();
        assert_eq!(deleted, reqwest::StatusCode::NO_CONTENT);
        for subscribe in subscribes {
            let status = subscribe.await.expect("joined");
            assert!(
                [reqwest::StatusCode::CREATED, reqwest::StatusCode::NOT_FOUND].contains(&status),
                "round {round}: {status}"
            );
        }
        let left = client.get("/queries/received/subscriptions").await.status();
        assert_eq!(left, reqwest::StatusCode::NOT_FOUND, "round {round}");
        let db = sea_orm::Database::connect(app.database_url())
            .await
            .expect("db");
        let orphans = sea_orm::ConnectionTrait::query_one_raw(
            &db,
            sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM capture_subscriptions",
            ),
        )
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
        assert_eq!(
            orphans, 0,
            "round {round}: no subscription outlives its query"
        );
    }
    app.stop().await.expect("clean stop");
}

/// A scheduled subscription (here every second) delivers what its query matched since
/// its last run; one with `reportIfEmpty` reports an empty result when nothing did.
#[tokio::test]
async fn a_scheduled_subscription_delivers_at_its_times_and_reports_empty_runs_if_asked() {
    let receiver = Receiver::start().await;
    let app = suite().await;
    let client = Client::new(&app);
    for (name, step) in [("received", "receiving"), ("destroyed", "destroying")] {
        let definition = json!({"name": name, "query": {"EQ_bizStep": [step]}});
        let created = client.post("/queries", &definition, &[]).await;
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    }
    let every_second = json!({"second": "[0-59]"});
    let scheduled = client
        .post(
            "/queries/received/subscriptions",
            &json!({"dest": receiver.url(), "signatureToken": TOKEN, "schedule": every_second}),
            &[],
        )
        .await;
    assert_eq!(scheduled.status(), reqwest::StatusCode::CREATED);
    let shown: Value = scheduled.json().await.expect("JSON");
    assert_eq!(shown["stream"], false, "{shown}");
    assert_eq!(shown["schedule"], every_second, "{shown}");
    assert!(shown["nextRunAt"].is_string(), "{shown}");

    let expected = capture_received(&client, 1..=2).await;
    receiver
        .until("the scheduled run", |r| r.event_ids() == expected)
        .await;

    let empty_runs = client
        .post(
            "/queries/destroyed/subscriptions",
            &json!({"dest": receiver.url(), "schedule": every_second, "reportIfEmpty": true}),
            &[],
        )
        .await;
    assert_eq!(empty_runs.status(), reqwest::StatusCode::CREATED);
    receiver
        .until("an empty report", |r| {
            r.acknowledged().iter().any(|(body, _)| {
                let document: Value = serde_json::from_slice(body).expect("JSON");
                document["epcisBody"]["queryResults"]["queryName"] == "destroyed"
                    && event_ids(&document).is_empty()
            })
        })
        .await;
    assert_eq!(receiver.event_ids(), expected, "each event once");
    app.stop().await.expect("clean stop");
}
