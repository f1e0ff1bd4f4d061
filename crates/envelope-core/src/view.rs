//! The borrowed envelope: an envelope read in place from its wire JSON.
//!
//! [`EnvelopeView::parse`] validates the whole envelope exactly as
//! [`Envelope::from_json`] does (it is the same parser: `from_json` is the
//! view turned into owned values) but keeps what it read where it found
//! it. Header strings are `&str` into the input (an owned string only
//! where the JSON escapes it), a direct payload's `data` stays base64
//! until a caller asks for the bytes, and `metadata` and keys the spec
//! does not name stay JSON text. Parsing allocates nothing for an envelope
//! of at most one payload (the record is kept inline in the view); more
//! records go in one `Vec`.
//!
//! ```
//! use natsbridge_envelope_core::{EnvelopeView, Transport};
//!
//! let json = br#"{"msg_id":"m-1","sender_name":"py","payloads":[
//!     {"id":"p","dataname":"greeting","payload_type":"text","transport":"direct",
//!      "encoding":"base64","size":5,"data":"aGVsbG8="}]}"#;
//! let view = EnvelopeView::parse(json)?;
//! assert_eq!(view.sender_name(), "py");
//! let greeting = &view.payloads()[0];
//! assert_eq!((greeting.dataname(), greeting.transport()), ("greeting", Transport::Direct));
//! let mut buf = Vec::new();
//! greeting.decode_into(&mut buf)?;
//! assert_eq!(buf, b"hello");
//! # Ok::<(), natsbridge_envelope_core::Error>(())
//! ```

use crate::envelope::{Body, Envelope, PayloadRecord};
use crate::payload::{PayloadType, PayloadValue, Transport};
use crate::prelude::*;
use crate::read::{HEADER_STRINGS, TOP_KEYS};
use crate::{Error, Result};

/// A member the spec does not name, kept as its key and its value's JSON
/// text (validated when the envelope was parsed).
pub(crate) type RawMember<'a> = (Cow<'a, str>, &'a str);

/// An envelope borrowed from its wire JSON: see the [module
/// docs](crate::EnvelopeView) and [`EnvelopeView::parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct EnvelopeView<'a> {
    /// The header strings in [`TOP_KEYS`] order.
    pub(crate) header: [Cow<'a, str>; HEADER_STRINGS],
    /// `metadata`'s JSON text; `None` when absent, `null` or `{}`.
    pub(crate) metadata: Option<&'a str>,
    pub(crate) payloads: Records<'a>,
    pub(crate) extra: Vec<RawMember<'a>>,
}

/// The payload records of an [`EnvelopeView`]: one record is kept inline,
/// more in a `Vec`. Many envelopes carry one payload: their view needs no
/// allocation of its own, and an [`EnvelopeBuf`](crate::EnvelopeBuf) keeps
/// the record in its one allocation with the rest of the view (see
/// `docs/BENCHMARKS.md`, the instruction counts of `receive` and
/// `receive_lazy`).
#[derive(Clone, Debug)]
pub(crate) enum Records<'a> {
    /// None or several.
    Many(Vec<PayloadView<'a>>),
    /// Exactly one.
    One(PayloadView<'a>),
}

impl<'a> Records<'a> {
    pub(crate) fn push(&mut self, record: PayloadView<'a>) {
        match self {
            Records::Many(v) if v.capacity() > 0 => v.push(record),
            // A `Vec` without capacity owns nothing: replaced, not dropped,
            // which spares a check where the compiler cannot see it is
            // empty (a view filled in place).
            Records::Many(_) => core::mem::forget(core::mem::replace(self, Records::One(record))),
            Records::One(_) => {
                let mut all = Vec::with_capacity(4);
                if let Records::One(first) = core::mem::replace(self, Records::Many(Vec::new())) {
                    all.push(first);
                }
                all.push(record);
                *self = Records::Many(all);
            }
        }
    }
}

#[cfg(test)]
impl EnvelopeView<'_> {
    /// Whether dropping the view would free heap memory (for tests of
    /// [`crate::EnvelopeBuf`], which skips that drop when it frees nothing).
    pub(crate) fn owns_heap(&self) -> bool {
        let owned = |c: &Cow<'_, str>| matches!(c, Cow::Owned(_));
        let record_owns = |p: &PayloadView<'_>| {
            owned(&p.id)
                || owned(&p.dataname)
                || owned(&p.type_name)
                || !p.extra.is_empty()
                || match &p.body {
                    BodyView::Direct { base64, decoded, .. } => {
                        matches!(base64, Cow::Owned(_)) || decoded.is_some()
                    }
                    BodyView::Link { url, fetched, .. } => owned(url) || fetched.is_some(),
                }
        };
        self.header.iter().any(owned)
            || !self.extra.is_empty()
            || matches!(&self.payloads, Records::Many(v) if v.capacity() > 0)
            || self.payloads.iter().any(record_owns)
    }
}

