//! One definition of what an event does: for random sequences of events — commissioning,
//! retiring, destroying, packing, confirming, unpacking, repacking and error declarations —
//! the state capture decides its rules on (each identifier's lifecycle and parent) equals
//! what identity and genealogy derive from the same stored events by following them.
//!
//! Seeded: a failing seed is printed and replays exactly.

use std::{collections::BTreeMap, time::Duration};

use sea_orm::{ConnectionTrait as _, Database, Statement};
use serde_json::{Value, json};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

const SERIALS: u64 = 6;
const CASES: u64 = 3;
const EVENTS_PER_SEQUENCE: usize = 45;
const SEEDS: [u64; 6] = [1, 7, 42, 99, 2026, 31337];

/// A small deterministic generator (xorshift64*): enough to pick among a few choices.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % sides
    }
}

fn serial(n: u64) -> String {
    format!("urn:epc:id:sgtin:4012345.011111.{n}")
}

fn case(n: u64) -> String {
    format!("urn:epc:id:sscc:4012345.000000000{n}")
}

fn canonical(urn: &str) -> String {
    tracery_gs1::canonical_uri(urn).expect("a GS1 key")
}

/// One random event, numbered `index` (its eventID and minute).
fn random_event(dice: &mut Dice, index: usize) -> Value {
    let mut event = json!({
        "eventID": format!("urn:uuid:00000000-0000-4000-8000-{index:012}"),
        "eventTime": format!("2026-11-26T{:02}:{:02}:00Z", 6 + index / 60, index % 60),
        "eventTimeZoneOffset": "+00:00",
    });
    let one = serial(1 + dice.roll(SERIALS));
    let some: Vec<String> = (1..=SERIALS)
        .filter(|_| dice.roll(2) == 0)
        .map(serial)
        .collect();
    let parent = case(1 + dice.roll(CASES));
    let fields = match dice.roll(9) {
        0 | 1 => {
            json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning", "epcList": [one]})
        }
        2 => {
            json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "epcList": [one]})
        }
        3 => json!({"type": "ObjectEvent", "action": "DELETE", "epcList": [one]}),
        4 => {
            json!({"type": "ObjectEvent", "action": "OBSERVE", "disposition": "destroyed", "epcList": [one]})
        }
        5 | 6 => {
            json!({"type": "AggregationEvent", "action": "ADD", "bizStep": "packing", "parentID": parent, "childEPCs": some})
        }
        7 => {
            json!({"type": "AggregationEvent", "action": "OBSERVE", "parentID": parent, "childEPCs": some})
        }
        _ if dice.roll(2) == 0 => {
            json!({"type": "AggregationEvent", "action": "DELETE", "bizStep": "unpacking", "parentID": parent})
        }
        _ => {
            json!({"type": "AggregationEvent", "action": "DELETE", "bizStep": "unpacking", "parentID": parent, "childEPCs": some})
        }
    };
    event
        .as_object_mut()
        .expect("object")
        .extend(fields.as_object().expect("object").clone());
    event
}

/// `event` declared erroneous: the same event again with an errorDeclaration.
fn declared(mut event: Value) -> Value {
    event["errorDeclaration"] =
        json!({"declarationTime": "2026-11-26T23:00:00Z", "reason": "incorrect_data"});
    event
}

fn proto(value: &Value) -> pb::EpcisEvent {
    let event = tracery_epcis::json::parse_event(value.clone()).expect("a valid event");
    tracery_epcis::proto::event_to_proto(&event)
}

/// Sends one random sequence, one request per event. Now and then an accepted event is
/// declared erroneous.
async fn send_sequence(app: &TestApp, seed: u64) {
    let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut accepted: Vec<Value> = Vec::new();
    for index in 0..EVENTS_PER_SEQUENCE {
        let event = if !accepted.is_empty() && dice.roll(8) == 0 {
            let pick = dice.roll(accepted.len() as u64) as usize;
            declared(accepted.remove(pick))
        } else {
            random_event(&mut dice, index)
        };
        let result = app.capture_events(vec![proto(&event)]).await.remove(0);
        if result.outcome == pb::CaptureOutcome::Accepted as i32
            && event.get("errorDeclaration").is_none()
        {
            accepted.push(event);
        }
    }
}

