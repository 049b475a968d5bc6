//! What every Tracery ERP/PLM connector shares.
//!
//! The integration service syncs items, BOMs and production orders from each plant's ERP
//! (ERPNext, Odoo, SAP S/4HANA) through one trait, [`Connector`], and stores them in one
//! canonical, ISA-95-flavoured model ([`model`]). Each system lives in its own crate under
//! `connectors/` and uses [`http::Http`] for retries, backoff and `Retry-After`, and
//! [`fields`] to read vendor JSON without panicking on surprises.

pub mod error;
pub mod fields;
pub mod http;
pub mod model;
pub mod paging;
pub mod parts;
pub mod postback;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::ConnectorError;

/// Secrets for connector settings (API keys, passwords), from an environment variable or
/// a mounted file.
pub mod secret {
    pub use tracery_secret::{Secret, SecretError, SecretSource};
}
pub use model::{
    Bom, BomLine, ErpLocation, LocationRole, Material, OrderStatus, ProductionOrder, Record,
    RecordKind,
};
pub use paging::{Cursor, Fetched, Page, Position};
pub use postback::{Consumed, PostBack, ProductionReport};

/// One ERP or PLM system, read page by page.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The system's name, e.g. `erpnext`.
    fn system(&self) -> &'static str;

    /// The record kinds this system provides, in the order a sync should fetch them.
    fn kinds(&self) -> &'static [RecordKind];

    /// One page of `kind` records changed since `cursor.since`, from `cursor.position`.
    async fn fetch(&self, kind: RecordKind, cursor: &Cursor) -> Result<Page, ConnectorError>;

    /// How this system takes production back, if it does.
    fn post_back(&self) -> Option<&dyn PostBack> {
        None
    }
}
