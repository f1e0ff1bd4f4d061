//! The owned envelope that reads in place: the message bytes kept whole,
//! the view of them kept beside them.
//!
//! An [`EnvelopeView`] borrows the message; an [`EnvelopeBuf`] owns it (a
//! reference-counted [`Bytes`], never copied) together with the view its
//! one validating parse made. [`EnvelopeBuf::view`] lends that view, so a
//! receiver that keeps its messages pays for one parse and no owned
//! strings, as `PathBuf` is to `Path`.

use crate::prelude::*;
use crate::view::BodyView;
use crate::{Envelope, EnvelopeView, Result};

// The message and the view borrowing from it, in one allocation. `Bytes`
// keeps its data where it is when the `Bytes` itself moves, which is what
// lets the view borrow from it; self_cell makes that borrow sound without
// unsafe code of ours.
self_cell::self_cell!(
    struct Cell {
        owner: Bytes,
        #[covariant]
        dependent: Kept,
    }
    impl {Debug}
);

/// The view an [`EnvelopeBuf`] keeps, and whether dropping it has anything
/// to free. Most messages are read by the fast path into a view that owns
/// nothing (every string borrowed, one payload record inline): dropping it
/// would only look at each of its fields to find that out.
#[derive(Debug)]
struct Kept<'a> {
    view: core::mem::ManuallyDrop<EnvelopeView<'a>>,
    /// The view may own heap memory (an unescaped string, a list of
    /// records, a fetched link's bytes): it is dropped with the cell.
    owns: bool,
}

impl Drop for Kept<'_> {
    fn drop(&mut self) {
        if self.owns {
            // Moved out, leaving `EMPTY` (which owns nothing) in its place.
            drop(core::mem::replace(&mut *self.view, EnvelopeView::EMPTY));
        }
    }
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
#[derive(Debug)]
pub struct EnvelopeBuf(Cell);

impl EnvelopeBuf {
    /// Parses and validates `message` as [`EnvelopeView::parse`] does (the
    /// same errors), keeping the bytes.
    pub fn parse(message: Bytes) -> Result<EnvelopeBuf> {
        EnvelopeBuf::try_parse(message).map_err(|(_, e)| e)
    }

    /// [`EnvelopeBuf::parse`], giving `message` back with the error.
    pub fn try_parse(message: Bytes) -> core::result::Result<EnvelopeBuf, (Bytes, crate::Error)> {
        // The view is parsed into the cell's allocation rather than on the
        // stack and moved there: a move of the view (about 500 bytes, its
        // one payload record inline) is a fair part of what keeping it
        // costs beside reading it in place.
        let mut cell = Cell::new(message, |_| Kept {
            view: core::mem::ManuallyDrop::new(EnvelopeView::EMPTY),
            owns: true,
        });
        let parsed = cell.with_dependent_mut(|m, kept| {
            let owns_nothing = crate::lex::Reader::new(m).view_into(&mut kept.view)?;
            kept.owns = !owns_nothing;
            Ok(())
        });
        match parsed {
            Ok(()) => Ok(EnvelopeBuf(cell)),
            Err(e) => Err((cell.into_owner(), e)),
        }
    }

    /// The message exactly as it arrived.
    pub fn message(&self) -> &Bytes {
        self.0.borrow_owner()
    }

    /// The envelope read in place: nothing parsed again, nothing copied.
    pub fn view(&self) -> &EnvelopeView<'_> {
        &self.0.borrow_dependent().view
    }

    /// Keeps `bytes` as the downloaded content of the link payload at
    /// `index` (in [`EnvelopeView::payloads`] order): its view then reads
    /// them ([`PayloadView::bytes`](crate::PayloadView::bytes),
    /// [`PayloadView::decode_into`](crate::PayloadView::decode_into)) and
    /// the owned envelope holds them as [`Body::Fetched`](crate::Body::Fetched).
    /// Returns `false` (and keeps nothing) when that payload is no link.
    pub fn set_fetched(&mut self, index: usize, bytes: Bytes) -> bool {
        self.0.with_dependent_mut(|_, kept| {
            match kept.view.payloads.get_mut(index).map(|p| &mut p.body) {
                Some(BodyView::Link { fetched, .. }) => {
                    *fetched = Some(bytes);
                    kept.owns = true;
                    true
                }
                _ => false,
            }
        })
    }

    /// Whether a link payload's bytes are still to be downloaded (see
    /// [`EnvelopeBuf::set_fetched`]).
    pub fn has_unfetched_links(&self) -> bool {
        self.view().payloads.iter().any(|p| matches!(p.body, BodyView::Link { fetched: None, .. }))
    }

    /// The owned [`Envelope`], every direct payload decoded and fetched
    /// links' bytes kept (what `Envelope::from_json` returns, plus those).
    pub fn to_envelope(&self) -> Result<Envelope> {
        self.view().to_envelope()
    }
}