/// Capture's own tables: lifecycle state name and parent, by canonical identifier.
async fn capture_state(app: &TestApp) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    let backend = db.get_database_backend();
    let query = |sql: &str| {
        let db = db.clone();
        let sql = sql.to_owned();
        async move {
            db.query_all_raw(Statement::from_string(backend, sql))
                .await
                .expect("rows")
        }
    };
    let states = query("SELECT identifier, state FROM capture_lifecycle")
        .await
        .iter()
        .map(|row| {
            let state = match row.try_get::<i16>("", "state").expect("state") {
                1 => "COMMISSIONED",
                2 => "DECOMMISSIONED",
                _ => "DESTROYED",
            };
            (
                row.try_get::<String>("", "identifier").expect("identifier"),
                state.to_owned(),
            )
        })
        .collect();
    let parents = query(
        "SELECT c.value AS child, p.value AS parent FROM capture_child_placements pl \
         JOIN capture_identifiers c ON c.id = pl.child \
         JOIN capture_identifiers p ON p.id = pl.parent",
    )
    .await
    .iter()
    .map(|row| {
        (
            row.try_get::<String>("", "child").expect("child"),
            row.try_get::<String>("", "parent").expect("parent"),
        )
    })
    .collect();
    db.close().await.expect("closes");
    (states, parents)
}

/// Identity's lifecycle states of the serials (those it has a state for).
async fn identity_states(app: &TestApp) -> BTreeMap<String, String> {
    let epcs: Vec<String> = (1..=SERIALS).map(serial).collect();
    app.identifier_statuses(epcs)
        .await
        .into_iter()
        .filter_map(|status| {
            let state = pb::IdentifierState::try_from(status.state).ok()?;
            let name = match state {
                pb::IdentifierState::Commissioned => "COMMISSIONED",
                pb::IdentifierState::Decommissioned => "DECOMMISSIONED",
                pb::IdentifierState::Destroyed => "DESTROYED",
                _ => return None,
            };
            Some((canonical(&status.epc), name.to_owned()))
        })
        .collect()
}

/// Genealogy's current container of each serial.
async fn genealogy_parents(app: &TestApp) -> BTreeMap<String, String> {
    let mut parents = BTreeMap::new();
    for n in 1..=SERIALS {
        let found = app
            .genealogy
            .clone()
            .where_is(pb::WhereIsRequest { id: serial(n) })
            .await;
        if let Ok(answer) = found
            && !answer.get_ref().container.is_empty()
        {
            parents.insert(canonical(&serial(n)), answer.into_inner().container);
        }
    }
    parents
}

/// Waits until identity has applied everything sent so far: it applies in capture order,
/// so once a sentinel commissioning sent last shows, everything before it has been applied.
/// Returns the sentinel's sequence.
async fn await_identity(app: &TestApp) -> i64 {
    let sentinel = "urn:epc:id:sgtin:4012345.011111.SENTINEL";
    let event = json!({
        "type": "ObjectEvent", "action": "ADD", "epcList": [sentinel],
        "eventID": "urn:uuid:00000000-0000-4000-8000-ffffffffffff",
        "eventTime": "2026-11-27T00:00:00Z", "eventTimeZoneOffset": "+00:00",
    });
    let sequence = app.capture_events(vec![proto(&event)]).await[0].sequence;
    for _ in 0..300 {
        let states = app.identifier_statuses(vec![sentinel.to_owned()]).await;
        if states
            .first()
            .is_some_and(|s| s.state == pb::IdentifierState::Commissioned as i32)
        {
            return sequence;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("identity never applied the sentinel");
}

#[tokio::test]
async fn capture_identity_and_genealogy_derive_the_same_state_from_random_sequences() {
    for seed in SEEDS {
        let app = TestApp::spawn().await.expect("suite starts");
        send_sequence(&app, seed).await;
        let head = await_identity(&app).await;
        app.await_genealogy(head).await;
        let (states, parents) = capture_state(&app).await;
        let serials: Vec<String> = (1..=SERIALS).map(|n| canonical(&serial(n))).collect();
        let serial_states: BTreeMap<String, String> = states
            .into_iter()
            .filter(|(identifier, _)| serials.contains(identifier))
            .collect();
        assert_eq!(
            serial_states,
            identity_states(&app).await,
            "seed {seed}: capture's lifecycle against identity's"
        );
        assert_eq!(
            parents,
            genealogy_parents(&app).await,
            "seed {seed}: capture's placements against genealogy's containment"
        );
        app.stop().await.expect("stops");
    }
}
