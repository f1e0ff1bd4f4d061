//! Envelope to JSON, in one pass, straight into the output buffer.
//!
//! The writer is generic over a [`Sink`] so that the same code both measures
//! the envelope (to reserve the buffer once, and for the transport plan) and
//! writes it. Base64 goes straight from the payload bytes into the output:
//! its alphabet needs no JSON escaping, so there is no intermediate string.

use crate::envelope::{Body, Envelope, PayloadRecord};
use crate::payload::PayloadType;
use crate::prelude::*;
use crate::{Error, ErrorKind, Result};

pub(crate) trait Sink {
    fn raw(&mut self, bytes: &[u8]);
    fn base64(&mut self, data: &[u8]);
    /// `bytes` between double quotes (they need no escaping).
    #[inline]
    fn quoted(&mut self, bytes: &[u8]) {
        self.raw(b"\"");
        self.raw(bytes);
        self.raw(b"\"");
    }
}

/// Counts the bytes that would be written.
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    #[inline]
    fn base64(&mut self, data: &[u8]) {
        self.0 += base64_len(data.len());
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn base64(&mut self, data: &[u8]) {
        base64_simd::STANDARD.encode_append(data, self);
    }
    #[inline]
    fn quoted(&mut self, bytes: &[u8]) {
        // One capacity check for the three pieces.
        self.reserve(bytes.len() + 2);
        self.push(b'"');
        self.extend_from_slice(bytes);
        self.push(b'"');
    }
}

