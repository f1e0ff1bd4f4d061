//! JSON to envelope, at memory speed.
//!
//! A small hand-written reader walks the envelope's structure. Strings
//! without escapes are borrowed from the input; the `data` string of a
//! direct payload is found with a SIMD search for its closing quote and
//! base64-decoded straight from the input into the payload's buffer, which
//! is the only copy made of a payload. Values the spec leaves free
//! (`metadata`, unknown keys) are delimited here and handed to `serde_json`.

use crate::envelope::{Body, Envelope, PayloadRecord};
use crate::payload::PayloadType;
use crate::prelude::*;
use crate::{Error, ErrorKind, Result};

/// Where a field sits, formatted only when an error needs it.
#[derive(Clone, Copy)]
pub(crate) struct Field {
    pub(crate) index: Option<usize>,
    pub(crate) name: &'static str,
}

impl Field {
    pub(crate) const fn top(name: &'static str) -> Field {
        Field { index: None, name }
    }
    pub(crate) const fn record(index: usize, name: &'static str) -> Field {
        Field { index: Some(index), name }
    }
    pub(crate) fn path(self) -> String {
        match self.index {
            None => self.name.into(),
            Some(i) if self.name.is_empty() => format!("payloads[{i}]"),
            Some(i) => format!("payloads[{i}].{}", self.name),
        }
    }
    pub(crate) fn malformed(self, detail: impl Into<String>) -> Error {
        Error::malformed(self.path(), detail)
    }
}

/// The text of a record's `data` string.
pub(crate) enum DataText<'a> {
    /// The bytes between the quotes, which hold no escape (not yet checked
    /// for UTF-8: base64 decoding rejects anything outside its alphabet).
    Raw(&'a [u8]),
    /// An unescaped string.
    Text(Cow<'a, str>),
}

impl DataText<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            DataText::Raw(b) => b,
            DataText::Text(s) => s.as_bytes(),
        }
    }
}

/// A `size` as found on the wire.
pub(crate) enum SizeValue {
    Null,
    Int(u64),
    Bad(&'static str),
}

/// A payload record's fields before validation; both the fast reader and
/// the `serde` path fill one, so both validate alike.
#[derive(Default)]
pub(crate) struct RawRecord<'a> {
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) dataname: Option<Cow<'a, str>>,
    pub(crate) payload_type: Option<Cow<'a, str>>,
    pub(crate) transport: Option<Cow<'a, str>>,
    pub(crate) encoding: Option<Cow<'a, str>>,
    pub(crate) size: Option<SizeValue>,
    pub(crate) data: Option<DataText<'a>>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl<'a> RawRecord<'a> {
    pub(crate) fn finish(self, index: usize) -> Result<PayloadRecord> {
        let required = |v: Option<Cow<'a, str>>, name: &'static str| match v {
            Some(s) => Ok(s),
            None => Err(Field::record(index, name).malformed("missing (a required field)")),
        };
        let dataname = required(self.dataname, "dataname")?.into_owned();
        let type_name = required(self.payload_type, "payload_type")?;
        let transport = required(self.transport, "transport")?;
        let Some(data) = self.data else {
            return Err(Field::record(index, "data").malformed("missing (a required field)"));
        };
        // A type this peer does not know is kept by name (forward
        // compatibility); only an empty name says nothing at all.
        if type_name.is_empty() {
            return Err(Field::record(index, "payload_type").malformed("empty payload type"));
        }
        let payload_type = PayloadType::from_wire(&type_name);
        let size = match self.size {
            None | Some(SizeValue::Null) => None,
            Some(SizeValue::Int(n)) => Some(n),
            Some(SizeValue::Bad(detail)) => {
                return Err(Field::record(index, "size").malformed(detail));
            }
        };
        let encoding = self.encoding.as_deref().unwrap_or("");
        let body = match &*transport {
            "direct" => {
                if !matches!(encoding, "" | "base64") {
                    return Err(Field::record(index, "encoding").malformed(format!(
                        "a direct payload must be `base64`, found {encoding:?}"
                    )));
                }
                let bytes = decode_base64(data.as_bytes(), index)?;
                if let Some(declared) = size
                    && declared != bytes.len() as u64
                {
                    return Err(Error::new(
                        ErrorKind::SizeMismatch {
                            field: Field::record(index, "size").path(),
                            declared,
                            actual: bytes.len() as u64,
                        },
                        "",
                    ));
                }
                Body::Direct(bytes)
            }
            "link" => {
                if !matches!(encoding, "" | "none") {
                    return Err(Field::record(index, "encoding")
                        .malformed(format!("a link payload must be `none`, found {encoding:?}")));
                }
                let url = match data {
                    DataText::Text(s) => s.into_owned(),
                    DataText::Raw(b) => match core::str::from_utf8(b) {
                        Ok(s) => s.into(),
                        Err(_) => {
                            return Err(Field::record(index, "data").malformed("URL is not UTF-8"));
                        }
                    },
                };
                if url.is_empty() {
                    return Err(Field::record(index, "data").malformed("empty link URL"));
                }
                Body::Link { url, size }
            }
            other => {
                return Err(Field::record(index, "transport")
                    .malformed(format!("expected `direct` or `link`, found {other:?}")));
            }
        };
        Ok(PayloadRecord {
            id: self.id.map(Cow::into_owned).unwrap_or_default(),
            dataname,
            payload_type,
            body,
            extra: self.extra,
        })
    }
}

