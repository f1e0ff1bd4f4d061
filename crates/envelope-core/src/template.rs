//! Prepared envelopes: the fields a stream of messages shares, written once.
//!
//! A service that publishes many envelopes to one subject with the same
//! options rebuilds, for each, a dozen header strings that never change.
//! An [`EnvelopeTemplate`] renders them to JSON once; each message then
//! writes only what is new (its ids, timestamp and payload records) into
//! one buffer, with no [`Envelope`](crate::Envelope) built and no string
//! allocated. The bytes are exactly what [`Envelope::pack`](crate::Envelope::pack)
//! followed by [`Envelope::to_json`](crate::Envelope::to_json) would give
//! for the same ids and clock.

use crate::Result;
use crate::envelope::{Clock, IdSource, SendOptions};
use crate::payload::Payload;
use crate::prelude::*;
use crate::write::{Sink, base64_len, write_direct_body, write_map, write_str};

/// The part of an envelope that is the same for every message of a stream
/// (subject and options), rendered to JSON once.
///
/// ```
/// use natsbridge_envelope_core::{Envelope, EnvelopeTemplate, Payload, SendOptions};
///
/// let template = EnvelopeTemplate::new("sensors.t1", &SendOptions::default())?;
/// let mut n = 0u32;
/// let mut ids = || { n += 1; format!("id-{n}") };
/// let now = || time::OffsetDateTime::UNIX_EPOCH;
/// let mut json = Vec::new();
/// template.write(&mut json, &[Payload::text("t", "21.5")], &mut ids, &now);
/// let envelope = Envelope::from_json(&json)?;
/// assert_eq!(envelope.msg_id, "id-2");
/// assert_eq!(envelope.send_to, "sensors.t1");
/// # Ok::<(), natsbridge_envelope_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EnvelopeTemplate {
    /// The conversation id of every message, when the options fix one;
    /// otherwise each message starts its own.
    correlation_id: Option<String>,
    /// The message id the options fix (every message then carries it).
    msg_id: Option<String>,
    /// The sender id the options fix; otherwise a fresh one per message.
    sender_id: Option<String>,
    /// `,"send_to":...,"msg_purpose":...,"sender_name":...,"sender_id":`
    middle: Vec<u8>,
    /// `,"receiver_name":...` to `"payloads":[`
    tail: Vec<u8>,
}

/// `{"correlation_id":`, `,"msg_id":` and `,"timestamp":`.
const HEAD_KEYS: usize = 41;
/// The timestamp written (`YYYY-MM-DDTHH:MM:SS.fffZ`), quoted.
const TIMESTAMP_JSON: usize = 26;
/// A UUID, quoted.
const UUID_JSON: usize = 38;
/// Keys, quotes and punctuation of one direct record (with the comma
/// before it).
const RECORD_KEYS: usize = 99;

/// Decimal digits of `n`.
fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

impl EnvelopeTemplate {
    /// Renders the constant fields of envelopes sent to `subject` with
    /// `options`. Fails only if `options.metadata` cannot be serialized.
    pub fn new(subject: &str, options: &SendOptions) -> Result<EnvelopeTemplate> {
        let mut middle = Vec::new();
        middle.raw(b",\"send_to\":");
        write_str(&mut middle, subject);
        middle.raw(b",\"msg_purpose\":");
        write_str(&mut middle, &options.msg_purpose);
        middle.raw(b",\"sender_name\":");
        write_str(&mut middle, &options.sender_name);
        middle.raw(b",\"sender_id\":");
        let mut tail = Vec::new();
        let fields: [(&[u8], &str); 5] = [
            (b",\"receiver_name\":", &options.receiver_name),
            (b",\"receiver_id\":", &options.receiver_id),
            (b",\"reply_to\":", &options.reply_to),
            (b",\"reply_to_msg_id\":", &options.reply_to_msg_id),
            (b",\"broker_url\":", &options.broker_url),
        ];
        for (key, value) in fields {
            tail.raw(key);
            write_str(&mut tail, value);
        }
        tail.raw(b",\"metadata\":");
        write_map(&mut tail, &options.metadata)?;
        tail.raw(b",\"payloads\":[");
        Ok(EnvelopeTemplate {
            correlation_id: options.correlation_id.clone(),
            msg_id: options.msg_id.clone(),
            sender_id: options.sender_id.clone(),
            middle,
            tail,
        })
    }