impl<'a> core::ops::Deref for Records<'a> {
    type Target = [PayloadView<'a>];
    fn deref(&self) -> &[PayloadView<'a>] {
        match self {
            Records::Many(v) => v,
            Records::One(r) => core::slice::from_ref(r),
        }
    }
}

impl core::ops::DerefMut for Records<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Records::Many(v) => v,
            Records::One(r) => core::slice::from_mut(r),
        }
    }
}

impl PartialEq for Records<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<'a> IntoIterator for Records<'a> {
    type Item = PayloadView<'a>;
    type IntoIter = RecordsIter<'a>;
    fn into_iter(self) -> RecordsIter<'a> {
        match self {
            Records::Many(v) => RecordsIter::Many(v.into_iter()),
            Records::One(r) => RecordsIter::One(Some(r)),
        }
    }
}

/// [`Records`] by value.
pub(crate) enum RecordsIter<'a> {
    Many(alloc::vec::IntoIter<PayloadView<'a>>),
    One(Option<PayloadView<'a>>),
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = PayloadView<'a>;
    fn next(&mut self) -> Option<PayloadView<'a>> {
        match self {
            RecordsIter::Many(i) => i.next(),
            RecordsIter::One(r) => r.take(),
        }
    }
}

/// One payload record of an [`EnvelopeView`], its `data` still encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadView<'a> {
    pub(crate) index: usize,
    pub(crate) id: Cow<'a, str>,
    pub(crate) dataname: Cow<'a, str>,
    pub(crate) type_name: Cow<'a, str>,
    pub(crate) body: BodyView<'a>,
    pub(crate) extra: Vec<RawMember<'a>>,
}