/// Decodes standard base64; line breaks and other ASCII whitespace (added by
/// MIME-style encoders and MicroPython's `binascii`) are accepted.
pub(crate) fn decode_base64(src: &[u8], index: usize) -> Result<Bytes> {
    if let Ok(v) = base64_simd::STANDARD.decode_to_vec(src) {
        return Ok(Bytes::from(v));
    }
    match base64_simd::forgiving_decode_to_vec(src) {
        Ok(v) => Ok(Bytes::from(v)),
        Err(_) => {
            let detail = match src.iter().position(|&c| {
                !(c.is_ascii_alphanumeric()
                    || matches!(c, b'+' | b'/' | b'=')
                    || c.is_ascii_whitespace())
            }) {
                Some(at) => {
                    format!("byte {at} ({:?}) is not in the base64 alphabet", src[at] as char)
                }
                None => format!("bad length or padding ({} characters)", src.len()),
            };
            Err(Error::new(
                ErrorKind::Base64 { field: Field::record(index, "data").path() },
                detail,
            ))
        }
    }
}

/// The first `"` or `\\` in `b`. Header strings are short (ids are 36
/// bytes), so the first 64 bytes are checked eight at a time inline; longer
/// strings (payload data) go to memchr's SIMD search, whose set-up only pays
/// off there.
#[inline]
fn find_quote_or_backslash(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
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
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        return read_u64(a) == read_u64(b) && read_u64(&a[n - 8..]) == read_u64(&b[n - 8..]);
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

/// What [`Reader::scan_string`] found.
struct StringScan {
    start: usize,
    end: usize,
    escaped: bool,
}

pub(crate) struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

fn describe(first: Option<u8>) -> &'static str {
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

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    fn syntax(&self, detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotJson { offset: self.i }, detail)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.syntax(format!("expected `{}`", c as char)))
        }
    }

    /// Scans a string starting at its opening quote. Returns the content's
    /// range and whether it holds escapes.
    fn raw_string(&mut self) -> Result<(usize, usize, bool)> {
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
    fn scan_string(&mut self) -> Result<StringScan> {
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

    #[inline]
    fn string(&mut self) -> Result<Cow<'a, str>> {
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
    fn skip_value(&mut self) -> Result<&'a [u8]> {
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

    fn json_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let at = self.i;
        let raw = self.skip_value()?;
        serde_json::from_slice(raw)
            .map_err(|e| Error::new(ErrorKind::NotJson { offset: at }, e.to_string()))
    }

    /// A string field; `null` reads as empty.
    #[inline]
    fn str_field(&mut self, field: Field) -> Result<Cow<'a, str>> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(Cow::Borrowed(""))
            }
            other => Err(field.malformed(format!("expected a string, found {}", describe(other)))),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    fn object_field(&mut self, field: Field) -> Result<serde_json::Map<String, serde_json::Value>> {
        match self.peek() {
            // `{}` (what every peer sends when there is no metadata) needs
            // no trip through serde_json.
            Some(b'{') if self.b.get(self.i + 1) == Some(&b'}') => {
                self.i += 2;
                Ok(serde_json::Map::new())
            }
            Some(b'{') => self.json_value(),
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(serde_json::Map::new())
            }
            other => Err(field.malformed(format!("expected an object, found {}", describe(other)))),
        }
    }

    fn size_field(&mut self) -> Result<SizeValue> {
        let wrong_type = match self.peek() {
            Some(b'"') => Some("expected a non-negative integer, found a string"),
            Some(b'{') => Some("expected a non-negative integer, found an object"),
            Some(b'[') => Some("expected a non-negative integer, found an array"),
            Some(b't' | b'f') => Some("expected a non-negative integer, found a boolean"),
            _ => None,
        };
        if let Some(detail) = wrong_type {
            // Still delimited (and for literals, checked) so the rest parses.
            let at = self.i;
            let raw = self.skip_value()?;
            if matches!(raw, b"true" | b"false") || !matches!(raw[0], b't' | b'f') {
                return Ok(SizeValue::Bad(detail));
            }
            return Err(Error::new(ErrorKind::NotJson { offset: at }, "invalid literal"));
        }
        let at = self.i;
        let raw = self.skip_value()?;
        if raw == b"null" {
            return Ok(SizeValue::Null);
        }
        let text = core::str::from_utf8(raw)
            .map_err(|_| Error::new(ErrorKind::NotJson { offset: at }, "invalid number"))?;
        size_from_number_text(text)
            .ok_or_else(|| Error::new(ErrorKind::NotJson { offset: at }, "invalid number"))
    }

    /// Sequence helper: after a member, `,` continues and `close` ends.
    fn next_member(&mut self, close: u8) -> Result<bool> {
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

    /// A member's key, as its index in `keys` when it is one of them. The key
    /// the spec's order puts next (`keys[expected]`) is checked first with
    /// one comparison, which is what every peer writes; any order is read.
    #[inline]
    fn known_key(
        &mut self,
        keys: &[&'static str],
        expected: usize,
    ) -> Result<core::result::Result<usize, Cow<'a, [u8]>>> {
        if let Some(want) = keys.get(expected) {
            let rest = &self.b[self.i..];
            let n = want.len();
            if rest.len() > n + 1
                && rest[0] == b'"'
                && rest[n + 1] == b'"'
                && eq_short(&rest[1..n + 1], want.as_bytes())
            {
                self.i += n + 2;
                self.ws();
                self.eat(b':')?;
                self.ws();
                return Ok(Ok(expected));
            }
        }
        let key = self.key()?;
        Ok(keys.iter().position(|k| eq_short(k.as_bytes(), &key)).ok_or(key))
    }

    /// A member's key, as bytes: known keys are matched without UTF-8
    /// validation; an unknown one becomes a `String` only when kept.
    fn key(&mut self) -> Result<Cow<'a, [u8]>> {
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

    fn owned_key(&self, key: Cow<'a, [u8]>) -> Result<String> {
        String::from_utf8(key.into_owned()).map_err(|_| self.syntax("key is not UTF-8"))
    }

    fn record(&mut self, index: usize) -> Result<PayloadRecord> {
        if self.peek() != Some(b'{') {
            return Err(Field::record(index, "")
                .malformed(format!("expected an object, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut raw = RawRecord::default();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            let mut expected = 0;
            loop {
                let key = self.known_key(&RECORD_KEYS, expected)?;
                if let Ok(k) = key {
                    expected = k + 1;
                }
                let f = |k: usize| Field::record(index, RECORD_KEYS[k]);
                match key {
                    Ok(k @ 0) => raw.id = Some(self.str_field(f(k))?),
                    Ok(k @ 1) => raw.dataname = Some(self.str_field(f(k))?),
                    Ok(k @ 2) => raw.payload_type = Some(self.str_field(f(k))?),
                    Ok(k @ 3) => raw.transport = Some(self.str_field(f(k))?),
                    Ok(k @ 4) => raw.encoding = Some(self.str_field(f(k))?),
                    Ok(5) => raw.size = Some(self.size_field()?),
                    Ok(_) => raw.data = Some(self.data_field(index)?),
                    Err(key) => {
                        let key = self.owned_key(key)?;
                        let value = self.json_value()?;
                        raw.extra.insert(key, value);
                    }
                }
                if !self.next_member(b'}')? {
                    break;
                }
            }
        }
        raw.finish(index)
    }

    fn data_field(&mut self, index: usize) -> Result<DataText<'a>> {
        match self.peek() {
            Some(b'"') => {
                let at = self.i;
                let (start, end, escaped) = self.raw_string()?;
                if !escaped {
                    return Ok(DataText::Raw(&self.b[start..end]));
                }
                self.i = at;
                Ok(DataText::Text(self.string()?))
            }
            other => Err(Field::record(index, "data")
                .malformed(format!("expected a string, found {}", describe(other)))),
        }
    }

    fn payloads(&mut self) -> Result<Vec<PayloadRecord>> {
        if self.peek() != Some(b'[') {
            return Err(Field::top("payloads")
                .malformed(format!("expected an array, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut out = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(out);
        }
        loop {
            out.push(self.record(out.len())?);
            if !self.next_member(b']')? {
                return Ok(out);
            }
        }
    }

    pub(crate) fn envelope(mut self) -> Result<Envelope> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(self.syntax(format!("expected an object, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut env = Envelope::default();
        let mut payloads = None;
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            let mut expected = 0;
            loop {
                let key = self.known_key(&TOP_KEYS, expected)?;
                match key {
                    Ok(k) if k < HEADER_STRINGS => {
                        expected = k + 1;
                        *header_field(&mut env, k) =
                            self.str_field(Field::top(TOP_KEYS[k]))?.into_owned();
                    }
                    Ok(HEADER_STRINGS) => {
                        expected = HEADER_STRINGS + 1;
                        env.metadata = self.object_field(Field::top("metadata"))?;
                    }
                    Ok(_) => {
                        expected = TOP_KEYS.len();
                        payloads = Some(self.payloads()?);
                    }
                    Err(key) => {
                        let key = self.owned_key(key)?;
                        let value = self.json_value()?;
                        env.extra.insert(key, value);
                    }
                }
                if !self.next_member(b'}')? {
                    break;
                }
            }
        }
        self.ws();
        if self.i != self.b.len() {
            return Err(self.syntax("trailing characters after the envelope"));
        }
        env.payloads = payloads
            .ok_or_else(|| Field::top("payloads").malformed("missing (a required field)"))?;
        Ok(env)
    }
}

/// The top-level keys in the order the spec (and every peer) writes them:
/// the header strings, then `metadata` and `payloads`.
pub(crate) const TOP_KEYS: [&str; 14] = [
    "correlation_id",
    "msg_id",
    "timestamp",
    "send_to",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "broker_url",
    "metadata",
    "payloads",
];

/// How many of [`TOP_KEYS`] are header strings.
pub(crate) const HEADER_STRINGS: usize = 12;

/// The payload record's keys in the spec's order.
const RECORD_KEYS: [&str; 7] =
    ["id", "dataname", "payload_type", "transport", "encoding", "size", "data"];

/// The header string field `TOP_KEYS[k]`, for `k < HEADER_STRINGS`.
pub(crate) fn header_field(env: &mut Envelope, k: usize) -> &mut String {
    match k {
        0 => &mut env.correlation_id,
        1 => &mut env.msg_id,
        2 => &mut env.timestamp,
        3 => &mut env.send_to,
        4 => &mut env.msg_purpose,
        5 => &mut env.sender_name,
        6 => &mut env.sender_id,
        7 => &mut env.receiver_name,
        8 => &mut env.receiver_id,
        9 => &mut env.reply_to,
        10 => &mut env.reply_to_msg_id,
        _ => &mut env.broker_url,
    }
}

/// Reads a JSON number as a byte count: an integer, or a float with no
/// fractional part (some encoders write `15433.0`).
pub(crate) fn size_from_number_text(text: &str) -> Option<SizeValue> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(SizeValue::Int(n));
    }
    let x: f64 = text.parse().ok()?;
    if (0.0..9.007_199_254_740_992e15).contains(&x) && (x as u64) as f64 == x {
        Some(SizeValue::Int(x as u64))
    } else {
        Some(SizeValue::Bad("expected a non-negative integer, found a fraction or negative number"))
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
fn unescape(raw: &[u8]) -> Result<String, &'static str> {
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

impl Envelope {
    /// Parses an envelope from its wire JSON and decodes every direct
    /// payload (checking its length against `size`).
    ///
    /// Lenient where the spec says so: unknown keys are kept, missing
    /// optional strings read as empty (as does `null`), a missing
    /// `metadata` reads as `{}`, `table` is accepted for `arrowtable`, and
    /// base64 may carry line breaks. Link payloads are left as links for a
    /// download handler. The error names the field and what was wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope> {
        Reader::new(bytes).envelope()
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

    #[test]
    fn sizes_accept_integral_floats_only() {
        assert!(matches!(size_from_number_text("15433"), Some(SizeValue::Int(15433))));
        assert!(matches!(size_from_number_text("15433.0"), Some(SizeValue::Int(15433))));
        assert!(matches!(size_from_number_text("1.5e3"), Some(SizeValue::Int(1500))));
        assert!(matches!(size_from_number_text("-1"), Some(SizeValue::Bad(_))));
        assert!(matches!(size_from_number_text("2.5"), Some(SizeValue::Bad(_))));
        assert!(size_from_number_text("12abc").is_none());
    }
}
