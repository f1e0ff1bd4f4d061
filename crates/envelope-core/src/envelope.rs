//! The v1 envelope and its payload records.

use crate::payload::{Payload, PayloadType, PayloadValue, Transport};
use crate::prelude::*;
use crate::timestamp::rfc3339_from_unix_millis;
use crate::{Error, Result};

/// The default `msg_purpose`.
pub const DEFAULT_MSG_PURPOSE: &str = "chat";
/// The default `sender_name` (the newer seed's; the older used `NATSBridge`).
pub const DEFAULT_SENDER_NAME: &str = "msghandler";
/// The default `broker_url` written into envelopes when the caller gives none.
pub const DEFAULT_BROKER_URL: &str = "nats://localhost:4222";

/// A message envelope, schema v1: the JSON object every peer publishes.
///
/// Fields are public and named as on the wire. Keys the spec does not name
/// that a received envelope carried are kept in [`Envelope::extra`] and
/// written back out after `payloads`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Envelope {
    /// Ties a conversation together; a reply carries the request's.
    pub correlation_id: String,
    /// This message's id (UUID v4).
    pub msg_id: String,
    /// When it was sent, as written on the wire (RFC 3339 on send; see
    /// [`Envelope::parsed_timestamp`] for the forms accepted on receive).
    pub timestamp: String,
    /// The subject it was published to.
    pub send_to: String,
    /// Free text: `chat`, `ACK`, `NACK`, `updateStatus`, `shutdown`, ...
    pub msg_purpose: String,
    /// The sending service's name.
    pub sender_name: String,
    /// The sending service's id.
    pub sender_id: String,
    /// The intended receiver's name, or empty.
    pub receiver_name: String,
    /// The intended receiver's id, or empty.
    pub receiver_id: String,
    /// The subject a reply should be published to, or empty.
    pub reply_to: String,
    /// For a reply: the `msg_id` of the request it answers.
    pub reply_to_msg_id: String,
    /// The broker the sender used.
    pub broker_url: String,
    /// Free-form metadata (a JSON object).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The payloads, in order.
    pub payloads: Vec<PayloadRecord>,
    /// Top-level keys not named by the spec, kept from a received envelope.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One payload record of an envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadRecord {
    /// The payload's id (UUID v4).
    pub id: String,
    /// The caller's name for the payload.
    pub dataname: String,
    /// What the bytes mean.
    pub payload_type: PayloadType,
    /// The bytes, or where to fetch them.
    pub body: Body,
    /// Record keys not named by the spec (`sha256` and the like), kept and
    /// written after `data`.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Where a payload's bytes are. Non-exhaustive: a receiver may come to
/// keep fetched bytes elsewhere than in memory (match with a `_` arm, or
/// use [`PayloadRecord::bytes`], [`PayloadRecord::url`] and
/// [`PayloadRecord::transport`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// The bytes themselves: sent base64 inside the envelope (transport
    /// `direct`), or already received and decoded.
    Direct(Bytes),
    /// A claim-check link (transport `link`).
    Link {
        /// An absolute `http`/`https` URL a GET returns the bytes from.
        url: String,
        /// The declared byte length. `None` when a received record had no
        /// `size` (the length cannot be checked then).
        size: Option<u64>,
    },
    /// A link payload whose bytes have been downloaded (by a receiver);
    /// still transport `link`, written back out as the link.
    Fetched {
        /// The URL the bytes came from.
        url: String,
        /// The downloaded bytes, checked against the declared size.
        bytes: Bytes,
    },
}

impl Body {
    /// The byte length of the payload: the bytes' length when they are
    /// here, the declared `size` of a link.
    pub fn size(&self) -> Option<u64> {
        match self {
            Body::Direct(b) | Body::Fetched { bytes: b, .. } => Some(b.len() as u64),
            Body::Link { size, .. } => *size,
        }
    }
}

impl PayloadRecord {
    /// A direct record for `payload`, with the given id.
    pub fn direct(id: impl Into<String>, payload: Payload) -> PayloadRecord {
        PayloadRecord {
            id: id.into(),
            dataname: payload.dataname,
            payload_type: payload.payload_type,
            body: Body::Direct(payload.bytes),
            extra: serde_json::Map::new(),
        }
    }

    /// How this payload travels.
    pub fn transport(&self) -> Transport {
        match self.body {
            Body::Direct(_) => Transport::Direct,
            Body::Link { .. } | Body::Fetched { .. } => Transport::Link,
        }
    }

    /// The byte length of the serialized payload: the bytes' length for a
    /// direct record, the declared `size` for a link.
    pub fn size(&self) -> Option<u64> {
        self.body.size()
    }

