//! JSON to envelope, at memory speed: the envelope's schema mapped onto
//! the lexer of [`crate::lex`].
//!
//! The reader walks the envelope's structure key by key. Strings without
//! escapes are borrowed from the input; the `data` string of a direct
//! payload is base64-decoded straight from the input into the payload's
//! buffer, which is the only copy made of a payload. Values the spec leaves
//! free (`metadata`, unknown keys) are delimited by the lexer and handed to
//! `serde_json`. Every field is validated here, with errors naming it.

use crate::envelope::Envelope;
use crate::lex::{Reader, describe, eq_short};
use crate::prelude::*;
use crate::view::{BodyView, EnvelopeView, PayloadView, RawMember};
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
}

impl<'a> RawRecord<'a> {
    /// Validates the record. A direct payload's base64 is decoded when
    /// `decode` (the owned path) and only checked otherwise (the view).
    #[inline(always)]
    pub(crate) fn finish(
        self,
        index: usize,
        decode: bool,
        extra: Vec<RawMember<'a>>,
    ) -> Result<PayloadView<'a>> {
        let required = |v: Option<Cow<'a, str>>, name: &'static str| match v {
            Some(s) => Ok(s),
            None => Err(Field::record(index, name).malformed("missing (a required field)")),
        };
        let dataname = required(self.dataname, "dataname")?;
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
                let base64 = match data {
                    DataText::Raw(b) => Cow::Borrowed(b),
                    DataText::Text(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
                    DataText::Text(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
                };
                let (len, decoded) = if decode {
                    let bytes = decode_base64(&base64, index)?;
                    (bytes.len(), Some(bytes))
                } else {
                    (checked_base64_len(&base64, index)?, None)
                };
                if let Some(declared) = size
                    && declared != len as u64
                {
                    return Err(Error::new(
                        ErrorKind::SizeMismatch {
                            field: Field::record(index, "size").path(),
                            declared,
                            actual: len as u64,
                        },
                        "",
                    ));
                }
                BodyView::Direct { base64, len, decoded }
            }
            "link" => {
                if !matches!(encoding, "" | "none") {
                    return Err(Field::record(index, "encoding")
                        .malformed(format!("a link payload must be `none`, found {encoding:?}")));
                }
                let url = match data {
                    DataText::Text(s) => s,
                    DataText::Raw(b) => match core::str::from_utf8(b) {
                        Ok(s) => Cow::Borrowed(s),
                        Err(_) => {
                            return Err(Field::record(index, "data").malformed("URL is not UTF-8"));
                        }
                    },
                };
                if url.is_empty() {
                    return Err(Field::record(index, "data").malformed("empty link URL"));
                }
                BodyView::Link { url, size, fetched: None }
            }
            other => {
                return Err(Field::record(index, "transport")
                    .malformed(format!("expected `direct` or `link`, found {other:?}")));
            }
        };
        Ok(PayloadView { index, id: self.id.unwrap_or_default(), dataname, type_name, body, extra })
    }
}

