//! The owned envelope that reads in place: the message bytes kept whole,
//! every field a position in them.
//!
//! An [`EnvelopeView`] borrows the message; an [`EnvelopeBuf`] owns it (a
//! reference-counted [`Bytes`], never copied) and keeps, from the one
//! validating parse, where each field lies in it. [`EnvelopeBuf::view`]
//! hands the view back without parsing again, so a receiver that keeps its
//! messages pays for one parse and no owned strings, as `PathBuf` is to
//! `Path`.

use core::ops::Range;

use crate::prelude::*;
use crate::read::HEADER_STRINGS;
use crate::view::{BodyView, PayloadView, RawMember};
use crate::{Envelope, EnvelopeView, Result};

/// Where a string of the view is: a range of the message, or (where the
/// JSON escaped it) the unescaped text owned here.
#[derive(Clone, Debug)]
enum Text {
    At(Range<usize>),
    Owned(Box<str>),
}

/// The same for bytes (a direct payload's base64).
#[derive(Clone, Debug)]
enum Raw {
    At(Range<usize>),
    Owned(Box<[u8]>),
}

#[derive(Clone, Debug)]
enum BodyAt {
    Direct { base64: Raw, len: usize },
    Link { url: Text, size: Option<u64>, fetched: Option<Bytes> },
}

#[derive(Clone, Debug)]
struct PayloadAt {
    index: usize,
    id: Text,
    dataname: Text,
    type_name: Text,
    body: BodyAt,
    extra: Vec<(Text, Range<usize>)>,
}

/// An envelope that owns its message bytes and reads every field from
/// them: the owned counterpart of [`EnvelopeView`] (see the module docs).
///
/// ```
/// use natsbridge_envelope_core::EnvelopeBuf;
/// use natsbridge_envelope_core::bytes::Bytes;
///
/// let json = Bytes::from_static(br#"{"msg_id":"m-1","sender_name":"py","payloads":[
///     {"id":"p","dataname":"greeting","payload_type":"text","transport":"direct",
///      "encoding":"base64","size":5,"data":"aGVsbG8="}]}"#);
/// let envelope = EnvelopeBuf::parse(json)?;
/// let view = envelope.view();
/// assert_eq!(view.sender_name(), "py");
/// assert_eq!(view.payloads()[0].bytes()?.as_ref(), b"hello");
/// # Ok::<(), natsbridge_envelope_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EnvelopeBuf {
    message: Bytes,
    header: [Text; HEADER_STRINGS],
    metadata: Option<Range<usize>>,
    payloads: Vec<PayloadAt>,
    extra: Vec<(Text, Range<usize>)>,
}

/// The range `part` occupies in `base`, if it is a slice of it.
fn range_in(base: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= base.len()).then_some(start..end)
}

/// Where `text` (borrowed from the message, or unescaped by the parse into
/// a string of its own) is.
fn text_at(base: &[u8], text: &str) -> Text {
    match range_in(base, text.as_bytes()) {
        Some(range) => Text::At(range),
        None => Text::Owned(text.into()),
    }
}

fn members_at(base: &[u8], members: &[RawMember<'_>]) -> Vec<(Text, Range<usize>)> {
    // The values are always slices of the message (JSON text kept as is).
    members
        .iter()
        .filter_map(|(k, v)| Some((text_at(base, k), range_in(base, v.as_bytes())?)))
        .collect()
}

/// A string of the view in `base`.
fn text_in<'a>(base: &'a [u8], text: &'a Text) -> Cow<'a, str> {
    match text {
        Text::At(range) => Cow::Borrowed(json_in(base, range)),
        Text::Owned(s) => Cow::Borrowed(s),
    }
}

/// The text at `range` of `base`.
fn json_in<'a>(base: &'a [u8], range: &Range<usize>) -> &'a str {
    // SAFETY: every range kept is that of a `&str` the parse took from
    // this same message, which `Bytes` never changes: valid UTF-8, on char
    // boundaries.
    #[allow(unsafe_code)]
    unsafe {
        core::str::from_utf8_unchecked(&base[range.clone()])
    }
}

impl EnvelopeBuf {
    /// Parses and validates `message` as [`EnvelopeView::parse`] does (the
    /// same errors), keeping the bytes.
    pub fn parse(message: Bytes) -> Result<EnvelopeBuf> {
        let view = EnvelopeView::parse(&message)?;
        let base: &[u8] = &message;
        let header = core::array::from_fn(|i| text_at(base, &view.header[i]));
        let metadata = view.metadata.and_then(|m| range_in(base, m.as_bytes()));
        let payloads = view
            .payloads
            .iter()
            .map(|p| PayloadAt {
                index: p.index,
                id: text_at(base, &p.id),
                dataname: text_at(base, &p.dataname),
                type_name: text_at(base, &p.type_name),
                body: match &p.body {
                    BodyView::Direct { base64, len, .. } => BodyAt::Direct {
                        base64: match base64 {
                            Cow::Borrowed(b) => match range_in(base, b) {
                                Some(range) => Raw::At(range),
                                None => Raw::Owned((*b).into()),
                            },
                            Cow::Owned(b) => Raw::Owned(b.as_slice().into()),
                        },
                        len: *len,
                    },
                    BodyView::Link { url, size, fetched } => BodyAt::Link {
                        url: text_at(base, url),
                        size: *size,
                        fetched: fetched.clone(),
                    },
                },
                extra: members_at(base, &p.extra),
            })
            .collect();
        let extra = members_at(base, &view.extra);
        drop(view);
        Ok(EnvelopeBuf { header, metadata, payloads, extra, message })
    }

