//! The suite's clock for the times it records (an event's recordTime, which decides the
//! month it is archived with). It is the system clock; a test shifts it to capture events
//! into months that are closed already, instead of waiting for a month to end.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock, shifted by a settable offset (none unless a test sets one). Clones
/// share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    shift_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as the suite records it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.shift_ms.load(Ordering::Relaxed))
    }

    /// Makes [`Clock::now`] run `by` ahead of the system clock (behind when negative).
    pub fn shift(&self, by: TimeDelta) {
        self.shift_ms
            .store(by.num_milliseconds(), Ordering::Relaxed);
    }
}

/// Clocks are alike when they run at the same shift.
impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        self.shift_ms.load(Ordering::Relaxed) == other.shift_ms.load(Ordering::Relaxed)
    }
}

impl Eq for Clock {}
