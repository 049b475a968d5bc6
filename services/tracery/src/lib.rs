//! The all-in-one Tracery process: every service module built into one binary, and the
//! operator CLI ([`cli`]) that talks to it.

pub mod cli;
pub mod dashboard;
pub mod names;
pub mod views;

use std::sync::Arc;

use tracery_runtime::ServiceModule;

/// All four services; configuration picks which of them a process runs.
pub fn all_modules() -> Vec<Arc<dyn ServiceModule>> {
    vec![
        Arc::new(tracery_identity::IdentityModule),
        Arc::new(tracery_capture::CaptureModule),
        Arc::new(tracery_genealogy::GenealogyModule),
        Arc::new(tracery_integration::IntegrationModule),
    ]
}