    /// The JSON length of a message with `payloads` when its ids are UUIDs
    /// and no name needs escaping: exact for almost every message (so the
    /// buffer is allocated once, at its final size), and a longer one only
    /// costs the buffer a reallocation.
    pub fn capacity_hint(&self, payloads: &[Payload]) -> usize {
        let id = |fixed: &Option<String>| fixed.as_ref().map_or(UUID_JSON, |s| s.len() + 2);
        let mut n = HEAD_KEYS + id(&self.correlation_id) + id(&self.msg_id) + TIMESTAMP_JSON;
        n += self.middle.len() + id(&self.sender_id) + self.tail.len() + 2;
        for p in payloads {
            n += RECORD_KEYS + UUID_JSON + p.dataname.len() + p.payload_type.as_str().len();
            n += digits(p.bytes.len()) + base64_len(p.bytes.len());
        }
        // The first record has no comma before it. Exact, the buffer becomes
        // `Bytes` without another allocation.
        n - usize::from(!payloads.is_empty())
    }

    /// Appends one envelope carrying `payloads` (every one direct) to
    /// `out`, taking ids from `ids` in the order [`crate::Envelope::pack`]
    /// does (correlation id, message id, sender id where the options fixed
    /// none, then one per payload) and the timestamp from `clock`.
    ///
    /// Which payloads must go by link is the caller's decision, as for
    /// `pack`: this writes every payload inline.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        payloads: &[Payload],
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) {
        out.reserve(self.capacity_hint(payloads));
        let mut id_or_new = |out: &mut Vec<u8>, fixed: &Option<String>| match fixed {
            Some(id) => write_str(out, id),
            None => ids.write_next_id(out),
        };
        out.raw(b"{\"correlation_id\":");
        id_or_new(out, &self.correlation_id);
        out.raw(b",\"msg_id\":");
        id_or_new(out, &self.msg_id);
        out.raw(b",\"timestamp\":\"");
        out.raw(&crate::timestamp::rfc3339_bytes(clock.now_utc()));
        out.raw(b"\"");
        out.raw(&self.middle);
        id_or_new(out, &self.sender_id);
        out.raw(&self.tail);
        for (i, payload) in payloads.iter().enumerate() {
            out.raw(if i == 0 { b"{\"id\":" } else { b",{\"id\":" });
            ids.write_next_id(out);
            out.raw(b",\"dataname\":");
            write_str(out, &payload.dataname);
            write_direct_body(out, &payload.payload_type, &payload.bytes);
            out.raw(b"}");
        }
        out.raw(b"]}");
    }

    /// [`EnvelopeTemplate::write`] into a new buffer.
    pub fn to_json(
        &self,
        payloads: &[Payload],
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, payloads, ids, clock);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capacity_hint_covers_a_message_with_uuids() {
        let payloads =
            [Payload::text("message", "x".repeat(128)), Payload::binary("b", vec![1u8; 7])];
        let template = EnvelopeTemplate::new("sensors.t1", &SendOptions::default()).unwrap();
        let mut n = 0u64;
        let mut ids = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012}")
        };
        let json = template.to_json(&payloads, &mut ids, &|| time::OffsetDateTime::UNIX_EPOCH);
        let hint = template.capacity_hint(&payloads);
        let empty = template.to_json(&[], &mut ids, &|| time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(template.capacity_hint(&[]), empty.len(), "{}", String::from_utf8_lossy(&empty));
        assert!(hint >= json.len(), "hint {hint} < {}", json.len());
        assert_eq!(hint, json.len());
    }
}
