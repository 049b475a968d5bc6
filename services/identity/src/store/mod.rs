//! Identity storage (sea-orm, SQLite or PostgreSQL): products, serial pools, lifecycle states.

mod migration;
pub mod pools;
pub mod products;
pub mod states;

pub use migration::Migrator;
pub use pools::PoolStore;
pub use products::{ProductRow, ProductStore};
pub use states::{CapturedChange, Reversal, StateStore};
