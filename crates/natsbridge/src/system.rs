//! The id source and clock of a `std` host.

use crate::envelope::{Clock, IdSource};

/// UUID v4 ids from the operating system's randomness (via `uuid`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemIds;

impl IdSource for SystemIds {
    fn next_id(&mut self) -> String {
        // Encoded on the stack and copied once: `to_string` would go through
        // the formatter and grow the string as it writes.
        let mut buf = uuid::Uuid::encode_buffer();
        String::from(&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf))
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}
