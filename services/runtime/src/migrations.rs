//! The one migration runner: every service declares its migrations with [`crate::migrator!`]
//! and hands them to the server as [`Migrations`]; the server applies them (or waits for
//! `tracery migrate` to) the same way for all.

use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::{
    MigratorTrait, SchemaManager,
    sea_query::{ColumnDef, IntoTableRef, Table},
};

type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 'a>>;

/// One service's migrations, tracked in that service's own table.
#[derive(Clone, Copy)]
pub struct Migrations {
    apply: for<'a> fn(&'a DatabaseConnection) -> Pending<'a, ()>,
    pending: for<'a> fn(&'a DatabaseConnection) -> Pending<'a, usize>,
}

impl Migrations {
    /// The migrations of the migrator `M`.
    pub fn of<M: MigratorTrait + 'static>() -> Self {
        Self {
            apply: |db| M::up(db, None),
            pending: |db| Box::pin(async move { Ok(M::get_pending_migrations(db).await?.len()) }),
        }
    }

    /// Applies those not applied yet.
    pub async fn apply(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        (self.apply)(db).await
    }

    /// How many have not been applied.
    pub async fn pending(&self, db: &DatabaseConnection) -> Result<usize, DbErr> {
        (self.pending)(db).await
    }
}

/// Creates `table` with `columns` unless it exists: the statement of every migration that
/// adds a table with a one-column key. Columns come from `sea_orm_migration::schema`.
pub async fn create_table(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    columns: impl IntoIterator<Item = ColumnDef>,
) -> Result<(), DbErr> {
    let mut statement = Table::create().table(table).if_not_exists().take();
    for mut column in columns {
        statement.col(&mut column);
    }
    manager.create_table(statement).await
}

/// Adds `columns` to `table`, one statement per column: SQLite adds one at a time.
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef + Clone,
    columns: impl IntoIterator<Item = ColumnDef>,
) -> Result<(), DbErr> {
    for mut column in columns {
        let statement = Table::alter()
            .table(table.clone())
            .add_column(&mut column)
            .take();
        manager.alter_table(statement).await?;
    }
    Ok(())
}

/// Declares a migrator: its tracking table and its migrations in order, each a unit
/// struct (declared here) with its permanent name; the caller implements
/// `MigrationTrait` for each.
///
/// ```ignore
/// tracery_runtime::migrator! {
///     /// Capture migrations.
///     pub Migrator in "capture_migrations" {
///         CreateEvents = "m0001_create_capture_events",
///     }
/// }
/// ```
#[macro_export]
macro_rules! migrator {
    (
        $(#[$meta:meta])*
        $vis:vis $migrator:ident in $table:literal {
            $($migration:ident = $name:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $migrator;

        #[$crate::reexport::async_trait::async_trait]
        impl $crate::reexport::sea_orm_migration::MigratorTrait for $migrator {
            fn migration_table_name() -> $crate::reexport::sea_orm_migration::sea_query::DynIden {
                $crate::reexport::sea_orm_migration::sea_query::IntoIden::into_iden($table)
            }

            fn migrations() -> Vec<Box<dyn $crate::reexport::sea_orm_migration::MigrationTrait>> {
                vec![$(Box::new($migration)),+]
            }
        }

        $(
            struct $migration;

            impl $crate::reexport::sea_orm_migration::MigrationName for $migration {
                fn name(&self) -> &str {
                    $name
                }
            }
        )+
    };
}
