//! Monthly partitions of PostgreSQL's append-only tables (events, audit), by a time column
//! in UTC.
//!
//! Why: a table that only grows makes vacuum, backups and index rebuilds grow with it, and
//! ageing out a month means deleting its rows one by one. Partitioned by month, a query
//! with a time range reads only the months it names, and an archived month goes with
//! `DROP TABLE`.
//!
//! A store from before partitioning keeps its rows where they are: the plain table becomes
//! the partition `<table>_before`, covering everything up to the first month after its
//! newest row (attached behind a check constraint, so no row is copied or scanned twice).
//! Months after it get a partition each, created ahead by [`Monthly::ensure`].
//!
//! SQLite has no partitions; there every function here does nothing.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

/// How many months after the current one have their partitions before they begin.
pub const MONTHS_AHEAD: u32 = 2;

/// A table partitioned by month on `column`, a `timestamptz`.
#[derive(Debug, Clone, Copy)]
pub struct Monthly {
    pub table: &'static str,
    pub column: &'static str,
}

/// The first day of the month of `time` (UTC).
pub fn month_of(time: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(time.year(), time.month(), 1).expect("the first of a month exists")
}

/// `month` and the `MONTHS_AHEAD` after it.
pub fn with_months_ahead(month: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    (0..=MONTHS_AHEAD).map(move |ahead| month + Months::new(ahead))
}

fn start_of(month: NaiveDate) -> String {
    format!("{} 00:00:00+00", month.format("%Y-%m-%d"))
}

impl Monthly {
    /// The partition holding `month` alone.
    pub fn partition(&self, month: NaiveDate) -> String {
        format!("{}_{}", self.table, month.format("%Y_%m"))
    }

    /// The partition of the rows from before the table was partitioned.
    pub fn before(&self) -> String {
        format!("{}_before", self.table)
    }

