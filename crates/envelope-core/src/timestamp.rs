//! Timestamps: RFC 3339 UTC with milliseconds on send, the forms every
//! runtime emits on receive.

use crate::prelude::*;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Formats `t` (converted to UTC) as RFC 3339 with milliseconds and `Z`:
/// `2024-01-15T10:30:00.123Z`, what JavaScript's `toISOString` writes.
///
/// Milliseconds, not finer: Julia's `Dates` parser takes at most three
/// fractional digits (more raise `InexactError`), so a finer timestamp
/// would be unreadable there. The sub-millisecond part is truncated.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let buf = rfc3339_bytes(t);
    // Only ASCII digits and punctuation were written.
    core::str::from_utf8(&buf).map(String::from).unwrap_or_default()
}

/// [`format_rfc3339`]'s text, on the stack.
pub(crate) fn rfc3339_bytes(t: OffsetDateTime) -> [u8; 24] {
    let t = t.to_offset(UtcOffset::UTC);
    // Written digit by digit: this runs once per message sent, and
    // `core::fmt` padding costs more than the rest of the envelope header.
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for k in (at..at + width).rev() {
            buf[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, milli) = t.to_hms_milli();
    put(0, 4, year.clamp(0, 9999) as u32);
    put(5, 2, u8::from(month).into());
    put(8, 2, day.into());
    put(11, 2, hour.into());
    put(14, 2, minute.into());
    put(17, 2, second.into());
    put(20, 3, milli.into());
    buf
}

/// Parses a timestamp leniently: `YYYY-MM-DDTHH:MM:SS` (a space instead of
/// `T` is accepted), optional fractional seconds of any length (digits past
/// nanoseconds are ignored), and an optional zone: `Z`, `+HH:MM`, `+HHMM`,
/// `+HH`. No zone (Julia's `Dates.now()`) is read as UTC.
pub fn parse_timestamp(s: &str) -> Result<OffsetDateTime, String> {
    let b = s.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)? as i32;
    p.byte(b'-')?;
    let month = p.digits(2)? as u8;
    p.byte(b'-')?;
    let day = p.digits(2)? as u8;
    match p.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err(format!("expected `T` after the date in {s:?}")),
    }
    let hour = p.digits(2)? as u8;
    p.byte(b':')?;
    let minute = p.digits(2)? as u8;
    p.byte(b':')?;
    let second = p.digits(2)? as u8;
    let mut nanos = 0u32;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        let mut scale = 100_000_000u32;
        while let Some(d @ b'0'..=b'9') = p.peek() {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            p.i += 1;
        }
        if p.i == start {
            return Err(format!("no digits after `.` in {s:?}"));
        }
    }
    let offset = match p.next() {
        None => UtcOffset::UTC,
        Some(b'Z' | b'z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let h = p.digits(2)? as i8;
            let m = match p.peek() {
                Some(b':') => {
                    p.i += 1;
                    p.digits(2)? as i8
                }
                Some(b'0'..=b'9') => p.digits(2)? as i8,
                _ => 0,
            };
            let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).map_err(|e| format!("bad zone in {s:?}: {e}"))?
        }
        Some(_) => return Err(format!("unexpected character in {s:?}")),
    };
    if p.i != b.len() {
        return Err(format!("trailing characters in {s:?}"));
    }
    let month = Month::try_from(month).map_err(|e| format!("bad month in {s:?}: {e}"))?;
    let date = Date::from_calendar_date(year, month, day)
        .map_err(|e| format!("bad date in {s:?}: {e}"))?;
    let time = Time::from_hms_nano(hour, minute, second, nanos)
        .map_err(|e| format!("bad time in {s:?}: {e}"))?;
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        if c.is_some() {
            self.i += 1;
        }
        c
    }

    fn byte(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(c) if c == want => Ok(()),
            _ => Err(format!("expected `{}` at position {}", want as char, self.i)),
        }
    }

    fn digits(&mut self, n: usize) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.next() {
                Some(d @ b'0'..=b'9') => v = v * 10 + u32::from(d - b'0'),
                _ => return Err(format!("expected {n} digits at position {}", self.i)),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_peer_form() {
        let utc = parse_timestamp("2024-01-15T10:30:00Z").unwrap();
        assert_eq!(utc.unix_timestamp(), 1_705_314_600);
        assert_eq!(parse_timestamp("2024-01-15T10:30:00").unwrap(), utc, "no zone is UTC");
        let julia = parse_timestamp("2024-01-15T10:30:00.123").unwrap();
        assert_eq!(julia.millisecond(), 123);
        let long = parse_timestamp("2024-01-15T10:30:00.1234567891234Z").unwrap();
        assert_eq!(long.nanosecond(), 123_456_789);
        let off = parse_timestamp("2024-01-15T12:30:00+02:00").unwrap();
        assert_eq!(off, utc);
        assert_eq!(parse_timestamp("2024-01-15T05:30:00-0500").unwrap(), utc);
        assert_eq!(parse_timestamp("2024-01-15 10:30:00z").unwrap(), utc);
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in
            ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-15T10:30", "2024-01-15T10:30:00Q"]
        {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_utc_with_millis_and_round_trips() {
        let t = parse_timestamp("2024-01-15T12:30:00.5+02:00").unwrap();
        let s = format_rfc3339(t);
        assert_eq!(s, "2024-01-15T10:30:00.500Z");
        assert_eq!(parse_timestamp(&s).unwrap(), t);
    }

    #[test]
    fn formats_at_most_three_fraction_digits() {
        // Finer precision is truncated, never rounded up into the next second.
        let t = parse_timestamp("2024-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!(format_rfc3339(t), "2024-12-31T23:59:59.999Z");
        let t = parse_timestamp("2024-01-15T10:30:00.0009Z").unwrap();
        assert_eq!(format_rfc3339(t), "2024-01-15T10:30:00.000Z");
        // Julia's rule: yyyy-mm-ddTHH:MM:SS.sss, then the zone letter.
        let s = format_rfc3339(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(s.len(), 24);
        assert_eq!(s.rsplit_once('.').unwrap().1, "000Z");
    }

    #[test]
    fn reads_what_julia_python_and_javascript_write() {
        // Julia's `string(now())` drops trailing zeros of the milliseconds.
        let j = parse_timestamp("2024-01-15T10:30:00.37").unwrap();
        assert_eq!(j.millisecond(), 370);
        assert_eq!(parse_timestamp("2024-01-15T10:30:00").unwrap().millisecond(), 0);
        // Python's isoformat (microseconds, offset) and JavaScript's toISOString.
        let p = parse_timestamp("2024-01-15T10:30:00.370000+00:00").unwrap();
        let js = parse_timestamp("2024-01-15T10:30:00.370Z").unwrap();
        assert_eq!(p, j);
        assert_eq!(js, j);
        for digits in 1..=9 {
            let s = format!("2024-01-15T10:30:00.{}Z", "1".repeat(digits));
            assert!(parse_timestamp(&s).is_ok(), "{s}");
        }
    }
}
