//! Common-cause analysis of failed units: what the failed ones share that the good ones
//! do not, ranked by how unlikely the sharing is by chance.
//!
//! - [`stats`]: the 2×2 table of one candidate, Fisher's exact test, relative risk and
//!   Benjamini–Hochberg q-values (pure).

pub mod stats;
