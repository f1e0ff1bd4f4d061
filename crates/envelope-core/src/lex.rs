//! The JSON lexer under the envelope reader ([`crate::read`]): a cursor
//! over the input that finds strings (borrowing them when they hold no
//! escapes; the closing quote of long ones by SIMD search), delimits values
//! it does not interpret, and reports syntax errors with their offset. It
//! knows nothing of the envelope's keys.

use crate::prelude::*;
use crate::{Error, ErrorKind, Result};

/// The first `"` or `\\` in `b`. Header strings are short (ids are 36
/// bytes), so the first 64 bytes are checked inline, sixteen bytes at a time
/// with SSE2 (eight without, and near the end of the input); longer
/// strings (payload data) go to memchr's SIMD search, whose set-up only pays
/// off there.
#[inline]
pub(crate) fn find_quote_or_backslash(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while i < 64 {
        let Some(chunk) = b.get(i..i + 16) else { break };
        let (special, _) = stops16(chunk);
        if special != 0 {
            return Some(i + special.trailing_zeros() as usize);
        }
        i += 16;
    }
    while i < 64 {
        let Some(word) = b.get(i..i + 8) else {
            // Fewer than eight bytes left: a short loop beats memchr's set-up.
            return b[i..].iter().position(|&c| c == b'"' || c == b'\\').map(|k| i + k);
        };
        let x = read_u64(word);
        let q = x ^ (LO * u64::from(b'"'));
        let s = x ^ (LO * u64::from(b'\\'));
        // A zero byte in `q` or `s` marks a match; the lowest flag is exact.
        let mask = (q.wrapping_sub(LO) & !q | s.wrapping_sub(LO) & !s) & HI;
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr::memchr2(b'"', b'\\', &b[i..]).map(|k| i + k)
}

/// The length of the string content at the start of `b` when it is plain
/// ASCII (no escape, no byte above 0x7f) closed by a `"`; `None` for any
/// other string, which takes the general path. One pass: sixteen bytes at
/// a time with SSE2 (every x86-64 has it), eight at a time elsewhere and
/// near the end of the input.
#[inline(always)]
pub(crate) fn plain_ascii_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(chunk) = b.get(i..i + 16) {
        let (special, high) = stops16(chunk);
        let stop = special | high;
        if stop != 0 {
            let at = i + stop.trailing_zeros() as usize;
            return (chunk[at - i] == b'"').then_some(at);
        }
        i += 16;
    }
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = b.get(i..i + 8) {
        let x = read_u64(word);
        let q = x ^ (LO * u64::from(b'"'));
        let s = x ^ (LO * u64::from(b'\\'));
        // Quote, backslash (zero bytes of `q`, `s`; a borrow can only flag
        // bytes above a real match) or a high bit: the lowest flag is exact.
        let stop = (q.wrapping_sub(LO) & !q | s.wrapping_sub(LO) & !s | x) & HI;
        if stop != 0 {
            let at = i + (stop.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at);
        }
        i += 8;
    }
    for (k, &c) in b[i..].iter().enumerate() {
        if c == b'"' {
            return Some(i + k);
        }
        if c == b'\\' || c >= 0x80 {
            return None;
        }
    }
    None
}

/// One bit per byte of the 16-byte `chunk` that is a quote or a backslash,
/// and one per byte above 0x7f.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn stops16(chunk: &[u8]) -> (u32, u32) {
    use core::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    debug_assert!(chunk.len() >= 16);
    // SAFETY: the build enables SSE2 (the `cfg` above: every x86-64 has
    // it), which is all these intrinsics need; the load reads the first 16
    // bytes of `chunk`, which has at least 16 (its one caller slices it so),
    // and an unaligned load has no alignment requirement.
    #[allow(unsafe_code)]
    unsafe {
        let x = _mm_loadu_si128(chunk.as_ptr().cast());
        let special = _mm_or_si128(
            _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8)),
            _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)),
        );
        (_mm_movemask_epi8(special) as u32, _mm_movemask_epi8(x) as u32)
    }
}

/// The first eight bytes of `b` (which holds at least eight) as a word.
#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[..8]);
    u64::from_le_bytes(bytes)
}

