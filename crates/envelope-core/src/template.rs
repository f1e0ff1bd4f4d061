//! Envelopes written straight to their wire bytes.
//!
//! A service that publishes many envelopes to one subject with the same
//! options rebuilds, for each, a dozen header strings that never change.
//! An [`EnvelopeTemplate`] renders them to JSON once; each message then
//! writes only what is new (its ids, timestamp and payload records) into
//! one buffer, with no [`Envelope`] built and no string allocated. The
//! bytes are exactly what [`Envelope::pack`] followed by
//! [`Envelope::to_json`] would give for the same ids and clock.
//!
//! A one-off message has no template to reuse: [`Envelope::write_packed`]
//! writes it from the borrowed subject, options and payloads in one pass,
//! ids and timestamp straight into the buffer, and [`Envelope::pack_json`]
//! does the same while also handing back the owned envelope (what
//! `smartsend` returns).

use crate::Result;
use crate::envelope::{Clock, Envelope, IdSource, PayloadRecord, SendOptions};
use crate::payload::Payload;
use crate::prelude::*;
use crate::timestamp::rfc3339_from_unix_millis;
use crate::write::{
    Sink, base64_len, write_direct_body, write_fields, write_metadata_open_payloads, write_str,
};

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
/// The keys of the middle part (`,"send_to":` to `,"sender_id":`).
const MIDDLE_KEYS: usize = 54;
/// The keys of the tail (`,"receiver_name":` to `,"payloads":[`), with
/// the `]}` that closes the envelope.
const TAIL_KEYS: usize = 104;
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

/// The JSON length of `payloads` as direct records with UUID ids, when no
/// name needs escaping.
fn records_len(payloads: &[Payload]) -> usize {
    let mut n = 0;
    for p in payloads {
        n += RECORD_KEYS + UUID_JSON + p.dataname.len() + p.payload_type.as_str().len();
        n += digits(p.bytes.len()) + base64_len(p.bytes.len());
    }
    // The first record has no comma before it.
    n - usize::from(!payloads.is_empty())
}

/// The JSON length of an id: the given one quoted, or a UUID.
fn id_len(given: Option<&str>) -> usize {
    given.map_or(UUID_JSON, |s| s.len() + 2)
}

/// Writes the given id, or a fresh one from `ids`.
fn write_id(out: &mut Vec<u8>, given: Option<&str>, ids: &mut dyn IdSource) {
    match given {
        Some(id) => write_str(out, id),
        None => ids.write_next_id(out),
    }
}

/// `,"send_to":...` to `,"sender_id":` (the sender id itself comes next).
fn write_middle(out: &mut Vec<u8>, subject: &str, options: &SendOptions) {
    out.raw(b",\"send_to\":");
    write_str(out, subject);
    out.raw(b",\"msg_purpose\":");
    write_str(out, &options.msg_purpose);
    out.raw(b",\"sender_name\":");
    write_str(out, &options.sender_name);
    out.raw(b",\"sender_id\":");
}

/// `,"receiver_name":...` to `,"payloads":[`.
/// `broker_url` is written in place of `options.broker_url`.
fn write_tail(out: &mut Vec<u8>, options: &SendOptions, broker_url: &str) -> Result<()> {
    let fields: [(&[u8], &str); 5] = [
        (b",\"receiver_name\":", &options.receiver_name),
        (b",\"receiver_id\":", &options.receiver_id),
        (b",\"reply_to\":", &options.reply_to),
        (b",\"reply_to_msg_id\":", &options.reply_to_msg_id),
        (b",\"broker_url\":", broker_url),
    ];
    write_fields(out, &fields);
    write_metadata_open_payloads(out, &options.metadata)
}

/// `{"correlation_id":...,"msg_id":...,"timestamp":"..."`.
fn write_head(
    out: &mut Vec<u8>,
    correlation_id: Option<&str>,
    msg_id: Option<&str>,
    timestamp: &[u8; 24],
    ids: &mut dyn IdSource,
) {
    out.raw(b"{\"correlation_id\":");
    write_id(out, correlation_id, ids);
    out.raw(b",\"msg_id\":");
    write_id(out, msg_id, ids);
    out.raw(b",\"timestamp\":\"");
    out.raw(timestamp);
    out.raw(b"\"");
}

/// One direct record, with the comma before it unless it is the first.
fn write_record(
    out: &mut Vec<u8>,
    first: bool,
    id: Option<&str>,
    payload: &Payload,
    ids: &mut dyn IdSource,
) {
    out.raw(if first { b"{\"id\":" } else { b",{\"id\":" });
    write_id(out, id, ids);
    out.raw(b",\"dataname\":");
    write_str(out, &payload.dataname);
    write_direct_body(out, &payload.payload_type, &payload.bytes);
    out.raw(b"}");
}

