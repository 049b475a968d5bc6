//! The one database pool helper: SQLite (embedded default) or PostgreSQL (production).

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::Config;

/// Rows a SQLite connection's worker may read ahead of the task that takes them.
const ROW_BUFFER: usize = 1024;

/// Opens the pool for the configured database. For SQLite the file's folder is created,
/// and the connection is set up for concurrent writers and durable commits.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    let url = config.database_url.expose();
    if let Some(parent) = sqlite_file(url)
        .and_then(|path| Path::new(path).parent())
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|err| {
            DbErr::Custom(format!(
                "cannot create database folder {}: {err}",
                parent.display()
            ))
        })?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.db_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // WAL lets readers run beside the writer; FULL makes a commit survive power
            // loss, since an acknowledged event must never be lost. Rows come from a worker
            // thread over a channel: at sqlx's 50 a large read (an analysis's good units)
            // spent a third of its time switching between the worker and the task.
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .row_buffer_size(ROW_BUFFER)
        })
        // Every query the suite makes is a short indexed lookup or append. Without
        // statistics (before autovacuum's first ANALYZE, or with it off) PostgreSQL's
        // row estimates can pass `jit_above_cost`, and a trace level then spent 13-40 ms
        // compiling a query that runs in 0.3 ms.
        .map_sqlx_postgres_opts(|opts| opts.options([("jit", "off")]));
    Database::connect(options).await
}

/// The file path of a `sqlite:` URL, or `None` for PostgreSQL and in-memory SQLite.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Whether the URL names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Starts a transaction that will write.
///
/// On SQLite it takes the write lock at `BEGIN` (`BEGIN IMMEDIATE`): a deferred transaction
/// that reads before it writes fails at once with `SQLITE_BUSY_SNAPSHOT` when another
/// connection committed in between (the busy timeout does not apply to that case), while an
/// immediate one waits for the lock. PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Serialises transactions that take the same `key` (until they end). SQLite needs no
/// lock: [`begin_write`] already holds its single write lock. For work that must not run
/// twice at once across replicas: the audit chain, a follower's cursor.
pub async fn serialize(txn: &DatabaseTransaction, key: i64) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait as _;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({key})"))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sqlite_file_paths() {
        assert_eq!(
            sqlite_file("sqlite://tracery-data/t.db?mode=rwc"),
            Some("tracery-data/t.db")
        );
        assert_eq!(sqlite_file("sqlite:/var/lib/t.db"), Some("/var/lib/t.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
    }

    #[tokio::test]
    async fn connect_creates_the_sqlite_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/nested/t.db?mode=rwc", dir.path().display());
        let db = connect(&Config::for_tests(&url)).await.expect("connects");
        db.ping().await.expect("ping");
        assert!(dir.path().join("nested/t.db").exists());
    }
}
