//! What the permission table cannot see: some events need more than the `operator` role.
//! Declaring a captured event erroneous, and decommissioning or destroying objects, are
//! corrections with legal weight: they need `quality`.

use tracery_runtime::auth::{self, AuthError, Principal, Role};

/// Whether an event with these traits is a correction or a retirement.
fn needs_quality(error_declaration: bool, biz_step: &str) -> bool {
    error_declaration || biz_step.ends_with("decommissioning") || biz_step.ends_with("destroying")
}

/// Checks `events` — (index, has an errorDeclaration, bizStep) — against the caller.
pub fn check<'a>(
    principal: Option<&Principal>,
    events: impl IntoIterator<Item = (usize, bool, &'a str)>,
) -> Result<(), AuthError> {
    for (index, error_declaration, biz_step) in events {
        if needs_quality(error_declaration, biz_step) {
            let what = if error_declaration {
                format!("events[{index}]: an error declaration")
            } else {
                format!("events[{index}]: bizStep {biz_step}")
            };
            auth::require(principal, Role::Quality, &what)?;
        }
    }
    Ok(())
}