    /// The payload bytes, when they are here (direct, or fetched).
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Direct(b) | Body::Fetched { bytes: b, .. } => Some(b),
            Body::Link { .. } => None,
        }
    }

    /// The link URL, for a link record.
    pub fn url(&self) -> Option<&str> {
        match &self.body {
            Body::Direct(_) => None,
            Body::Link { url, .. } | Body::Fetched { url, .. } => Some(url),
        }
    }

    /// Turns a direct record into a link record pointing at `url` (after
    /// the bytes were uploaded there); the size is kept.
    pub fn set_link(&mut self, url: impl Into<String>) {
        let size = self.size();
        self.body = Body::Link { url: url.into(), size };
    }

    /// The typed value of a direct (or fetched) payload.
    ///
    /// Fails with [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) on a
    /// link record whose bytes have not been fetched, and
    /// [`ErrorKind::Decode`](crate::ErrorKind::Decode) when the bytes do not
    /// decode as the payload type says.
    pub fn value(&self) -> Result<PayloadValue> {
        match self.bytes() {
            Some(b) => PayloadValue::from_bytes(&self.payload_type, b.clone(), &self.dataname),
            None => Err(Error::malformed(
                "data",
                format!("payload {:?} is a link that has not been fetched", self.dataname),
            )),
        }
    }
}

/// A source of message and payload ids.
///
/// The envelope needs fresh UUID v4 strings but this crate has no random
/// number generator; the caller supplies one. `natsbridge` uses `uuid`'s v4;
/// an embedded caller can feed its hardware RNG to [`uuid_v4_from_random`].
pub trait IdSource {
    /// A fresh UUID v4, hyphenated, lower case.
    fn next_id(&mut self) -> String;

    /// Appends a fresh id to `out` as one JSON string (quoted, escaped),
    /// for [`crate::EnvelopeTemplate`] and [`Envelope::write_packed`],
    /// which write ids straight into the JSON. The default writes
    /// [`IdSource::next_id`]; a source can override it to skip the
    /// allocation, and must then append exactly one valid JSON string.
    fn write_next_id(&mut self, out: &mut Vec<u8>) {
        let id = self.next_id();
        crate::write::write_str(out, &id);
    }
}

impl<F: FnMut() -> String> IdSource for F {
    fn next_id(&mut self) -> String {
        self()
    }
}

/// Formats 16 random bytes as a UUID v4 (version and variant bits set),
/// hyphenated and lower case.
pub fn uuid_v4_from_random(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[(b >> 4) as usize];
        out[at + 1] = HEX[(b & 0x0f) as usize];
        at += 2;
    }
    // Only hex digits and hyphens were written.
    core::str::from_utf8(&out).map(String::from).unwrap_or_default()
}

/// A source of the current time, for `timestamp`.
pub trait Clock {
    /// Now, in UTC.
    fn now_utc(&self) -> time::OffsetDateTime;

    /// Now, in milliseconds since the Unix epoch (negative before it):
    /// all of the time an envelope's `timestamp` shows, and what every
    /// envelope this crate builds reads. The default takes it from
    /// [`Clock::now_utc`]; a clock that keeps time as a count (as the
    /// system's does) can return it directly and spare the calendar
    /// conversion, once per message sent. It must be the same instant as
    /// `now_utc`, truncated to the millisecond.
    fn now_unix_millis(&self) -> i64 {
        // Within `time`'s range (years -9999 to 9999) this fits an i64.
        self.now_utc().unix_timestamp_nanos().div_euclid(1_000_000) as i64
    }
}

impl<F: Fn() -> time::OffsetDateTime> Clock for F {
    fn now_utc(&self) -> time::OffsetDateTime {
        self()
    }
}

/// `timestamp` for a message stamped now by `clock`.
pub(crate) fn timestamp_string(clock: &dyn Clock) -> String {
    let stamp = rfc3339_from_unix_millis(clock.now_unix_millis());
    // Only ASCII digits and punctuation were written.
    core::str::from_utf8(&stamp).map(String::from).unwrap_or_default()
}

