//! Prometheus metrics: one registry per process, served at `/metrics` on the HTTP
//! listener. Services create their families once per process (a `OnceLock`) and
//! register them here; names start with `tracery_`.

use prometheus::{Registry, core::Collector};

/// The process's registry.
pub fn registry() -> &'static Registry {
    prometheus::default_registry()
}

/// Registers `family`; a failure (a name clash, a bug) is logged and the family still
/// counts, just unexported.
pub fn register<C: Collector + Clone + 'static>(family: C) -> C {
    if let Err(err) = registry().register(Box::new(family.clone())) {
        tracing::error!(error = %err, "a metric family could not be registered");
    }
    family
}