/// `a == b` for slices of one length, inline for the lengths of keys
/// (up to 16 bytes: two overlapping words) instead of a `memcmp` call.
#[inline(always)]
pub(crate) fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        return read_u64(a) == read_u64(b) && read_u64(&a[n - 8..]) == read_u64(&b[n - 8..]);
    }
    if (17..=24).contains(&n) {
        return read_u64(a) == read_u64(b)
            && read_u64(&a[8..]) == read_u64(&b[8..])
            && read_u64(&a[n - 8..]) == read_u64(&b[n - 8..]);
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

/// What [`Reader::scan_string`] found.
pub(crate) struct StringScan {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A cursor over JSON text: the lexer the envelope reader is built on.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

pub(crate) fn describe(first: Option<u8>) -> &'static str {
    match first {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        Some(_) => "an invalid character",
        None => "nothing",
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..4] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Resolves JSON escapes.
pub(crate) fn unescape(raw: &[u8]) -> Result<String, &'static str> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let esc = *raw.get(i + 1).ok_or("unterminated escape")?;
        i += 2;
        let simple = match esc {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => 0,
            _ => return Err("invalid escape"),
        };
        if esc != b'u' {
            out.push(simple);
            continue;
        }
        let hi = hex4(&raw[i..]).ok_or("invalid \\u escape")?;
        i += 4;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if raw.get(i) != Some(&b'\\') || raw.get(i + 1) != Some(&b'u') {
                return Err("lone surrogate in \\u escape");
            }
            let lo = hex4(&raw[i + 2..]).ok_or("invalid \\u escape")?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err("lone surrogate in \\u escape");
            }
            i += 6;
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        let ch = char::from_u32(code).ok_or("lone surrogate in \\u escape")?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8(out).map_err(|_| "string is not UTF-8")
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    pub(crate) fn syntax(&self, detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotJson { offset: self.i }, detail)
    }

    #[inline]
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(crate) fn eat(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.syntax(format!("expected `{}`", c as char)))
        }
    }

    /// Scans a string starting at its opening quote. Returns the content's
    /// range and whether it holds escapes.
    pub(crate) fn raw_string(&mut self) -> Result<(usize, usize, bool)> {
        let scan = self.scan_string()?;
        Ok((scan.start, scan.end, scan.escaped))
    }

    /// Scans a string from its opening quote to its closing one.
    ///
    /// Raw control characters inside strings are tolerated (JSON forbids
    /// them, Python's `json.loads(strict=False)` and others accept them;
    /// nothing is lost by reading them), so the scan only looks for `"` and
    /// `\`, with memchr's SIMD search.
    #[inline]
    pub(crate) fn scan_string(&mut self) -> Result<StringScan> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        let mut i = start;
        loop {
            let Some(k) = find_quote_or_backslash(&self.b[i..]) else {
                self.i = start - 1;
                return Err(self.syntax("unterminated string"));
            };
            let at = i + k;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Ok(StringScan { start, end: at, escaped });
            }
            escaped = true;
            i = at + 2;
            if i > self.b.len() {
                self.i = start - 1;
                return Err(self.syntax("unterminated string"));
            }
        }
    }

    /// A string starting at its opening quote, borrowed unless escaped.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.i + 1;
        if let Some(rest) = self.b.get(start..)
            && let Some(len) = plain_ascii_len(rest)
        {
            self.i = start + len + 1;
            let raw = &rest[..len];
            // SAFETY: `plain_ascii_len` checked every byte is below 0x80,
            // and ASCII is valid UTF-8.
            #[allow(unsafe_code)]
            return Ok(Cow::Borrowed(unsafe { core::str::from_utf8_unchecked(raw) }));
        }
        self.string_general()
    }

    /// [`Reader::string`] for escapes, non-ASCII text and errors.
    #[inline(never)]
    fn string_general(&mut self) -> Result<Cow<'a, str>> {
        let at = self.i;
        let scan = self.scan_string()?;
        let raw = &self.b[scan.start..scan.end];
        let fail = |detail: &str| Error::new(ErrorKind::NotJson { offset: at }, detail);
        if !scan.escaped {
            if raw.is_ascii() {
                // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
                #[allow(unsafe_code)]
                return Ok(Cow::Borrowed(unsafe { core::str::from_utf8_unchecked(raw) }));
            }
            return core::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| fail("string is not UTF-8"));
        }
        unescape(raw).map(Cow::Owned).map_err(fail)
    }

    /// Delimits any JSON value, returning its bytes (validated later by
    /// `serde_json` or by the caller).
    pub(crate) fn skip_value(&mut self) -> Result<&'a [u8]> {
        let start = self.i;
        match self.peek() {
            Some(b'"') => {
                self.raw_string()?;
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.raw_string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(self.syntax("unterminated object or array")),
                    }
                    self.i += 1;
                }
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.syntax("expected a value"));
                }
            }
            None => return Err(self.syntax("expected a value")),
        }
        Ok(&self.b[start..self.i])
    }

    /// Delimits a JSON value and validates it as `serde_json` would parse
    /// it into a `Value` (the same errors), without building it: its text.
    pub(crate) fn json_text(&mut self) -> Result<&'a str> {
        let at = self.i;
        let raw = self.skip_value()?;
        let fail = |detail: String| Error::new(ErrorKind::NotJson { offset: at }, detail);
        serde_json::from_slice::<Valid>(raw).map_err(|e| fail(e.to_string()))?;
        // Valid JSON text is UTF-8 (serde_json checked every string).
        core::str::from_utf8(raw).map_err(|_| fail("string is not UTF-8".into()))
    }

    pub(crate) fn literal(&mut self, lit: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    /// Sequence helper: after a member, `,` continues and `close` ends.
    pub(crate) fn next_member(&mut self, close: u8) -> Result<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.syntax(format!("expected `,` or `{}`", close as char))),
        }
    }

    /// The `:` after a key and the whitespace around it (none, or one
    /// space after, are what peers write: checked first).
    #[inline(always)]
    pub(crate) fn colon(&mut self) -> Result<()> {
        if self.peek() == Some(b':') {
            self.i += 1;
        } else {
            self.ws();
            self.eat(b':')?;
        }
        if self.peek() == Some(b' ') {
            self.i += 1;
        }
        self.ws();
        Ok(())
    }

    /// A member's key, as bytes: known keys are matched without UTF-8
    /// validation; an unknown one becomes a `String` only when kept.
    pub(crate) fn key(&mut self) -> Result<Cow<'a, [u8]>> {
        let at = self.i;
        let scan = self.scan_string()?;
        let raw = &self.b[scan.start..scan.end];
        let key = if scan.escaped {
            self.i = at;
            match self.string()? {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        } else {
            Cow::Borrowed(raw)
        };
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(key)
    }

    /// A key kept as a string (borrowed when it held no escape).
    pub(crate) fn str_key(&self, key: Cow<'a, [u8]>) -> Result<Cow<'a, str>> {
        match key {
            Cow::Borrowed(b) => core::str::from_utf8(b).map(Cow::Borrowed),
            Cow::Owned(b) => String::from_utf8(b).map(Cow::Owned).map_err(|e| e.utf8_error()),
        }
        .map_err(|_| self.syntax("key is not UTF-8"))
    }
}

