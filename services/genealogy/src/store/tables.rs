//! The projection's tables. Every string the projection keeps (identifiers, parties and
//! locations, and the vocabulary of event attributes: type, action, bizStep, disposition)
//! is interned once in `genealogy_nodes`; the attributes of an event are kept once in
//! `genealogy_events` as numbers; history, link and unpack rows hold only integer node
//! ids and capture sequences, so a plant event costs a few dozen bytes per row it makes
//! rather than a few hundred.

/// `genealogy_nodes`: one row per canonical identifier, party or location.
pub mod node {
    use sea_orm::entity::prelude::*;

    /// An interned node.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_nodes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Canonical URI ([`crate::facts::node_id`]) or vocabulary term.
        pub uri: String,
        /// A [`key_of`](super::key_of) the URI, unique: indexed instead of the URI
        /// itself, a sixth of its size; lookups match both.
        pub key: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_events`: what the projection shows of each applied event, once.
pub mod event {
    use sea_orm::entity::prelude::*;

    /// An applied event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_events")]
    pub struct Model {
        /// Capture sequence.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub event_id: String,
        /// EPCIS event type (a node id, as are the attributes below).
        pub event_type: i64,
        /// eventTime (UTC).
        pub event_time: ChronoDateTimeUtc,
        /// ADD/OBSERVE/DELETE, absent for transformations.
        pub action: Option<i64>,
        pub biz_step: Option<i64>,
        pub disposition: Option<i64>,
        /// readPoint id.
        pub read_point: Option<i64>,
        /// bizLocation id.
        pub biz_location: Option<i64>,
        /// Where custody went with this event (a destination party), if it says.
        pub custodian: Option<i64>,
        /// The production order it was made under (a node id), if it names one. Events
        /// projected before `m0007` have none.
        pub production_order: Option<i64>,
        /// PostgreSQL only: the nodes the event touched, GIN-indexed, which on SQLite are
        /// the rows of [`history`](super::history). Never set or read on SQLite.
        pub touched: Vec<i64>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Whether `backend` keeps the nodes an event touched in the event's `touched` array
/// (PostgreSQL) rather than in [`history`] rows (SQLite): the one place that says which.
pub fn history_in_events(backend: sea_orm::DatabaseBackend) -> bool {
    backend == sea_orm::DatabaseBackend::Postgres
}

/// `values` as one PostgreSQL `bigint[]` parameter.
pub fn bigint_array(values: &[i64]) -> sea_orm::Value {
    use sea_orm::{Value, sea_query::ArrayType};
    Value::Array(
        ArrayType::BigInt,
        Some(Box::new(values.iter().map(|v| Value::from(*v)).collect())),
    )
}

/// `genealogy_history`, SQLite only: which events touched which node, one row each.
/// PostgreSQL pays a 24-byte header, a line pointer and two index entries per row (about
/// 86 bytes, 6.4 rows per plant event), so there the nodes an event touched are an array
/// on its [`event`] row, found through a GIN index whose posting lists compress the events
/// of a node to a few bytes each.
pub mod history {
    use sea_orm::entity::prelude::*;

    /// An event that touched a node.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub node: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_links`: one row per link an event made.
pub mod link {
    use sea_orm::entity::prelude::*;

    /// A link between two nodes.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_links")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Source node (input, child, serial, shipped item).
        pub from_node: i64,
        /// Target node (output, parent, lot, destination).
        pub to_node: i64,
        /// [`crate::facts::LinkKind`] code.
        pub kind: i16,
        /// The event that made it (its time is when the link began).
        pub sequence: i64,
        /// For containment: the event that took the child out.
        pub end_sequence: Option<i64>,
        /// Quantity carried (transformation inputs given by quantity).
        pub quantity: Option<f64>,
        pub uom: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_unpacks`: every unpack of a child (by the children or by the parent's
/// emptying), the record containment intervals are rebuilt from when an error declaration
/// changes the past, with the packs, which are the containment links themselves.
pub mod unpack {
    use sea_orm::entity::prelude::*;

    /// One child taken out of a parent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_unpacks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub child: i64,
        pub parent: i64,
        pub sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_sensor_readings`: the sensor reports of events that carry a number or an
/// exception, for analyses that judge them against bounds given with each request.
pub mod sensor_reading {
    use sea_orm::entity::prelude::*;

