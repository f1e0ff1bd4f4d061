//! The id source and clock of a `std` host.

use crate::envelope::{Clock, IdSource};

/// UUID v4 ids from the operating system's randomness (via `uuid`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemIds;

impl IdSource for SystemIds {
    fn next_id(&mut self) -> String {
        // Encoded on the stack and copied once: `to_string` would go through
        // the formatter and grow the string as it writes.
        // (`uuid`'s encoder here, not `hyphenated`: it hands back a `str`
        // without the UTF-8 check that would cost more than it saves.)
        let mut buf = uuid::Uuid::encode_buffer();
        String::from(&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf))
    }

    fn write_next_id(&mut self, out: &mut Vec<u8>) {
        // A UUID needs no JSON escaping: copied in quoted, with no
        // allocation.
        out.extend_from_slice(&hyphenated(uuid::Uuid::new_v4().as_bytes()));
    }
}

/// `"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"`, lower case, quoted: four
/// bytes at a time turned into eight hex digits with word arithmetic (a
/// third of the instructions of `uuid`'s byte-by-byte encoder, on a path
/// that runs four times per message).
fn hyphenated(bytes: &[u8; 16]) -> [u8; 38] {
    // Each nibble of `x` (big-endian) spread into a byte, then mapped to
    // `0`-`9`/`a`-`f` without a branch or a table.
    fn hex8(x: u32) -> [u8; 8] {
        let mut v = u64::from(x);
        v = (v | v << 16) & 0x0000_ffff_0000_ffff;
        v = (v | v << 8) & 0x00ff_00ff_00ff_00ff;
        v = (v | v << 4) & 0x0f0f_0f0f_0f0f_0f0f;
        // The nibbles are now in the bytes, most significant first in the
        // highest byte: big-endian puts it first in the text.
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (v + 0x3030_3030_3030_3030 + letters * (b'a' - b'0' - 10) as u64).to_be_bytes()
    }
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut out = *b"\"00000000-0000-0000-0000-000000000000\"";
    let [a, b, c, d] = [word(0), word(4), word(8), word(12)];
    out[1..9].copy_from_slice(&hex8(a));
    let b = hex8(b);
    out[10..14].copy_from_slice(&b[..4]);
    out[15..19].copy_from_slice(&b[4..]);
    let c = hex8(c);
    out[20..24].copy_from_slice(&c[..4]);
    out[25..29].copy_from_slice(&c[4..]);
    out[29..37].copy_from_slice(&hex8(d));
    out
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    fn now_unix_millis(&self) -> i64 {
        // The system keeps a count: read as one, with no calendar built
        // (`now_utc` would compute the date only for the envelope to
        // take it apart again).
        use std::time::{SystemTime, UNIX_EPOCH};
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_millis() as i64,
            // Before the epoch: rounded down, as `now_utc` truncates.
            Err(before) => -(before.duration().as_nanos().div_ceil(1_000_000) as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_what_its_calendar_shows() {
        let before = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let millis = i128::from(SystemClock.now_unix_millis());
        let after = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        assert!(before <= millis && millis <= after, "{before} {millis} {after}");
    }

    #[test]
    fn ids_are_what_uuid_writes() {
        for bytes in [
            [0u8; 16],
            [0xff; 16],
            *b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10",
        ] {
            let id = uuid::Uuid::from_bytes(bytes);
            let text = hyphenated(&bytes);
            assert_eq!(&text[1..37], id.hyphenated().to_string().as_bytes());
            assert_eq!((text[0], text[37]), (b'"', b'"'));
        }
        for _ in 0..1000 {
            let id = SystemIds.next_id();
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(id, parsed.hyphenated().to_string());
            let mut out = Vec::new();
            SystemIds.write_next_id(&mut out);
            assert_eq!(out.len(), 38);
            assert!(uuid::Uuid::parse_str(std::str::from_utf8(&out[1..37]).unwrap()).is_ok());
        }
    }
}