/// Any JSON value, checked by `serde_json` exactly as it reads one into a
/// `serde_json::Value` (syntax, UTF-8, escapes, number range, nesting
/// depth), with nothing built: only strings with escapes touch
/// `serde_json`'s scratch buffer.
struct Valid;

impl<'de> serde::Deserialize<'de> for Valid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Valid, D::Error> {
        d.deserialize_any(Valid)
    }
}

impl<'de> serde::de::Visitor<'de> for Valid {
    type Value = Valid;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_i64<E>(self, _: i64) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_u64<E>(self, _: u64) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_f64<E>(self, _: f64) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_str<E>(self, _: &str) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_unit<E>(self) -> core::result::Result<Valid, E> {
        Ok(Valid)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> core::result::Result<Valid, A::Error> {
        while seq.next_element::<Valid>()?.is_some() {}
        Ok(Valid)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> core::result::Result<Valid, A::Error> {
        while map.next_key::<Valid>()?.is_some() {
            map.next_value::<Valid>()?;
        }
        Ok(Valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_handles_every_escape() {
        assert_eq!(unescape(br#"a\"b\\c\/d\b\f\n\r\t"#).unwrap(), "a\"b\\c/d\u{8}\u{c}\n\r\t");
        assert_eq!(unescape(br"\u00e9\ud83d\ude00").unwrap(), "é😀");
        assert!(unescape(br"\ud83d").is_err());
        assert!(unescape(br"\x").is_err());
        assert!(unescape(br"\u12").is_err());
    }

    #[test]
    fn quote_search_agrees_with_a_byte_loop() {
        // Past 64 bytes the search hands over to memchr: cover both sides.
        for len in 0..140 {
            for at in 0..len {
                for special in [b'"', b'\\'] {
                    let mut b = vec![b'a'; len];
                    b[at] = special;
                    if at + 1 < len {
                        b[at + 1] = b'"';
                    }
                    assert_eq!(find_quote_or_backslash(&b), Some(at), "len {len} at {at}");
                }
            }
            assert_eq!(find_quote_or_backslash(&vec![0xffu8; len]), None);
        }
    }

    #[test]
    fn plain_ascii_scan_agrees_with_a_byte_loop() {
        // Both the 16-byte and the 8-byte steps and the tail, every stop.
        let reference =
            |b: &[u8]| match b.iter().position(|&c| c == b'"' || c == b'\\' || c >= 0x80) {
                Some(at) if b[at] == b'"' => Some(at),
                _ => None,
            };
        for len in 0..70 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x80, 0xff, 0xc3] {
                    let mut b = vec![b'a'; len];
                    b[at] = special;
                    assert_eq!(
                        plain_ascii_len(&b),
                        reference(&b),
                        "len {len} at {at} {special:#x}"
                    );
                }
            }
            assert_eq!(plain_ascii_len(&vec![b'a'; len]), None, "unterminated, len {len}");
        }
    }

    #[test]
    fn short_equality_agrees_with_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..40 {
            let a = &base[..n];
            assert!(eq_short(a, a), "len {n}");
            for flip in 0..n {
                let mut b = a.to_vec();
                b[flip] ^= 0x20;
                assert!(!eq_short(a, &b), "len {n} differing at {flip}");
            }
            if n > 0 {
                assert!(!eq_short(a, &base[..n - 1]), "lengths {n} and {}", n - 1);
            }
        }
    }
}