/// A clone shares the message bytes (a reference count) and parses them
/// again, keeping the links' fetched bytes.
impl Clone for EnvelopeBuf {
    fn clone(&self) -> Self {
        let view = self.view();
        let cell = Cell::new(self.message().clone(), |m| {
            // The same bytes parsed once already: they parse again.
            let mut again = EnvelopeView::parse(m).expect("a message that parsed parses again");
            for (p, q) in again.payloads.iter_mut().zip(view.payloads.iter()) {
                if let (BodyView::Link { fetched, .. }, BodyView::Link { fetched: kept, .. }) =
                    (&mut p.body, &q.body)
                {
                    fetched.clone_from(kept);
                }
            }
            Kept { view: core::mem::ManuallyDrop::new(again), owns: true }
        });
        EnvelopeBuf(cell)
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
        assert_eq!(*buf.view(), EnvelopeView::parse(MIXED).unwrap());
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
        let clone = buf.clone();
        assert_eq!(clone.view(), buf.view(), "a clone keeps the fetched bytes");
        assert_eq!(clone.message().as_ptr(), buf.message().as_ptr(), "and shares the message");
    }

    #[test]
    fn a_view_said_to_own_nothing_owns_nothing() {
        // Its drop is skipped: were it wrong, memory would leak.
        let one = concat!(
            r#"{"correlation_id":"c","msg_id":"m","timestamp":"2024-01-15T10:30:00.123Z","#,
            r#""send_to":"a","msg_purpose":"chat","sender_name":"py","sender_id":"s","#,
            r#""receiver_name":"","receiver_id":"","reply_to":"","reply_to_msg_id":"","#,
            r#""broker_url":"","metadata":{"k":1},"payloads":["#,
            r#"{"id":"p","dataname":"t","payload_type":"text","transport":"direct","#,
            r#""encoding":"base64","size":5,"data":"aGVsbG8="}]}"#
        );
        let record = r#"{"id":"p","dataname":"t","payload_type":"text","transport":"direct","encoding":"base64","size":5,"data":"aGVsbG8="}"#;
        let link = r#"{"id":"l","dataname":"b","payload_type":"binary","transport":"link","encoding":"none","size":3,"data":"http://h/f"}"#;
        let cases: [(String, bool); 7] = [
            (one.to_string(), true),
            (one.replace(record, link), true),
            (one.replace(record, ""), true),
            (one.replace(record, &format!("{record},{link}")), false),
            (one.replace(r#""sender_name":"py""#, r#""sender_name":"p\"y""#), false),
            (one.replace(r#""payloads":["#, r#""x":[1],"payloads":["#), false),
            (String::from_utf8(MIXED.to_vec()).unwrap(), false),
        ];
        for (input, expected) in cases {
            let mut view = EnvelopeView::EMPTY;
            let owns_nothing = crate::lex::Reader::new(input.as_bytes()).view_into(&mut view);
            assert_eq!(owns_nothing, Ok(expected), "{input}");
            if expected {
                assert!(!view.owns_heap(), "{input}");
            }
            let buf = EnvelopeBuf::parse(Bytes::from(input.clone().into_bytes())).unwrap();
            assert_eq!(buf.0.borrow_dependent().owns, !expected, "{input}");
            assert_eq!(*buf.view(), view, "{input}");
        }
        let mut buf = EnvelopeBuf::parse(Bytes::from(one.replace(record, link))).unwrap();
        assert!(!buf.0.borrow_dependent().owns);
        assert!(buf.set_fetched(0, Bytes::from(alloc::vec![1, 2, 3])));
        assert!(buf.0.borrow_dependent().owns, "fetched bytes are dropped with the buffer");
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
