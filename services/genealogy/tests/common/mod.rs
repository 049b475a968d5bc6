//! Shared by the store tests: where a test's projection is kept, and what its plants'
//! events are made of.

use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tracery_epcis::QuantityElement;

/// One of each of `classes` (lots), as an event's quantity list.
pub fn one_of_each(classes: impl Iterator<Item = String>) -> Vec<QuantityElement> {
    classes
        .map(|epc_class| QuantityElement {
            epc_class,
            quantity: Some(1.0),
            uom: None,
        })
        .collect()
}

/// Where a plant's projection is kept: a SQLite file, or a PostgreSQL database dropped
/// when the plant passed.
pub enum Store {
    /// The folder the file is in, removed with it.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Store {
    pub async fn create(prefix: &str) -> (Self, DatabaseConnection) {
        match std::env::var("TRACERY_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                static PLANTS: AtomicUsize = AtomicUsize::new(0);
                let plant = PLANTS.fetch_add(1, Ordering::Relaxed);
                let name = format!("{prefix}_{}_{plant}", std::process::id());
                let admin = Database::connect(&admin_url).await.expect("postgres");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("creates a database");
                let (server, query) = match admin_url.split_once('?') {
                    Some((base, query)) => (base, format!("?{query}")),
                    None => (admin_url.as_str(), String::new()),
                };
                let (server, _) = server.rsplit_once('/').expect("URL ends in /<database>");
                let db = Database::connect(format!("{server}/{name}{query}"))
                    .await
                    .expect("postgres");
                (Self::Postgres { admin_url, name }, db)
            }
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/g.db?mode=rwc", dir.path().display());
                let db = Database::connect(&url).await.expect("sqlite");
                (Self::Sqlite { _dir: dir }, db)
            }
        }
    }

    pub async fn drop(self) {
        if let Self::Postgres { admin_url, name } = self {
            let admin = Database::connect(&admin_url).await.expect("postgres");
            admin
                .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .expect("drops the database");
        }
    }
}
