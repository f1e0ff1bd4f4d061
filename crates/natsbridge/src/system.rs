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

    fn write_next_id(&mut self, out: &mut Vec<u8>) {
        // A UUID needs no JSON escaping: quote it and copy it in, with no
        // allocation.
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
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