    /// One sensorReport of one event.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_sensor_readings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// Its place among the event's reports.
        #[sea_orm(primary_key, auto_increment = false)]
        pub ordinal: i32,
        /// The report's `type`, as written.
        pub kind: Option<String>,
        pub uom: Option<String>,
        pub value: Option<f64>,
        pub min_value: Option<f64>,
        pub max_value: Option<f64>,
        pub exception: Option<String>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_trend_hours`: per hour and station, the counts [`crate::trends`] keeps.
pub mod trend_hour {
    use sea_orm::entity::prelude::*;

    /// One station's hour.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_trend_hours")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: ChronoDateTimeUtc,
        /// The read point's node id, or [`crate::trends::NO_STATION`].
        #[sea_orm(primary_key, auto_increment = false)]
        pub station: i64,
        pub events: i64,
        pub inspected: i64,
        pub passed_first_time: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_trend_dwell`: per hour, stage and bucket of [`crate::trends::DWELL_BOUNDS`],
/// the identifiers that left the stage then and how long they had been there.
pub mod trend_dwell {
    use sea_orm::entity::prelude::*;

    /// One bucket of one stage's hour.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_trend_dwell")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: ChronoDateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub stage: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub bucket: i16,
        pub visits: i64,
        pub total_seconds: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_positions`: where each identifier is on the floor, for the trends' dwell
/// times and first inspections.
pub mod position {
    use sea_orm::entity::prelude::*;

    /// One identifier's place.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_positions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub node: i64,
        /// Its station's node id, or [`crate::trends::NO_STATION`] once it has left.
        pub station: i64,
        /// Since when (Unix seconds: a third of a timestamp's size on SQLite, where this
        /// table has a row per identifier).
        pub since: i64,
        pub inspected: bool,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_unit_profiles`: each serialised unit's product, first hour and profile
/// ([`crate::store::unit_profiles`]).
pub mod unit_profile {
    use sea_orm::entity::prelude::*;

    /// One unit.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_unit_profiles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub node: i64,
        /// Its GTIN, as a number.
        pub product: i64,
        /// The hour (Unix seconds) of its first step, or
        /// [`NO_STEP`](crate::store::unit_profiles::NO_STEP) while it has none.
        pub first_hour: i64,
        /// Its profile's id in `genealogy_profile_signatures`.
        pub signature: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_profile_signatures`: each distinct unit profile, once.
pub mod profile_signature {
    use sea_orm::entity::prelude::*;

    /// One profile.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_profile_signatures")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The first 8 bytes of the body's SHA-256 (unique; a clash takes the next number).
        pub digest: i64,
        pub body: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_profile_counts`: how many units of a product first seen in an hour hold a
/// profile.
pub mod profile_count {
    use sea_orm::entity::prelude::*;

    /// One count.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_profile_counts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub product: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub signature: i64,
        pub units: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `genealogy_cursor`: the last capture sequence applied (one row).
pub mod cursor {
    use sea_orm::entity::prelude::*;

    /// The cursor.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "genealogy_cursor")]
    pub struct Model {
        /// Always 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// Highest capture sequence applied.
        pub applied_sequence: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How many keys a URI may take: the first, and the next ones in turn where another URI
/// holds it. Two URIs share a 64-bit key with a chance of about n²/2⁶⁵ among n nodes;
/// three URIs needing all three keys of one of them is beyond any real store.
pub const KEY_PROBES: u8 = 3;

/// The `probe`th key of a node's URI: the first 8 bytes of the SHA-256 of the probe number
/// and the URI. Stable across builds and platforms (it is stored and uniquely indexed).
pub fn key_of(uri: &str, probe: u8) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update([probe])
        .chain_update(uri.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Every key `uri` may be stored under, for lookups.
pub fn keys_of(uri: &str) -> impl Iterator<Item = i64> + '_ {
    (0..KEY_PROBES).map(move |probe| key_of(uri, probe))
}