/// Where a viewed payload's bytes are.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BodyView<'a> {
    /// Base64 text, checked, of `len` bytes. `decoded` holds the bytes when
    /// the parse was asked to decode (the owned path), so they are decoded
    /// once, while the input is hot.
    Direct { base64: Cow<'a, [u8]>, len: usize, decoded: Option<Bytes> },
    /// A link URL and the declared size; `fetched` holds the downloaded
    /// bytes once a receiver has fetched them ([`crate::EnvelopeBuf::set_fetched`]).
    Link { url: Cow<'a, str>, size: Option<u64>, fetched: Option<Bytes> },
}

impl<'a> EnvelopeView<'a> {
    /// No header, no payloads: what the reader fills in.
    pub(crate) const EMPTY: EnvelopeView<'a> = EnvelopeView {
        header: [const { Cow::Borrowed("") }; HEADER_STRINGS],
        metadata: None,
        payloads: Records::Many(Vec::new()),
        extra: Vec::new(),
    };

    /// Reads an envelope from its wire JSON without copying it.
    ///
    /// Validates everything [`Envelope::from_json`] validates, with the same
    /// leniency and the same error for the same input: every direct
    /// payload's base64 is checked and its length compared with `size`, but
    /// not decoded (see [`PayloadView::decode_into`]).
    pub fn parse(json: &'a [u8]) -> Result<EnvelopeView<'a>> {
        crate::lex::Reader::new(json).view()
    }

    /// `correlation_id`.
    pub fn correlation_id(&self) -> &str {
        &self.header[0]
    }
    /// `msg_id`.
    pub fn msg_id(&self) -> &str {
        &self.header[1]
    }
    /// `timestamp`, as written on the wire.
    pub fn timestamp(&self) -> &str {
        &self.header[2]
    }
    /// `send_to`.
    pub fn send_to(&self) -> &str {
        &self.header[3]
    }
    /// `msg_purpose`.
    pub fn msg_purpose(&self) -> &str {
        &self.header[4]
    }
    /// `sender_name`.
    pub fn sender_name(&self) -> &str {
        &self.header[5]
    }
    /// `sender_id`.
    pub fn sender_id(&self) -> &str {
        &self.header[6]
    }
    /// `receiver_name`.
    pub fn receiver_name(&self) -> &str {
        &self.header[7]
    }
    /// `receiver_id`.
    pub fn receiver_id(&self) -> &str {
        &self.header[8]
    }
    /// `reply_to`.
    pub fn reply_to(&self) -> &str {
        &self.header[9]
    }
    /// `reply_to_msg_id`.
    pub fn reply_to_msg_id(&self) -> &str {
        &self.header[10]
    }
    /// `broker_url`.
    pub fn broker_url(&self) -> &str {
        &self.header[11]
    }

    /// A header string by its wire name (`"msg_id"`, `"reply_to"`, ...).
    pub fn header(&self, name: &str) -> Option<&str> {
        TOP_KEYS[..HEADER_STRINGS].iter().position(|k| *k == name).map(|k| &*self.header[k])
    }

    /// The `timestamp` parsed leniently (see [`crate::parse_timestamp`]).
    pub fn parsed_timestamp(&self) -> Result<time::OffsetDateTime> {
        crate::timestamp::parse_timestamp(self.timestamp())
            .map_err(|detail| Error::malformed("timestamp", detail))
    }

    /// `metadata` as JSON text (`{}` when the envelope had none).
    pub fn metadata_json(&self) -> &str {
        self.metadata.unwrap_or("{}")
    }

    /// `metadata` parsed into a JSON object.
    pub fn metadata(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        match self.metadata {
            None => Ok(serde_json::Map::new()),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| Error::malformed("metadata", e.to_string()))
            }
        }
    }

    /// The payload records, in order.
    pub fn payloads(&self) -> &[PayloadView<'a>] {
        &self.payloads
    }

    /// The record named `dataname`, if any (the first, as names need not be unique).
    pub fn payload(&self, dataname: &str) -> Option<&PayloadView<'a>> {
        self.payloads.iter().find(|p| p.dataname() == dataname)
    }

    /// Top-level members the spec does not name, in the order they came,
    /// each as its key and its value's JSON text. A key repeated in the
    /// input comes as often as it was written (as a JSON object, the last
    /// one counts: [`EnvelopeView::to_envelope`] keeps that one).
    pub fn extra(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra.iter().map(|(k, v)| (&**k, *v))
    }

    /// The owned [`Envelope`], every direct payload decoded (what
    /// [`Envelope::from_json`] returns).
    pub fn to_envelope(&self) -> Result<Envelope> {
        self.clone().into_envelope()
    }

    /// [`EnvelopeView::to_envelope`], reusing what the view already owns.
    pub fn into_envelope(self) -> Result<Envelope> {
        let [
            correlation_id,
            msg_id,
            timestamp,
            send_to,
            msg_purpose,
            sender_name,
            sender_id,
            receiver_name,
            receiver_id,
            reply_to,
            reply_to_msg_id,
            broker_url,
        ] = self.header;
        let metadata = match self.metadata {
            None => serde_json::Map::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::malformed("metadata", e.to_string()))?,
        };
        let mut payloads = Vec::with_capacity(self.payloads.len());
        for record in self.payloads {
            payloads.push(record.into_record()?);
        }
        Ok(Envelope {
            correlation_id: correlation_id.into_owned(),
            msg_id: msg_id.into_owned(),
            timestamp: timestamp.into_owned(),
            send_to: send_to.into_owned(),
            msg_purpose: msg_purpose.into_owned(),
            sender_name: sender_name.into_owned(),
            sender_id: sender_id.into_owned(),
            receiver_name: receiver_name.into_owned(),
            receiver_id: receiver_id.into_owned(),
            reply_to: reply_to.into_owned(),
            reply_to_msg_id: reply_to_msg_id.into_owned(),
            broker_url: broker_url.into_owned(),
            metadata,
            payloads,
            extra: members(self.extra)?,
        })
    }
}

