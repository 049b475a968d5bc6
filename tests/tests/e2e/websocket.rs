//! WebSocket subscriptions of the EPCIS REST binding, driven by an independent client
//! (Python's `websockets`, `tests/python/websocket_subscriber.py`): live events, a
//! disconnect, and a resumption from `initialRecordTime` without gaps.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracery_e2e::TestApp;

use crate::rest::{Client, document, event, job_id};

/// Whether the independent client can run here; absent, the test is skipped loudly (and
/// fails in CI, which installs it).
fn websockets_installed() -> bool {
    let installed = Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
            "python3 with websockets is needed for the WebSocket subscription test"
        );
        eprintln!("SKIPPED: python3 websockets is not installed");
    }
    installed
}

/// The Python subscriber, its lines arriving on a channel as JSON.
struct Subscriber {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
}

impl Subscriber {
    fn start(app: &TestApp, until: &str, initial_record_time: Option<&str>) -> Self {
        let mut command = Command::new("python3");
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/python/websocket_subscriber.py"
            ))
            .arg(format!("ws://{}/queries/received/events", app.http_addr))
            .args(["--until", until])
            .stdout(Stdio::piped());
        if let Some(time) = initial_record_time {
            command.args(["--initial-record-time", time]);
        }
        let mut child = command.spawn().expect("python3 runs");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let parsed = serde_json::from_str(&line).expect("a JSON line");
                if sender.send(parsed).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(20), self.lines.recv())
            .await
            .expect("the subscriber speaks in time")
            .expect("the subscriber is running")
    }

    async fn connected(&mut self) {
        assert_eq!(self.next().await, json!({"connected": true}));
    }

    /// The events it reports until it has seen `last`, then waits for it to leave.
    async fn events_until(mut self, last: &str) -> Vec<(String, String)> {
        let mut events = Vec::new();
        loop {
            let line = self.next().await;
            let id = line["eventID"].as_str().expect("an eventID").to_owned();
            let time = line["recordTime"]
                .as_str()
                .expect("a recordTime")
                .to_owned();
            let done = id == last;
            events.push((id, time));
            if done {
                break;
            }
        }
        assert!(self.child.wait().expect("exits").success());
        events
    }
}

/// Captures receiving events `numbers` in one job.
async fn capture(client: &Client, numbers: std::ops::RangeInclusive<u32>) {
    let events = numbers.map(|n| event(&job_id(n), "receiving", n)).collect();
    let accepted = client.post("/capture", &document(events), &[]).await;
    assert_eq!(accepted.status(), reqwest::StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_websocket_subscriber_gets_live_events_and_resumes_from_a_record_time() {
    if !websockets_installed() {
        return;
    }
    let app = TestApp::spawn().await.expect("suite starts");
    let client = Client::new(&app);
    let definition = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
    client.post("/queries", &definition, &[]).await;

    let mut first = Subscriber::start(&app, &job_id(3), None);
    first.connected().await;
    capture(&client, 1..=3).await;
    let live = first.events_until(&job_id(3)).await;
    let ids: Vec<&str> = live.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [job_id(1), job_id(2), job_id(3)]);

    // Disconnected: these are captured while nobody listens.
    capture(&client, 4..=6).await;
    let (_, resume_from) = live.last().expect("an event").clone();
    let mut second = Subscriber::start(&app, &job_id(7), Some(&resume_from));
    second.connected().await;
    let next = second.next().await;
    capture(&client, 7..=7).await;
    let mut resumed = vec![(
        next["eventID"].as_str().expect("an eventID").to_owned(),
        String::new(),
    )];
    resumed.extend(second.events_until(&job_id(7)).await);

    let mut seen: Vec<String> = live.into_iter().map(|(id, _)| id).collect();
    for (id, _) in resumed {
        // The events of the resumption time come again; the subscriber skips those it has.
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    let expected: Vec<String> = (1..=7).map(job_id).collect();
    assert_eq!(seen, expected, "every event, in order, none missing");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_websocket_upgrade_without_stream_or_for_an_unknown_query_is_refused() {
    let app = TestApp::spawn().await.expect("suite starts");
    let client = Client::new(&app);
    let definition = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
    client.post("/queries", &definition, &[]).await;
    let upgrade = |path: &str| {
        reqwest::Client::new()
            .get(format!("http://{}{path}", app.http_addr))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
    };
    let without_stream = upgrade("/queries/received/events").await.expect("answer");
    assert_eq!(without_stream.status(), reqwest::StatusCode::BAD_REQUEST);
    let problem: Value = without_stream.json().await.expect("problem");
    assert_eq!(problem["parameter"], "stream");
    let scheduled = upgrade("/queries/received/events?minute=5")
        .await
        .expect("answer");
    assert_eq!(scheduled.status(), reqwest::StatusCode::BAD_REQUEST);
    let unknown = upgrade("/queries/nothing/events?stream=true")
        .await
        .expect("answer");
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    app.stop().await.expect("clean stop");
}