    /// The message exactly as it arrived.
    pub fn message(&self) -> &Bytes {
        &self.message
    }

    /// The envelope read in place: nothing parsed again, nothing copied
    /// (one allocation, the list of payload records).
    pub fn view<'a>(&'a self) -> EnvelopeView<'a> {
        let base: &[u8] = &self.message;
        let text = |t| text_in(base, t);
        let json = |range| json_in(base, range);
        let members = |m: &'a [(Text, Range<usize>)]| -> Vec<RawMember<'a>> {
            m.iter().map(|(k, v)| (text_in(base, k), json_in(base, v))).collect()
        };
        EnvelopeView {
            header: core::array::from_fn(|i| text(&self.header[i])),
            metadata: self.metadata.as_ref().map(json),
            payloads: self
                .payloads
                .iter()
                .map(|p| PayloadView {
                    index: p.index,
                    id: text(&p.id),
                    dataname: text(&p.dataname),
                    type_name: text(&p.type_name),
                    body: match &p.body {
                        BodyAt::Direct { base64, len } => BodyView::Direct {
                            base64: match base64 {
                                Raw::At(range) => Cow::Borrowed(&base[range.clone()]),
                                Raw::Owned(b) => Cow::Borrowed(b),
                            },
                            len: *len,
                            decoded: None,
                        },
                        BodyAt::Link { url, size, fetched } => {
                            BodyView::Link { url: text(url), size: *size, fetched: fetched.clone() }
                        }
                    },
                    extra: members(&p.extra),
                })
                .collect(),
            extra: members(&self.extra),
        }
    }

    /// Keeps `bytes` as the downloaded content of the link payload at
    /// `index` (in [`EnvelopeView::payloads`] order): its view then reads
    /// them ([`PayloadView::bytes`], [`PayloadView::decode_into`]) and the
    /// owned envelope holds them as [`Body::Fetched`](crate::Body::Fetched).
    /// Returns `false` (and keeps nothing) when that payload is no link.
    pub fn set_fetched(&mut self, index: usize, bytes: Bytes) -> bool {
        match self.payloads.get_mut(index).map(|p| &mut p.body) {
            Some(BodyAt::Link { fetched, .. }) => {
                *fetched = Some(bytes);
                true
            }
            _ => false,
        }
    }

    /// Whether a link payload's bytes are still to be downloaded (see
    /// [`EnvelopeBuf::set_fetched`]).
    pub fn has_unfetched_links(&self) -> bool {
        self.payloads.iter().any(|p| matches!(p.body, BodyAt::Link { fetched: None, .. }))
    }

    /// The owned [`Envelope`], every direct payload decoded and fetched
    /// links' bytes kept (what `Envelope::from_json` returns, plus those).
    pub fn to_envelope(&self) -> Result<Envelope> {
        self.view().into_envelope()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] =
        br#"{"correlation_id":"c\"1","msg_id":"m","timestamp":"2024-01-15T10:30:00Z",
        "sender_name":"caf\u00e9","metadata":{"k":[1,2]},"note":"kept",
        "payloads":[{"id":"p","dataname":"t","payload_type":"text","transport":"direct",
          "encoding":"base64","size":5,"data":"aGVs\nbG8=","sha256":"x"},
          {"id":"l","dataname":"big","payload_type":"binary","transport":"link",
          "encoding":"none","size":3,"data":"http://h/f"}]}"#;

    #[test]
    fn the_view_is_the_parse_s_without_parsing_again() {
        let buf = EnvelopeBuf::parse(Bytes::from_static(MIXED)).unwrap();
        assert_eq!(buf.view(), EnvelopeView::parse(MIXED).unwrap());
        assert_eq!(buf.view().correlation_id(), "c\"1", "an escaped string is kept unescaped");
        assert_eq!(buf.view().payloads()[0].bytes().unwrap().as_ref(), b"hello");
        assert_eq!(buf.to_envelope().unwrap(), Envelope::from_json(MIXED).unwrap());
        assert_eq!(buf.message().as_ref(), MIXED);
    }

    #[test]
    fn a_fetched_link_reads_as_its_bytes_and_stays_a_link() {
        let mut buf = EnvelopeBuf::parse(Bytes::from_static(MIXED)).unwrap();
        assert!(!buf.set_fetched(0, Bytes::from_static(b"no")), "a direct payload");
        assert!(buf.view().payloads()[1].bytes().is_err(), "not fetched yet");
        assert!(buf.set_fetched(1, Bytes::from_static(b"abc")));
        let view = buf.view();
        assert_eq!(view.payloads()[1].bytes().unwrap().as_ref(), b"abc");
        assert_eq!(view.payloads()[1].transport(), crate::Transport::Link);
        let envelope = buf.to_envelope().unwrap();
        assert!(
            matches!(&envelope.payloads[1].body, crate::Body::Fetched { url, .. } if url == "http://h/f")
        );
    }

    #[test]
    fn an_invalid_message_is_the_view_s_error() {
        let bad = Bytes::from_static(br#"{"payloads":[{"transport":"carrier pigeon"}]}"#);
        assert_eq!(
            EnvelopeBuf::parse(bad.clone()).unwrap_err(),
            EnvelopeView::parse(&bad).unwrap_err()
        );
    }
}
