//! Plumbing shared by every Tracery service, so it exists exactly once:
//!
//! - [`audit`]: the one audit trail of write requests, hash-chained.
//! - [`integrity`]: the keys and signed checkpoints that make both hash chains (events,
//!   audit) hold against a database writer.
//! - [`auth`]: the one authenticator and permission table, enforced on gRPC and REST.
//! - [`config`]: the one configuration loader (defaults → file → `TRACERY_*` env → flags).
//! - [`telemetry`]: the one tracing/OpenTelemetry init, and W3C trace-context propagation
//!   across gRPC calls.
//! - [`db`]: the one database pool helper (SQLite or PostgreSQL).
//! - [`migrations`]: the one migration runner, and the [`migrator!`] every service uses.
//! - [`error`]: the one error-code table: each kind's gRPC code, HTTP status, EPCIS
//!   exception and CLI exit code.
//! - [`proto_fields`]: protobuf field conventions (keyset paging, timestamps).
//! - [`follow`]: the one loop that follows capture's `Subscribe` from a persisted cursor.
//! - [`server`]: assembles services into one gRPC server (with health and reflection) plus
//!   the HTTP listener, and shuts them down gracefully.
//!
//! Service crates implement [`server::ServiceModule`]; the `tracery` binary and the
//! per-service binaries ([`server::serve_single`]) choose which modules to run.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod follow;
pub mod http_api;
pub mod integrity;
pub mod metrics;
pub mod migrations;
pub mod partitions;
pub mod peers;
pub mod proto_fields;
pub mod readiness;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use config::{Config, ServiceKey};
pub use migrations::Migrations;

/// Crates the [`migrator!`] macro expands to, so callers need not name them.
#[doc(hidden)]
pub mod reexport {
    pub use async_trait;
    pub use sea_orm_migration;
}
pub use server::{Application, ModuleInfo, Pages, Routes, ServiceContext, ServiceModule, Started};
