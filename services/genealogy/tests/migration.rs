//! A store in the layout before node interning (repeated URIs on every row) migrates to
//! the current one with its cursor reset, so the follower replays capture into it.

use sea_orm::{ConnectionTrait, Database};
use sea_orm_migration::MigratorTrait;
use tracery_genealogy::store::{Migrator, ProjectionStore};

/// The tables and rows a store migrated up to m0002 had (columns as they were).
const BEFORE: &[&str] = &[
    "CREATE TABLE genealogy_migrations (version varchar NOT NULL PRIMARY KEY, applied_at bigint NOT NULL)",
    "INSERT INTO genealogy_migrations VALUES ('m0001_create_genealogy_history', 0), ('m0002_create_genealogy_links', 0)",
    "CREATE TABLE genealogy_history (id integer PRIMARY KEY, identifier varchar NOT NULL, sequence bigint NOT NULL, event_id varchar NOT NULL, event_type varchar NOT NULL, event_time timestamp NOT NULL, action varchar, biz_step varchar, disposition varchar, read_point varchar, biz_location varchar, custodian varchar)",
    "CREATE TABLE genealogy_links (id integer PRIMARY KEY, from_node varchar NOT NULL, to_node varchar NOT NULL, kind smallint NOT NULL, event_id varchar NOT NULL, sequence bigint NOT NULL, event_time timestamp NOT NULL, end_time timestamp, closed_by varchar, biz_step varchar, read_point varchar, quantity real, uom varchar)",
    "CREATE TABLE genealogy_packings (id integer PRIMARY KEY, child varchar NOT NULL, parent varchar NOT NULL, action smallint NOT NULL, event_id varchar NOT NULL, sequence bigint NOT NULL, event_time timestamp NOT NULL, biz_step varchar, read_point varchar)",
    "CREATE TABLE genealogy_cursor (id integer PRIMARY KEY, applied_sequence bigint NOT NULL)",
    "INSERT INTO genealogy_cursor VALUES (1, 40000)",
    "INSERT INTO genealogy_links (from_node, to_node, kind, event_id, sequence, event_time) VALUES ('https://id.gs1.org/01/04012345000009/10/L1', 'https://id.gs1.org/01/04012345000016/10/L2', 1, 'ni:///sha-256;x', 7, '2026-01-01T00:00:00Z')",
];

#[tokio::test]
async fn a_store_before_interning_is_reset_for_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
    let db = Database::connect(&url).await.expect("sqlite");
    for statement in BEFORE {
        db.execute_unprepared(statement).await.expect(statement);
    }
    Migrator::up(&db, None).await.expect("migrates");
    let store = ProjectionStore::new(db);
    assert_eq!(store.applied_sequence().await.expect("cursor"), 0);
    let links = store
        .links_at(
            &["https://id.gs1.org/01/04012345000016/10/L2".to_owned()],
            tracery_genealogy::store::LinkEnd::To,
            &[tracery_genealogy::facts::LinkKind::TransformedInto],
            None,
        )
        .await
        .expect("reads the new layout");
    assert!(links.is_empty(), "old rows are gone: {links:?}");
}

/// A store migrated up to m0006 keeps its events through m0007: they answer histories
/// without a production order, and events applied afterwards carry theirs.
#[tokio::test]
async fn events_projected_before_orders_were_kept_stay_and_new_ones_carry_theirs() {
    use tracery_genealogy::store::tables::key_of;
    const UNIT: &str = "https://id.gs1.org/01/04012345000009/21/1";
    const BEFORE_ORDERS: usize = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
    let db = Database::connect(&url).await.expect("sqlite");
    Migrator::up(&db, Some(BEFORE_ORDERS as u32))
        .await
        .expect("migrates to m0006");
    for statement in [
        "INSERT INTO genealogy_nodes (id, uri, key) VALUES (1, 'ObjectEvent', 11)".to_owned(),
        format!(
            "INSERT INTO genealogy_nodes (id, uri, key) VALUES (2, '{UNIT}', {})",
            key_of(UNIT, 0)
        ),
        "INSERT INTO genealogy_events (sequence, event_id, event_type, event_time) \
         VALUES (1, 'urn:uuid:1', 1, '2026-11-02T08:00:00Z')"
            .to_owned(),
        "INSERT INTO genealogy_history (node, sequence) VALUES (2, 1)".to_owned(),
        "INSERT INTO genealogy_cursor (id, applied_sequence) VALUES (1, 1)".to_owned(),
    ] {
        db.execute_unprepared(&statement).await.expect(&statement);
    }
    Migrator::up(&db, None).await.expect("migrates the rest");
    let store = ProjectionStore::new(db);
    let mut event = tracery_epcis::Event::new(
        tracery_epcis::EventKind::Object(tracery_epcis::ObjectEvent {
            action: tracery_epcis::Action::Observe,
            epcs: vec!["urn:epc:id:sgtin:4012345.000000.1".to_owned()],
            quantities: Vec::new(),
            ilmd: None,
        }),
        tracery_epcis::time::parse("eventTime", "2026-11-02T09:00:00Z").expect("a time"),
    );
    event.biz_transactions.push(tracery_epcis::BizTransaction {
        kind: Some("urn:epcglobal:cbv:btt:prodorder".to_owned()),
        id: "urn:epcglobal:cbv:bt:4012345000009:PO-7".to_owned(),
    });
    assert!(store.apply(2, &event).await.expect("applies"));
    let orders: Vec<(i64, Option<String>)> = store
        .histories(&[UNIT.to_owned()])
        .await
        .expect("histories")
        .into_iter()
        .map(|row| (row.sequence, row.production_order))
        .collect();
    assert_eq!(
        orders,
        vec![
            (1, None),
            (
                2,
                Some("urn:epcglobal:cbv:bt:4012345000009:PO-7".to_owned())
            )
        ]
    );
}
