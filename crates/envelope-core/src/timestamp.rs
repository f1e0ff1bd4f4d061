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
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, milli) = t.to_hms_milli();
    let time = ((u32::from(hour) * 60 + u32::from(minute)) * 60 + u32::from(second)) * 1000;
    rfc3339_fields(year.into(), u8::from(month).into(), day.into(), time + u32::from(milli))
}

/// [`format_rfc3339`]'s text for the instant `millis` milliseconds after
/// the Unix epoch (before it when negative), on the stack: the calendar
/// computed straight from the count (what a message's timestamp needs from
/// the system clock), without building an `OffsetDateTime`.
pub(crate) fn rfc3339_from_unix_millis(millis: i64) -> [u8; 24] {
    const DAY: i64 = 86_400_000;
    let (days, time) = (millis.div_euclid(DAY), millis.rem_euclid(DAY) as u32);
    // Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of
    // day `days` of the Unix epoch, in 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    rfc3339_fields(year, month, day, time)
}

/// Two decimal digits of each number below 100, for writing a field at a
/// time instead of a digit at a time.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `YYYY-MM-DDTHH:MM:SS.fffZ` from the date and the milliseconds of the
/// day. A year outside 0-9999 is clamped (RFC 3339 has four digits).
fn rfc3339_fields(year: i64, month: u32, day: u32, millis_of_day: u32) -> [u8; 24] {
    // Written two digits at a time from a table: this runs once per message
    // sent, and `core::fmt` padding costs more than the rest of the
    // envelope header.
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, v: u32| {
        let v = (v % 100) as usize;
        buf[at..at + 2].copy_from_slice(&PAIRS[2 * v..2 * v + 2]);
    };
    let year = year.clamp(0, 9999) as u32;
    let seconds = millis_of_day / 1000;
    let milli = millis_of_day % 1000;
    put(0, year / 100);
    put(2, year);
    put(5, month);
    put(8, day);
    put(11, seconds / 3600);
    put(14, seconds / 60 % 60);
    put(17, seconds % 60);
    put(21, milli);
    buf[20] = b'0' + (milli / 100) as u8;
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
    fn formats_every_field_digit_for_digit() {
        for s in [
            "0001-01-01T00:00:00.000Z",
            "0999-09-09T09:09:09.009Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00.010Z",
            "9999-12-31T12:34:56.789Z",
            "2000-10-20T10:20:30.100Z",
        ] {
            assert_eq!(format_rfc3339(parse_timestamp(s).unwrap()), s);
        }
    }

    #[test]
    fn the_count_and_the_calendar_write_the_same_text() {
        // Every day of a few 400-year eras either side of the epoch, at a
        // time of day that moves with it, and the ends of time's range.
        let mut millis = -62_135_596_800_000i64; // 0001-01-01
        while millis < 253_402_300_800_000 {
            let t =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap();
            assert_eq!(
                rfc3339_from_unix_millis(millis),
                rfc3339_bytes(t),
                "{millis}: {}",
                format_rfc3339(t)
            );
            millis += 86_400_000 * 3 + 3_723_457;
        }
        for t in [OffsetDateTime::UNIX_EPOCH, time::PrimitiveDateTime::MIN.assume_utc()] {
            let millis = (t.unix_timestamp_nanos().div_euclid(1_000_000)) as i64;
            assert_eq!(rfc3339_from_unix_millis(millis), rfc3339_bytes(t));
        }
        let max = time::PrimitiveDateTime::MAX.assume_utc();
        let millis = (max.unix_timestamp_nanos().div_euclid(1_000_000)) as i64;
        assert_eq!(rfc3339_from_unix_millis(millis), rfc3339_bytes(max));
        assert_eq!(&rfc3339_from_unix_millis(-1), b"1969-12-31T23:59:59.999Z");
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