/// Length of standard padded base64 for `n` bytes.
pub(crate) const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Whether `b` holds a byte JSON must escape (`"`, `\\`, a control
/// character), eight bytes at a time. The bytes past the last whole word
/// are read as one more word ending at the end of `b` (overlapping the one
/// before), and a string under eight bytes as two overlapping halves, so a
/// header string (an id, a name, a subject) costs a few words and no loop
/// over single bytes.
#[inline]
fn has_special(b: &[u8]) -> bool {
    // A high bit in each byte of `x` that is special (with possibly
    // spurious bits above a real one, which a yes-or-no answer ignores).
    let special = crate::scan::special_mask;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let n = b.len();
    if n >= 8 {
        let mut found = special(word(n - 8));
        let mut at = 0;
        while at + 8 < n {
            found |= special(word(at));
            at += 8;
        }
        found != 0
    } else if n >= 4 {
        special(half(0) | half(n - 4) << 32) != 0
    } else {
        b.iter().any(|&c| crate::scan::is_special(c))
    }
}

pub(crate) fn write_str<S: Sink>(out: &mut S, s: &str) {
    let b = s.as_bytes();
    // Most optional header fields are empty.
    if b.is_empty() {
        out.raw(b"\"\"");
    } else if !has_special(b) {
        out.quoted(b);
    } else {
        write_escaped(out, b);
    }
}

#[cold]
fn write_escaped<S: Sink>(out: &mut S, b: &[u8]) {
    out.raw(b"\"");
    let mut start = 0;
    while let Some(k) = crate::scan::first_special(&b[start..]) {
        let at = start + k;
        out.raw(&b[start..at]);
        let c = b[at];
        match c {
            b'"' => out.raw(b"\\\""),
            b'\\' => out.raw(b"\\\\"),
            b'\n' => out.raw(b"\\n"),
            b'\r' => out.raw(b"\\r"),
            b'\t' => out.raw(b"\\t"),
            0x08 => out.raw(b"\\b"),
            0x0c => out.raw(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.raw(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            }
        }
        start = at + 1;
    }
    out.raw(&b[start..]);
    out.raw(b"\"");
}

fn write_u64<S: Sink>(out: &mut S, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.raw(&buf[i..]);
}

pub(crate) fn write_map<S: Sink>(
    out: &mut S,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    if map.is_empty() {
        out.raw(b"{}");
        return Ok(());
    }
    let json = serde_json::to_vec(map).map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?;
    out.raw(&json);
    Ok(())
}

/// Writes the extension keys of a map after fields already written.
fn write_extra<S: Sink>(
    out: &mut S,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    for (key, value) in extra {
        out.raw(b",");
        write_str(out, key);
        out.raw(b":");
        let json =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?;
        out.raw(&json);
    }
    Ok(())
}

pub(crate) fn write_record<S: Sink>(out: &mut S, rec: &PayloadRecord) -> Result<()> {
    write_record_with(out, rec, &rec.body)
}

/// Writes `rec` as if its body were `body` (the plan measures a record as a
/// link before it is one).
pub(crate) fn write_record_with<S: Sink>(
    out: &mut S,
    rec: &PayloadRecord,
    body: &Body,
) -> Result<()> {
    out.raw(b"{\"id\":");
    write_str(out, &rec.id);
    out.raw(b",\"dataname\":");
    write_str(out, &rec.dataname);
    match body {
        Body::Direct(bytes) => write_direct_body(out, &rec.payload_type, bytes),
        Body::Link { url, .. } | Body::Fetched { url, .. } => {
            out.raw(b",\"payload_type\":");
            write_type(out, &rec.payload_type);
            out.raw(b",\"transport\":\"link\",\"encoding\":\"none\"");
            // A link whose size was never declared (the seeds do not define
            // `size`) goes on without one rather than with a made-up value.
            if let Some(n) = body.size() {
                out.raw(b",\"size\":");
                write_u64(out, n);
            }
            out.raw(b",\"data\":");
            write_str(out, url);
        }
    }
    write_extra(out, &rec.extra)?;
    out.raw(b"}");
    Ok(())
}

/// A payload type's name as a JSON string: a known name needs no escaping,
/// an [`PayloadType::Other`] name came from the wire and may.
fn write_type<S: Sink>(out: &mut S, payload_type: &PayloadType) {
    match payload_type {
        PayloadType::Other(name) => write_str(out, name),
        known => {
            out.raw(b"\"");
            out.raw(known.as_str().as_bytes());
            out.raw(b"\"");
        }
    }
}

/// A direct record's fields after its `dataname`: type, transport,
/// encoding, size and the base64 data.
pub(crate) fn write_direct_body<S: Sink>(out: &mut S, payload_type: &PayloadType, bytes: &[u8]) {
    out.raw(b",\"payload_type\":");
    write_type(out, payload_type);
    out.raw(b",\"transport\":\"direct\",\"encoding\":\"base64\",\"size\":");
    write_u64(out, bytes.len() as u64);
    out.raw(b",\"data\":\"");
    out.base64(bytes);
    out.raw(b"\"");
}

/// Each `key` (written as is: it carries its comma, colon and quotes)
/// followed by its `value` as a JSON string: the header's string fields,
/// for both writers (the owned envelope's, and the one-pass writers of
/// `template.rs`).
pub(crate) fn write_fields<S: Sink>(out: &mut S, fields: &[(&[u8], &str)]) {
    for (key, value) in fields {
        out.raw(key);
        write_str(out, value);
    }
}

/// `,"metadata":{...},"payloads":[`: what follows the header's string
/// fields in every writer. Fails only if `metadata` cannot be serialized.
pub(crate) fn write_metadata_open_payloads<S: Sink>(
    out: &mut S,
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    out.raw(b",\"metadata\":");
    write_map(out, metadata)?;
    out.raw(b",\"payloads\":[");
    Ok(())
}

pub(crate) fn write_envelope<S: Sink>(out: &mut S, env: &Envelope) -> Result<()> {
    let fields: [(&[u8], &str); 12] = [
        (b"{\"correlation_id\":", &env.correlation_id),
        (b",\"msg_id\":", &env.msg_id),
        (b",\"timestamp\":", &env.timestamp),
        (b",\"send_to\":", &env.send_to),
        (b",\"msg_purpose\":", &env.msg_purpose),
        (b",\"sender_name\":", &env.sender_name),
        (b",\"sender_id\":", &env.sender_id),
        (b",\"receiver_name\":", &env.receiver_name),
        (b",\"receiver_id\":", &env.receiver_id),
        (b",\"reply_to\":", &env.reply_to),
        (b",\"reply_to_msg_id\":", &env.reply_to_msg_id),
        (b",\"broker_url\":", &env.broker_url),
    ];
    write_fields(out, &fields);
    write_metadata_open_payloads(out, &env.metadata)?;
    for (i, rec) in env.payloads.iter().enumerate() {
        if i > 0 {
            out.raw(b",");
        }
        write_record(out, rec)?;
    }
    out.raw(b"]");
    write_extra(out, &env.extra)?;
    out.raw(b"}");
    Ok(())
}

impl Envelope {
    /// The exact byte length of [`Envelope::to_json`]'s output, computed
    /// without encoding any payload.
    pub fn json_len(&self) -> Result<usize> {
        let mut counter = Counter(0);
        write_envelope(&mut counter, self)?;
        Ok(counter.0)
    }

    /// Serializes the envelope to its wire JSON.
    ///
    /// The buffer is reserved once from the fields' lengths, then each
    /// direct payload is base64 encoded straight into it: one pass over
    /// each payload, no intermediate string. Fails only if a `metadata` or
    /// extension value cannot be serialized.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_json(&mut out)?;
        Ok(out)
    }

    /// Appends the wire JSON to `out` (which can be reused across messages).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<()> {
        out.reserve(self.capacity_hint());
        write_envelope(out, self)
    }

    /// The JSON length when no string needs escaping and the maps are
    /// small: exact for almost every envelope, and cheap (no pass over the
    /// strings). A longer result only costs the buffer a reallocation.
    fn capacity_hint(&self) -> usize {
        const HEADER_KEYS: usize = 260;
        const RECORD_KEYS: usize = 110;
        let strings = [
            &self.correlation_id,
            &self.msg_id,
            &self.timestamp,
            &self.send_to,
            &self.msg_purpose,
            &self.sender_name,
            &self.sender_id,
            &self.receiver_name,
            &self.receiver_id,
            &self.reply_to,
            &self.reply_to_msg_id,
            &self.broker_url,
        ];
        let mut n = HEADER_KEYS + strings.iter().map(|s| s.len()).sum::<usize>();
        for rec in &self.payloads {
            n += RECORD_KEYS + rec.id.len() + rec.dataname.len();
            n += match &rec.body {
                Body::Direct(b) => base64_len(b.len()),
                Body::Link { url, .. } | Body::Fetched { url, .. } => url.len(),
            };
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        assert_eq!(escaped("plain"), "\"plain\"");
        assert_eq!(escaped("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        for s in ["", "\t\r\u{8}\u{c}", "日本語 \u{1f}", "\\\\\""] {
            let back: String = serde_json::from_str(&escaped(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn the_escape_check_agrees_with_a_byte_loop_at_every_length() {
        for n in 0..40 {
            for background in [b'a', 0x80, 0xff, b'"' + 1, b'\\' + 1, 0x20, 0x7f] {
                let mut b = vec![background; n];
                assert!(!has_special(&b), "{n} {background:#x}");
                for at in 0..n {
                    for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                        b[at] = special;
                        assert!(has_special(&b), "{n} {background:#x} {special:#x} at {at}");
                    }
                    b[at] = background;
                }
            }
        }
    }

    #[test]
    fn counter_agrees_with_writer_for_strings() {
        for s in ["", "x", "a\"b\u{0}", "ünïcödé\n"] {
            let mut c = Counter(0);
            write_str(&mut c, s);
            assert_eq!(c.0, escaped(s).len());
        }
    }

    #[test]
    fn base64_len_matches_the_encoder() {
        for n in 0..50 {
            let data = vec![7u8; n];
            assert_eq!(base64_len(n), base64_simd::STANDARD.encode_to_string(&data).len());
        }
    }
}
