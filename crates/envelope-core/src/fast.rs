//! The reader's fast path: the envelope as peers write it.
//!
//! Every peer writes the spec's keys in the spec's order, compact (`,`
//! and `:`) or Python's default (`, ` and `: `), with plain ASCII header
//! strings. This path reads exactly that shape in one straight pass, with
//! no error to build: anything else (another order, an unknown key, an
//! escape, a non-ASCII byte, `null`, a fractional size, any mistake) makes
//! it give up, and the general reader of [`crate::read`] reads the input
//! from the start, producing the envelope or the error. So the fast path
//! decides nothing: it accepts only what the general reader accepts, and
//! reads it the same (the view's tests compare the two on every shape).

use crate::lex::{Reader, eq_short, find_quote_or_backslash, plain_ascii_len};
use crate::prelude::*;
use crate::read::{
    DataText, HEADER_STRINGS, QUOTED_RECORD_KEYS, QUOTED_TOP_KEYS, RawRecord, SizeValue,
};
use crate::view::{EnvelopeView, PayloadView, Records};

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn byte(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    #[inline(always)]
    fn space(&mut self) {
        if self.b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    /// `,` and at most one space.
    #[inline(always)]
    fn comma(&mut self) -> Option<()> {
        self.byte(b',')?;
        self.space();
        Some(())
    }

    /// The key `quoted` (quotes included), `:` and at most one space.
    #[inline(always)]
    fn key(&mut self, quoted: &str) -> Option<()> {
        let n = quoted.len();
        if !eq_short(self.b.get(self.i..self.i + n)?, quoted.as_bytes()) {
            return None;
        }
        self.i += n;
        self.byte(b':')?;
        self.space();
        Some(())
    }

    /// A plain ASCII string, borrowed.
    #[inline(always)]
    fn str(&mut self) -> Option<Cow<'a, str>> {
        self.byte(b'"')?;
        let rest = self.b.get(self.i..)?;
        let len = plain_ascii_len(rest)?;
        self.i += len + 1;
        let raw = &rest[..len];
        // SAFETY: `plain_ascii_len` checked every byte is below 0x80, and
        // ASCII is valid UTF-8.
        #[allow(unsafe_code)]
        Some(Cow::Borrowed(unsafe { core::str::from_utf8_unchecked(raw) }))
    }

    /// `data`: the bytes between the quotes, if they hold no escape.
    #[inline(always)]
    fn data(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let rest = self.b.get(self.i..)?;
        let len = find_quote_or_backslash(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i += len + 1;
        Some(&rest[..len])
    }

    /// `size`: decimal digits only (what peers write); at most 19, so it fits.
    #[inline(always)]
    fn size(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n = 0u64;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            // Wrapping: more than 19 digits is declined below anyway.
            n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        let digits = self.i - start;
        // A leading zero is not JSON (`01`): the general reader says so.
        (digits > 0 && digits < 20 && (digits == 1 || self.b[start] != b'0')).then_some(n)
    }

    #[inline(always)]
    fn record(&mut self, index: usize, decode: bool) -> Option<PayloadView<'a>> {
        self.byte(b'{')?;
        let mut raw = RawRecord::default();
        self.key(QUOTED_RECORD_KEYS[0])?;
        raw.id = Some(self.str()?);
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[1])?;
        raw.dataname = Some(self.str()?);
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[2])?;
        raw.payload_type = Some(self.str()?);
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[3])?;
        raw.transport = Some(self.str()?);
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[4])?;
        raw.encoding = Some(self.str()?);
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[5])?;
        raw.size = Some(SizeValue::Int(self.size()?));
        self.comma()?;
        self.key(QUOTED_RECORD_KEYS[6])?;
        raw.data = Some(DataText::Raw(self.data()?));
        self.byte(b'}')?;
        raw.finish(index, decode, Vec::new()).ok()
    }
}