/// Every field of the seeds' `smartsend`/`smartpack` that shapes the
/// envelope. Plain data with the seeds' defaults.
///
/// Non-exhaustive (fields may be added): build it with [`SendOptions::new`]
/// and the `with_*` setters, or assign the public fields of a default.
///
/// ```
/// use natsbridge_envelope_core::SendOptions;
///
/// let options = SendOptions::new().with_msg_purpose("ack").with_reply_to("inbox.1");
/// assert_eq!((options.msg_purpose.as_str(), options.reply_to.as_str()), ("ack", "inbox.1"));
/// assert_eq!(options.sender_name, SendOptions::default().sender_name);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SendOptions {
    /// `correlation_id`; a fresh UUID v4 when `None`.
    pub correlation_id: Option<String>,
    /// `msg_id`; a fresh UUID v4 when `None`.
    pub msg_id: Option<String>,
    /// `sender_id`; a fresh UUID v4 when `None`.
    pub sender_id: Option<String>,
    /// `msg_purpose`, default `chat`.
    pub msg_purpose: String,
    /// `sender_name`, default `msghandler`.
    pub sender_name: String,
    /// `receiver_name`, default empty.
    pub receiver_name: String,
    /// `receiver_id`, default empty.
    pub receiver_id: String,
    /// `reply_to`, default empty.
    pub reply_to: String,
    /// `reply_to_msg_id`, default empty.
    pub reply_to_msg_id: String,
    /// `broker_url`, default `nats://localhost:4222`.
    pub broker_url: String,
    /// `metadata`, default `{}`.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `size_threshold`: payloads of this many bytes or more go by link
    /// (see [`crate::PlanLimits`]). Default 500,000.
    pub size_threshold: usize,
    /// `is_publish`: whether the facade publishes the envelope (`false`
    /// only builds it). Default `true`. [`Envelope::pack`] ignores it.
    pub is_publish: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            correlation_id: None,
            msg_id: None,
            sender_id: None,
            msg_purpose: DEFAULT_MSG_PURPOSE.into(),
            sender_name: DEFAULT_SENDER_NAME.into(),
            receiver_name: String::new(),
            receiver_id: String::new(),
            reply_to: String::new(),
            reply_to_msg_id: String::new(),
            broker_url: DEFAULT_BROKER_URL.into(),
            metadata: serde_json::Map::new(),
            size_threshold: crate::DEFAULT_SIZE_THRESHOLD,
            is_publish: true,
        }
    }
}

impl SendOptions {
    /// The defaults (the same as [`Default`]); change them with the
    /// `with_*` setters below or by assigning the public fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`correlation_id`](Self::correlation_id).
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// Sets [`msg_id`](Self::msg_id).
    #[must_use]
    pub fn with_msg_id(mut self, msg_id: impl Into<String>) -> Self {
        self.msg_id = Some(msg_id.into());
        self
    }

    /// Sets [`sender_id`](Self::sender_id).
    #[must_use]
    pub fn with_sender_id(mut self, sender_id: impl Into<String>) -> Self {
        self.sender_id = Some(sender_id.into());
        self
    }

    /// Sets [`msg_purpose`](Self::msg_purpose).
    #[must_use]
    pub fn with_msg_purpose(mut self, msg_purpose: impl Into<String>) -> Self {
        self.msg_purpose = msg_purpose.into();
        self
    }

    /// Sets [`sender_name`](Self::sender_name).
    #[must_use]
    pub fn with_sender_name(mut self, sender_name: impl Into<String>) -> Self {
        self.sender_name = sender_name.into();
        self
    }

    /// Sets [`receiver_name`](Self::receiver_name).
    #[must_use]
    pub fn with_receiver_name(mut self, receiver_name: impl Into<String>) -> Self {
        self.receiver_name = receiver_name.into();
        self
    }

    /// Sets [`receiver_id`](Self::receiver_id).
    #[must_use]
    pub fn with_receiver_id(mut self, receiver_id: impl Into<String>) -> Self {
        self.receiver_id = receiver_id.into();
        self
    }

    /// Sets [`reply_to`](Self::reply_to).
    #[must_use]
    pub fn with_reply_to(mut self, reply_to: impl Into<String>) -> Self {
        self.reply_to = reply_to.into();
        self
    }

    /// Sets [`reply_to_msg_id`](Self::reply_to_msg_id).
    #[must_use]
    pub fn with_reply_to_msg_id(mut self, reply_to_msg_id: impl Into<String>) -> Self {
        self.reply_to_msg_id = reply_to_msg_id.into();
        self
    }

    /// Sets [`broker_url`](Self::broker_url).
    #[must_use]
    pub fn with_broker_url(mut self, broker_url: impl Into<String>) -> Self {
        self.broker_url = broker_url.into();
        self
    }

    /// Sets [`metadata`](Self::metadata).
    #[must_use]
    pub fn with_metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets [`size_threshold`](Self::size_threshold).
    #[must_use]
    pub fn with_size_threshold(mut self, size_threshold: usize) -> Self {
        self.size_threshold = size_threshold;
        self
    }

    /// Sets [`is_publish`](Self::is_publish).
    #[must_use]
    pub fn with_is_publish(mut self, is_publish: bool) -> Self {
        self.is_publish = is_publish;
        self
    }
}