/// The JSON length of a one-off envelope when its fresh ids are UUIDs, no
/// string needs escaping and the metadata is empty: exact for almost every
/// message, and a longer one only costs the buffer a reallocation.
fn packed_len_hint(
    subject: &str,
    options: &SendOptions,
    broker_url: &str,
    payloads: &[Payload],
    [correlation_id, msg_id, sender_id]: [Option<&str>; 3],
) -> usize {
    let strings = [
        subject,
        &options.msg_purpose,
        &options.sender_name,
        &options.receiver_name,
        &options.receiver_id,
        &options.reply_to,
        &options.reply_to_msg_id,
        broker_url,
    ];
    let mut n = HEAD_KEYS + TIMESTAMP_JSON + MIDDLE_KEYS + TAIL_KEYS;
    n += id_len(correlation_id) + id_len(msg_id) + id_len(sender_id);
    n += strings.iter().map(|s| s.len() + 2).sum::<usize>();
    // `{}`, or a guess for a small object.
    n += if options.metadata.is_empty() { 2 } else { 64 };
    n + records_len(payloads)
}

impl EnvelopeTemplate {
    /// Renders the constant fields of envelopes sent to `subject` with
    /// `options`. Fails only if `options.metadata` cannot be serialized.
    pub fn new(subject: &str, options: &SendOptions) -> Result<EnvelopeTemplate> {
        let mut middle = Vec::new();
        write_middle(&mut middle, subject, options);
        let mut tail = Vec::new();
        write_tail(&mut tail, options, &options.broker_url)?;
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
        let id = |fixed: &Option<String>| id_len(fixed.as_deref());
        let mut n = HEAD_KEYS + id(&self.correlation_id) + id(&self.msg_id) + TIMESTAMP_JSON;
        n += self.middle.len() + id(&self.sender_id) + self.tail.len() + 2;
        // Exact, so the buffer becomes `Bytes` without another allocation.
        n + records_len(payloads)
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
        let stamp = rfc3339_from_unix_millis(clock.now_unix_millis());
        write_head(out, self.correlation_id.as_deref(), self.msg_id.as_deref(), &stamp, ids);
        out.raw(&self.middle);
        write_id(out, self.sender_id.as_deref(), ids);
        out.raw(&self.tail);
        for (i, payload) in payloads.iter().enumerate() {
            write_record(out, i == 0, None, payload, ids);
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

impl Envelope {
    /// Appends to `out` exactly what [`Envelope::pack`] followed by
    /// [`Envelope::to_json`] would give for the same ids and clock, written
    /// from the borrowed parts: each fresh id goes straight into the buffer
    /// ([`IdSource::write_next_id`]), and so does the timestamp; no
    /// `Envelope` is built and nothing is allocated but the buffer's growth
    /// (reserved once).
    ///
    /// Every payload is written inline, as `pack` does: which must go by
    /// link is the caller's decision ([`crate::plan_transports`]). Fails
    /// only if `options.metadata` cannot be serialized.
    ///
    /// ```
    /// use natsbridge_envelope_core::{Envelope, Payload, SendOptions};
    ///
    /// let mut n = 0u32;
    /// let mut ids = || { n += 1; format!("id-{n}") };
    /// let now = || time::OffsetDateTime::UNIX_EPOCH;
    /// let payloads = [Payload::text("t", "21.5")];
    /// let mut json = Vec::new();
    /// Envelope::write_packed(&mut json, "sensors.t1", &payloads, &SendOptions::default(), &mut ids, &now)?;
    /// let envelope = Envelope::from_json(&json)?;
    /// assert_eq!((envelope.msg_id.as_str(), envelope.payloads[0].id.as_str()), ("id-2", "id-4"));
    /// assert_eq!(envelope.timestamp, "1970-01-01T00:00:00.000Z");
    /// # Ok::<(), natsbridge_envelope_core::Error>(())
    /// ```
    pub fn write_packed(
        out: &mut Vec<u8>,
        subject: &str,
        payloads: &[Payload],
        options: &SendOptions,
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) -> Result<()> {
        Envelope::write_packed_as(out, subject, payloads, options, &options.broker_url, ids, clock)
    }

    /// [`Envelope::write_packed`] with `broker_url` written in place of
    /// `options.broker_url`: for a connection that names itself in every
    /// envelope without copying its URL into each message's options (the
    /// facade's `smartsend` does, when the options leave the default).
    ///
    /// ```
    /// use natsbridge_envelope_core::{Envelope, Payload, SendOptions};
    ///
    /// let mut ids = || "id".to_string();
    /// let now = || time::OffsetDateTime::UNIX_EPOCH;
    /// let (payloads, options) = ([Payload::text("t", "hi")], SendOptions::default());
    /// let mut json = Vec::new();
    /// Envelope::write_packed_as(&mut json, "s", &payloads, &options, "nats://10.0.0.1:4222", &mut ids, &now)?;
    /// assert_eq!(Envelope::from_json(&json)?.broker_url, "nats://10.0.0.1:4222");
    /// # Ok::<(), natsbridge_envelope_core::Error>(())
    /// ```
    pub fn write_packed_as(
        out: &mut Vec<u8>,
        subject: &str,
        payloads: &[Payload],
        options: &SendOptions,
        broker_url: &str,
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) -> Result<()> {
        let given =
            [&options.correlation_id, &options.msg_id, &options.sender_id].map(|id| id.as_deref());
        out.reserve(packed_len_hint(subject, options, broker_url, payloads, given));
        let [correlation_id, msg_id, sender_id] = given;
        let stamp = rfc3339_from_unix_millis(clock.now_unix_millis());
        write_head(out, correlation_id, msg_id, &stamp, ids);
        write_middle(out, subject, options);
        write_id(out, sender_id, ids);
        write_tail(out, options, broker_url)?;
        for (i, payload) in payloads.iter().enumerate() {
            write_record(out, i == 0, None, payload, ids);
        }
        out.raw(b"]}");
        Ok(())
    }

    /// [`Envelope::pack`] and its [`Envelope::to_json`] in one pass: the
    /// same envelope and the same bytes, for the same ids and clock, with
    /// the JSON written from the parts as they are taken (no second walk
    /// over the envelope, no length pass).
    ///
    /// The strings the envelope owns are allocated once each (the ids and
    /// the timestamp; the options' strings and the payloads are moved in).
    /// When only the bytes are needed, [`Envelope::write_packed`] allocates
    /// none. Fails only if `options.metadata` cannot be serialized.
    pub fn pack_json(
        subject: &str,
        payloads: Vec<Payload>,
        mut options: SendOptions,
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) -> Result<(Envelope, Vec<u8>)> {
        // The ids in `pack`'s order: the header's, then one per payload.
        let mut id_or_new = |given: Option<String>| given.unwrap_or_else(|| ids.next_id());
        let correlation_id = id_or_new(options.correlation_id.take());
        let msg_id = id_or_new(options.msg_id.take());
        let sender_id = id_or_new(options.sender_id.take());
        let given = [Some(&*correlation_id), Some(&*msg_id), Some(&*sender_id)];
        let hint = packed_len_hint(subject, &options, &options.broker_url, &payloads, given);
        let mut out = Vec::with_capacity(hint);
        let stamp = rfc3339_from_unix_millis(clock.now_unix_millis());
        write_head(&mut out, Some(&correlation_id), Some(&msg_id), &stamp, ids);
        write_middle(&mut out, subject, &options);
        write_str(&mut out, &sender_id);
        write_tail(&mut out, &options, &options.broker_url)?;
        let mut records = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.into_iter().enumerate() {
            let id = ids.next_id();
            write_record(&mut out, i == 0, Some(&id), &payload, ids);
            records.push(PayloadRecord::direct(id, payload));
        }
        out.raw(b"]}");
        // Only ASCII digits and punctuation.
        let timestamp = core::str::from_utf8(&stamp).map(String::from).unwrap_or_default();
        let ids = [correlation_id, msg_id, sender_id];
        let envelope = Envelope::assemble(subject, options, ids, timestamp, records);
        Ok((envelope, out))
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

    #[test]
    fn the_one_off_hint_is_exact_for_a_message_with_uuids() {
        let mut n = 0u64;
        let mut ids = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012}")
        };
        let now = || time::OffsetDateTime::UNIX_EPOCH;
        let options = SendOptions { reply_to: "inbox.1".into(), ..SendOptions::default() };
        for payloads in [vec![], vec![Payload::text("message", "x".repeat(128))]] {
            let mut out = Vec::new();
            Envelope::write_packed(&mut out, "sensors.t1", &payloads, &options, &mut ids, &now)
                .unwrap();
            let given = [None; 3];
            let hint =
                packed_len_hint("sensors.t1", &options, &options.broker_url, &payloads, given);
            assert_eq!(hint, out.len(), "{}", String::from_utf8_lossy(&out));
            let (_, json) =
                Envelope::pack_json("sensors.t1", payloads, options.clone(), &mut ids, &now)
                    .unwrap();
            assert_eq!(json.capacity(), json.len());
        }
    }
}
