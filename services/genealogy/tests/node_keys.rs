//! Nodes are found by a 64-bit key of their URI (`tables::key_of`), uniquely indexed. A URI
//! whose key another URI already holds takes its next key and is still found by traces and
//! history. Real keys never collide in a test, so the other URI is planted by hand.

use chrono::{FixedOffset, TimeZone};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use tracery_epcis::{Action, Event, EventKind, ObjectEvent};
use tracery_genealogy::{
    facts::node_id,
    store::{
        Migrator, ProjectionStore,
        tables::{KEY_PROBES, key_of, keys_of},
    },
};

const UNIT: &str = "urn:epc:id:sgtin:4012345.011111.1001";

fn observed(id: &str) -> Event {
    let time = FixedOffset::east_opt(0)
        .expect("UTC")
        .with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .expect("time");
    let kind = EventKind::Object(ObjectEvent {
        action: Action::Observe,
        epcs: vec![UNIT.to_owned()],
        quantities: Vec::new(),
        ilmd: None,
    });
    Event {
        event_id: Some(id.to_owned()),
        biz_step: Some("inspecting".into()),
        ..Event::new(kind, time)
    }
}

async fn migrated() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
    let db = sea_orm::Database::connect(&url).await.expect("sqlite");
    Migrator::up(&db, None).await.expect("migrations");
    (dir, db)
}

/// Plants a node named `squatter` holding `key`.
async fn plant(db: &DatabaseConnection, squatter: &str, key: i64) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO genealogy_nodes (uri, key) VALUES (?, ?)",
        [squatter.into(), key.into()],
    ))
    .await
    .expect("planted");
}

async fn key_stored(db: &DatabaseConnection, uri: &str) -> i64 {
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT key FROM genealogy_nodes WHERE uri = ?",
        [uri.into()],
    ))
    .await
    .expect("query")
    .expect("stored")
    .try_get::<i64>("", "key")
    .expect("key")
}

#[tokio::test]
async fn a_uri_whose_key_another_holds_takes_its_next_key_and_is_still_found() {
    let (_dir, db) = migrated().await;
    let canonical = node_id(UNIT);
    plant(&db, "urn:example:squatter", key_of(&canonical, 0)).await;
    let store = ProjectionStore::new(db.clone());

    store
        .apply(1, &observed("urn:uuid:1"))
        .await
        .expect("applied");

    assert_eq!(key_stored(&db, &canonical).await, key_of(&canonical, 1));
    let history = store.history(UNIT, None, 10).await.expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].biz_step.as_deref(), Some("inspecting"));
    // Applied again (a second event), the node is found at its second key, not added.
    store
        .apply(2, &observed("urn:uuid:2"))
        .await
        .expect("applied");
    assert_eq!(
        store.history(UNIT, None, 10).await.expect("history").len(),
        2
    );
}

#[tokio::test]
async fn a_uri_whose_every_key_is_held_is_refused_by_name() {
    let (_dir, db) = migrated().await;
    let canonical = node_id(UNIT);
    for (probe, key) in keys_of(&canonical).enumerate() {
        plant(&db, &format!("urn:example:squatter:{probe}"), key).await;
    }
    let store = ProjectionStore::new(db);

    let error = store
        .apply(1, &observed("urn:uuid:1"))
        .await
        .expect_err("refused");

    let message = error.to_string();
    assert!(message.contains(&canonical), "{message}");
    assert!(
        message.contains(&format!("all its {KEY_PROBES} keys")),
        "{message}"
    );
}