impl Envelope {
    /// A new envelope for `subject` with every payload direct, ids from
    /// `ids` where `options` gives none, and `timestamp` from `clock`.
    ///
    /// Which payloads must travel by link is decided afterwards by
    /// [`crate::plan_transports`]. To serialize it as well,
    /// [`Envelope::pack_json`] does both in one pass; for the bytes alone,
    /// [`Envelope::write_packed`] builds no envelope at all.
    pub fn pack(
        subject: &str,
        payloads: Vec<Payload>,
        mut options: SendOptions,
        ids: &mut dyn IdSource,
        clock: &dyn Clock,
    ) -> Envelope {
        let mut id_or_new = |given: Option<String>| given.unwrap_or_else(|| ids.next_id());
        let correlation_id = id_or_new(options.correlation_id.take());
        let msg_id = id_or_new(options.msg_id.take());
        let sender_id = id_or_new(options.sender_id.take());
        let payloads =
            payloads.into_iter().map(|p| PayloadRecord::direct(ids.next_id(), p)).collect();
        let timestamp = timestamp_string(clock);
        Envelope::assemble(
            subject,
            options,
            [correlation_id, msg_id, sender_id],
            timestamp,
            payloads,
        )
    }

    /// A sent envelope from its parts: the options' fields moved in, the ids
    /// (`correlation_id`, `msg_id`, `sender_id`) and timestamp already
    /// chosen. What [`Envelope::pack`] and [`Envelope::pack_json`] build.
    #[inline]
    pub(crate) fn assemble(
        subject: &str,
        options: SendOptions,
        [correlation_id, msg_id, sender_id]: [String; 3],
        timestamp: String,
        payloads: Vec<PayloadRecord>,
    ) -> Envelope {
        Envelope {
            correlation_id,
            msg_id,
            timestamp,
            send_to: subject.into(),
            msg_purpose: options.msg_purpose,
            sender_name: options.sender_name,
            sender_id,
            receiver_name: options.receiver_name,
            receiver_id: options.receiver_id,
            reply_to: options.reply_to,
            reply_to_msg_id: options.reply_to_msg_id,
            broker_url: options.broker_url,
            metadata: options.metadata,
            payloads,
            extra: serde_json::Map::new(),
        }
    }

    /// The `timestamp` parsed leniently (see [`crate::parse_timestamp`]).
    pub fn parsed_timestamp(&self) -> Result<time::OffsetDateTime> {
        crate::timestamp::parse_timestamp(&self.timestamp)
            .map_err(|detail| Error::malformed("timestamp", detail))
    }

    /// The record named `dataname`, if any (the first, as names need not be unique).
    pub fn payload(&self, dataname: &str) -> Option<&PayloadRecord> {
        self.payloads.iter().find(|p| p.dataname == dataname)
    }

    /// The twelve header strings with their wire names, in the spec's order
    /// (`correlation_id`, `msg_id`, `timestamp`, `send_to`, `msg_purpose`,
    /// `sender_name`, `sender_id`, `receiver_name`, `receiver_id`,
    /// `reply_to`, `reply_to_msg_id`, `broker_url`): the one list every
    /// report of an envelope's header walks.
    ///
    /// ```
    /// use natsbridge_envelope_core::Envelope;
    ///
    /// let envelope = Envelope::from_json(br#"{"msg_id":"m-1","payloads":[]}"#)?;
    /// let fields = envelope.header_fields();
    /// assert_eq!(fields.len(), 12);
    /// assert_eq!(fields[1], ("msg_id", "m-1"));
    /// assert_eq!(fields[11].0, "broker_url");
    /// # Ok::<(), natsbridge_envelope_core::Error>(())
    /// ```
    pub fn header_fields(&self) -> [(&'static str, &str); crate::read::HEADER_STRINGS] {
        let k = &crate::read::TOP_KEYS;
        [
            (k[0], &self.correlation_id),
            (k[1], &self.msg_id),
            (k[2], &self.timestamp),
            (k[3], &self.send_to),
            (k[4], &self.msg_purpose),
            (k[5], &self.sender_name),
            (k[6], &self.sender_id),
            (k[7], &self.receiver_name),
            (k[8], &self.receiver_id),
            (k[9], &self.reply_to),
            (k[10], &self.reply_to_msg_id),
            (k[11], &self.broker_url),
        ]
    }

    /// Options for a reply to this envelope under the seeds' convention:
    /// same `correlation_id`, `reply_to_msg_id` set to this `msg_id`, the
    /// receiver fields naming this sender.
    pub fn reply_options(&self) -> SendOptions {
        SendOptions {
            correlation_id: Some(self.correlation_id.clone()),
            reply_to_msg_id: self.msg_id.clone(),
            receiver_name: self.sender_name.clone(),
            receiver_id: self.sender_id.clone(),
            broker_url: self.broker_url.clone(),
            ..SendOptions::default()
        }
    }
}