/// Reads the envelope in the shape peers write into `view` (which must be
/// [`EnvelopeView::EMPTY`]), in place; `None` leaves the input to the
/// general reader (and `view` to be dropped).
#[inline(always)]
pub(crate) fn fill<'a>(view: &mut EnvelopeView<'a>, b: &'a [u8], decode: bool) -> Option<()> {
    let mut c = Cursor { b, i: 0 };
    let mut r = Reader::new(b);
    r.ws();
    c.i = r.i;
    c.byte(b'{')?;
    // Unrolled, so each key's comparison is compiled for its length.
    macro_rules! header {
        ($($k:literal),*) => {$(
            c.key(QUOTED_TOP_KEYS[$k])?;
            // Not `=`: the field holds `EMPTY`'s borrowed "", which has
            // nothing to drop, and a view filled in place (an
            // `EnvelopeBuf`'s) would otherwise check each old value.
            core::mem::forget(core::mem::replace(&mut view.header[$k], c.str()?));
            c.comma()?;
        )*};
    }
    header!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    c.key(QUOTED_TOP_KEYS[HEADER_STRINGS])?;
    if c.b.get(c.i..c.i + 2) == Some(b"{}") {
        c.i += 2;
    } else {
        c.b.get(c.i).filter(|&&x| x == b'{')?;
        let mut r = Reader::new(b);
        r.i = c.i;
        view.metadata = Some(r.json_text().ok()?);
        c.i = r.i;
    }
    c.comma()?;
    c.key(QUOTED_TOP_KEYS[HEADER_STRINGS + 1])?;
    c.byte(b'[')?;
    if c.byte(b']').is_none() {
        // The first record replaces `EMPTY`'s list without looking at it
        // (as the header strings above), the rest are pushed.
        let first = c.record(0, decode)?;
        core::mem::forget(core::mem::replace(&mut view.payloads, Records::One(first)));
        while c.byte(b']').is_none() {
            c.comma()?;
            let record = c.record(view.payloads.len(), decode)?;
            view.payloads.push(record);
        }
    }
    c.byte(b'}')?;
    let mut r = Reader::new(b);
    r.i = c.i;
    r.ws();
    (r.i == b.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the fast path reads, if it takes the input.
    fn fast(b: &[u8], decode: bool) -> Option<EnvelopeView<'_>> {
        let mut view = EnvelopeView::EMPTY;
        fill(&mut view, b, decode).map(|()| view)
    }

    const COMPACT: &str = concat!(
        r#"{"correlation_id":"c-1","msg_id":"m-1","timestamp":"2024-01-15T10:30:00.123Z","#,
        r#""send_to":"a.b","msg_purpose":"chat","sender_name":"py","sender_id":"s-1","#,
        r#""receiver_name":"","receiver_id":"","reply_to":"_INBOX.x","reply_to_msg_id":"","#,
        r#""broker_url":"nats://localhost:4222","metadata":{"k":[1,2.5,"x"]},"payloads":["#,
        r#"{"id":"p-1","dataname":"greeting","payload_type":"text","transport":"direct","#,
        r#""encoding":"base64","size":5,"data":"aGVsbG8="},"#,
        r#"{"id":"p-2","dataname":"big","payload_type":"binary","transport":"link","#,
        r#""encoding":"none","size":1048576,"data":"http://127.0.0.1:8080/file/x/y/big.bin"}]}"#,
    );

    /// Python's `json.dumps` separators (`, ` and `: `).
    fn spaced(compact: &str) -> String {
        compact.replace("\",\"", "\", \"").replace("\":", "\": ").replace("},{", "}, {")
    }

    #[test]
    fn the_shapes_peers_write_take_the_fast_path_and_read_as_the_general_reader_reads() {
        let spaced = spaced(COMPACT);
        assert!(spaced.contains(r#""msg_id": "m-1", "#), "{spaced}");
        let empty_metadata = COMPACT.replace(r#"{"k":[1,2.5,"x"]}"#, "{}");
        let no_payloads = concat!(
            r#"{"correlation_id":"","msg_id":"","timestamp":"","send_to":"","msg_purpose":"","#,
            r#""sender_name":"","sender_id":"","receiver_name":"","receiver_id":"","reply_to":"","#,
            r#""reply_to_msg_id":"","broker_url":"","metadata":{},"payloads":[]}"#
        );
        for input in [COMPACT, &spaced, &empty_metadata, no_payloads, &format!(" \n{COMPACT}\n ")] {
            for decode in [false, true] {
                let fast = fast(input.as_bytes(), decode)
                    .unwrap_or_else(|| panic!("fast path declined {input}"));
                let general = Reader::new(input.as_bytes()).envelope_general(decode).unwrap();
                assert_eq!(fast, general, "{input}");
            }
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_reader() {
        for input in [
            COMPACT.replace(r#""msg_id":"m-1","#, ""), // a key missing
            COMPACT.replace(r#""sender_name":"py""#, r#""sender_name":null"#),
            COMPACT.replace(r#""sender_name":"py""#, r#""sender_name":"caf\u00e9""#),
            COMPACT.replace(r#""sender_name":"py""#, "\"sender_name\":\"caf\u{e9}\""),
            COMPACT.replace(r#""size":5"#, r#""size":5.0"#),
            COMPACT.replace(r#""size":5"#, r#""size":05"#),
            COMPACT.replace(r#""size":5"#, r#""size":null"#),
            COMPACT.replace(r#""size":5"#, r#""size":123456789012345678901234567890"#),
            COMPACT.replace(r#""payloads":["#, r#""x_extra":1,"payloads":["#),
            COMPACT.replace(r#","data":"aGVsbG8=""#, r#","data":"aGVsbG8=","sha256":"00""#),
            COMPACT.replace(r#"":"#, "\" :"),  // space before `:`
            COMPACT.replace(r#"","#, "\",  "), // two spaces
            COMPACT.replace(r#""data":"aGVsbG8=""#, r#""data":"aGVsbG8\/""#),
            format!("{COMPACT}x"),
            COMPACT[..COMPACT.len() - 1].to_string(),
        ] {
            assert!(fast(input.as_bytes(), false).is_none(), "fast path took {input}");
        }
    }

    #[test]
    fn what_the_fast_path_would_reject_it_declines_so_the_general_reader_names_it() {
        // Valid shape, invalid content: the general reader owns the error.
        for input in [
            COMPACT.replace(r#""size":5"#, r#""size":6"#),
            COMPACT.replace("aGVsbG8=", "aGVsbG8*"),
            COMPACT.replace(r#""transport":"direct""#, r#""transport":"carrier""#),
        ] {
            assert!(fast(input.as_bytes(), false).is_none(), "fast path took {input}");
            assert!(Reader::new(input.as_bytes()).envelope(false).is_err(), "{input}");
        }
    }
}