/// The decoded length of base64 text, checked as [`decode_base64`] would
/// decode it (the same error when it would fail) without decoding it.
pub(crate) fn checked_base64_len(src: &[u8], index: usize) -> Result<usize> {
    if base64_simd::STANDARD.check(src).is_ok()
        && let Ok(len) = base64_simd::STANDARD.decoded_length(src)
    {
        return Ok(len);
    }
    // Line breaks or missing padding: rare enough to decode to count.
    decode_base64(src, index).map(|b| b.len())
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

/// The top-level keys in the order the spec (and every peer) writes them:
/// the header strings, then `metadata` and `payloads`.
pub const TOP_KEYS: [&str; 14] = [
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

/// [`TOP_KEYS`] as written, quotes included, for one comparison each.
pub(crate) const QUOTED_TOP_KEYS: [&str; 14] = [
    "\"correlation_id\"",
    "\"msg_id\"",
    "\"timestamp\"",
    "\"send_to\"",
    "\"msg_purpose\"",
    "\"sender_name\"",
    "\"sender_id\"",
    "\"receiver_name\"",
    "\"receiver_id\"",
    "\"reply_to\"",
    "\"reply_to_msg_id\"",
    "\"broker_url\"",
    "\"metadata\"",
    "\"payloads\"",
];

/// [`RECORD_KEYS`] as written, quotes included.
pub(crate) const QUOTED_RECORD_KEYS: [&str; 7] = [
    "\"id\"",
    "\"dataname\"",
    "\"payload_type\"",
    "\"transport\"",
    "\"encoding\"",
    "\"size\"",
    "\"data\"",
];

/// How many of [`TOP_KEYS`] are header strings.
pub(crate) const HEADER_STRINGS: usize = 12;

/// The payload record's keys in the spec's order.
pub const RECORD_KEYS: [&str; 7] =
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

impl Envelope {
    /// Parses an envelope from its wire JSON and decodes every direct
    /// payload (checking its length against `size`).
    ///
    /// Lenient where the spec says so: unknown keys are kept, missing
    /// optional strings read as empty (as does `null`), a missing
    /// `metadata` reads as `{}`, `table` is accepted for `arrowtable`, and
    /// base64 may carry line breaks. Link payloads are left as links for a
    /// download handler. The error names the field and what was wrong.
    ///
    /// This is [`EnvelopeView::parse`] with the payloads decoded as they
    /// are read, turned into owned values: one parser, one set of errors.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope> {
        Reader::new(bytes).envelope(true)?.into_envelope()
    }
}

impl<'a> Reader<'a> {
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

    /// An object's JSON text, validated; `None` for `{}` and `null`.
    fn object_field(&mut self, field: Field) -> Result<Option<&'a str>> {
        match self.peek() {
            // `{}` (what every peer sends when there is no metadata) needs
            // no trip through serde_json.
            Some(b'{') if self.b.get(self.i + 1) == Some(&b'}') => {
                self.i += 2;
                Ok(None)
            }
            Some(b'{') => self.json_text().map(Some),
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(None)
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

    /// Whether the next member's key is `expected` (the key the spec's
    /// order puts next, written with its quotes: what every peer writes),
    /// consuming it and the `:` when it is. One comparison of at most three
    /// words; anything else is left to [`Reader::member_key`].
    #[inline(always)]
    fn expected_key(&mut self, quoted: &[u8]) -> Result<bool> {
        let n = quoted.len();
        match self.b.get(self.i..self.i + n) {
            Some(key) if eq_short(key, quoted) => {
                self.i += n;
                self.colon()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A member's key in any order: its index in `keys` when it is one of
    /// them, else the key itself.
    #[inline(never)]
    fn member_key(
        &mut self,
        keys: &[&'static str],
    ) -> Result<core::result::Result<usize, Cow<'a, [u8]>>> {
        let key = self.key()?;
        Ok(keys.iter().position(|k| eq_short(k.as_bytes(), &key)).ok_or(key))
    }

    /// The next member's key: `expected` when it is next, else any.
    #[inline(always)]
    fn known_key(
        &mut self,
        keys: &[&'static str],
        quoted: &[&'static str],
        expected: usize,
    ) -> Result<core::result::Result<usize, Cow<'a, [u8]>>> {
        if let Some(want) = quoted.get(expected)
            && self.expected_key(want.as_bytes())?
        {
            return Ok(Ok(expected));
        }
        self.member_key(keys)
    }

    fn record(&mut self, index: usize, decode: bool) -> Result<PayloadView<'a>> {
        if self.peek() != Some(b'{') {
            return Err(Field::record(index, "")
                .malformed(format!("expected an object, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut raw = RawRecord::default();
        let mut extra = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            let mut expected = 0;
            loop {
                let key = self.known_key(&RECORD_KEYS, &QUOTED_RECORD_KEYS, expected)?;
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
                        let key = self.str_key(key)?;
                        extra.push((key, self.json_text()?));
                    }
                }
                if !self.next_member(b'}')? {
                    break;
                }
            }
        }
        raw.finish(index, decode, extra)
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

    fn payloads(&mut self, decode: bool) -> Result<crate::view::Records<'a>> {
        if self.peek() != Some(b'[') {
            return Err(Field::top("payloads")
                .malformed(format!("expected an array, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut out = crate::view::Records::Many(Vec::new());
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(out);
        }
        loop {
            out.push(self.record(out.len(), decode)?);
            if !self.next_member(b']')? {
                return Ok(out);
            }
        }
    }

    /// Reads the whole input as one envelope. `decode`: decode direct
    /// payloads (the owned path) rather than only check them.
    pub(crate) fn envelope(self, decode: bool) -> Result<EnvelopeView<'a>> {
        self.envelope_inline(decode)
    }

    /// [`Reader::envelope`] without decoding: the view's parse, with the
    /// fast path compiled for it (`decode` a constant; about 50
    /// instructions fewer for a 128-byte envelope, by callgrind).
    pub(crate) fn view(self) -> Result<EnvelopeView<'a>> {
        self.envelope_inline(false)
    }

    #[inline(always)]
    fn envelope_inline(self, decode: bool) -> Result<EnvelopeView<'a>> {
        let mut view = EnvelopeView::EMPTY;
        if crate::fast::fill(&mut view, self.b, decode).is_some() {
            return Ok(view);
        }
        drop(view);
        self.envelope_general(decode)
    }

    /// [`Reader::view`] written into `view`, which must be
    /// [`EnvelopeView::EMPTY`]: the view is built where it is kept rather
    /// than on the stack and moved there (an
    /// [`EnvelopeBuf`](crate::EnvelopeBuf)'s, in its allocation). On an
    /// error `view` holds what was read before it, to be dropped.
    ///
    /// `Ok(true)` when the view owns no heap memory: the fast path read it
    /// (every string and the base64 borrowed from the input, nothing
    /// decoded, no unknown member kept) with at most one payload record
    /// (held inline). Dropping such a view frees nothing.
    pub(crate) fn view_into(self, view: &mut EnvelopeView<'a>) -> Result<bool> {
        if crate::fast::fill(view, self.b, false).is_some() {
            return Ok(view.payloads.len() <= 1);
        }
        *view = self.envelope_general(false)?;
        Ok(false)
    }

    /// [`Reader::envelope`] without the fast path: any shape, every error.
    #[inline(never)]
    pub(crate) fn envelope_general(mut self, decode: bool) -> Result<EnvelopeView<'a>> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(self.syntax(format!("expected an object, found {}", describe(self.peek()))));
        }
        self.i += 1;
        self.ws();
        let mut header: [Cow<'a, str>; HEADER_STRINGS] = Default::default();
        let mut metadata = None;
        let mut extra = Vec::new();
        let mut payloads = None;
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            let mut expected = 0;
            loop {
                let key = self.known_key(&TOP_KEYS, &QUOTED_TOP_KEYS, expected)?;
                match key {
                    Ok(k) if k < HEADER_STRINGS => {
                        expected = k + 1;
                        header[k] = self.str_field(Field::top(TOP_KEYS[k]))?;
                    }
                    Ok(HEADER_STRINGS) => {
                        expected = HEADER_STRINGS + 1;
                        metadata = self.object_field(Field::top("metadata"))?;
                    }
                    Ok(_) => {
                        expected = TOP_KEYS.len();
                        payloads = Some(self.payloads(decode)?);
                    }
                    Err(key) => {
                        let key = self.str_key(key)?;
                        extra.push((key, self.json_text()?));
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
        let payloads = payloads
            .ok_or_else(|| Field::top("payloads").malformed("missing (a required field)"))?;
        Ok(EnvelopeView { header, metadata, payloads, extra })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