/// Kept members as a JSON object (the last of a repeated key wins). Their
/// text was validated by the parse, so this does not fail in practice.
fn members(raw: Vec<RawMember<'_>>) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for (key, text) in raw {
        let value = serde_json::from_str(text)
            .map_err(|e| Error::malformed(key.to_string(), e.to_string()))?;
        map.insert(key.into_owned(), value);
    }
    Ok(map)
}

impl<'a> PayloadView<'a> {
    /// The payload's `id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The caller's name for the payload.
    pub fn dataname(&self) -> &str {
        &self.dataname
    }

    /// The `payload_type` as written on the wire.
    pub fn payload_type_name(&self) -> &str {
        &self.type_name
    }

    /// The payload type ([`PayloadType::Other`] for one this peer does not
    /// know, which allocates its name; [`PayloadView::payload_type_name`]
    /// does not).
    pub fn payload_type(&self) -> PayloadType {
        PayloadType::from_wire(&self.type_name)
    }

    /// How the payload travels.
    pub fn transport(&self) -> Transport {
        match self.body {
            BodyView::Direct { .. } => Transport::Direct,
            BodyView::Link { .. } => Transport::Link,
        }
    }

    /// The payload's byte length: the decoded length of a direct payload
    /// (checked against `size` when the record had one), the declared
    /// `size` of a link (`None` when it had none).
    pub fn size(&self) -> Option<u64> {
        match &self.body {
            BodyView::Direct { len, .. } => Some(*len as u64),
            BodyView::Link { fetched: Some(bytes), .. } => Some(bytes.len() as u64),
            BodyView::Link { size, .. } => *size,
        }
    }

    /// The link URL, for a link record.
    pub fn url(&self) -> Option<&str> {
        match &self.body {
            BodyView::Direct { .. } => None,
            BodyView::Link { url, .. } => Some(url),
        }
    }

    /// A direct payload's `data`: its base64 text, not yet decoded.
    pub fn base64(&self) -> Option<&[u8]> {
        match &self.body {
            BodyView::Direct { base64, .. } => Some(base64),
            BodyView::Link { .. } => None,
        }
    }

