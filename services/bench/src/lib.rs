//! What `tracery-bench` shares with the end-to-end tests: the synthetic plant, with its
//! planted causes of failure for common-cause analysis.

pub mod plant;