    /// Creates the partitions of those `months` that no partition covers yet.
    pub async fn ensure(
        &self,
        conn: &impl ConnectionTrait,
        months: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<(), DbErr> {
        if conn.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let before_ends = self.before_ends(conn).await?;
        for month in months {
            let start = Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).expect("midnight"));
            if before_ends.is_some_and(|end| start < end) {
                continue;
            }
            conn.execute_unprepared(&format!(
                "CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {table} \
                 FOR VALUES FROM ('{from}') TO ('{to}')",
                partition = self.partition(month),
                table = self.table,
                from = start_of(month),
                to = start_of(month + Months::new(1)),
            ))
            .await?;
        }
        Ok(())
    }

    /// Whether `month` has a partition of its own (not the one from before partitioning).
    pub async fn has_own(
        &self,
        conn: &impl ConnectionTrait,
        month: NaiveDate,
    ) -> Result<bool, DbErr> {
        if conn.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(false);
        }
        let found = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT to_regclass($1) IS NOT NULL AS found",
                [self.partition(month).into()],
            ))
            .await?;
        match found {
            Some(row) => row.try_get("", "found"),
            None => Ok(false),
        }
    }

    /// Drops the partition of `month` with its rows.
    pub async fn drop_month(
        &self,
        conn: &impl ConnectionTrait,
        month: NaiveDate,
    ) -> Result<(), DbErr> {
        conn.execute_unprepared(&format!("DROP TABLE IF EXISTS {}", self.partition(month)))
            .await
            .map(|_| ())
    }

    /// Where the partition from before partitioning ends, if there is one.
    async fn before_ends(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<DateTime<Utc>>, DbErr> {
        // The bound is printed in the session's time zone and read back in it, so the
        // instant is right whatever that zone is.
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                r"SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS ends
                  FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relispartition",
                [self.before().into()],
            ))
            .await?;
        match row {
            Some(row) => row.try_get("", "ends"),
            None => Ok(None),
        }
    }

    /// Turns the plain table into one partitioned by month, unless it is already.
    ///
    /// - `key` is the table's generated key column: its numbering goes on from where it
    ///   was, from a sequence of the partitioned table's own.
    /// - `indexes` are the partitioned table's indexes besides its primary key
    ///   (`key`, `column`), as `CREATE INDEX` statements; the plain table's indexes of the
    ///   same definition become its partition's, others are built.
    ///
    /// The plain table's unique constraints go: a partitioned table can enforce uniqueness
    /// only with the partition column in the key, so what must stay unique is decided by
    /// its writers (capture's eventIDs under the append lock).
    pub async fn convert(
        &self,
        conn: &impl ConnectionTrait,
        key: &str,
        indexes: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        if conn.get_database_backend() != DatabaseBackend::Postgres
            || self.is_partitioned(conn).await?
        {
            return Ok(());
        }
        let Monthly { table, column } = *self;
        let before = self.before();
        let numbers = format!("{table}_{key}_numbers");
        self.take_over_numbering(conn, key, &numbers).await?;
        conn.execute_unprepared(&format!("ALTER TABLE {table} RENAME TO {before}"))
            .await?;
        self.drop_unique_constraints(conn, &before).await?;
        self.rename_indexes(conn, &before).await?;
        for sql in [
            format!(
                "CREATE TABLE {table} (LIKE {before} INCLUDING DEFAULTS) \
                 PARTITION BY RANGE ({column})"
            ),
            format!("ALTER TABLE {table} ALTER COLUMN {key} SET DEFAULT nextval('{numbers}')"),
            format!("ALTER SEQUENCE {numbers} OWNED BY {table}.{key}"),
            format!("ALTER TABLE {table} ADD PRIMARY KEY ({key}, {column})"),
        ] {
            conn.execute_unprepared(&sql).await?;
        }
        for index in indexes {
            conn.execute_unprepared(index).await?;
        }
        self.attach_before(conn).await?;
        self.ensure(conn, with_months_ahead(month_of(now))).await
    }

    /// Moves the numbering of `key` from the plain table's own sequence (identity or
    /// serial) to `numbers`, at the same place.
    async fn take_over_numbering(
        &self,
        conn: &impl ConnectionTrait,
        key: &str,
        numbers: &str,
    ) -> Result<(), DbErr> {
        let table = self.table;
        let old = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_get_serial_sequence($1, $2) AS old",
                [table.into(), key.into()],
            ))
            .await?
            .map(|row| row.try_get::<Option<String>>("", "old"))
            .transpose()?
            .flatten();
        conn.execute_unprepared(&format!("CREATE SEQUENCE {numbers} AS bigint"))
            .await?;
        let Some(old) = old else {
            return Ok(());
        };
        for sql in [
            format!("SELECT setval('{numbers}', last_value, is_called) FROM {old}"),
            format!("ALTER TABLE {table} ALTER COLUMN {key} DROP IDENTITY IF EXISTS"),
            format!("ALTER TABLE {table} ALTER COLUMN {key} DROP DEFAULT"),
            format!("DROP SEQUENCE IF EXISTS {old}"),
        ] {
            conn.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn is_partitioned(&self, conn: &impl ConnectionTrait) -> Result<bool, DbErr> {
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = to_regclass($1)",
                [self.table.into()],
            ))
            .await?;
        match row {
            Some(row) => row.try_get("", "partitioned"),
            None => Err(DbErr::Custom(format!("no table {}", self.table))),
        }
    }

    async fn drop_unique_constraints(
        &self,
        conn: &impl ConnectionTrait,
        table: &str,
    ) -> Result<(), DbErr> {
        let constraints = "SELECT conname::text AS name FROM pg_constraint \
                           WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u')";
        for_each_name(conn, constraints, table, |name| {
            format!("ALTER TABLE {table} DROP CONSTRAINT {name}")
        })
        .await
    }

    /// Renames the plain table's indexes out of the way of the partitioned table's.
    async fn rename_indexes(&self, conn: &impl ConnectionTrait, table: &str) -> Result<(), DbErr> {
        let indexes = "SELECT indexrelid::regclass::text AS name FROM pg_index \
                       WHERE indrelid = to_regclass($1)";
        for_each_name(conn, indexes, table, |name| {
            format!("ALTER INDEX {name} RENAME TO {name}_before")
        })
        .await
    }

    /// Attaches the plain table as the partition of everything before the month after its
    /// newest row; drops it if it is empty.
    async fn attach_before(&self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let Monthly { table, column } = *self;
        let before = self.before();
        let ends = conn
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!(
                    "SELECT ((date_trunc('month', max({column}) AT TIME ZONE 'UTC') \
                     + interval '1 month') AT TIME ZONE 'UTC')::text AS ends FROM {before}"
                ),
            ))
            .await?
            .map(|row| row.try_get::<Option<String>>("", "ends"))
            .transpose()?
            .flatten();
        let Some(ends) = ends else {
            conn.execute_unprepared(&format!("DROP TABLE {before}"))
                .await?;
            return Ok(());
        };
        // The check lets the attachment skip its own scan of every row.
        for sql in [
            format!(
                "ALTER TABLE {before} ADD CONSTRAINT {before}_range CHECK ({column} < '{ends}')"
            ),
            format!(
                "ALTER TABLE {table} ATTACH PARTITION {before} \
                 FOR VALUES FROM (MINVALUE) TO ('{ends}')"
            ),
            format!("ALTER TABLE {before} DROP CONSTRAINT {before}_range"),
        ] {
            conn.execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}

/// Runs the statement `statement` makes of each name that `names` (a query of `table`,
/// its `$1`) lists.
async fn for_each_name(
    conn: &impl ConnectionTrait,
    names: &str,
    table: &str,
    statement: impl Fn(&str) -> String,
) -> Result<(), DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            names,
            [table.into()],
        ))
        .await?;
    for row in rows {
        let name: String = row.try_get("", "name")?;
        conn.execute_unprepared(&statement(&name)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: Monthly = Monthly {
        table: "capture_events",
        column: "record_time",
    };

    #[test]
    fn a_month_partition_is_named_for_its_month() {
        let october = NaiveDate::from_ymd_opt(2026, 10, 1).expect("a date");
        assert_eq!(EVENTS.partition(october), "capture_events_2026_10");
    }

    #[test]
    fn months_ahead_roll_over_the_year() {
        let november = NaiveDate::from_ymd_opt(2026, 11, 1).expect("a date");
        let months: Vec<String> = with_months_ahead(november)
            .map(|m| m.format("%Y-%m").to_string())
            .collect();
        assert_eq!(months, ["2026-11", "2026-12", "2027-01"]);
    }
}