    /// Appends a direct payload's bytes to `out` (decoding its base64
    /// straight into `out`'s spare capacity), or a fetched link's. Fails
    /// with [`ErrorKind::Malformed`](crate::ErrorKind::Malformed) on a link
    /// record whose bytes have not been downloaded.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        match &self.body {
            BodyView::Direct { decoded: Some(bytes), .. } => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            BodyView::Direct { base64, .. } => {
                // Straight into `out`'s spare capacity (its length moves only
                // on success); base64 with line breaks takes the lenient
                // decoder, as the parse did.
                if base64_simd::STANDARD.decode_append(&**base64, out).is_err() {
                    out.extend_from_slice(&crate::read::decode_base64(base64, self.index)?);
                }
                Ok(())
            }
            BodyView::Link { fetched: Some(bytes), .. } => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            BodyView::Link { .. } => Err(self.not_here()),
        }
    }

    /// A direct payload's bytes, decoded into a new buffer (a fetched
    /// link's, shared).
    pub fn bytes(&self) -> Result<Bytes> {
        match &self.body {
            BodyView::Direct { decoded: Some(bytes), .. } => Ok(bytes.clone()),
            BodyView::Direct { base64, .. } => crate::read::decode_base64(base64, self.index),
            BodyView::Link { fetched: Some(bytes), .. } => Ok(bytes.clone()),
            BodyView::Link { .. } => Err(self.not_here()),
        }
    }

    /// The typed value of a direct payload (as [`PayloadRecord::value`]).
    pub fn value(&self) -> Result<PayloadValue> {
        PayloadValue::from_bytes(&self.payload_type(), self.bytes()?, &self.dataname)
    }

    /// Record members the spec does not name (`sha256` and the like), in
    /// the order they came, each as its key and its value's JSON text.
    pub fn extra(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra.iter().map(|(k, v)| (&**k, *v))
    }

    /// The JSON text of the record member `key` the spec does not name
    /// (the last, if repeated).
    pub fn extra_value(&self, key: &str) -> Option<&str> {
        self.extra.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The owned record, a direct payload decoded.
    pub fn to_record(&self) -> Result<PayloadRecord> {
        self.clone().into_record()
    }

    /// [`PayloadView::to_record`], reusing what the view already owns.
    pub fn into_record(self) -> Result<PayloadRecord> {
        let index = self.index;
        let body = match self.body {
            BodyView::Direct { decoded: Some(bytes), .. } => Body::Direct(bytes),
            BodyView::Direct { base64, .. } => {
                Body::Direct(crate::read::decode_base64(&base64, index)?)
            }
            BodyView::Link { url, fetched: Some(bytes), .. } => {
                Body::Fetched { url: url.into_owned(), bytes }
            }
            BodyView::Link { url, size, fetched: None } => {
                Body::Link { url: url.into_owned(), size }
            }
        };
        Ok(PayloadRecord {
            id: self.id.into_owned(),
            payload_type: PayloadType::from_wire(&self.type_name),
            dataname: self.dataname.into_owned(),
            body,
            extra: members(self.extra)?,
        })
    }

    fn not_here(&self) -> Error {
        Error::malformed(
            "data",
            format!("payload {:?} is a link that has not been fetched", self.dataname),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Records<'_> {
        EnvelopeView::parse(json.as_bytes()).unwrap().payloads
    }

    const ONE: &str = r#"{"payloads":[{"id":"a","dataname":"x","payload_type":"text","transport":"link","encoding":"none","data":"http://h/a"}]}"#;
    const THREE: &str = r#"{"payloads":[
        {"id":"a","dataname":"x","payload_type":"text","transport":"link","encoding":"none","data":"http://h/a"},
        {"id":"b","dataname":"y","payload_type":"text","transport":"link","encoding":"none","data":"http://h/b"},
        {"id":"c","dataname":"z","payload_type":"text","transport":"link","encoding":"none","data":"http://h/c"}]}"#;

    #[test]
    fn records_keep_one_inline_and_more_in_order() {
        assert!(matches!(record(r#"{"payloads":[]}"#), Records::Many(v) if v.is_empty()));
        assert!(matches!(record(ONE), Records::One(_)));
        let three = record(THREE);
        assert!(matches!(&three, Records::Many(v) if v.len() == 3));
        let ids: Vec<&str> = three.iter().map(PayloadView::id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let owned: Vec<String> = three.into_iter().map(|p| p.id.into_owned()).collect();
        assert_eq!(owned, ["a", "b", "c"]);
        let one: Vec<PayloadView<'_>> = record(ONE).into_iter().collect();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn records_compare_by_their_records() {
        let one = record(ONE);
        let Records::One(first) = one.clone() else { panic!("one record, inline") };
        assert_eq!(one, Records::Many(alloc::vec![first]), "the same record, kept either way");
        assert_ne!(one, record(THREE));
        assert_ne!(one, Records::Many(Vec::new()));
    }
}
